package cli

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// The --json dumps of Slurm 22.05 (openapi/v0.0.38 through the data_parser
// plugin) are written by Slurm's own serializer, not a general JSON
// library: keys in a fixed order, two-space indents, "/" escaped as "\/",
// empty arrays as "[", newline, "]", no newline at the end. jsonOut
// writes that layout from ordered members.

// member is one key of a JSON object, in order.
type member struct {
	k string
	v any // string, int, int64, bool, nil (null), jfloat, []member (object), []any (array)
}

// jfloat is a number Slurm prints with a fraction (billable_tres: 1.0).
type jfloat float64

// jsonOut writes v at indent (the indent of the line it starts on).
func jsonOut(b *bytes.Buffer, v any, indent int) {
	pad := func(n int) { b.WriteString(strings.Repeat(" ", n)) }
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		b.WriteString(jsonString(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case jfloat:
		s := strconv.FormatFloat(float64(x), 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		b.WriteString(s)
	case []member:
		b.WriteString("{\n")
		for i, m := range x {
			pad(indent + 2)
			b.WriteString(jsonString(m.k))
			b.WriteString(": ")
			jsonOut(b, m.v, indent+2)
			if i < len(x)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		pad(indent)
		b.WriteByte('}')
	case []any:
		b.WriteString("[\n")
		for i, e := range x {
			pad(indent + 2)
			jsonOut(b, e, indent+2)
			if i < len(x)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		pad(indent)
		b.WriteByte(']')
	default:
		panic("jsonOut: unsupported type")
	}
}

// jsonString quotes s as Slurm's serializer does ("/" as "\/").
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.ReplaceAll(strings.TrimSuffix(b.String(), "\n"), "/", `\/`)
}

// strings2any makes a JSON array of strings.
func strings2any(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// slurmMeta is the "meta" member of Slurm 22.05's dumps: the plugin that
// wrote it (openapi/v0.0.38 for squeue and sinfo, openapi/dbv0.0.38 for
// sacct) and the version.
func slurmMeta(pluginType, pluginName, version string) member {
	parts := strings.SplitN(version, ".", 3)
	num := func(i int) int {
		if i < len(parts) {
			n, _ := strconv.Atoi(parts[i])
			return n
		}
		return 0
	}
	return member{"meta", []member{
		{"plugin", []member{{"type", pluginType}, {"name", pluginName}}},
		{"Slurm", []member{
			{"version", []member{{"major", num(0)}, {"micro", num(2)}, {"minor", num(1)}}},
			{"release", version},
		}},
	}}
}

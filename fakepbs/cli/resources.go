package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jobsim/jobsim/fakepbs/pbsunit"
)

// resource is one "-l name=value" entry.
type resource struct{ Name, Value string }

// parseResources splits a -l argument the way OpenPBS's set_resources does:
// comma-separated name[=value] entries, leading blanks skipped, values may be
// quoted (quotes removed, commas inside quotes kept), a name without '='
// gets an empty value. It reports false for an empty name, a trailing comma,
// an unterminated quote or white space inside an unquoted value.
func parseResources(s string) ([]resource, bool) {
	var out []resource
	r := 0
	for r < len(s) {
		for r < len(s) && isSpace(s[r]) {
			r++
		}
		eq := r
		for eq < len(s) && s[eq] != '=' && s[eq] != ',' {
			eq++
		}
		if r == eq {
			return nil, false
		}
		name := s[r:eq]
		if i := strings.IndexFunc(name, func(c rune) bool { return c == ' ' || c == '\t' }); i >= 0 {
			name = name[:i]
		}
		var next int
		value := ""
		if eq < len(s) && s[eq] == '=' {
			t := eq + 1
			for t < len(s) && isSpace(s[t]) {
				t++
			}
			v, e, ok := quoteParse(s, t)
			if !ok {
				return nil, false
			}
			value, next = v, e
		} else {
			next = eq
		}
		out = append(out, resource{Name: name, Value: value})
		r = next
		if r < len(s) && s[r] == ',' {
			r++
			if r == len(s) {
				return nil, false
			}
		}
	}
	return out, true
}

// quoteParse reads a value from s[i:] up to an unquoted comma (pbs_quote_parse
// with QMGR_NO_WHITE_IN_VALUE), returning the value without its quotes and
// the index of the comma or end.
func quoteParse(s string, i int) (string, int, bool) {
	var b strings.Builder
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ',':
			return b.String(), i, true
		case isSpace(c):
			// Trailing blanks end the value; blanks inside it are an error.
			j := i
			for j < len(s) && isSpace(s[j]) {
				j++
			}
			if j == len(s) || s[j] == ',' {
				return b.String(), j, true
			}
			return "", i, false
		default:
			b.WriteByte(c)
		}
	}
	if quote != 0 {
		return "", i, false
	}
	return b.String(), i, true
}

// Resource value kinds the client-side check (OpenPBS's ECL layer) knows.
var resourceKinds = map[string]string{
	"walltime": "time", "cput": "time", "pcput": "time", "soft_walltime": "time",
	"min_walltime": "time", "max_walltime": "time",
	"mem": "size", "vmem": "size", "pmem": "size", "pvmem": "size", "file": "size",
	"ncpus": "long", "nodect": "long", "mpiprocs": "long", "ompthreads": "long",
	"ngpus": "long", "nice": "long",
	"select": "select", "place": "place",
}

// checkResource reports whether value is acceptable for a known resource.
// Unknown resources are left to the server.
func checkResource(name, value string) bool {
	switch resourceKinds[name] {
	case "time":
		_, ok := parseTime(value)
		return ok
	case "size":
		_, err := pbsunit.ParseSize(value)
		return err == nil
	case "long":
		_, err := strconv.ParseInt(value, 10, 64)
		return err == nil
	case "select":
		return checkSelect(value)
	case "place":
		return value != ""
	}
	return true
}

// parseTime reads a PBS duration, returning seconds.
func parseTime(v string) (int64, bool) {
	sec, err := pbsunit.ParseTime(v)
	return sec, err == nil
}

// displayResource is a resource value as the server reports it: durations
// are encoded as HH:MM:SS, sizes with their unit in lower case ("4gb").
func displayResource(name, value string) string {
	switch resourceKinds[name] {
	case "time":
		if s, ok := parseTime(value); ok {
			return pbsunit.FormatTime(s)
		}
	case "size":
		if s, err := pbsunit.ParseSize(value); err == nil {
			return s.String()
		}
	}
	return value
}

// sizeKB writes a size in kilobytes the way the server reports node memory
// ("16265356kb"); values it cannot read are returned unchanged.
func sizeKB(v string) string {
	if v == "" {
		return "0kb"
	}
	s, err := pbsunit.ParseSize(v)
	if err != nil {
		return v
	}
	return pbsunit.KBString(s.Bytes())
}

// checkSelect validates a select statement: chunks joined by '+', each
// "[N:]res=value[:res=value]...".
func checkSelect(v string) bool {
	if v == "" {
		return false
	}
	for _, chunk := range strings.Split(v, "+") {
		if chunk == "" {
			return false
		}
		parts := strings.Split(chunk, ":")
		start := 0
		if n, err := strconv.Atoi(parts[0]); err == nil {
			if n <= 0 {
				return false
			}
			start = 1
		}
		for _, p := range parts[start:] {
			k, val, ok := strings.Cut(p, "=")
			if !ok || k == "" || val == "" {
				return false
			}
			if !checkResource(k, val) {
				return false
			}
		}
	}
	return true
}

// cnvSize is qstat's cnv_size for the alternative display: a size shown in
// at most four digits with a magnitude letter and b or w ("3072mb").
func cnvSize(value string, opt int) string {
	size, _ := pbsunit.ParseSize(value) // the server's encoding; zero if unreadable
	nval := size.Num
	in := int(size.Shift / 10)
	suffix2 := byte('b')
	if size.Words {
		nval <<= 3
		suffix2 = 'w'
	}
	out := in
	switch {
	case opt&(altMb|altMw) != 0:
		out = 2
		if opt&altMw != 0 {
			suffix2 = 'w'
		} else {
			suffix2 = 'b'
		}
	case opt&altG != 0:
		out = 3
		suffix2 = 'b'
	}
	sft := (in - out) * 10
	if sft < 0 {
		nval = (nval + (1 << uint(-sft)) - 1) >> uint(-sft)
	} else if sft > 0 {
		nval <<= uint(sft)
	}
	if suffix2 == 'w' {
		nval = (nval + 7) >> 3
	}
	for nval > 9999 {
		nval = (nval + 1023) >> 10
		out++
	}
	letters := " kmgtp?"
	if out >= len(letters) {
		out = len(letters) - 1
	}
	return fmt.Sprintf("%d%c%c", nval, letters[out], suffix2)
}

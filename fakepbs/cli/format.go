package cli

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// attr is one attribute as the server reports it: a name, a resource for
// resource-typed attributes (Resource_List.walltime), and its text value.
type attr struct {
	Name, Resource, Value string
}

// charLineLimit is CHAR_LINE_LIMIT of qstat.c: values are wrapped past it.
const charLineLimit = 78

// prtAttr writes one attribute as `qstat -f` does (prt_attr of qstat.c):
// "    name[.resource] = value". Unless oneLine (-w), the value is split at
// commas and continued on "\n\t" lines once a piece would pass column 78; a
// piece longer than a line is broken character by character. The comma is
// printed without being counted, as OpenPBS does.
func prtAttr(b *bytes.Buffer, a attr, oneLine bool) {
	if oneLine {
		b.WriteString("    ")
		b.WriteString(a.Name)
		if a.Resource != "" {
			b.WriteByte('.')
			b.WriteString(a.Resource)
		}
		b.WriteString(" = ")
		b.WriteString(convertFeedChars(a.Value))
		return
	}
	start := len(a.Name) + 7
	b.WriteString("    ")
	b.WriteString(a.Name)
	if a.Resource != "" {
		start += len(a.Resource) + 1
		b.WriteByte('.')
		b.WriteString(a.Resource)
	}
	b.WriteString(" = ")
	first := true
	v := a.Value
	tok, rest, ok := nextTok(v, ',')
	for ok {
		if len(tok)+start < charLineLimit {
			b.WriteString(tok)
			start += len(tok)
		} else {
			if !first {
				b.WriteString("\n\t")
				start = 9
			}
			for k := 0; k < len(tok); k++ {
				b.WriteByte(tok[k])
				start++
				if start > charLineLimit {
					start = 8
					b.WriteString("\n\t")
				}
			}
		}
		tok, rest, ok = nextTok(rest, ',')
		if ok {
			first = false
			b.WriteByte(',')
		}
	}
}

// nextTok returns the next non-empty piece of s up to sep, as successive
// strtok(3) calls do, and the rest after it; ok is false at the end.
func nextTok(s string, sep byte) (tok, rest string, ok bool) {
	for len(s) > 0 && s[0] == sep {
		s = s[1:]
	}
	if s == "" {
		return "", "", false
	}
	i := strings.IndexByte(s, sep)
	if i < 0 {
		return s, "", true
	}
	return s[:i], s[i+1:], true
}

// strtok splits s at sep the way strtok(3) does: empty pieces vanish.
func strtok(s string, sep byte) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			out = append(out, s)
			break
		}
		if i > 0 {
			out = append(out, s[:i])
		}
		s = s[i+1:]
	}
	return out
}

// convertFeedChars is qstat's convert_feed_chars: newlines and form feeds
// become the two characters \n and \f.
func convertFeedChars(s string) string {
	if !strings.ContainsAny(s, "\n\f") {
		return s
	}
	s = strings.ReplaceAll(s, "\n", `\n`)
	return strings.ReplaceAll(s, "\f", `\f`)
}

// ctime formats t as ctime(3) does, without its newline:
// "Wed Jun 24 15:33:18 2020".
func ctime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon Jan _2 15:04:05 2006")
}

// JSON output. OpenPBS writes JSON with its own writer (pbs_json.c): nodes
// are appended to a list, then printed with four-space indents and no space
// after the colon; a value is printed unquoted when strtod(3) consumes all of
// it; quotes and backslashes inside attribute values are not escaped. The
// writer below reproduces that byte for byte, quirks included.

type jsonNodeType int

const (
	jsonValue jsonNodeType = iota
	jsonObject
	jsonObjectEnd
	jsonArray
	jsonArrayEnd
)

type jsonValueType int

const (
	jvNull jsonValueType = iota
	jvString
	jvInt
	jvNumeric
)

// jsonEscape is JSON_ESCAPE (control characters only) or JSON_FULLESCAPE
// (also quotes and backslashes).
type jsonEscape int

const (
	escPartial jsonEscape = iota
	escFull
)

type jsonNode struct {
	typ  jsonNodeType
	vtyp jsonValueType
	key  string
	str  string
	inum int64
}

type jsonList struct{ nodes []jsonNode }

func (l *jsonList) object(key string) {
	l.nodes = append(l.nodes, jsonNode{typ: jsonObject, key: key})
}
func (l *jsonList) objectEnd() { l.nodes = append(l.nodes, jsonNode{typ: jsonObjectEnd}) }
func (l *jsonList) array(key string) {
	l.nodes = append(l.nodes, jsonNode{typ: jsonArray, key: key})
}
func (l *jsonList) arrayEnd() { l.nodes = append(l.nodes, jsonNode{typ: jsonArrayEnd}) }

// auto adds a value whose type is decided as add_json_node does for
// JSON_NULL: numeric when strtod consumes it all, else an escaped string.
func (l *jsonList) auto(typ jsonNodeType, key, value string, esc jsonEscape) {
	n := jsonNode{typ: typ, key: key}
	if cNumeric(value) {
		n.vtyp, n.str = jvNumeric, value
	} else {
		n.vtyp, n.str = jvString, jsonEscapeString(value, esc)
	}
	l.nodes = append(l.nodes, n)
}

// null adds a value node without a value: the writer prints nothing for it.
func (l *jsonList) null(key string) {
	l.nodes = append(l.nodes, jsonNode{typ: jsonValue, key: key})
}

func (l *jsonList) str(typ jsonNodeType, key, value string, esc jsonEscape) {
	l.nodes = append(l.nodes, jsonNode{typ: typ, key: key, vtyp: jvString, str: jsonEscapeString(value, esc)})
}

func (l *jsonList) integer(key string, v int64) {
	l.nodes = append(l.nodes, jsonNode{typ: jsonValue, key: key, vtyp: jvInt, inum: v})
}

func jsonEscapeString(s string, esc jsonEscape) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		switch s[i] {
		case '\b', '\f', '\n', '\r', '\t':
			clean = false
		case '"', '\\':
			clean = esc != escFull
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			if esc == escFull {
				b.WriteString(`\"`)
			} else {
				b.WriteByte(c)
			}
		case '\\':
			if esc == escFull {
				b.WriteString(`\\`)
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

const spaces = "                                                                "

func pad(b *bytes.Buffer, n int) {
	for n > len(spaces) {
		b.WriteString(spaces)
		n -= len(spaces)
	}
	b.WriteString(spaces[:n])
}

// writeKey writes `"key":`.
func writeKey(b *bytes.Buffer, key string) {
	b.WriteByte('"')
	b.WriteString(key)
	b.WriteString(`":`)
}

// generate writes the list as generate_json does. It returns false (after
// writing what OpenPBS writes before giving up) when the objects do not
// balance, in which case the closing "\n}\n" is missing, as in OpenPBS.
func (l *jsonList) generate(b *bytes.Buffer) bool {
	indent := 4
	arrLvl := make([]int, 64)
	cur := 0
	comma := false
	b.WriteByte('{')
	// head starts a member: the separator, the indent, and the key unless
	// the member is an element of the array at this level.
	head := func(key string) {
		if comma {
			b.WriteString(",\n")
		} else {
			b.WriteByte('\n')
		}
		pad(b, indent)
		if arrLvl[cur] != indent {
			writeKey(b, key)
		}
	}
	for _, n := range l.nodes {
		lastObj, lastArr := false, false
		switch n.typ {
		case jsonObject, jsonArray:
			head(n.key)
			if n.typ == jsonObject {
				b.WriteByte('{')
			} else {
				b.WriteByte('[')
			}
			indent += 4
			comma = false
			if n.typ == jsonObject {
				continue
			}
			if cur+1 < len(arrLvl) {
				arrLvl[cur+1] = indent
				cur++
			}
		case jsonObjectEnd:
			lastObj = true
		case jsonArrayEnd:
			lastArr = true
		}
		switch n.vtyp {
		case jvString, jvNumeric, jvInt:
			head(n.key)
			switch n.vtyp {
			case jvString:
				b.WriteByte('"')
				b.WriteString(n.str)
				b.WriteByte('"')
			case jvNumeric:
				b.WriteString(n.str)
			default:
				b.WriteString(strconv.FormatInt(n.inum, 10))
			}
			comma = true
		}
		if lastArr || lastObj {
			indent -= 4
			b.WriteByte('\n')
			pad(b, indent)
			if lastArr {
				b.WriteByte(']')
				if cur > 0 {
					cur--
				}
			} else {
				b.WriteByte('}')
			}
			comma = true
		}
	}
	indent -= 4
	if indent != 0 {
		return false
	}
	b.WriteString("\n}\n")
	return true
}

// cNumeric reports whether add_json_node would print s unquoted: strtod(3)
// must consume it up to trailing white space. Like OpenPBS, an empty or
// all-blank string counts as numeric (and is printed as nothing).
func cNumeric(s string) bool {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := strtodPrefix(s[i:])
	if j == 0 {
		// No conversion: strtod leaves the end pointer at the start of s.
		k := 0
		for k < len(s) && isSpace(s[k]) {
			k++
		}
		return k == len(s)
	}
	k := i + j
	for k < len(s) && isSpace(s[k]) {
		k++
	}
	return k == len(s)
}

// strtodPrefix returns how many bytes of s (no leading space) strtod would
// consume, 0 when it converts nothing.
func strtodPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	rest := strings.ToLower(s[i:])
	switch {
	case strings.HasPrefix(rest, "infinity"):
		return i + 8
	case strings.HasPrefix(rest, "inf"):
		return i + 3
	case strings.HasPrefix(rest, "nan"):
		n := i + 3
		if n < len(s) && s[n] == '(' {
			k := n + 1
			for k < len(s) && (isAlnum(s[k]) || s[k] == '_') {
				k++
			}
			if k < len(s) && s[k] == ')' {
				return k + 1
			}
		}
		return n
	}
	if strings.HasPrefix(rest, "0x") {
		k := i + 2
		digits := 0
		for k < len(s) && isHex(s[k]) {
			k++
			digits++
		}
		if k < len(s) && s[k] == '.' {
			k++
			for k < len(s) && isHex(s[k]) {
				k++
				digits++
			}
		}
		if digits == 0 {
			return i + 1 // just the "0"
		}
		if k < len(s) && (s[k] == 'p' || s[k] == 'P') {
			if e := exponent(s[k+1:]); e > 0 {
				k += 1 + e
			}
		}
		return k
	}
	k := i
	digits := 0
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
		digits++
	}
	if k < len(s) && s[k] == '.' {
		k++
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
			digits++
		}
	}
	if digits == 0 {
		return 0
	}
	if k < len(s) && (s[k] == 'e' || s[k] == 'E') {
		if e := exponent(s[k+1:]); e > 0 {
			k += 1 + e
		}
	}
	return k
}

// exponent returns the length of a signed decimal exponent at the start of s.
func exponent(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	d := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == d {
		return 0
	}
	return i
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// jsonAttr adds one attribute to a job, queue or server object the way
// qstat's prt_attr does in JSON mode: resources of one attribute are grouped
// in an object (closed when another attribute follows), Variable_List
// becomes an object of its variables. prevResc carries the open resource
// group between calls.
func jsonAttr(l *jsonList, a attr, prevResc *string) {
	switch {
	case a.Name == "Variable_List":
		l.object(a.Name)
		for _, kv := range splitVariableList(a.Value) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				l.null(k)
				continue
			}
			l.auto(jsonValue, k, v, escPartial)
		}
		l.objectEnd()
	case a.Resource != "":
		if *prevResc != "" && *prevResc != a.Name {
			l.objectEnd()
			*prevResc = ""
		}
		if *prevResc == "" {
			l.object(a.Name)
			*prevResc = a.Name
		}
		l.auto(jsonValue, a.Resource, a.Value, escPartial)
	default:
		if *prevResc != "" {
			l.objectEnd()
			*prevResc = ""
		}
		l.auto(jsonValue, a.Name, a.Value, escPartial)
	}
}

// splitVariableList splits a Variable_List value at commas not escaped by a
// backslash, dropping the escapes, as prt_attr does for JSON.
func splitVariableList(v string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && v[i+1] == ',' {
			cur.WriteByte(',')
			i++
			continue
		}
		if c == ',' {
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if cur.Len() > 0 || len(v) > 0 {
		out = append(out, cur.String())
	}
	return out
}

// dsvAttr writes one attribute in -F dsv form: name[.resource]=value with the
// delimiter escaped by a backslash and line feeds written as \n.
func dsvAttr(b *bytes.Buffer, a attr, delim string) {
	v := a.Value
	if delim != "" {
		v = strings.ReplaceAll(v, delim, `\`+delim)
	}
	v = convertFeedChars(v)
	b.WriteString(a.Name)
	if a.Resource != "" {
		b.WriteByte('.')
		b.WriteString(a.Resource)
	}
	b.WriteByte('=')
	b.WriteString(v)
}

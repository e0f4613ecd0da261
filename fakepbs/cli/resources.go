package cli

import (
	"fmt"
	"strconv"
	"strings"
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
		_, ok := parseSize(value)
		return ok
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

// parseTime reads a PBS duration: [[HH:]MM:]SS[.frac], returning seconds.
func parseTime(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	frac := ""
	if i := strings.IndexByte(v, '.'); i >= 0 {
		frac = v[i+1:]
		v = v[:i]
		for _, c := range frac {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
	}
	var total int64
	fields := 0
	for v != "" || fields == 0 {
		p := v
		if i := strings.IndexByte(v, ':'); i >= 0 {
			p, v = v[:i], v[i+1:]
			if v == "" {
				return 0, false
			}
		} else {
			v = ""
		}
		fields++
		if p == "" || fields > 3 {
			return 0, false
		}
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		total = total*60 + n
	}
	return total, true
}

// formatTime writes seconds as HH:MM:SS, as the server encodes times.
func formatTime(sec int64) string {
	return fmt.Sprintf("%02d:%02d:%02d", sec/3600, (sec/60)%60, sec%60)
}

// displayResource is a resource value as the server reports it: durations
// are encoded as HH:MM:SS.
func displayResource(name, value string) string {
	if resourceKinds[name] == "time" {
		if s, ok := parseTime(value); ok {
			return formatTime(s)
		}
	}
	return value
}

// parseSize reads a PBS size: an integer with an optional k/m/g/t/p scale
// and b (bytes) or w (words) unit, returning bytes.
func parseSize(v string) (int64, bool) {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	suf := strings.ToLower(v[i:])
	shift := 0
	if len(suf) > 0 {
		switch suf[0] {
		case 'k':
			shift, suf = 10, suf[1:]
		case 'm':
			shift, suf = 20, suf[1:]
		case 'g':
			shift, suf = 30, suf[1:]
		case 't':
			shift, suf = 40, suf[1:]
		case 'p':
			shift, suf = 50, suf[1:]
		}
	}
	mult := int64(1)
	switch suf {
	case "", "b":
	case "w":
		mult = 8
	default:
		return 0, false
	}
	return (n << shift) * mult, true
}

// sizeKB writes a size in kilobytes the way the server reports node memory
// ("16265356kb"); values it cannot read are returned unchanged.
func sizeKB(v string) string {
	if v == "" {
		return "0kb"
	}
	b, ok := parseSize(v)
	if !ok {
		return v
	}
	return strconv.FormatInt((b+1023)/1024, 10) + "kb"
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
	i := 0
	for i < len(value) && value[i] >= '0' && value[i] <= '9' {
		i++
	}
	nval, _ := strconv.ParseUint(value[:i], 10, 64)
	rest := value[i:]
	in := 0
	if len(rest) > 0 {
		switch rest[0] {
		case 'k':
			in = 1
		case 'm':
			in = 2
		case 'g':
			in = 3
		case 't':
			in = 4
		}
	}
	suffix2 := byte('b')
	if (len(rest) > 0 && rest[0] == 'w') || (len(rest) > 1 && rest[1] == 'w') {
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

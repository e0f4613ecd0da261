package cli

import (
	"fmt"
	"strings"
)

// opt is one option of a command: its short letter (0 for none), long name
// ("" for none) and whether it takes an argument (required or optional,
// as getopt_long's has_arg).
type opt struct {
	short byte
	long  string
	arg   int // noArg, reqArg, optArg
	key   string
}

const (
	noArg = iota
	reqArg
	optArg
)

// optSpec reads a command's option table from its compact form, as
// getopt_long's tables are read: entries separated by white space, each
// "[S,]long" with "=" after it for a required argument or "?" for an
// optional one, and ">key" for the key the command switches on (default:
// the short letter, or the long name when there is none). It panics on a
// malformed entry: the tables are constants of this package.
func optSpec(spec string) []opt {
	var out []opt
	for _, e := range strings.Fields(spec) {
		var o opt
		e, o.key, _ = strings.Cut(e, ">")
		if s, l, ok := strings.Cut(e, ","); ok {
			if len(s) != 1 {
				panic("optSpec: bad short option in " + e)
			}
			o.short, e = s[0], l
		}
		switch {
		case strings.HasSuffix(e, "="):
			o.arg, e = reqArg, strings.TrimSuffix(e, "=")
		case strings.HasSuffix(e, "?"):
			o.arg, e = optArg, strings.TrimSuffix(e, "?")
		}
		if e == "" {
			panic("optSpec: entry without a long name")
		}
		o.long = e
		if o.key == "" {
			o.key = o.long
			if o.short != 0 {
				o.key = string(o.short)
			}
		}
		out = append(out, o)
	}
	return out
}

// parsed is one option as found.
type parsed struct {
	key string
	val string
	has bool // an argument was given (for optional ones)
}

// getopt parses args as glibc's getopt_long does: short options clustered
// (-hv, -Jname, -J name), long ones abbreviated to any unique prefix
// (--part=x, --part x). With stopAtOperand (a '+' optstring, as sbatch
// uses) parsing ends at the first operand; otherwise operands are collected
// from anywhere. It returns glibc's message for the first bad option.
func getopt(prog string, opts []opt, args []string, stopAtOperand bool) ([]parsed, []string, error) {
	var out []parsed
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return out, append(operands, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, err := findLong(prog, opts, name)
			if err != nil {
				return nil, nil, err
			}
			p := parsed{key: o.key}
			switch o.arg {
			case noArg:
				if hasVal {
					return nil, nil, fmt.Errorf("%s: option '--%s' doesn't allow an argument", prog, o.long)
				}
			case reqArg:
				if !hasVal {
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("%s: option '--%s' requires an argument", prog, o.long)
					}
					i++
					val = args[i]
				}
				p.val, p.has = val, true
			case optArg:
				p.val, p.has = val, hasVal
			}
			out = append(out, p)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for k := 1; k < len(a); k++ {
				o := findShort(opts, a[k])
				if o == nil {
					return nil, nil, fmt.Errorf("%s: invalid option -- '%c'", prog, a[k])
				}
				p := parsed{key: o.key}
				if o.arg == noArg {
					out = append(out, p)
					continue
				}
				rest := a[k+1:]
				switch {
				case rest != "":
					p.val, p.has = rest, true
				case o.arg == reqArg:
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("%s: option requires an argument -- '%c'", prog, a[k])
					}
					i++
					p.val, p.has = args[i], true
				}
				out = append(out, p)
				break
			}
		default:
			if stopAtOperand {
				return out, append(operands, args[i:]...), nil
			}
			operands = append(operands, a)
		}
	}
	return out, operands, nil
}

func findShort(opts []opt, c byte) *opt {
	for i := range opts {
		if opts[i].short == c && c != 0 {
			return &opts[i]
		}
	}
	return nil
}

func findLong(prog string, opts []opt, name string) (*opt, error) {
	var match []*opt
	for i := range opts {
		if opts[i].long == "" {
			continue
		}
		if opts[i].long == name {
			return &opts[i], nil
		}
		if strings.HasPrefix(opts[i].long, name) {
			match = append(match, &opts[i])
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, fmt.Errorf("%s: unrecognized option '--%s'", prog, name)
	}
	// Abbreviations of one option under several names are not ambiguous.
	same := true
	for _, m := range match[1:] {
		same = same && m.key == match[0].key
	}
	if same {
		return match[0], nil
	}
	return nil, fmt.Errorf("%s: option '--%s' is ambiguous", prog, name)
}

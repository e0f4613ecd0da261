// Package getopt parses a command line the way glibc's getopt(3) and
// getopt_long(3) do, so that commands written in Go (the PBS commands of
// fakepbs/cli, the virtual host's coreutils, and other batch systems'
// commands) accept exactly what their C originals accept and print the
// same messages for what they refuse.
//
// What it follows from glibc:
//   - short options from an option string: "ab:c::" (a flag, b with a
//     required argument, c with an optional one that must be attached);
//     clustered ("-la"), arguments attached ("-n5") or separate ("-n 5");
//   - long options ("--lines=5", "--lines 5"), which may be abbreviated to
//     any unambiguous prefix ("--li 5");
//   - operands are moved after the options (permutation) unless the option
//     string starts with '+' (POSIXLY_CORRECT: options end at the first
//     operand, as env and timeout need); "--" ends the options; a lone "-"
//     is an operand;
//   - errors do not stop the scan: each becomes an Option with Key '?' and
//     glibc's message, so a caller can stop at the first (coreutils) or go
//     on and count them (the PBS commands).
//
// Parse has no state between calls and never prints: messages are returned
// for the caller to write.
package getopt

import (
	"fmt"
	"strings"
)

// HasArg says whether a long option takes an argument.
type HasArg int

// The argument kinds of a long option (no_argument, required_argument and
// optional_argument of getopt_long).
const (
	NoArgument HasArg = iota
	RequiredArgument
	OptionalArgument // only as "--name=value"
)

// Long is one long option.
type Long struct {
	Name string // without the leading "--"
	Has  HasArg
	// Key is what Parse reports for it: usually the short letter it is an
	// alias of; a long-only option takes any rune above 0xff.
	Key rune
}

// Spec is the options a command accepts.
type Spec struct {
	// Short is getopt(3)'s option string: letters, ':' after a letter that
	// takes an argument, "::" for an optional argument. A leading '+' stops
	// at the first operand instead of permuting.
	Short string
	// Long lists the long options, in the order the command's table has
	// them (ambiguity messages list candidates in this order).
	Long []Long
}

// ErrorKey is the Key of an Option that reports an error.
const ErrorKey = '?'

// Option is one option found on the command line, in order.
type Option struct {
	Key    rune   // the short letter or Long.Key; ErrorKey for an error
	Name   string // as written: "-n" or "--lines"
	Arg    string // the argument, if any
	HasArg bool   // an argument was given (false for a missing optional one)
	Err    string // for ErrorKey: glibc's message, "prog: ...\n"
}

// Result is everything a full getopt loop over the arguments yields.
type Result struct {
	Options  []Option
	Operands []string // non-option arguments, in order
	Errors   int      // how many Options are errors
	// Permuted is true when an option followed an operand, so that glibc
	// reordered argv (some PBS commands refuse that).
	Permuted bool
	// DashDash is true when "--" ended the options, and FirstAfterDashDash
	// is the index in Operands of the first operand after it
	// (len(Operands) when there was no "--").
	DashDash           bool
	FirstAfterDashDash int
}

// Stderr is every error message, in order, as glibc prints them when
// opterr is set.
func (r Result) Stderr() string {
	var b strings.Builder
	for _, o := range r.Options {
		b.WriteString(o.Err)
	}
	return b.String()
}

// FirstError returns the first error option, if any.
func (r Result) FirstError() (Option, bool) {
	for _, o := range r.Options {
		if o.Key == ErrorKey {
			return o, true
		}
	}
	return Option{}, false
}

// Has reports whether the option key was given.
func (r Result) Has(key rune) bool { return r.Count(key) > 0 }

// Count is how many times the option key was given.
func (r Result) Count(key rune) int {
	n := 0
	for _, o := range r.Options {
		if o.Key == key {
			n++
		}
	}
	return n
}

// Value returns the argument of the last occurrence of key.
func (r Result) Value(key rune) (string, bool) {
	for i := len(r.Options) - 1; i >= 0; i-- {
		if o := r.Options[i]; o.Key == key {
			return o.Arg, o.HasArg
		}
	}
	return "", false
}

// Values returns the arguments of every occurrence of key, in order.
func (r Result) Values(key rune) []string {
	var out []string
	for _, o := range r.Options {
		if o.Key == key && o.HasArg {
			out = append(out, o.Arg)
		}
	}
	return out
}

// Parse runs getopt over args (argv without argv[0]); prog is argv[0] as
// the messages name it.
func Parse(prog string, args []string, spec Spec) Result {
	p := parser{prog: prog, spec: spec, args: args}
	short := spec.Short
	if strings.HasPrefix(short, "+") {
		p.inOrder = true
		short = short[1:]
	}
	p.short = short
	p.run()
	return p.r
}

type parser struct {
	prog    string
	spec    Spec
	short   string
	inOrder bool
	args    []string
	i       int
	r       Result
}

func (p *parser) fail(format string, a ...any) {
	p.r.Errors++
	p.r.Options = append(p.r.Options, Option{Key: ErrorKey, Err: p.prog + ": " + fmt.Sprintf(format, a...) + "\n"})
}

func (p *parser) run() {
	sawOperand := false
	for p.i < len(p.args) {
		a := p.args[p.i]
		switch {
		case a == "--":
			p.r.DashDash = true
			p.r.FirstAfterDashDash = len(p.r.Operands)
			p.r.Operands = append(p.r.Operands, p.args[p.i+1:]...)
			return
		case len(a) < 2 || a[0] != '-':
			if p.inOrder {
				p.r.Operands = append(p.r.Operands, p.args[p.i:]...)
				p.r.FirstAfterDashDash = len(p.r.Operands)
				return
			}
			p.r.Operands = append(p.r.Operands, a)
			sawOperand = true
			p.i++
			continue
		}
		if sawOperand {
			p.r.Permuted = true
		}
		p.i++
		if a[1] == '-' && len(p.spec.Long) > 0 {
			p.long(a)
			continue
		}
		p.cluster(a)
	}
	p.r.FirstAfterDashDash = len(p.r.Operands)
}

// cluster reads one argument of short options, "-abc" or "-n5".
func (p *parser) cluster(a string) {
	for j := 1; j < len(a); j++ {
		c := a[j]
		k := strings.IndexByte(p.short, c)
		if k < 0 || c == ':' || c >= 0x80 {
			p.fail("invalid option -- '%c'", c)
			continue
		}
		takes := k+1 < len(p.short) && p.short[k+1] == ':'
		optional := takes && k+2 < len(p.short) && p.short[k+2] == ':'
		name := "-" + string(c)
		switch {
		case !takes:
			p.r.Options = append(p.r.Options, Option{Key: rune(c), Name: name})
		case j+1 < len(a):
			p.r.Options = append(p.r.Options, Option{Key: rune(c), Name: name, Arg: a[j+1:], HasArg: true})
			return
		case optional:
			p.r.Options = append(p.r.Options, Option{Key: rune(c), Name: name})
		case p.i < len(p.args):
			p.r.Options = append(p.r.Options, Option{Key: rune(c), Name: name, Arg: p.args[p.i], HasArg: true})
			p.i++
			return
		default:
			p.fail("option requires an argument -- '%c'", c)
		}
	}
}

// long reads one "--name[=value]" argument.
func (p *parser) long(a string) {
	body := a[2:]
	name, val, hasVal := strings.Cut(body, "=")
	var match *Long
	// As glibc: the first prefix match, and the later ones that are not
	// aliases of it (same key and argument kind) make it ambiguous.
	var candidates []*Long
	for i := range p.spec.Long {
		l := &p.spec.Long[i]
		if l.Name == name {
			match, candidates = l, nil
			break
		}
		if strings.HasPrefix(l.Name, name) && (len(candidates) == 0 || l.Key != candidates[0].Key || l.Has != candidates[0].Has) {
			candidates = append(candidates, l)
		}
	}
	if match == nil {
		switch len(candidates) {
		case 0:
			p.fail("unrecognized option '--%s'", body)
			return
		case 1:
			match = candidates[0]
		default:
			var b strings.Builder
			for _, c := range candidates {
				fmt.Fprintf(&b, " '--%s'", c.Name)
			}
			p.fail("option '--%s' is ambiguous; possibilities:%s", body, b.String())
			return
		}
	}
	opt := Option{Key: match.Key, Name: "--" + match.Name}
	switch match.Has {
	case NoArgument:
		if hasVal {
			p.fail("option '--%s' doesn't allow an argument", match.Name)
			return
		}
	case RequiredArgument:
		switch {
		case hasVal:
			opt.Arg, opt.HasArg = val, true
		case p.i < len(p.args):
			opt.Arg, opt.HasArg = p.args[p.i], true
			p.i++
		default:
			p.fail("option '--%s' requires an argument", match.Name)
			return
		}
	case OptionalArgument:
		opt.Arg, opt.HasArg = val, hasVal
	}
	p.r.Options = append(p.r.Options, opt)
}

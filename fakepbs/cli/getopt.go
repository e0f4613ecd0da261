package cli

import (
	"fmt"
	"strings"
)

// opt is one option getopt returned: its letter and, for letters followed by
// ':' in the option string, its argument.
type opt struct {
	c   byte
	arg string
	msg string // for c == '?': the message glibc printed
}

// getoptResult is what a full getopt(3) loop over argv yields.
type getoptResult struct {
	opts     []opt
	operands []string // non-option arguments, in order, after permutation
	errs     int      // number of '?' returns (unknown option, missing argument)
	stderr   string   // the messages glibc's getopt printed (opterr = 1)
	// permuted is true when an operand came before an option, so that glibc
	// reordered argv (qsub treats that as a usage error).
	permuted bool
	// dashdash is true when a "--" ended the options.
	dashdash bool
	// firstOperandAfterDashDash is the index in operands of the first operand
	// that followed "--" (len(operands) when none did).
	firstOperandAfterDashDash int
}

// getopt runs glibc's getopt(3) over args (argv without argv[0]) the way the
// OpenPBS commands call it: option letters from optstring, clustering
// ("-fx"), attached or separate arguments ("-uuser", "-u user"), permutation
// of operands to the end, "--" ending the options, and glibc's messages for
// unknown options and missing arguments, prefixed by prog (argv[0]).
func getopt(prog string, args []string, optstring string) getoptResult {
	var r getoptResult
	sawOperand := false
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			r.dashdash = true
			r.firstOperandAfterDashDash = len(r.operands)
			r.operands = append(r.operands, args[i+1:]...)
			return r
		}
		if len(a) < 2 || a[0] != '-' {
			r.operands = append(r.operands, a)
			sawOperand = true
			i++
			continue
		}
		if sawOperand {
			r.permuted = true
		}
		// A cluster of option letters.
		j := 1
		i++
		for j < len(a) {
			c := a[j]
			j++
			k := strings.IndexByte(optstring, c)
			if k < 0 || c == ':' {
				m := fmt.Sprintf("%s: invalid option -- '%c'\n", prog, c)
				r.errs++
				r.stderr += m
				r.opts = append(r.opts, opt{c: '?', msg: m})
				continue
			}
			takesArg := k+1 < len(optstring) && optstring[k+1] == ':'
			if !takesArg {
				r.opts = append(r.opts, opt{c: c})
				continue
			}
			if j < len(a) {
				r.opts = append(r.opts, opt{c: c, arg: a[j:]})
				j = len(a)
				continue
			}
			if i < len(args) {
				r.opts = append(r.opts, opt{c: c, arg: args[i]})
				i++
				continue
			}
			m := fmt.Sprintf("%s: option requires an argument -- '%c'\n", prog, c)
			r.errs++
			r.stderr += m
			r.opts = append(r.opts, opt{c: '?', msg: m})
		}
	}
	r.firstOperandAfterDashDash = len(r.operands)
	return r
}

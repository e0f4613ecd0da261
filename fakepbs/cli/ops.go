package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jobsim/jobsim/fakepbs"

	"github.com/jobsim/jobsim/internal/getopt"
)

const qdelUsage = "usage:\n\tqdel [-W force|suppress_email=X] [-x] job_identifier...\n\tqdel --version\n"

// qdel deletes jobs (qdel.c): every operand is tried, each failure printed
// as "qdel: <text> <id>", and the exit status is the last failure's code.
func (r *run) qdel() error {
	if r.printVersion() {
		return nil
	}
	force, hist := false, false
	operands, err := r.jobOptions("W:x", qdelUsage, func(o getopt.Option) bool {
		switch {
		case o.Key == 'x':
			hist = true
		case o.Key != 'W':
			return false
		case o.Arg == "force":
			force = true
		case o.Arg != "" && (strings.HasPrefix(o.Arg, "suppress_email=") || allDigits(o.Arg)):
		default:
			r.stderr.WriteString("qdel: illegal -W value\n")
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	failed := 0
	var ids []string
	for _, a := range operands {
		if _, ok := parseJobID(a); !ok {
			fmt.Fprintf(&r.stderr, "qdel: illegally formed job identifier: %s\n", a)
			failed = 1
			continue
		}
		ids = append(ids, a)
	}
	local := 0
	purger, canPurge := r.b.(HistoryPurger)
	for _, id := range ids {
		var err error
		if hist && canPurge && !force {
			// qdel -x: a finished job leaves history, a live one is
			// deleted and leaves no history behind.
			err = purger.PurgeHistory(r.ctx, r.inv.User, id)
		} else {
			err = r.b.Delete(r.ctx, r.inv.User, id, force)
			if hist && canPurge && (err == nil || isCode(err, fakepbs.ErrJobFinished)) {
				// qdel -x -W force: the job is finished now; purge it.
				err = purger.PurgeHistory(r.ctx, r.inv.User, id)
			}
		}
		if err == nil {
			continue
		}
		code, text := pbsErr(err)
		if hist && !canPurge && code == fakepbs.ErrJobFinished {
			continue
		}
		fmt.Fprintf(&r.stderr, "qdel: %s %s\n", text, id)
		local = code
	}
	if local != 0 {
		failed = local
	}
	if failed != 0 {
		return exit(failed)
	}
	return nil
}

// isCode reports whether err is the server error with pbs_errno code.
func isCode(err error, code int) bool {
	var pe *fakepbs.Error
	return errors.As(err, &pe) && pe.Code == code
}

// jobOptions runs the option loop of a command that acts on job operands
// (getopt with short): each handles an option and reports whether it was
// good, writing its own message when not; getopt's errors are written as
// they come. Bad options or no operand end the command with usage and
// status 2.
func (r *run) jobOptions(short, usage string, each func(o getopt.Option) bool) ([]string, error) {
	g := getopt.Parse(r.prog, r.inv.Args, getopt.Spec{Short: short})
	bad := 0
	for _, o := range g.Options {
		if o.Key == '?' {
			r.stderr.WriteString(o.Err)
			bad++
		} else if !each(o) {
			bad++
		}
	}
	if bad > 0 || len(g.Operands) == 0 {
		r.stderr.WriteString(usage)
		return nil, exit(2)
	}
	return g.Operands, nil
}

// forEachJob runs the per-operand loop qsig, qhold and qrls share: parse the
// id, make it a full id, call do, print failures with prt_job_err.
func (r *run) forEachJob(ids []string, do func(id string) error) error {
	failed := 0
	for _, a := range ids {
		id, ok := parseJobID(a)
		if !ok {
			fmt.Fprintf(&r.stderr, "%s: illegally formed job identifier: %s\n", r.prog, a)
			failed = 1
			continue
		}
		full := fullJobID(id, r.serverName())
		if err := do(full); err != nil {
			failed = r.jobErr(err, full)
		}
	}
	if failed != 0 {
		return exit(failed)
	}
	return nil
}

// qsig sends a signal to jobs (qsig.c); -s takes a signal name, number,
// suspend or resume, and the server decides what it accepts.
func (r *run) qsig() error {
	if r.printVersion() {
		return nil
	}
	sig := "SIGTERM"
	operands, err := r.jobOptions("s:", "usage: qsig [-s signal] job_identifier...\n       qsig --version\n", func(o getopt.Option) bool {
		if o.Key != 's' {
			return false
		}
		sig = o.Arg
		if len(sig) > 32 {
			sig = sig[:32]
		}
		return true
	})
	if err != nil {
		return err
	}
	return r.forEachJob(operands, func(id string) error {
		return r.b.Signal(r.ctx, r.inv.User, id, sig)
	})
}

// qholdRls is qhold (hold) or qrls: -h takes the hold types (u, o, s, p or
// n); the default is u.
func (r *run) qholdRls(hold bool) error {
	if r.printVersion() {
		return nil
	}
	usage := fmt.Sprintf("usage: %s [-h hold_list] job_identifier...\n       %s --version\n", r.prog, r.prog)
	types := ""
	operands, err := r.jobOptions("h:-:", usage, func(o getopt.Option) bool {
		if o.Key != 'h' {
			return false
		}
		v := strings.TrimLeft(o.Arg, " \t\n\v\f\r")
		if v == "" {
			fmt.Fprintf(&r.stderr, "%s: illegal -h value\n", r.prog)
			return false
		}
		types = v
		if len(types) > 32 {
			types = types[:32]
		}
		return true
	})
	if err != nil {
		return err
	}
	if types != "" && !validHoldTypes(types) {
		fmt.Fprintf(&r.stderr, "%s: illegal -h value\n%s", r.prog, usage)
		return exit(2)
	}
	if types == "" {
		types = "u"
	}
	return r.forEachJob(operands, func(id string) error {
		if hold {
			return r.b.Hold(r.ctx, r.inv.User, id, types)
		}
		return r.b.Release(r.ctx, r.inv.User, id, types)
	})
}

func validHoldTypes(t string) bool {
	if t == "n" {
		return true
	}
	for i := 0; i < len(t); i++ {
		if !strings.ContainsRune("uosp", rune(t[i])) {
			return false
		}
	}
	return true
}

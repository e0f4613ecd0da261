package cli

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/jobsim/jobsim/fakeslurm"
)

var scancelOpts = optSpec(`
	s,signal= b,batch f,full v,verbose u,user= me n,name= jobname=>n t,state= p,partition= Q,quiet
	i,interactive>ignore M,clusters=>ignore h,help>help usage>help`)

// signalNames are the names scancel -s accepts (sig_name2num).
var signalNames = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "ABRT": syscall.SIGABRT,
	"KILL": syscall.SIGKILL, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2, "URG": syscall.SIGURG, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP,
	"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "XCPU": syscall.SIGXCPU,
}

// ParseSignal reads a signal as scancel -s does: a name with or without
// SIG, or a number.
func ParseSignal(s string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), true
	}
	sig, ok := signalNames[strings.TrimPrefix(strings.ToUpper(s), "SIG")]
	return sig, ok
}

func (r *run) scancel() error {
	ps, operands, err := getopt("scancel", scancelOpts, r.inv.Args, false)
	if err != nil {
		fmt.Fprintf(&r.stderr, "%v\nTry \"scancel --help\" for more information\n", err)
		return exit(1)
	}
	sig := syscall.SIGKILL
	sigGiven, batch, verbose, quiet := false, false, false, false
	var users, names, parts []string
	var states map[fakeslurm.State]bool
	for _, p := range ps {
		switch p.key {
		case "s":
			s, ok := ParseSignal(p.val)
			if !ok {
				fmt.Fprintf(&r.stderr, "Unknown job signal: %s\n", p.val)
				return exit(1)
			}
			sig, sigGiven = s, true
		case "b", "f":
			batch = true
		case "v":
			verbose = true
		case "Q":
			quiet = true
		case "u":
			users = append(users, splitList(p.val)...)
		case "me":
			users = append(users, r.inv.User)
		case "n":
			names = append(names, splitList(p.val)...)
		case "p":
			parts = append(parts, splitList(p.val)...)
		case "t":
			states = map[fakeslurm.State]bool{}
			for _, s := range splitList(p.val) {
				st, ok := fakeslurm.ParseState(s)
				if !ok {
					fmt.Fprintf(&r.stderr, "scancel: error: Invalid job state specified: %s\n", s)
					return exit(1)
				}
				states[st] = true
			}
		case "help":
			r.stdout.WriteString("Usage: scancel [OPTIONS] [job_id[_array_id][.step_id]]\n")
			return nil
		}
	}
	var ids []int
	var typed []string
	for _, o := range operands {
		for _, s := range strings.Split(o, ",") {
			base, _, _ := strings.Cut(s, ".") // a step: the job
			id, err := parseJobID(base)
			if err != nil {
				fmt.Fprintf(&r.stderr, "scancel: error: Invalid job id %s\n", s)
				return exit(1)
			}
			ids = append(ids, id)
			typed = append(typed, s)
		}
	}
	filtered := len(users) > 0 || len(names) > 0 || len(parts) > 0 || states != nil
	if len(ids) == 0 && !filtered {
		r.stderr.WriteString("scancel: error: No job identification provided\n")
		return exit(1)
	}
	if code, done := r.controllerDown(); done {
		return exit(code)
	}
	if len(ids) == 0 || filtered {
		jobs, err := r.b.Jobs(r.ctx)
		if err != nil {
			fmt.Fprintf(&r.stderr, "scancel: error: %s\n", errText(err))
			return exit(1)
		}
		want := map[int]bool{}
		for _, id := range ids {
			want[id] = true
		}
		ids, typed = nil, nil
		for _, j := range jobs {
			if j.State.Finished() || (len(want) > 0 && !want[j.ID]) {
				continue
			}
			if (len(users) > 0 && !contains(users, j.User)) || (len(names) > 0 && !contains(names, j.Name)) ||
				(len(parts) > 0 && !contains(parts, j.Partition)) || (states != nil && !states[j.State]) {
				continue
			}
			ids = append(ids, j.ID)
			typed = append(typed, strconv.Itoa(j.ID))
		}
	}
	worst := 0
	for i, id := range ids {
		if verbose {
			if sigGiven {
				fmt.Fprintf(&r.stderr, "scancel: Signal %d to batch job %s\n", sig, typed[i])
			} else {
				fmt.Fprintf(&r.stderr, "scancel: Terminating job %s\n", typed[i])
			}
		}
		var err error
		if sig == syscall.SIGKILL {
			err = r.b.Cancel(r.ctx, r.inv.User, r.inv.UID, id)
		} else {
			err = r.b.Signal(r.ctx, r.inv.User, r.inv.UID, id, sig, batch)
		}
		if err == nil {
			continue
		}
		code := fakeslurm.CodeOf(err)
		benign := code == fakeslurm.ErrAlreadyDone || code == fakeslurm.ErrInvalidJobID
		if !benign || verbose {
			if !quiet || !benign {
				fmt.Fprintf(&r.stderr, "scancel: error: Kill job error on job id %s: %s\n", typed[i], errText(err))
			}
		}
		if benign && sig == syscall.SIGKILL {
			continue
		}
		worst = max(worst, code)
	}
	if worst != 0 {
		return exit(worst)
	}
	return nil
}

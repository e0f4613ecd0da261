package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/fakeslurm"
)

// sbatchOpts are sbatch's options that the fake understands; the others a
// site might use (mail, QOS, licenses, ...) are accepted and ignored.
var sbatchOpts = optSpec(`
	J,job-name= o,output= e,error= i,input= t,time= p,partition= N,nodes= n,ntasks= c,cpus-per-task=
	mem= mem-per-cpu= export= get-user-env? D,chdir= d,dependency= H,hold requeue no-requeue
	a,array= wrap= parsable A,account= comment= b,begin= signal= open-mode= exclusive? w,nodelist=
	x,exclude= q,qos=>ignore gres=>ignore reservation=>ignore mail-type=>ignore mail-user=>ignore
	ntasks-per-node= M,clusters=>ignore Q,quiet>ignore v,verbose>ignore W,wait>wait
	C,constraint=>ignore propagate?>ignore nice?>ignore h,help>help usage`)

type sbatchState struct {
	req      fakeslurm.SubmitRequest
	wrap     string
	wait     bool
	parsable bool
	perCPU   int64
	perNode  int
	help     bool
}

// apply sets one sbatch option. The errors are sbatch's own messages; one
// made by exit carries sbatch's exit status where it is not 1.
func (st *sbatchState) apply(p parsed) error {
	q := &st.req
	var err error
	num := func(what string) (int, error) {
		v, _, _ := strings.Cut(p.val, "-") // min-max counts: the minimum
		n, e := strconv.Atoi(v)
		if e != nil || n < 0 {
			return 0, fmt.Errorf("Invalid %s specification", what)
		}
		return n, nil
	}
	// Options that set a string, or a flag, as given.
	strs := map[string]*string{"J": &q.Name, "o": &q.Output, "e": &q.Error, "i": &q.Input, "p": &q.Partition,
		"export": &q.Export, "D": &q.WorkDir, "d": &q.Dependency, "a": &q.Array, "wrap": &st.wrap, "A": &q.Account,
		"comment": &q.Comment}
	flags := map[string]*bool{"H": &q.Hold, "parsable": &st.parsable, "wait": &st.wait, "exclusive": &q.Exclusive,
		"get-user-env": &q.GetUserEnv}
	if dst, ok := strs[p.key]; ok {
		*dst = p.val
		return nil
	}
	if dst, ok := flags[p.key]; ok {
		*dst = true
		return nil
	}
	switch p.key {
	case "t":
		q.TimeLimit, err = ParseTimeLimit(p.val)
		if err != nil {
			return sbatchFail{"Invalid --time specification", 255}
		}
	case "N":
		q.Nodes, err = num("--nodes")
		q.NodesGiven = true
	case "n":
		q.Tasks, err = num("--ntasks")
		q.TasksGiven = true
	case "c":
		q.CPUsPerTask, err = num("--cpus-per-task")
	case "ntasks-per-node":
		st.perNode, err = num("--ntasks-per-node")
	case "mem":
		q.MemMB, err = ParseMem(p.val)
		if err != nil {
			return fmt.Errorf("invalid memory constraint: %s", p.val)
		}
	case "mem-per-cpu":
		st.perCPU, err = ParseMem(p.val)
		if err != nil {
			return fmt.Errorf("invalid memory constraint: %s", p.val)
		}
	case "requeue":
		t := true
		q.Requeue = &t
	case "no-requeue":
		f := false
		q.Requeue = &f
	case "b":
		q.BeginTime, err = parseBegin(p.val)
		if err != nil {
			return fmt.Errorf("Invalid time specification %s", p.val)
		}
	case "signal":
		spec := p.val
		if rest, ok := strings.CutPrefix(spec, "B:"); ok {
			q.SigBatch, spec = true, rest
		} else {
			spec = strings.TrimPrefix(spec, "R:")
		}
		name, at, hasAt := strings.Cut(spec, "@")
		sig, ok := ParseSignal(name)
		secs := 60
		if hasAt {
			n, err := strconv.Atoi(at)
			if err != nil || n < 0 {
				ok = false
			}
			secs = n
		}
		if !ok {
			return fmt.Errorf("Invalid --signal specification")
		}
		q.Signal, q.SigBefore = sig, time.Duration(secs)*time.Second
	case "open-mode":
		switch p.val {
		case "append", "a":
			q.OpenMode = "append"
		case "truncate", "t":
			q.OpenMode = "truncate"
		default:
			return fmt.Errorf("Invalid --open-mode argument: %s. Ignored", p.val)
		}
	case "w", "x":
		names, err := fakeslurm.ExpandHostlist(p.val)
		if err != nil {
			return fmt.Errorf("Invalid node list %s", p.val)
		}
		if p.key == "w" {
			q.NodeList = names
		} else {
			q.Exclude = names
		}
	case "help", "usage":
		st.help = true
	}
	return err
}

// sbatchFail is an sbatch error with its own exit status.
type sbatchFail struct {
	msg  string
	code int
}

func (e sbatchFail) Error() string { return e.msg }

// parseBegin reads --begin's common forms: now+N[units], HH:MM[:SS] and
// YYYY-MM-DD[THH:MM[:SS]]. The time is relative to the process's clock.
func parseBegin(s string) (time.Time, error) {
	now := time.Now()
	if rest, ok := strings.CutPrefix(s, "now+"); ok {
		unit := time.Second
		for _, u := range []struct {
			suffix string
			d      time.Duration
		}{{"seconds", time.Second}, {"minutes", time.Minute}, {"hours", time.Hour}, {"days", 24 * time.Hour}, {"weeks", 7 * 24 * time.Hour}} {
			if strings.HasSuffix(rest, u.suffix) {
				rest, unit = strings.TrimSuffix(rest, u.suffix), u.d
				break
			}
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(time.Duration(n) * unit), nil
	}
	if s == "now" {
		return now, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			d := time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.Local)
			if d.Before(now) {
				d = d.Add(24 * time.Hour)
			}
			return d, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

func (r *run) sbatchErr(msg string, code int) error {
	fmt.Fprintf(&r.stderr, "sbatch: error: %s\n", msg)
	return exit(code)
}

func (r *run) sbatch() error {
	ps, operands, err := getopt("sbatch", sbatchOpts, r.inv.Args, true)
	if err != nil {
		fmt.Fprintf(&r.stderr, "%v\nTry \"sbatch --help\" for more information\n", err)
		return exit(255)
	}
	st := &sbatchState{}
	for _, p := range ps {
		if p.key == "wrap" {
			st.wrap = p.val
		}
		if p.key == "help" || p.key == "usage" {
			r.stdout.WriteString("Usage: sbatch [OPTIONS(0)...] [ : [OPTIONS(N)...]] script(0) [args(0)...]\n")
			return nil
		}
	}
	var script []byte
	command := ""
	switch {
	case st.wrap != "":
		if len(operands) > 0 {
			return r.sbatchErr("script argument not permitted with --wrap option", 1)
		}
		script = []byte("#!/bin/sh\n# This script was created by sbatch --wrap.\n\n" + st.wrap + "\n")
	case len(operands) > 0:
		p := operands[0]
		if !path.IsAbs(p) {
			p = path.Join(r.inv.Cwd, p)
		}
		b, err := afero.ReadFile(r.inv.FS, p)
		if err != nil {
			return r.sbatchErr("Unable to open file "+operands[0], 1)
		}
		script, command = b, p
	default:
		if r.inv.Stdin != nil {
			b, err := io.ReadAll(io.LimitReader(r.inv.Stdin, 64<<20))
			if err != nil {
				return r.sbatchErr("unable to read script from stdin", 1)
			}
			script = b
		}
	}
	if len(bytes.TrimSpace(script)) == 0 {
		return r.sbatchErr("Batch script is empty!", 1)
	}
	if !bytes.HasPrefix(script, []byte("#!")) {
		r.stderr.WriteString("sbatch: error: This does not look like a batch script.  The first\n" +
			"sbatch: error: line must start with #! followed by the path to an interpreter.\n" +
			"sbatch: error: For instance: #!/bin/sh\n")
		return exit(1)
	}
	// #SBATCH directives first, the command line over them.
	dirs, err := directives(script)
	if err != nil {
		return r.sbatchErr(err.Error(), 1)
	}
	all := append(dirs, ps...)
	for _, p := range all {
		if err := st.apply(p); err != nil {
			var f sbatchFail
			if errors.As(err, &f) {
				return r.sbatchErr(f.msg, f.code)
			}
			return r.sbatchErr(err.Error(), 1)
		}
	}
	q := &st.req
	q.Script = script
	q.Command = command
	q.User, q.UID, q.GID, q.Group = r.inv.User, r.inv.UID, r.inv.GID, r.inv.Group
	q.SubmitHost = r.inv.Host
	q.SubmitDir = r.inv.Cwd
	if q.WorkDir != "" && !path.IsAbs(q.WorkDir) {
		q.WorkDir = path.Join(r.inv.Cwd, q.WorkDir)
	}
	q.Env = r.inv.Env
	if len(operands) > 1 {
		q.Argv = operands[1:]
	}
	if q.Name == "" {
		switch {
		case st.wrap != "":
			q.Name = "wrap"
		case command != "":
			q.Name = path.Base(command)
		default:
			q.Name, q.NameUnset = "sbatch", true
		}
	}
	if st.perNode > 0 && q.Tasks == 0 {
		q.Tasks = st.perNode * max(1, q.Nodes)
		q.TasksGiven = true
	}
	if st.perCPU > 0 && q.MemMB == 0 {
		q.MemMB = st.perCPU * int64(max(1, q.CPUsPerTask)*max(1, q.Tasks))
	}
	if code, done := r.controllerDown(); done {
		return exit(code)
	}
	id, err := r.b.Submit(r.ctx, *q)
	if err != nil {
		switch fakeslurm.CodeOf(err) {
		case fakeslurm.ErrInvalidPartition:
			fmt.Fprintf(&r.stderr, "sbatch: error: invalid partition specified: %s\n", q.Partition)
		case fakeslurm.ErrNodeConfig:
			if q.MemMB > 0 {
				r.stderr.WriteString("sbatch: error: Memory specification can not be satisfied\n")
			}
		}
		return r.sbatchErr("Batch job submission failed: "+errText(err), 1)
	}
	if st.parsable {
		fmt.Fprintf(&r.stdout, "%d\n", id)
	} else {
		fmt.Fprintf(&r.stdout, "Submitted batch job %d\n", id)
	}
	if st.wait {
		return r.waitJob(id)
	}
	return nil
}

// waitJob is sbatch --wait: poll until the job has ended, then exit with
// its exit code (1 for a job that failed without one), as sbatch does.
func (r *run) waitJob(id int) error {
	sr, _ := r.b.(StatusReader)
	for {
		var j fakeslurm.Job
		var err error
		if sr != nil {
			j, err = sr.Status(r.ctx, id)
		} else {
			j, err = r.b.Job(r.ctx, id)
		}
		if err != nil {
			fmt.Fprintf(&r.stderr, "sbatch: error: %s\n", errText(err))
			return exit(1)
		}
		if j.State.Finished() && !j.Completing {
			switch {
			case j.State == fakeslurm.Completed:
				return nil
			case j.ExitCode != 0:
				return exit(j.ExitCode)
			}
			return exit(1)
		}
		if err := r.cfg.clock.Sleep(r.ctx, time.Second); err != nil {
			return exit(128 + 15)
		}
	}
}

// directives reads the #SBATCH lines at the top of a script, up to the
// first command, as sbatch does. Het job separators end the first
// component: the fake runs it alone.
func directives(script []byte) ([]parsed, error) {
	var args []string
	lines := strings.Split(string(script), "\n")
	for i, line := range lines {
		if i == 0 {
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "#") {
			break
		}
		rest, ok := strings.CutPrefix(t, "#SBATCH")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		words := splitWords(rest)
		if len(words) > 0 && (words[0] == "hetjob" || words[0] == "packjob") {
			break
		}
		args = append(args, words...)
	}
	ps, operands, err := getopt("sbatch", sbatchOpts, args, false)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "sbatch: "))
	}
	if len(operands) > 0 {
		return nil, fmt.Errorf("Invalid directive: %s", operands[0])
	}
	return ps, nil
}

// splitWords splits a directive line as sbatch does: on blanks, with
// single and double quotes, ending at an unquoted '#'.
func splitWords(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '#':
			i = len(s)
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// SbatchInput says what sbatch with args reads: the script file operand
// (as given), or standard input (no operand and no --wrap). A remote client
// reads these on its own side and sends them.
func SbatchInput(args []string) (script string, stdin bool) {
	ps, operands, err := getopt("sbatch", sbatchOpts, args, true)
	if err != nil {
		return "", false
	}
	for _, p := range ps {
		if p.key == "wrap" || p.key == "help" || p.key == "usage" {
			return "", false
		}
	}
	if len(operands) > 0 {
		return operands[0], false
	}
	return "", true
}

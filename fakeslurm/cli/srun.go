package cli

import (
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
)

var srunOpts = optSpec(`
	n,ntasks= N,nodes=>ignore c,cpus-per-task= export=>ignore mpi=>ignore l,label
	u,unbuffered>ignore pty>ignore exclusive?>ignore overlap>ignore J,job-name=>ignore mem=>ignore
	t,time=>ignore o,output=>ignore e,error=>ignore K,kill-on-bad-exit?>ignore W,wait=>ignore
	cpu-bind=>ignore ntasks-per-node=>ignore Q,quiet>ignore v,verbose>ignore help`)

// SrunStep is a job step as srun starts it inside a batch job: Tasks
// copies of Argv, all on the job's first node (the fake's steps do not
// span nodes), task i with TaskEnv(i). -n defaults to the job's
// SLURM_NTASKS, as in Slurm.
type SrunStep struct {
	Argv  []string
	Tasks int
	Label bool // -l: each output line starts "<task>: "
	Step  int  // the step id; the caller numbers a job's steps from 0
	cpus  int  // -c
	env   []string
}

// ParseSrun reads srun's arguments and environment inside a batch job.
// Outside a job (no SLURM_JOB_ID) srun would create an allocation, which
// the fake refuses with an error; a step asking for more CPUs than the
// job has gets Slurm's "More processors requested than permitted". The
// step id is not used up by a refused step.
func ParseSrun(args, env []string) (*SrunStep, error) {
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
	ps, operands, err := getopt("srun", srunOpts, args, true)
	if err != nil {
		return nil, &srunUsage{fmt.Sprintf("%v\nTry \"srun --help\" for more information", err)}
	}
	st := &SrunStep{Tasks: 1, cpus: 1, env: env}
	if n, err := strconv.Atoi(get("SLURM_NTASKS")); err == nil && n > 0 {
		st.Tasks = n
	}
	for _, p := range ps {
		switch p.key {
		case "help":
			return nil, fmt.Errorf("srun: usage: srun [OPTIONS] executable [args...]")
		case "n", "c":
			n, err := strconv.Atoi(p.val)
			if err != nil || n < 1 {
				//lint:ignore ST1005 srun's own message, byte for byte
				return nil, fmt.Errorf("srun: error: Invalid numeric value \"%s\" for %s.", p.val, map[string]string{"n": "--ntasks", "c": "--cpus-per-task"}[p.key])
			}
			if p.key == "n" {
				st.Tasks = n
			} else {
				st.cpus = n
			}
		case "l":
			st.Label = true
		}
	}
	job := get("SLURM_JOB_ID")
	if job == "" {
		return nil, fmt.Errorf("srun: error: fakeslurm runs srun only inside a batch job (SLURM_JOB_ID is not set)")
	}
	if len(operands) == 0 {
		//lint:ignore ST1005 srun's own message, byte for byte
		return nil, errors.New("srun: fatal: No command given to execute.")
	}
	st.Argv = operands
	if have, err := strconv.Atoi(get("SLURM_CPUS_ON_NODE")); err == nil && st.Tasks*st.cpus > have {
		return nil, fmt.Errorf("srun: error: Unable to create step for job %s: More processors requested than permitted", job)
	}
	return st, nil
}

// srunUsage is a bad option: srun exits 255 for it (getopt's usage
// error), 1 for every other refusal.
type srunUsage struct{ msg string }

func (e *srunUsage) Error() string { return e.msg }

// SrunExitCode is srun's exit status for an error of ParseSrun.
func SrunExitCode(err error) int {
	var u *srunUsage
	if errors.As(err, &u) {
		return 255
	}
	return 1
}

// TaskEnv is task i's environment: the batch job's, with what slurmstepd
// sets for a step's task (checked against Debian's 22.05.8: PROCID,
// LOCALID, STEP_ID, the step's task counts, GTIDS, DISTRIBUTION ...). pid
// is the task's SLURM_TASK_PID.
func (s *SrunStep) TaskEnv(i, pid int) []string {
	env := slices.Clone(s.env)
	set := func(k, v string) {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
		env = append(env, k+"="+v)
	}
	n := strconv.Itoa(s.Tasks)
	gtids := make([]string, s.Tasks)
	for t := range gtids {
		gtids[t] = strconv.Itoa(t)
	}
	dist := "cyclic" // Slurm's default: block when tasks outnumber nodes
	if s.Tasks > 1 {
		dist = "block"
	}
	port := strconv.Itoa(40000 + s.Step)
	nodelist := ""
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "SLURM_JOB_NODELIST="); ok {
			nodelist = v
		}
		if v, ok := strings.CutPrefix(kv, "SLURM_JOB_CPUS_PER_NODE="); ok {
			set("SLURM_JOB_CPUS_PER_NODE_PACK_GROUP_0", v)
		}
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "SLURM_JOB_NAME=") }) {
		// srun's own job name, the program's base name, when the batch
		// job exported none.
		set("SLURM_JOB_NAME", path.Base(s.Argv[0]))
	}
	if s.cpus > 1 {
		set("SLURM_CPUS_PER_TASK", strconv.Itoa(s.cpus))
	}
	for _, kv := range [][2]string{
		{"SLURM_DISTRIBUTION", dist}, {"SLURM_GTIDS", strings.Join(gtids, ",")},
		{"SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"}, {"SLURM_LOCALID", strconv.Itoa(i)}, {"SLURM_PROCID", strconv.Itoa(i)},
		{"SLURM_NPROCS", n}, {"SLURM_NTASKS", n}, {"SLURM_TASKS_PER_NODE", n},
		{"SLURM_SRUN_COMM_HOST", "127.0.0.1"}, {"SLURM_SRUN_COMM_PORT", port}, {"SLURM_STEP_LAUNCHER_PORT", port},
		{"SLURM_STEPID", strconv.Itoa(s.Step)}, {"SLURM_STEP_ID", strconv.Itoa(s.Step)},
		{"SLURM_STEP_NODELIST", nodelist}, {"SLURM_STEP_NUM_NODES", "1"}, {"SLURM_STEP_NUM_TASKS", n},
		{"SLURM_STEP_TASKS_PER_NODE", n}, {"SLURM_TASK_PID", strconv.Itoa(pid)}, {"SLURM_UMASK", "0022"},
	} {
		set(kv[0], kv[1])
	}
	return env
}

// Outputs returns task i's stdout and stderr writers over the step's:
// safe for the tasks to use at once, each line prefixed "<i>: " with -l.
// Close flushes a last line without a newline.
func (s *SrunStep) Outputs(stdout, stderr io.Writer) (func(i int) (io.Writer, io.Writer), func()) {
	var mu sync.Mutex
	var all []*taskWriter
	mk := func(w io.Writer, i int) io.Writer {
		tw := &taskWriter{mu: &mu, w: w}
		if s.Label {
			tw.prefix = strconv.Itoa(i) + ": "
		}
		mu.Lock()
		all = append(all, tw)
		mu.Unlock()
		return tw
	}
	return func(i int) (io.Writer, io.Writer) { return mk(stdout, i), mk(stderr, i) }, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, tw := range all {
			tw.flush()
		}
	}
}

// taskWriter writes one task's stream into the step's, whole lines at a
// time when they are labelled.
type taskWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (t *taskWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.prefix == "" {
		return t.w.Write(p)
	}
	t.buf = append(t.buf, p...)
	for {
		i := slices.Index(t.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if _, err := io.WriteString(t.w, t.prefix+string(t.buf[:i+1])); err != nil {
			return 0, err
		}
		t.buf = t.buf[i+1:]
	}
}

// flush writes a last unterminated line. Called with t.mu held.
func (t *taskWriter) flush() {
	if len(t.buf) > 0 {
		_, _ = io.WriteString(t.w, t.prefix+string(t.buf))
		t.buf = nil
	}
}

// Finish reports the tasks' ends as srun does (one line per exit code,
// task ranges such as "tasks 0-1", in task order) and returns srun's
// exit code: the highest of the tasks'.
func (s *SrunStep) Finish(codes []int, node string, stderr io.Writer) int {
	worst := 0
	seen := map[int]bool{}
	for i, c := range codes {
		worst = max(worst, c)
		if c == 0 || seen[c] {
			continue
		}
		seen[c] = true
		var ids []int
		for t := i; t < len(codes); t++ {
			if codes[t] == c {
				ids = append(ids, t)
			}
		}
		word := "task"
		if len(ids) > 1 {
			word = "tasks"
		}
		fmt.Fprintf(stderr, "srun: error: %s: %s %s: Exited with exit code %d\n", node, word, idRanges(ids), c)
	}
	return worst
}

// idRanges writes ascending ids as Slurm's ranges: 0-2,5.
func idRanges(ids []int) string {
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		} else {
			parts = append(parts, strconv.Itoa(ids[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func (r *run) srun() error {
	if _, err := ParseSrun(r.inv.Args, r.inv.Env); err != nil {
		fmt.Fprintf(&r.stderr, "%v\n", err)
		return exit(SrunExitCode(err))
	}
	r.stderr.WriteString("srun: error: the in-process front end cannot start processes; srun runs as the jobsim executable inside a job\n")
	return exit(1)
}

package fakeslurm

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/sim/executor"
)

// stampLayout is how Slurm prints times (ISO 8601 without zone).
const stampLayout = "2006-01-02T15:04:05"

// runJob is slurmd's side of one run of j: start faults, the script spooled
// to SlurmdSpoolDir, output files opened, the script run on the executor
// with the Slurm job environment, then the job's end. It runs as an actor
// of the server's clock; ctx is that actor's context.
func (s *Server) runJob(ctx context.Context, j *job, r *runState) {
	fired := s.checkRunFaults(j)
	if len(fired) > 0 {
		if err := s.faults.Wait(ctx, fired); err != nil {
			return
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.closed || j.run != r {
		s.mu.Unlock()
		return
	}
	r.ctx, r.cancel = ctx, cancel
	if s.applyJobRules(j, fired) {
		s.mu.Unlock()
		return
	}
	spool := path.Join(s.c.spoolDir, fmt.Sprintf("job%05d", j.ID))
	scriptPath := path.Join(spool, "slurm_script")
	cmd := executor.Command{User: j.User, Dir: j.WorkDir, Env: s.jobEnv(j)}
	script := j.script
	outPath, errPath := j.StdOut, j.StdErr
	truncate := !j.appendOut
	argv := j.argv
	s.mu.Unlock()
	defer func() {
		// A requeued job's next run spools to the same place: leave it.
		s.mu.Lock()
		defer s.mu.Unlock()
		if j.run == nil || j.run == r {
			_ = s.fs.RemoveAll(spool)
		}
	}()

	if x, ok := fault.First(fired, fault.Exit); ok {
		code := 1
		if x.Effect.ExitCode != nil {
			code = *x.Effect.ExitCode
		}
		s.scriptEnded(j, r, executor.Status{Code: code})
		return
	}

	out, errf, err := s.openOutput(outPath, errPath, truncate)
	if err != nil {
		s.log.Warn("fakeslurm: cannot open the job's output", "job", j.ID, "err", err)
		s.scriptEnded(j, r, executor.Status{Code: 1})
		return
	}
	s.mu.Lock()
	r.out, r.err = out, errf
	s.mu.Unlock()
	defer func() { _ = out.Close(); _ = errf.Close() }()

	if s.exec == nil {
		<-ctx.Done()
		return
	}
	if err := s.fs.MkdirAll(spool, 0o755); err == nil {
		if err := afero.WriteFile(s.fs, scriptPath, script, 0o700); err != nil {
			s.log.Warn("fakeslurm: cannot spool the job script", "job", j.ID, "err", err)
		}
	}
	interp := interpreter(script)
	cmd.Script = "exec " + interp + " " + shellQuote(scriptPath)
	for _, a := range argv {
		cmd.Script += " " + shellQuote(a)
	}
	cmd.Stdout, cmd.Stderr = out, errf
	// The clock must not move between the script's start and the server
	// knowing its process: a script that sleeps at once would otherwise
	// let time limits and signals pass while they cannot reach it.
	hold := s.clock.Hold()
	proc, err := s.exec.Start(executor.InCallerActor(ctx), cmd)
	if err != nil {
		hold()
		s.log.Warn("fakeslurm: job script failed to start", "job", j.ID, "err", err)
		fmt.Fprintf(errf, "slurmstepd-%s: error: execve(): %s: %v\n", j.BatchHost, scriptPath, err)
		s.scriptEnded(j, r, executor.Status{Code: 1})
		return
	}
	s.mu.Lock()
	r.proc = proc
	for _, sig := range r.pending {
		s.signal(r, sig)
	}
	r.pending = nil
	s.mu.Unlock()
	hold()
	st := proc.Wait()
	s.scriptEnded(j, r, st)
}

// interpreter is the #! line of a script, as slurmstepd execs it.
func interpreter(script []byte) string {
	line := string(script)
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimSpace(strings.TrimPrefix(line, "#!"))
	if line == "" {
		return "/bin/sh"
	}
	return line
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// openOutput opens the job's stdout and stderr files (one file when both
// name the same path), truncated as with the default --open-mode.
func (s *Server) openOutput(outPath, errPath string, truncate bool) (*lockedFile, *lockedFile, error) {
	flag := os.O_WRONLY | os.O_CREATE
	if truncate {
		flag |= os.O_TRUNC
	} else {
		flag |= os.O_APPEND
	}
	open := func(p string) (*lockedFile, error) {
		if p == "/dev/null" {
			return &lockedFile{}, nil
		}
		f, err := s.fs.OpenFile(p, flag, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p, err)
		}
		return &lockedFile{w: f, c: f}, nil
	}
	out, err := open(outPath)
	if err != nil {
		return nil, nil, err
	}
	if errPath == outPath {
		return out, out, nil
	}
	errf, err := open(errPath)
	if err != nil {
		_ = out.Close()
		return nil, nil, err
	}
	return out, errf, nil
}

// jobEnv is the batch script's environment: what --export lets through of
// the submitter's environment, then Slurm's own variables (as slurmd sets
// them on Debian's 22.05). Called with s.mu held.
func (s *Server) jobEnv(j *job) []string {
	var env []string
	exp := j.export
	all := exp == "" || exp == "ALL" || strings.HasPrefix(exp, "ALL,")
	if all { // NONE: no variable of the submitter's but those named after it
		env = append(env, j.env...)
	}
	if !all || strings.HasPrefix(exp, "ALL,") {
		for _, item := range strings.Split(exp, ",") {
			if item == "ALL" || item == "NONE" || item == "" {
				continue
			}
			if strings.Contains(item, "=") {
				env = append(env, item)
				continue
			}
			if !all {
				for _, kv := range j.env {
					if k, _, _ := strings.Cut(kv, "="); k == item {
						env = append(env, kv)
					}
				}
			}
		}
	}
	node := j.BatchHost
	onNode := j.cpusNode
	if len(j.alloc) > 0 {
		if c, ok := j.alloc[0].jobs[j]; ok {
			onNode = c // --exclusive: the whole node
		}
	}
	cpus := strconv.Itoa(onNode)
	nn := strconv.Itoa(len(j.alloc))
	tasksPerNode := strconv.Itoa(max(1, j.NumTasks/max(1, len(j.alloc))))
	if len(j.alloc) > 1 {
		tasksPerNode += "(x" + nn + ")"
		cpus = cpus + "(x" + nn + ")"
	}
	add := func(k, v string) { env = append(env, k+"="+v) }
	add("SLURMD_NODENAME", node)
	add("SLURM_CLUSTER_NAME", s.c.cluster)
	add("SLURM_CPUS_ON_NODE", strconv.Itoa(onNode))
	if j.CPUsPerTask > 1 {
		add("SLURM_CPUS_PER_TASK", strconv.Itoa(j.CPUsPerTask))
	}
	if j.export != "" {
		add("SLURM_EXPORT_ENV", j.export)
	}
	if j.userEnv || (j.export != "" && j.export != "ALL") {
		add("SLURM_GET_USER_ENV", "1")
	}
	add("SLURM_GTIDS", "0")
	add("SLURM_JOBID", strconv.Itoa(j.ID))
	add("SLURM_JOB_CPUS_PER_NODE", cpus)
	add("SLURM_JOB_GID", strconv.Itoa(j.GID))
	add("SLURM_JOB_ID", strconv.Itoa(j.ID))
	if !j.nameUnset {
		add("SLURM_JOB_NAME", j.Name)
	}
	add("SLURM_JOB_NODELIST", j.NodeList)
	add("SLURM_JOB_NUM_NODES", nn)
	add("SLURM_JOB_PARTITION", j.Partition)
	add("SLURM_JOB_UID", strconv.Itoa(j.UID))
	add("SLURM_JOB_USER", j.User)
	add("SLURM_LOCALID", "0")
	if j.MemMB > 0 {
		add("SLURM_MEM_PER_NODE", strconv.FormatInt(j.MemMB, 10))
	}
	add("SLURM_NNODES", nn)
	add("SLURM_NODEID", "0")
	add("SLURM_NODELIST", j.NodeList)
	add("SLURM_NODE_ALIASES", "(null)")
	if j.tasksSet {
		add("SLURM_NPROCS", strconv.Itoa(j.NumTasks))
		add("SLURM_NTASKS", strconv.Itoa(j.NumTasks))
	}
	add("SLURM_PRIO_PROCESS", "0")
	add("SLURM_PROCID", "0")
	add("SLURM_SUBMIT_DIR", j.submitDir)
	add("SLURM_SUBMIT_HOST", j.SubmitHost)
	add("SLURM_TASKS_PER_NODE", tasksPerNode)
	add("SLURM_TASK_PID", strconv.Itoa(10000+j.ID)) // the script's pid is not known before it starts
	add("SLURM_TOPOLOGY_ADDR", node)
	add("SLURM_TOPOLOGY_ADDR_PATTERN", "node")
	add("SLURM_WORKING_CLUSTER", s.c.cluster+":"+s.c.ctlHost+":6817:9728:109")
	return env
}

// scriptEnded takes the end of a job's batch script. Called by the job's actor.
func (s *Server) scriptEnded(j *job, r *runState, st executor.Status) {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.ended {
		return
	}
	r.ended = true
	if s.closed || j.run != r {
		return
	}
	j.stopTimers()
	j.run = nil
	now := s.clock.Now()
	code, sig := st.Code, int(st.Signal)
	if sig == 0 && code > 128 && r.howSet && r.sent[syscall.Signal(code-128)] {
		// A cancelled or timed-out script dies of the SIGTERM (0:15); a
		// shell between the executor and the script reports that as
		// 128+n. (On the real Slurm a dash script whose child gets the
		// signal first exits 143:0 instead: a race, 0:15 is the usual.)
		sig = code - 128
	}
	if sig != 0 {
		code = 0
	}
	j.ExitCode, j.ExitSignal = code, sig
	j.End = now
	j.Completing = false
	s.releaseNodes(j)
	switch {
	case r.howSet:
		j.State = r.how
	case j.MemMB > 0 && st.Usage.MaxRSS > j.MemMB<<20:
		// Over its --mem: task/cgroup would have killed it; the fake sees
		// it afterwards, from what the executor measured.
		j.State = OutOfMemory
		j.Reason = "OutOfMemory"
		j.ExitCode, j.ExitSignal = 0, 125
	case code == 0 && sig == 0:
		j.State = Completed
		j.Reason = "None"
	default:
		j.State = Failed
		j.Reason = "NonZeroExitCode"
		if sig != 0 {
			j.Reason = fmt.Sprintf("RaisedSignal:%d(%s)", sig, signalTitle(syscall.Signal(sig)))
		}
	}
	s.notePurge(j)
	s.record(j, fmt.Sprintf("batch script ended, exit code %d:%d", code, sig))
	s.kick()
}

// signalTitle is strsignal's text for sig ("Killed", "Terminated").
func signalTitle(sig syscall.Signal) string {
	t := sig.String()
	if t == "" {
		return "Unknown"
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// endRunning ends a running job from outside (cancel, time limit, node
// failure): the state is set now and stays, the job is COMPLETING until its
// script is gone, and the script gets SIGCONT and SIGTERM now, SIGKILL
// after KillWait. msg, when set, is slurmstepd's line on the job's stderr.
// Called with s.mu held.
func (s *Server) endRunning(j *job, how State, reason, msg string) {
	r := j.run
	now := s.clock.Now()
	j.State = how
	j.Completing = true
	j.End = now
	if reason != "" {
		j.Reason = reason
	}
	if j.limitStop != nil {
		j.limitStop()
		j.limitStop = nil
	}
	if r == nil {
		return
	}
	r.how, r.howSet = how, true
	if msg != "" && r.err != nil {
		_, _ = r.err.Write([]byte(msg))
	}
	s.signal(r, syscall.SIGCONT)
	s.signal(r, syscall.SIGTERM)
	if j.killStop == nil {
		j.killStop = s.after(s.c.killWait, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			j.killStop = nil
			if j.run == r && !r.ended {
				s.signal(r, syscall.SIGKILL)
			}
		})
	}
	if s.exec == nil || r.cancel == nil && r.proc == nil {
		// Nothing runs (no executor, or not started yet): the end is now.
		if s.exec == nil {
			j.run = nil
			j.stopTimers()
			j.Completing = false
			j.ExitCode, j.ExitSignal = 0, int(syscall.SIGTERM)
			s.releaseNodes(j)
			s.notePurge(j)
			if r.cancel != nil {
				r.cancel()
			}
			s.kick()
		}
	}
}

// signal delivers sig to a run's script, or queues it until the script
// has started. Called with s.mu held; the delivery itself happens outside
// the lock so that a virtual executor can wake its sleepers.
func (s *Server) signal(r *runState, sig syscall.Signal) {
	if r.proc == nil {
		r.pending = append(r.pending, sig)
		return
	}
	if r.sent == nil {
		r.sent = map[syscall.Signal]bool{}
	}
	r.sent[sig] = true
	r.sigMu.Lock()
	defer r.sigMu.Unlock()
	r.sigQ = append(r.sigQ, sig)
	if r.sending {
		return
	}
	r.sending = true
	p := r.proc
	release := s.clock.Hold() // the clock waits until the signal is in
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer release()
		for {
			r.sigMu.Lock()
			if len(r.sigQ) == 0 {
				r.sending = false
				r.sigMu.Unlock()
				return
			}
			sg := r.sigQ[0]
			r.sigQ = r.sigQ[1:]
			r.sigMu.Unlock()
			_ = p.Signal(sg)
		}
	}()
}

// timeLimit is slurmctld finding j over its time limit.
func (s *Server) timeLimit(j *job, r *runState) {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	j.limitStop = nil
	if s.closed || j.run != r || r.ended || j.State != Running {
		return
	}
	msg := fmt.Sprintf("slurmstepd-%s: error: *** JOB %d ON %s CANCELLED AT %s DUE TO TIME LIMIT ***\n",
		j.BatchHost, j.ID, j.BatchHost, s.clock.Now().Format(stampLayout))
	s.endRunning(j, Timeout, "TimeLimit", msg)
	s.record(j, "time limit reached")
}

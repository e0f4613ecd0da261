package fakepbs

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/fault"
)

// Exit_status values OpenPBS sets itself (src/include/job.h JOB_EXEC_*).
const (
	exitExecFail     = -1  // JOB_EXEC_FAIL1: the script could not be started
	exitKillWalltime = -29 // JOB_EXEC_KILL_WALLTIME
	momPort          = 15003
)

// runJob is the MOM side of one run of j: start faults, node file and
// TMPDIR, the script on the executor, then the job's end. It runs as an
// actor of the server's clock; ctx is that actor's context.
func (s *Server) runJob(ctx context.Context, j *job, r *runState, fired []fault.Rule) {
	s.mu.Lock()
	if s.closed || j.run != r {
		s.unlock()
		return
	}
	spec, nodeFile, tmpDir := s.runSpec(j, r)
	s.unlock()
	scriptFile := path.Join(s.pbsHome, "mom_priv", "jobs", spec.JobID+".SC")
	defer func() {
		_ = s.fs.Remove(nodeFile)
		_ = s.fs.Remove(scriptFile)
		s.removeTree(tmpDir)
	}()

	if len(fired) > 0 {
		if err := s.faults.Wait(ctx, fired); err != nil {
			s.scriptEnded(j, r, ExitStatus{Signal: syscall.SIGKILL}, false)
			return
		}
		if rule, ok := fault.First(fired, fault.Exit); ok {
			code := 1
			if rule.Effect.ExitCode != nil {
				code = *rule.Effect.ExitCode
			}
			if rule.Effect.Stderr != "" {
				_, _ = r.stderr.Write([]byte(rule.Effect.StderrLine()))
			}
			s.scriptEnded(j, r, ExitStatus{Code: code}, false)
			return
		}
	}

	if err := s.fs.MkdirAll(path.Dir(nodeFile), 0o755); err != nil {
		s.log.Warn("fakepbs: cannot create the node file directory", "job", spec.JobID, "err", err)
	}
	if err := afero.WriteFile(s.fs, nodeFile, []byte(spec.NodeFile), 0o644); err != nil {
		s.log.Warn("fakepbs: cannot write the node file", "job", spec.JobID, "path", nodeFile, "err", err)
	}
	if err := s.fs.MkdirAll(tmpDir, 0o700); err != nil {
		s.log.Warn("fakepbs: cannot create TMPDIR", "job", spec.JobID, "path", tmpDir, "err", err)
	}
	if err := s.fs.MkdirAll(path.Dir(scriptFile), 0o755); err == nil {
		if err := afero.WriteFile(s.fs, scriptFile, spec.Script, 0o700); err == nil {
			spec.ScriptPath = scriptFile
		} else {
			s.log.Warn("fakepbs: cannot write the job script file; running its text", "job", spec.JobID, "path", scriptFile, "err", err)
		}
	}

	// The clock stands still from the script's start until the signals
	// sent while it was starting reach it: otherwise, on a virtual clock,
	// its first sleep could come due (and the script end) before a qsig
	// or qdel sent earlier arrives.
	release := s.clock.Hold()
	proc, err := s.exec.Start(ctx, spec)
	if err != nil {
		release()
		s.log.Warn("fakepbs: job script failed to start", "job", spec.JobID, "err", err)
		s.scriptEnded(j, r, ExitStatus{}, true)
		return
	}
	s.mu.Lock()
	r.proc = proc
	for _, sig := range r.pending {
		s.signal(r, sig)
	}
	r.pending = nil
	s.unlock()
	release()
	st := proc.Wait()
	s.scriptEnded(j, r, st, false)
}

// removeTree removes a job's TMPDIR. An empty one (the common case) is
// removed on its own: RemoveAll walks the whole of some filesystems
// (afero's in-memory one).
func (s *Server) removeTree(dir string) {
	if f, err := s.fs.Open(dir); err == nil {
		names, _ := f.Readdirnames(1)
		_ = f.Close()
		if len(names) == 0 {
			if s.fs.Remove(dir) == nil {
				return
			}
		}
	}
	_ = s.fs.RemoveAll(dir)
}

// runSpec builds the job's RunSpec with the PBS job environment and the
// node file's content, and the paths of the node file and TMPDIR to
// create. Called with s.mu held.
func (s *Server) runSpec(j *job, r *runState) (spec RunSpec, nodeFile, tmpDir string) {
	nodeFile = path.Join(s.pbsHome, "aux", j.ID)
	tmpDir = path.Join(s.tmpRoot, "pbs."+j.ID)
	var lines strings.Builder
	for _, a := range j.alloc {
		for i := 0; i < a.mpiprocs; i++ {
			lines.WriteString(a.n.host + "\n")
		}
	}
	ncpus, threads := 1, 0
	if len(j.alloc) > 0 {
		ncpus, threads = len(j.alloc[0].cpus), j.alloc[0].threads
	}
	if threads == 0 {
		threads = ncpus
	}
	shell := j.shell
	if shell == "" {
		shell = "/bin/bash"
	}
	envKind := "PBS_BATCH"
	if j.Interactive {
		envKind = "PBS_INTERACTIVE"
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(j.ID))
	cookie := fmt.Sprintf("%016X%016X", h.Sum64(), uint64(j.Seq)*0x9E3779B97F4A7C15)

	env := newEnv(len(j.Variables) + 24)
	for _, kv := range j.Variables {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env.set(k, v)
		}
	}
	// The front end sends the full PBS_O_ set; in-process submissions may not.
	env.setDefault("PBS_O_HOME", j.home)
	env.setDefault("PBS_O_LOGNAME", j.User)
	env.setDefault("PBS_O_WORKDIR", j.workdir)
	env.setDefault("PBS_O_SYSTEM", "Linux")
	env.setDefault("PBS_O_QUEUE", j.Queue)
	env.setDefault("PBS_O_HOST", j.SubmitHost)
	env.set("HOME", j.home)
	env.set("LOGNAME", j.User)
	env.set("USER", j.User)
	env.set("SHELL", shell)
	env.setDefault("PATH", "/usr/local/bin:/usr/bin:/bin")
	env.set("PBS_JOBNAME", j.Name)
	env.set("PBS_JOBID", j.ID)
	env.set("PBS_QUEUE", j.Queue)
	env.set("PBS_JOBCOOKIE", cookie)
	env.set("PBS_NODENUM", "0")
	env.set("PBS_TASKNUM", "1")
	env.set("PBS_MOMPORT", strconv.Itoa(momPort))
	env.set("PBS_NODEFILE", nodeFile)
	env.set("NCPUS", strconv.Itoa(ncpus))
	env.set("OMP_NUM_THREADS", strconv.Itoa(threads))
	env.set("TMPDIR", tmpDir)
	env.set("PBS_JOBDIR", j.home)
	env.set("PBS_ENVIRONMENT", envKind)
	env.set("ENVIRONMENT", "BATCH")

	node := ""
	if len(j.alloc) > 0 {
		node = j.alloc[0].n.host
	}
	return RunSpec{
		JobID: j.ID, User: j.User, Node: node, Script: j.script, Shell: j.shell, NodeFile: lines.String(),
		Env: env.list(), Dir: j.home, Stdout: r.stdout, Stderr: r.stderr,
	}, nodeFile, tmpDir
}

// env is an ordered environment where a later set replaces an earlier value in place.
type env struct {
	keys []string
	vals map[string]string
}

func newEnv(n int) *env { return &env{keys: make([]string, 0, n), vals: make(map[string]string, n)} }

func (e *env) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *env) setDefault(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.set(k, v)
	}
}

func (e *env) list() []string {
	out := make([]string, len(e.keys))
	for i, k := range e.keys {
		out[i] = k + "=" + e.vals[k]
	}
	return out
}

// armWalltime kills the job once it has run d (suspended time excluded).
func (s *Server) armWalltime(j *job, d time.Duration) {
	r := j.run
	r.wallLeft, r.wallArmed = d, s.clock.Now()
	r.wallStop = s.after(d, func() { s.walltimeExceeded(j, r) })
}

// walltimeExceeded is the MOM noticing the job is over its walltime limit:
// the message on the job's stderr, SIGTERM, and SIGKILL after kill_delay.
func (s *Server) walltimeExceeded(j *job, r *runState) {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.unlock()
	r.wallStop = nil
	if s.closed || j.run != r || r.scriptEnded || r.killReason != "" {
		return
	}
	r.killReason = "walltime"
	used := s.clock.Now().Sub(j.Stime) - r.suspendedFor
	_, _ = fmt.Fprintf(r.stderr, "=>> PBS: job killed: walltime %d exceeded limit %d\n",
		int64(used/time.Second), int64(j.spec.walltime/time.Second))
	s.terminate(j, r)
}

// terminate sends SIGTERM to the script now and SIGKILL after kill_delay.
// Called with s.mu held.
func (s *Server) terminate(j *job, r *runState) {
	if j.State == Suspended {
		s.signal(r, syscall.SIGCONT)
	}
	s.signal(r, syscall.SIGTERM)
	if r.killStop == nil {
		r.killStop = s.after(s.killDelay, func() {
			s.mu.Lock()
			defer s.unlock()
			r.killStop = nil
			if j.run == r && !r.scriptEnded {
				s.signal(r, syscall.SIGKILL)
			}
		})
	}
}

// scriptEnded takes the end of a job's script: Exit_status, then exiting
// and finishing unless a fault keeps the job where it is. Called by the
// job's actor.
func (s *Server) scriptEnded(j *job, r *runState, st ExitStatus, execFailed bool) {
	s.mu.Lock()
	if s.closed || j.run != r || j.gone || j.State == Finished || r.scriptEnded {
		// closed, or purged meanwhile (qdel -W force, vanish fault)
		s.unlock()
		return
	}
	r.scriptEnded = true
	j.stopTimers()
	code := st.Code
	switch {
	case execFailed:
		code = exitExecFail
	case r.killReason == "walltime":
		code = exitKillWalltime
	case st.Signal != 0:
		code = 256 + int(st.Signal)
	}
	r.exit = code
	now := s.clock.Now()
	ec := code
	j.ExitStatus = &ec
	j.Obittime = now
	wall := now.Sub(j.Stime) - r.suspendedFor
	if j.State == Suspended {
		wall -= now.Sub(r.suspendedAt)
	}
	j.ResourcesUsed = usedResources(j, wall, st.Usage)
	r.execFailed = execFailed
	if j.pin == Running {
		s.rec.Record(pinEvent(j, now, "script ended with Exit_status "+strconv.Itoa(code)+"; kept in R by fault rule "+j.pinRule))
		s.unlock()
		return
	}
	s.unlock()
	s.exitJob(j, r, "script ended with Exit_status "+strconv.Itoa(code))
}

// exitJob is the job's exiting phase: E while the output is staged, then
// F (or gone without history). Called without s.mu.
func (s *Server) exitJob(j *job, r *runState, reason string) {
	s.mu.Lock()
	if s.closed || j.run != r || j.gone || j.State == Finished {
		s.unlock()
		return
	}
	if j.State != Exiting {
		s.setState(j, Exiting, subStageOut, reason)
	}
	if j.pin == Exiting {
		s.unlock()
		return
	}
	work := s.stageWork(j, r)
	s.unlock()

	s.stage(work)

	s.mu.Lock()
	if s.closed || j.run != r || j.gone || j.State != Exiting {
		s.unlock()
		return
	}
	s.finish(j, "output staged")
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
}

type stageFile struct {
	dest  string // Output_Path or Error_Path without the host
	spool string // <jobid>.OU or .ER: the name in a directory destination
	data  []byte
	mode  fs.FileMode
	jobID string
}

// stageWork lists the files the MOM copies back at job end. Called with s.mu held.
func (s *Server) stageWork(j *job, r *runState) []stageFile {
	mode := 0o666 &^ j.umask
	out := stageFile{dest: pathOf(j.OutputPath), spool: j.ID + ".OU", mode: mode, jobID: j.ID}
	errf := stageFile{dest: pathOf(j.ErrorPath), spool: j.ID + ".ER", mode: mode, jobID: j.ID}
	switch j.Join {
	case "oe":
		out.data = r.stdout.Bytes()
		return []stageFile{out}
	case "eo":
		errf.data = r.stderr.Bytes()
		return []stageFile{errf}
	}
	out.data = r.stdout.Bytes()
	errf.data = r.stderr.Bytes()
	return []stageFile{out, errf}
}

// stage writes the job's output files, as the MOM's stage-out does; a file
// that cannot be delivered goes to $PBS_HOME/undelivered, as in OpenPBS.
func (s *Server) stage(files []stageFile) {
	for _, f := range files {
		dest := f.dest
		if strings.HasSuffix(dest, "/") {
			dest = path.Join(dest, f.spool)
		} else if fi, err := s.fs.Stat(dest); err == nil && fi.IsDir() {
			dest = path.Join(dest, f.spool)
		}
		err := s.deliver(dest, f)
		if err == nil {
			continue
		}
		s.log.Warn("fakepbs: cannot deliver job output; keeping it in undelivered", "job", f.jobID, "path", dest, "err", err)
		und := path.Join(s.pbsHome, "undelivered")
		_ = s.fs.MkdirAll(und, 0o755)
		if err := afero.WriteFile(s.fs, path.Join(und, f.spool), f.data, f.mode); err != nil {
			s.log.Warn("fakepbs: cannot write undelivered output", "job", f.jobID, "err", err)
		}
	}
}

// deliver writes one output file. Its directory must exist: the MOM does
// not create it (some filesystems, such as afero's in-memory one, would).
func (s *Server) deliver(dest string, f stageFile) error {
	fi, err := s.fs.Stat(path.Dir(dest))
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %w", path.Dir(dest), syscall.ENOTDIR)
	}
	return afero.WriteFile(s.fs, dest, f.data, f.mode)
}

// pathOf strips the "host:" prefix of an Output_Path or Error_Path.
func pathOf(p string) string {
	if i := strings.IndexByte(p, ':'); i >= 0 && !strings.HasPrefix(p, "/") {
		return p[i+1:]
	}
	return p
}

// finish moves an exiting (or deleted) job to F: nodes freed, dependants
// released or deleted, waiters woken, and the job forgotten unless history
// is kept (and qdel -x did not ask to purge it).
// Called with s.mu held.
func (s *Server) finish(j *job, reason string) {
	j.stopTimers()
	failed := j.run != nil && j.run.execFailed
	if j.run != nil {
		j.run.cancel()
		j.run = nil
	}
	heldAtEnd := j.State == Held
	ran := len(j.alloc) > 0 || j.RunCount > 0
	s.releaseNodes(j)
	if j.elem != nil {
		j.q.pending.Remove(j.elem)
		j.elem = nil
	}
	sub := subFinished
	switch {
	case j.terminated:
		sub = subTerminated
	case failed:
		sub = subFailed
	}
	if ran && j.ExecVnode != "" {
		if j.terminated {
			j.Comment = jobRunComment(j.Stime, j.ExecVnode) + " and terminated"
		} else if sub == subFailed {
			j.Comment = jobRunComment(j.Stime, j.ExecVnode) + " and failed"
		} else {
			j.Comment = jobRunComment(j.Stime, j.ExecVnode) + " and finished"
		}
	}
	if j.Obittime.IsZero() && ran {
		j.Obittime = s.clock.Now()
	}
	delete(s.pinned, j)
	j.pin = 0
	s.setState(j, Finished, sub, reason)
	exit := 0
	if j.ExitStatus != nil {
		exit = *j.ExitStatus
	}
	s.dependOnTerm(j, exit, heldAtEnd)
	s.ended(j)
	if !s.history || j.purge {
		s.removeJob(j)
	}
}

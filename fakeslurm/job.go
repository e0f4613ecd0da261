package fakeslurm

import (
	"context"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/sim/executor"
)

// basePriority is where priority/basic counts down from: the first job gets
// 4294901759, the next one less.
const basePriority = 0xFFFF0000

// job is the controller's record of a job; its embedded Job is the snapshot
// the commands see.
type job struct {
	Job

	part      *partition
	script    []byte
	env       []string
	export    string
	tasksSet  bool
	userEnv   bool
	argv      []string
	appendOut bool
	nameUnset bool // no SLURM_JOB_NAME in the job's environment
	exclusive bool
	include   []string
	exclude   map[string]bool
	sig       syscall.Signal
	sigBefore time.Duration
	sigBatch  bool
	sigStop   func()
	nodesReq  int
	cpusNode  int // CPUs the job needs on each node
	memNode   int64
	userHold  bool
	adminHold bool
	deps      []dep
	depAny    bool
	begin     time.Time
	alloc     []*node
	run       *runState
	limitStop func()
	killStop  func()
	outPat    string
	errPat    string
	submitDir string
	purged    bool
	lost      bool // removed by a vanish fault: gone without a trace
	seq       int  // creation order, for priorities
	hasSeq    bool // seq was given (a job submitted held takes one when released)
}

// dep is one dependency of a job.
type dep struct {
	kind string // after, afterany, afterok, afternotok, singleton
	id   int
}

// runState is one run of a job's batch script.
type runState struct {
	ctx      context.Context
	cancel   context.CancelFunc
	proc     executor.Process
	pending  []syscall.Signal // signals sent before the process existed
	sigMu    sync.Mutex       // guards sigQ and sending: signals go out in order, outside s.mu
	sigQ     []syscall.Signal
	sending  bool
	sent     map[syscall.Signal]bool // signals delivered to the script (s.mu)
	out, err *lockedFile
	ended    bool
	// how is what ended the job from outside: Cancelled, Timeout or
	// NodeFail; zero (Pending) when the script ends by itself.
	how    State
	howSet bool
}

func (j *job) stopTimers() {
	if j.limitStop != nil {
		j.limitStop()
		j.limitStop = nil
	}
	if j.killStop != nil {
		j.killStop()
		j.killStop = nil
	}
	if j.sigStop != nil {
		j.sigStop()
		j.sigStop = nil
	}
}

// Submit creates a batch job, as sbatch's RPC does: the job id on success,
// a *Error otherwise. A request the controller rejects after creating the
// job (memory or CPUs no node of the partition has) uses up an id: the job
// is kept as FAILED with Reason=BadConstraints, as slurmctld does, and the
// error is still returned.
func (s *Server) Submit(_ context.Context, req SubmitRequest) (int, error) {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrServerClosed
	}
	if s.down {
		return 0, Errno(ErrCtldConnect)
	}
	if req.Array != "" {
		// MaxArraySize=0: job arrays are disabled (_valid_array_inx). The
		// attempt still uses up a priority, as in slurmctld.
		s.prioSeq++
		return 0, Errno(ErrInvalidArray)
	}
	p := s.defPart
	if req.Partition != "" {
		if p = s.partByName[req.Partition]; p == nil {
			return 0, Errno(ErrInvalidPartition)
		}
	}
	if len(req.Script) == 0 {
		return 0, Errno(ErrJobScriptMissing)
	}

	deps, anyDep, err := parseDependency(req.Dependency)
	if err != nil {
		// slurmctld finds a bad dependency after it took a job id: the
		// id is used up, no job is kept.
		s.nextID++
		return 0, err
	}
	now := s.clock.Now()
	j := &job{part: p, script: req.Script, env: req.Env, export: req.Export, deps: deps, depAny: anyDep,
		tasksSet: req.TasksGiven, userEnv: req.GetUserEnv, argv: req.Argv, appendOut: req.OpenMode == "append",
		exclusive: req.Exclusive, include: req.NodeList, sig: req.Signal, sigBefore: req.SigBefore, sigBatch: req.SigBatch,
		begin: req.BeginTime, outPat: req.Output, errPat: req.Error, submitDir: req.SubmitDir}
	j.ID = s.nextID
	s.nextID++
	if !req.Hold {
		j.seq, j.hasSeq = s.prioSeq, true
		s.prioSeq++
	}
	j.Name, j.nameUnset = req.Name, req.NameUnset
	j.User, j.Group, j.UID, j.GID = req.User, req.Group, req.UID, req.GID
	if j.Group == "" {
		j.Group = j.User
	}
	j.Partition = p.Name
	j.State = Pending
	j.Reason = "None"
	j.Priority = basePriority - 1 - int64(j.seq)
	j.Submit = now
	if !req.Hold && len(deps) == 0 && (req.BeginTime.IsZero() || !req.BeginTime.After(now)) {
		// Eligible at once; held and dependent jobs become eligible later.
		j.Eligible, j.Accrue = now, now
	}
	j.TimeLimit = req.TimeLimit
	j.LimitGiven = req.TimeLimit != 0
	if j.TimeLimit == 0 {
		j.TimeLimit = p.DefTime
		if j.TimeLimit == 0 {
			j.TimeLimit = p.MaxTime
		}
	}
	j.nodesReq = max(1, req.Nodes)
	j.NumTasks = req.Tasks
	if j.NumTasks == 0 {
		j.NumTasks = j.nodesReq
	}
	j.CPUsPerTask = max(1, req.CPUsPerTask)
	j.NumCPUs = max(j.nodesReq, j.NumTasks*j.CPUsPerTask)
	j.cpusNode = (j.NumCPUs + j.nodesReq - 1) / j.nodesReq
	j.Nodes = j.nodesReq
	j.NodesGiven = req.NodesGiven
	j.MemMB = req.MemMB
	j.memNode = req.MemMB
	j.Requeue = s.c.requeue
	if req.Requeue != nil {
		j.Requeue = *req.Requeue
	}
	j.Command = req.Command
	j.WorkDir = req.WorkDir
	if j.WorkDir == "" {
		j.WorkDir = req.SubmitDir
	}
	j.StdIn = req.Input
	if j.StdIn == "" {
		j.StdIn = "/dev/null"
	}
	if j.outPat == "" {
		j.outPat = "slurm-%j.out"
	}
	if j.errPat == "" {
		j.errPat = j.outPat
	}
	j.StdOut = s.expandPath(j, j.outPat)
	j.StdErr = s.expandPath(j, j.errPat)
	j.Dependency = "(null)"
	if req.Dependency != "" {
		j.Dependency = req.Dependency
	}
	j.Comment = req.Comment
	j.Argv = req.Argv
	if req.Output != "" {
		j.OutPattern = absJoin(j.WorkDir, req.Output)
	}
	if req.Error != "" {
		j.ErrPattern = absJoin(j.WorkDir, req.Error)
	}
	j.CPUsGiven = req.CPUsPerTask > 0
	j.ReqNodeList = req.NodeList
	j.Account = req.Account
	j.SubmitHost = req.SubmitHost
	j.AllocSID = 0
	j.CancelledBy = -1
	j.Scheduler = "Main"
	j.userHold = req.Hold
	if len(req.Exclude) > 0 {
		j.exclude = map[string]bool{}
		for _, n := range req.Exclude {
			j.exclude[n] = true
		}
	}
	// -w names the real Slurm does not know are dropped (it runs the job
	// elsewhere, as seen with Debian's 22.05).
	j.include = slices.DeleteFunc(slices.Clone(j.include), func(n string) bool { return s.nodeByName[n] == nil })
	if len(j.include) > j.nodesReq {
		j.nodesReq = len(j.include)
	}
	s.jobs[j.ID] = j
	s.order = append(s.order, j)
	s.history = append(s.history, j)

	// Resources no node of the partition has (or -x excluded them all):
	// created and failed at once.
	fits := false
	for _, n := range p.nodes {
		if n.cpus >= j.cpusNode && (j.memNode == 0 || n.mem >= j.memNode) && !j.exclude[n.name] {
			fits = true
		}
	}
	if !fits {
		j.State = Failed
		j.Reason = "BadConstraints"
		j.ExitCode, j.ExitSignal = 0, 1
		j.Start, j.End = now, now
		j.Eligible, j.LastSched = now, now
		j.Accrue = time.Time{}
		j.seq, j.hasSeq = s.prioSeq-1, true
		j.Priority = basePriority - 1 - int64(j.seq)
		j.NumTasks = 0 // N/A
		s.record(j, "rejected: requested node configuration is not available")
		return j.ID, Errno(ErrNodeConfig)
	}
	if j.userHold {
		j.Priority = 0
		j.Reason = "JobHeldUser"
	}
	s.record(j, "submitted")
	s.kick()
	return j.ID, nil
}

// parseDependency reads -d: "type:id[:id...]" items separated by ',' (all
// must hold) or '?' (any may), or "singleton".
func parseDependency(spec string) ([]dep, bool, error) {
	if spec == "" {
		return nil, false, nil
	}
	anyOf := strings.Contains(spec, "?")
	sep := ","
	if anyOf {
		if strings.Contains(spec, ",") {
			return nil, false, Errno(ErrDependency)
		}
		sep = "?"
	}
	var out []dep
	for _, item := range strings.Split(spec, sep) {
		if item == "singleton" {
			out = append(out, dep{kind: "singleton"})
			continue
		}
		kind, ids, ok := strings.Cut(item, ":")
		switch kind {
		case "after", "afterany", "afterok", "afternotok", "aftercorr", "afterburstbuffer":
		default:
			return nil, false, Errno(ErrDependency)
		}
		if !ok || ids == "" {
			return nil, false, Errno(ErrDependency)
		}
		for _, id := range strings.Split(ids, ":") {
			idStr, _, _ := strings.Cut(id, "+") // after:ID+minutes
			n, err := strconv.Atoi(idStr)
			if err != nil || n <= 0 {
				return nil, false, Errno(ErrDependency)
			}
			out = append(out, dep{kind: kind, id: n})
		}
	}
	return out, anyOf, nil
}

// depState says whether j's dependencies hold now: satisfied, waiting, or
// never (a job it needs ended the wrong way). Called with s.mu held.
func (s *Server) depState(j *job) (ok, never bool) {
	if len(j.deps) == 0 {
		return true, false
	}
	okCount, neverCount := 0, 0
	for _, d := range j.deps {
		good, bad := s.oneDep(j, d)
		if good {
			okCount++
		}
		if bad {
			neverCount++
		}
	}
	if j.depAny {
		return okCount > 0, neverCount == len(j.deps)
	}
	return okCount == len(j.deps), neverCount > 0
}

func (s *Server) oneDep(j *job, d dep) (ok, never bool) {
	if d.kind == "singleton" {
		for _, o := range s.order {
			if o != j && !o.purged && o.Name == j.Name && o.User == j.User && o.ID < j.ID && !o.State.Finished() {
				return false, false
			}
		}
		return true, false
	}
	o := s.jobs[d.id]
	if o == nil || o.purged {
		// An unknown or forgotten job: slurmctld drops the dependency.
		return true, false
	}
	switch d.kind {
	case "after":
		return o.State != Pending, false
	case "afterany":
		return o.State.Finished() && !o.Completing, false
	case "afterok":
		if !o.State.Finished() || o.Completing {
			return false, false
		}
		return o.State == Completed, o.State != Completed
	case "afternotok":
		if !o.State.Finished() || o.Completing {
			return false, false
		}
		return o.State != Completed, o.State == Completed
	}
	return o.State.Finished(), false
}

// depText is the Dependency field as scontrol and squeue show it: the
// dependencies still in force, each marked (unfulfilled) or (failed), and
// (null) once they are met. Called with s.mu held.
func (s *Server) depText(j *job) string {
	if j.State != Pending {
		return "(null)"
	}
	if ok, _ := s.depState(j); ok {
		return "(null)"
	}
	var parts []string
	for _, d := range j.deps {
		good, bad := s.oneDep(j, d)
		if good {
			continue
		}
		item := d.kind
		if d.kind != "singleton" {
			item += ":" + strconv.Itoa(d.id)
		}
		if bad {
			item += "(failed)"
		} else {
			item += "(unfulfilled)"
		}
		parts = append(parts, item)
	}
	sep := ","
	if j.depAny {
		sep = "?"
	}
	return strings.Join(parts, sep)
}

// expandPath fills in an output pattern (%j, %x, %u, %N, %A, %a, %%) and
// makes it absolute against the job's working directory.
func (s *Server) expandPath(j *job, pat string) string {
	if !strings.Contains(pat, "%") {
		return absJoin(j.WorkDir, pat)
	}
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c != '%' || i+1 == len(pat) {
			b.WriteByte(c)
			continue
		}
		// An optional zero-padding width: %5j.
		k := i + 1
		for k < len(pat) && pat[k] >= '0' && pat[k] <= '9' {
			k++
		}
		width, _ := strconv.Atoi(pat[i+1 : k])
		if k == len(pat) {
			b.WriteString(pat[i:])
			break
		}
		pad := func(n int) string {
			v := strconv.Itoa(n)
			for len(v) < width {
				v = "0" + v
			}
			return v
		}
		switch pat[k] {
		case '%':
			b.WriteByte('%')
		case 'j', 'J', 'A':
			b.WriteString(pad(j.ID))
		case 'a':
			b.WriteString(pad(0))
		case 'x':
			b.WriteString(j.Name)
		case 'u':
			b.WriteString(j.User)
		case 'N':
			if j.BatchHost != "" {
				b.WriteString(j.BatchHost)
			} else if len(j.part.nodes) > 0 {
				b.WriteString(j.part.nodes[0].name)
			}
		case 'n', 't', 's':
			b.WriteString(pad(0))
		default:
			b.WriteString(pat[i : k+1])
		}
		i = k
	}
	return absJoin(j.WorkDir, b.String())
}

func absJoin(dir, p string) string {
	if path.IsAbs(p) {
		return p
	}
	return path.Join(dir, p)
}

// Job returns one job slurmctld still holds.
func (s *Server) Job(_ context.Context, id int) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return Job{}, Errno(ErrCtldConnect)
	}
	s.purgeOld()
	j := s.jobs[id]
	if j == nil || j.purged {
		return Job{}, Errno(ErrInvalidJobID)
	}
	return s.snapshot(j), nil
}

// Status returns a job by id wherever it still is: in slurmctld, or (after
// MinJobAge) in the accounting history. A lost job (vanish fault, restart
// that lost the state) or an unknown id gives ErrInvalidJobID. This is the
// host adapter's view; the commands use Job, Jobs and History.
func (s *Server) Status(_ context.Context, id int) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[id]; j != nil && !j.purged {
		return s.snapshot(j), nil
	}
	for i := len(s.history) - 1; i >= 0; i-- {
		if j := s.history[i]; j.ID == id {
			if j.lost {
				break
			}
			return s.snapshot(j), nil
		}
	}
	return Job{}, Errno(ErrInvalidJobID)
}

// Jobs returns every job slurmctld still holds, in id order: pending,
// running and completing ones, and finished ones until MinJobAge passed.
func (s *Server) Jobs(context.Context) ([]Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, Errno(ErrCtldConnect)
	}
	s.purgeOld()
	out := make([]Job, 0, len(s.order)-s.purged)
	for _, j := range s.order {
		if !j.purged {
			out = append(out, s.snapshot(j))
		}
	}
	return out, nil
}

// History returns every job the accounting database has seen (sacct), in
// id order, whatever MinJobAge purged from the controller.
func (s *Server) History(context.Context) ([]Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.c.accounting {
		return nil, Errno(ErrDisabled)
	}
	out := make([]Job, 0, len(s.history))
	for _, j := range s.history {
		if !j.lost {
			out = append(out, s.snapshot(j))
		}
	}
	return out, nil
}

// snapshot copies j's public part, with the times that move. Called with s.mu held.
func (s *Server) snapshot(j *job) Job {
	out := j.Job
	out.Cores = maps.Clone(j.Cores)
	if len(j.deps) > 0 {
		out.Dependency = s.depText(j)
	}
	if out.State == Running && !out.Start.IsZero() {
		if j.TimeLimit == Unlimited {
			out.End = out.Start.Add(365 * 24 * time.Hour)
		} else {
			out.End = out.Start.Add(j.TimeLimit)
		}
	}
	return out
}

// purgeOld forgets the jobs that ended more than MinJobAge ago, as
// slurmctld's purge_old_job does. Called with s.mu held.
func (s *Server) purgeOld() {
	now := s.clock.Now()
	if s.purgeAt.IsZero() || now.Before(s.purgeAt) {
		return
	}
	cut := now.Add(-s.c.minJobAge)
	s.purgeAt = time.Time{}
	for _, j := range s.order {
		if j.purged || !j.State.Finished() || j.Completing {
			continue
		}
		if j.End.Before(cut) {
			j.purged = true
			delete(s.jobs, j.ID)
			s.purged++
		} else {
			s.notePurge(j)
		}
	}
	if s.purged > 64 && s.purged > len(s.order)/2 {
		s.order = slices.DeleteFunc(s.order, func(j *job) bool { return j.purged })
		s.purged = 0
	}
}

// notePurge remembers when finished job j is due to be purged. Called with s.mu held.
func (s *Server) notePurge(j *job) {
	at := j.End.Add(s.c.minJobAge + time.Nanosecond)
	if s.purgeAt.IsZero() || at.Before(s.purgeAt) {
		s.purgeAt = at
	}
}

// lockedFile serialises writes of a job's stdout and stderr, which may be
// the same file.
type lockedFile struct {
	mu sync.Mutex
	w  interface{ Write([]byte) (int, error) }
	c  interface{ Close() error }
}

func (f *lockedFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w == nil {
		return len(p), nil
	}
	return f.w.Write(p)
}

func (f *lockedFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.c == nil {
		return nil
	}
	err := f.c.Close()
	f.c, f.w = nil, nil
	return err
}

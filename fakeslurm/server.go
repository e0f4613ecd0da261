package fakeslurm

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/batchserver"
	"github.com/jobsim/jobsim/sim/executor"
)

// Event kinds of the Slurm layer.
const (
	// SlurmJobState records each job state change.
	SlurmJobState events.Kind = "slurm.job"
	// SlurmCall records each command run by the front end.
	SlurmCall events.Kind = "slurm.call"
	// SlurmNode records node state changes and controller restarts.
	SlurmNode events.Kind = "slurm.node"
)

// Server is an in-process Slurm controller with its slurmd side: partitions,
// nodes, jobs and their states, a scheduler that runs on the server's clock a
// moment after each change (as slurmctld's event-triggered passes do), time
// limits, signals, and job scripts run on the executor with the Slurm job
// environment, their output written to the files sbatch named as it is
// produced. Create it with NewServer and stop it with Close.
type Server struct {
	mu sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
	down   bool // controller away (restart): commands get no answer

	c       config
	clock   clock.Clock
	exec    executor.Executor
	fs      afero.Fs
	faults  *fault.Set
	rec     events.Recorder
	log     *slog.Logger
	unwatch func()

	parts      []*partition
	partByName map[string]*partition
	defPart    *partition
	nodes      []*node
	nodeByName map[string]*node

	nextID    int
	prioSeq   int          // jobs that took a priority (priority/basic counts down)
	jobs      map[int]*job // every job slurmctld still holds (until MinJobAge after its end)
	order     []*job       // in id order; purged entries compacted lazily
	purged    int
	history   []*job // every job ever, for sacct (the accounting database)
	schedStop func()
	wakeStop  func()    // the pass at the next --begin time
	upStop    func()    // the end of a restart
	purgeAt   time.Time // when the next finished job is due to be purged; zero: none
}

type partition struct {
	Partition
	nodes []*node
}

type node struct {
	name, addr    string
	cpus          int
	sockets       int
	cores         int
	mem           int64
	alloc         int
	allocMem      int64
	down, drain   bool
	reason        string
	reasonAt      time.Time
	boot, slurmUp time.Time
	lastBusy      time.Time
	parts         []string
	jobs          map[*job]int // cpus each job holds here
}

// NodeConfig is one NodeName= line of slurm.conf.
type NodeConfig struct {
	Name    string // NodeName
	Addr    string // NodeAddr; default Name
	CPUs    int    // default 2
	Sockets int    // default 1
	Cores   int    // CoresPerSocket; default CPUs/Sockets
	MemMB   int64  // RealMemory; default 1000
}

// PartitionConfig is one PartitionName= line of slurm.conf.
type PartitionConfig struct {
	Name    string
	Nodes   []string // node names; empty: all nodes
	Default bool
	Down    bool          // State=DOWN
	MaxTime time.Duration // 0 or Unlimited: INFINITE
	DefTime time.Duration // DefaultTime; 0: none (jobs get MaxTime)
}

// Option configures a Server.
type Option func(*config) error

type config struct {
	batchserver.Plumbing[executor.Executor]
	cluster, ctlHost, version string
	nodes                     []NodeConfig
	parts                     []PartitionConfig
	msgTimeout                time.Duration
	minJobAge                 time.Duration
	killWait                  time.Duration
	schedDelay                time.Duration
	limitSlack                time.Duration
	firstID                   int
	requeue                   bool
	accounting                bool
	spoolDir                  string
}

// WithClusterName sets ClusterName (default "fakecluster").
func WithClusterName(name string) Option {
	return func(c *config) error {
		if name == "" || strings.ContainsAny(name, " \t\n/") {
			return fmt.Errorf("cluster name %q: want a non-empty name without spaces or '/'", name)
		}
		c.cluster = name
		return nil
	}
}

// WithControlHost sets the short host name of slurmctld (SlurmctldHost;
// default "localhost"), which `scontrol ping` and AllocNode show.
func WithControlHost(host string) Option {
	return func(c *config) error {
		if host == "" {
			return fmt.Errorf("control host: empty")
		}
		c.ctlHost = host
		return nil
	}
}

// WithClock sets the server's clock (default clock.Real{}).
func WithClock(cl clock.Clock) Option { return batchserver.WithClock[*config](cl) }

// WithExecutor sets the executor that runs job scripts. Without one jobs are
// accepted and scheduled but never run (they stay RUNNING until cancelled).
func WithExecutor(e executor.Executor) Option { return batchserver.WithExecutor[*config](e) }

// WithFS sets the filesystem where job scripts are spooled and output files
// written. Default: an in-memory filesystem.
func WithFS(fs afero.Fs) Option { return batchserver.WithFS[*config](fs) }

// WithFaults makes the server consult set for the job-level faults (layer
// "slurm", op "run": vanish — the job is lost —, node-fail, exit, latency).
func WithFaults(set *fault.Set) Option { return batchserver.WithFaults[*config](set) }

// WithRecorder records every job state change to rec.
func WithRecorder(rec events.Recorder) Option { return batchserver.WithRecorder[*config](rec) }

// WithLogger sets the server's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return batchserver.WithLogger[*config](l) }

// WithNodes replaces the default node list (one node "localhost", 2 CPUs,
// 1000 MB, as in the reference's slurm.conf).
func WithNodes(ns ...NodeConfig) Option {
	return func(c *config) error {
		names := make([]string, len(ns))
		for i, n := range ns {
			names[i] = n.Name
		}
		if err := batchserver.CheckNames("node", names, " \t,[]"); err != nil {
			return err
		}
		for i, n := range ns {
			if n.CPUs < 0 || n.MemMB < 0 || n.Sockets < 0 || n.Cores < 0 {
				return fmt.Errorf("nodes[%d]: negative CPUs, sockets, cores or memory", i)
			}
		}
		c.nodes = append([]NodeConfig(nil), ns...)
		return nil
	}
}

// WithPartitions replaces the default partition ("debug", every node,
// default, MaxTime=INFINITE). The first partition is the default unless one
// says Default.
func WithPartitions(ps ...PartitionConfig) Option {
	return func(c *config) error {
		names := make([]string, len(ps))
		for i, p := range ps {
			names[i] = p.Name
		}
		if err := batchserver.CheckNames("partition", names, " \t,"); err != nil {
			return err
		}
		c.parts = append([]PartitionConfig(nil), ps...)
		return nil
	}
}

// WithMessageTimeout sets MessageTimeout (default 10s): how long commands
// try to reach an absent controller before they give up (see cli).
func WithMessageTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("message timeout %v: want at least 1s", d)
		}
		c.msgTimeout = d
		return nil
	}
}

// WithMinJobAge sets MinJobAge (default 300s): how long a finished job stays
// visible to squeue -t all and scontrol. sacct keeps it for ever.
func WithMinJobAge(d time.Duration) Option {
	return func(c *config) error { return batchserver.Duration(&c.minJobAge, "min job age", d) }
}

// WithKillWait sets KillWait (default 30s): the time between SIGTERM and
// SIGKILL when a job is cancelled or over its time limit.
func WithKillWait(d time.Duration) Option {
	return func(c *config) error { return batchserver.Duration(&c.killWait, "kill wait", d) }
}

// WithSchedulerDelay sets how long after a change (submit, end, release)
// the scheduler runs (default 1s; real slurmctld starts a job about 2 s
// after sbatch). Jobs show Reason=None until then.
func WithSchedulerDelay(d time.Duration) Option {
	return func(c *config) error { return batchserver.Duration(&c.schedDelay, "scheduler delay", d) }
}

// WithTimeLimitSlack sets how long past its time limit a job is killed
// (default 0). slurmctld checks limits on a 30 s timer, so a real job is
// killed up to about 30 s late; set this to model that.
func WithTimeLimitSlack(d time.Duration) Option {
	return func(c *config) error { return batchserver.Duration(&c.limitSlack, "time limit slack", d) }
}

// WithFirstJobID sets FirstJobId (default 1).
func WithFirstJobID(id int) Option {
	return func(c *config) error {
		if id < 1 {
			return fmt.Errorf("first job id %d: want 1 or more", id)
		}
		c.firstID = id
		return nil
	}
}

// WithRequeue sets JobRequeue (default true): whether a batch job whose node
// fails goes back to PENDING (with Restarts+1) rather than ending NODE_FAIL,
// unless it was submitted with --no-requeue.
func WithRequeue(on bool) Option { return func(c *config) error { c.requeue = on; return nil } }

// WithAccounting turns sacct on (default) or off ("Slurm accounting storage
// is disabled", as with AccountingStorageType=accounting_storage/none).
func WithAccounting(on bool) Option { return func(c *config) error { c.accounting = on; return nil } }

// WithSpoolDir sets SlurmdSpoolDir (default /var/spool/slurmd): job scripts
// are written to <dir>/job<NNNNN>/slurm_script while they run.
func WithSpoolDir(dir string) Option {
	return func(c *config) error { return batchserver.AbsDir(&c.spoolDir, "spool dir", dir) }
}

// NewServer starts a Slurm controller. ctx is for the start only: the
// server runs until Close.
func NewServer(ctx context.Context, opts ...Option) (*Server, error) {
	c := config{
		cluster: "fakecluster", ctlHost: "localhost", version: "22.05.8",
		msgTimeout: 10 * time.Second, minJobAge: 300 * time.Second, killWait: 30 * time.Second,
		schedDelay: time.Second, firstID: 1, requeue: true, accounting: true,
		spoolDir: "/var/spool/slurmd",
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, fmt.Errorf("fakeslurm: %w", err)
		}
	}
	c.Defaults()
	if c.nodes == nil {
		c.nodes = []NodeConfig{{Name: "localhost"}}
	}
	if c.parts == nil {
		c.parts = []PartitionConfig{{Name: "debug", Default: true}}
	}
	s := &Server{
		c: c, clock: c.Clock, exec: c.Exec, fs: c.FS, faults: c.Faults, rec: c.Rec, log: c.Log,
		partByName: map[string]*partition{}, nodeByName: map[string]*node{},
		nextID: c.firstID, jobs: map[int]*job{},
	}
	now := s.clock.Now()
	for _, nc := range c.nodes {
		n := &node{name: nc.Name, addr: nc.Addr, cpus: nc.CPUs, sockets: nc.Sockets, cores: nc.Cores, mem: nc.MemMB,
			boot: now, slurmUp: now, lastBusy: now, jobs: map[*job]int{}}
		if n.addr == "" {
			n.addr = n.name
		}
		if n.cpus == 0 {
			n.cpus = 2
		}
		if n.sockets == 0 {
			n.sockets = 1
		}
		if n.cores == 0 {
			n.cores = max(1, n.cpus/n.sockets)
		}
		if n.mem == 0 {
			n.mem = 1000
		}
		s.nodes = append(s.nodes, n)
		s.nodeByName[n.name] = n
	}
	for _, pc := range c.parts {
		p := &partition{Partition: Partition{Name: pc.Name, Default: pc.Default, Up: !pc.Down, MaxTime: pc.MaxTime, DefTime: pc.DefTime}}
		if p.MaxTime == 0 {
			p.MaxTime = Unlimited
		}
		names := pc.Nodes
		if len(names) == 0 {
			for _, n := range s.nodes {
				names = append(names, n.name)
			}
		}
		for _, name := range names {
			n := s.nodeByName[name]
			if n == nil {
				return nil, fmt.Errorf("fakeslurm: partition %s: unknown node %q", pc.Name, name)
			}
			p.nodes = append(p.nodes, n)
			p.Nodes = append(p.Nodes, n.name)
			p.TotalCPUs += n.cpus
			n.parts = append(n.parts, p.Name)
		}
		p.MaxNodes = len(p.nodes)
		s.parts = append(s.parts, p)
		s.partByName[p.Name] = p
		if pc.Default && s.defPart == nil {
			s.defPart = p
		}
	}
	if s.defPart == nil {
		s.defPart = s.parts[0]
		s.defPart.Default = true
	}
	if s.exec == nil {
		s.log.Warn("fakeslurm: no executor; jobs will be scheduled but never run")
	}
	var err error
	if s.ctx, s.cancel, err = batchserver.Detach(ctx); err != nil {
		return nil, fmt.Errorf("fakeslurm: %w", err)
	}
	if s.faults != nil {
		// A job rule (vanish, node-fail) added while jobs run takes them
		// at once, as the PBS server's do; Slurm has no rule that pins a
		// job's state, so a removal needs nothing undone.
		s.unwatch = s.faults.Subscribe(s.ctx, func(c fault.Change) {
			for _, r := range c.Added {
				if r.Layer == fault.Slurm {
					s.ApplyFaults()
					return
				}
			}
		})
	}
	return s, nil
}

// Close kills the running jobs, stops every timer and waits for every
// goroutine of the server. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	if s.schedStop != nil {
		s.schedStop()
		s.schedStop = nil
	}
	if s.wakeStop != nil {
		s.wakeStop()
		s.wakeStop = nil
	}
	if s.upStop != nil {
		s.upStop()
		s.upStop = nil
	}
	for _, j := range s.order {
		j.stopTimers()
		if j.run != nil && j.run.cancel != nil {
			j.run.cancel()
		}
	}
	unwatch := s.unwatch
	s.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	s.cancel()
	s.wg.Wait()
	return nil
}

// Info describes the cluster as its clients' slurm.conf does.
func (s *Server) Info(context.Context) Info {
	return Info{
		ClusterName: s.c.cluster, ControlHost: s.c.ctlHost, Version: s.c.version,
		MessageTimeout: s.c.msgTimeout, Accounting: s.c.accounting, MinJobAge: s.c.minJobAge,
	}
}

// Now is the server's clock.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Down reports whether the controller is away (restarting).
func (s *Server) Down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// Faults is the fault set the server consults (nil when none).
func (s *Server) Faults() *fault.Set { return s.faults }

// after runs f on the server's clock after d, counted in the server's
// goroutines; the returned func cancels it.
func (s *Server) after(d time.Duration, f func()) (stop func()) {
	return batchserver.After(s.clock, &s.wg, d, f)
}

// record records a job state change.
func (s *Server) record(j *job, why string) {
	if _, ok := s.rec.(events.Discard); ok {
		return
	}
	st := j.State.String()
	if j.Completing {
		st = "COMPLETING"
	}
	// The time limit in seconds (-1: none), as sbatch --time set it.
	limit := int64(-1)
	if j.TimeLimit != Unlimited {
		limit = int64(j.TimeLimit / time.Second)
	}
	s.rec.Record(events.Event{Time: s.clock.Now(), Kind: SlurmJobState,
		Msg: fmt.Sprintf("job %d %s (%s)", j.ID, st, why),
		Fields: map[string]any{"job": j.ID, "state": st, "reason": j.Reason, "user": j.User, "name": j.Name,
			"partition": j.Partition, "time_limit_s": limit, "why": why}})
}

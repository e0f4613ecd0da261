package fakepbs

import (
	"container/list"
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
	"github.com/jobsim/jobsim/fakepbs/pbsunit"
	"github.com/jobsim/jobsim/internal/batchserver"
)

// Server is an in-process PBS server: queues, nodes, jobs and their states,
// a scheduler that runs on every event (submit, end, release, timer) over
// the server's clock, and a MOM side that runs job scripts on the executor
// and stages their output into the filesystem. It implements Backend, and
// the front end's optional WaitJob (qsub -W block=true) and PurgeHistory
// (qdel -x). Create it with NewServer and stop it with Close.
type Server struct {
	mu sync.Mutex

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine and timer callback the server started
	closed bool
	down   bool // restarting: clients get no answer, nothing is scheduled
	// stopComeUp cancels the pending end of a restart, so Close does not
	// wait out the down time.
	stopComeUp func()

	name, host, shortHost, version string
	clock                          clock.Clock
	exec                           Executor
	fs                             afero.Fs
	faults                         *fault.Set
	unwatch                        func() // stops following rule changes
	rec                            events.Recorder
	log                            *slog.Logger
	home                           func(user string) string
	pbsHome, tmpRoot               string
	managers                       map[string]bool
	extraResources                 map[string]bool
	history                        bool
	historyFor                     time.Duration
	killDelay                      time.Duration
	walltimeGrace                  time.Duration

	queues       []*queue
	queueByName  map[string]*queue
	defaultQueue string
	nodes        []*node

	nextSeq   int
	jobs      map[int]*job      // by sequence number: every job the server knows, history included
	order     []*job            // in sequence order; removed jobs are compacted lazily
	removed   int               // removed entries still in order
	freeCPUs  int               // over all usable nodes, for the scheduler's early exit
	totalCPUs int               // of the usable nodes
	pinned    map[*job]struct{} // jobs a stuck rule keeps in a state
	// ruleTimers stop the timers of the vanish and stuck rules whose time
	// window opens or closes later, by rule id.
	ruleTimers map[string][]func()
	outbox     []queuedSignal // signals to deliver once s.mu is released
	// blocked holds the jobs submitted with qsub -W block=true until a
	// WaitJob has collected their end: without history the server forgets
	// a finished job at once, and OpenPBS still answers the waiting qsub.
	blocked map[int]*job
}

type queue struct {
	Queue
	pending list.List // *job in sequence order: Q, H and W jobs not yet run
}

type node struct {
	name, host      string
	ncpus           int
	mem, memUsed    int64
	cpus            []*job // owner of each cpu, nil when free
	used            int
	excl            bool
	state           string // "" (computed from use), offline, down
	comment         string
	lastStateChange time.Time
	lastUsed        time.Time
}

// NodeConfig describes an execution host of the server.
type NodeConfig struct {
	Name  string // vnode name as pbsnodes and exec_host show it (short)
	Host  string // host name written to the node file; defaults to Name
	NCPUs int    // resources_available.ncpus; defaults to 8
	Mem   string // resources_available.mem such as "16gb"; defaults to 16gb
}

// Option configures a Server.
type Option func(*config) error

type config struct {
	batchserver.Plumbing[Executor]
	name, host, version string
	home                func(string) string
	queues              []Queue
	defaultQueue        string
	nodes               []NodeConfig
	history             bool
	historyFor          time.Duration
	killDelay           time.Duration
	walltimeGrace       time.Duration
	pbsHome, tmpRoot    string
	managers            []string
	resources           []string
	firstSeq            int
}

// WithName sets the server name: the suffix of job ids (default "fakepbs").
func WithName(name string) Option {
	return func(c *config) error {
		if name == "" || strings.ContainsAny(name, " \t\n@:/") {
			return fmt.Errorf("server name %q: want a non-empty name without spaces, '@', ':' or '/'", name)
		}
		c.name = name
		return nil
	}
}

// WithHost sets the host the server runs on (PBS_O_HOST defaults, the
// default node's name and the host part of output paths). Default: the
// server name.
func WithHost(host string) Option {
	return func(c *config) error {
		if host == "" {
			return fmt.Errorf("host: empty")
		}
		c.host = host
		return nil
	}
}

// WithClock sets the server's clock (default clock.Real{}). With a virtual
// clock every wait of the server (start times, walltime, kill delays) and of
// a virtual executor's scripts is simulated.
func WithClock(c clock.Clock) Option { return batchserver.WithClock[*config](c) }

// WithExecutor sets the executor that runs job scripts. Without one the
// server accepts and queues jobs but never runs them.
func WithExecutor(e Executor) Option { return batchserver.WithExecutor[*config](e) }

// WithFS sets the filesystem the MOM side writes to: node files, output and
// error files staged at job end, undelivered output. Default: an in-memory
// filesystem.
func WithFS(fs afero.Fs) Option { return batchserver.WithFS[*config](fs) }

// WithFaults makes the server consult set for the PBS-level faults (layer
// "pbs", op "run"): vanish, stuck, and latency, hang or exit at job start.
func WithFaults(set *fault.Set) Option { return batchserver.WithFaults[*config](set) }

// WithRecorder records every job state change (events.PBSJobState) to rec.
func WithRecorder(rec events.Recorder) Option { return batchserver.WithRecorder[*config](rec) }

// WithLogger sets the server's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return batchserver.WithLogger[*config](l) }

// WithQueues replaces the default queue list (one queue "workq", enabled
// and started). The first queue is the default queue unless
// WithDefaultQueue says otherwise.
func WithQueues(qs ...Queue) Option {
	return func(c *config) error {
		names := make([]string, len(qs))
		for i, q := range qs {
			names[i] = q.Name
		}
		if err := batchserver.CheckNames("queue", names, " \t@"); err != nil {
			return err
		}
		c.queues = append([]Queue(nil), qs...)
		return nil
	}
}

// WithDefaultQueue names the queue jobs go to without -q.
func WithDefaultQueue(name string) Option {
	return func(c *config) error { c.defaultQueue = name; return nil }
}

// WithNodes replaces the default node list (one node named after the
// server's short host name, 8 cpus, 16gb).
func WithNodes(ns ...NodeConfig) Option {
	return func(c *config) error {
		names := make([]string, len(ns))
		for i, n := range ns {
			names[i] = n.Name
		}
		if err := batchserver.CheckNames("node", names, " \t/:+()"); err != nil {
			return err
		}
		for i, n := range ns {
			if n.NCPUs < 0 {
				return fmt.Errorf("nodes[%d]: ncpus %d is negative", i, n.NCPUs)
			}
			if n.Mem != "" {
				if _, err := pbsunit.ParseSize(n.Mem); err != nil {
					return fmt.Errorf("nodes[%d]: mem: %w", i, err)
				}
			}
		}
		c.nodes = append([]NodeConfig(nil), ns...)
		return nil
	}
}

// WithHistory turns job history on or off (job_history_enable, default off
// as in OpenPBS) and sets how long finished jobs are kept
// (job_history_duration; 0 keeps the OpenPBS default of two weeks).
func WithHistory(enable bool, duration time.Duration) Option {
	return func(c *config) error {
		if duration < 0 {
			return fmt.Errorf("history duration %v is negative", duration)
		}
		c.history = enable
		if duration > 0 {
			c.historyFor = duration
		}
		return nil
	}
}

// WithHomeDirs sets how a user's home directory is found (the job's working
// directory and default PBS_O_WORKDIR). Default: /root for root, else
// /home/<user>.
func WithHomeDirs(home func(user string) string) Option {
	return func(c *config) error {
		if home == nil {
			return fmt.Errorf("home dirs: nil func")
		}
		c.home = home
		return nil
	}
}

// WithVersion sets pbs_version (default "23.06.06").
func WithVersion(v string) Option {
	return func(c *config) error { c.version = v; return nil }
}

// WithKillDelay sets kill_delay: the time between SIGTERM and SIGKILL when a
// running job is deleted or over its walltime (default 10s).
func WithKillDelay(d time.Duration) Option {
	return func(c *config) error { return batchserver.Duration(&c.killDelay, "kill delay", d) }
}

// WithWalltimeGrace sets how long past its walltime limit a job is killed
// (default 1s: OpenPBS's MOM kills when usage is over the limit, so the
// message reads "walltime 61 exceeded limit 60").
func WithWalltimeGrace(d time.Duration) Option {
	return func(c *config) error { return batchserver.Duration(&c.walltimeGrace, "walltime grace", d) }
}

// WithPBSHome sets PBS_HOME (default /var/spool/pbs): node files go to
// $PBS_HOME/aux/<jobid>, undeliverable output to $PBS_HOME/undelivered.
func WithPBSHome(dir string) Option {
	return func(c *config) error { return batchserver.AbsDir(&c.pbsHome, "PBS home", dir) }
}

// WithTmpDir sets the parent of the per-job TMPDIR (default /var/tmp: each
// job gets /var/tmp/pbs.<jobid>, removed when it ends).
func WithTmpDir(dir string) Option {
	return func(c *config) error { return batchserver.AbsDir(&c.tmpRoot, "tmp dir", dir) }
}

// WithManagers names the users who may act on any job (default: root).
func WithManagers(users ...string) Option {
	return func(c *config) error { c.managers = append([]string(nil), users...); return nil }
}

// WithResources declares site resources jobs may request besides OpenPBS's
// built-in ones (others get "Unknown resource").
func WithResources(names ...string) Option {
	return func(c *config) error { c.resources = append(c.resources, names...); return nil }
}

// WithFirstJobID sets the sequence number of the first job (default 1).
func WithFirstJobID(seq int) Option {
	return func(c *config) error {
		if seq < 0 {
			return fmt.Errorf("first job id %d is negative", seq)
		}
		c.firstSeq = seq
		return nil
	}
}

const (
	defaultNodeCPUs = 8
	defaultNodeMem  = "16gb"
)

// NewServer starts a PBS server. ctx is for the start only, as with
// net.ListenConfig.Listen: the server runs until Close.
func NewServer(ctx context.Context, opts ...Option) (*Server, error) {
	c := config{
		name:          "fakepbs",
		version:       "23.06.06",
		historyFor:    14 * 24 * time.Hour,
		killDelay:     10 * time.Second,
		walltimeGrace: time.Second,
		pbsHome:       "/var/spool/pbs",
		tmpRoot:       "/var/tmp",
		managers:      []string{"root"},
		firstSeq:      1,
		home: func(u string) string {
			if u == "root" {
				return "/root"
			}
			return "/home/" + u
		},
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, fmt.Errorf("fakepbs: %w", err)
		}
	}
	c.Defaults()
	if c.host == "" {
		c.host = c.name
	}
	if c.queues == nil {
		c.queues = []Queue{{Name: "workq", Enabled: true, Started: true}}
	}
	short, _, _ := strings.Cut(c.host, ".")
	if c.nodes == nil {
		c.nodes = []NodeConfig{{Name: short, Host: c.host}}
	}
	s := &Server{
		name: c.name, host: c.host, shortHost: short, version: c.version,
		clock: c.Clock, exec: c.Exec, fs: c.FS, faults: c.Faults, rec: c.Rec, log: c.Log,
		home: c.home, pbsHome: c.pbsHome, tmpRoot: c.tmpRoot,
		history: c.history, historyFor: c.historyFor, killDelay: c.killDelay, walltimeGrace: c.walltimeGrace,
		managers: map[string]bool{}, extraResources: map[string]bool{},
		queueByName: map[string]*queue{},
		nextSeq:     c.firstSeq,
		jobs:        map[int]*job{},
		pinned:      map[*job]struct{}{},
		ruleTimers:  map[string][]func(){},
	}
	for _, m := range c.managers {
		s.managers[m] = true
	}
	for _, r := range c.resources {
		s.extraResources[r] = true
	}
	for _, q := range c.queues {
		qq := &queue{Queue: q}
		s.queues = append(s.queues, qq)
		s.queueByName[q.Name] = qq
	}
	s.defaultQueue = c.queues[0].Name
	if c.defaultQueue != "" {
		if s.queueByName[c.defaultQueue] == nil {
			return nil, fmt.Errorf("fakepbs: default queue %q is not among the queues", c.defaultQueue)
		}
		s.defaultQueue = c.defaultQueue
	}
	now := s.clock.Now()
	for _, nc := range c.nodes {
		n := &node{name: nc.Name, host: nc.Host, ncpus: nc.NCPUs, lastStateChange: now}
		if n.host == "" {
			n.host = n.name
		}
		if n.ncpus == 0 {
			n.ncpus = defaultNodeCPUs
		}
		mem := nc.Mem
		if mem == "" {
			mem = defaultNodeMem
		}
		size, _ := pbsunit.ParseSize(mem) // checked by WithNodes
		n.mem = size.Bytes()
		n.cpus = make([]*job, n.ncpus)
		s.nodes = append(s.nodes, n)
		s.freeCPUs += n.ncpus
		s.totalCPUs += n.ncpus
	}
	if s.exec == nil {
		s.log.Warn("fakepbs: no executor; jobs will be queued but never run", "server", s.name)
	}
	var err error
	if s.ctx, s.cancel, err = batchserver.Detach(ctx); err != nil {
		return nil, fmt.Errorf("fakepbs: %w", err)
	}
	if s.faults != nil {
		// A vanish or stuck rule takes hold of the jobs already there as soon
		// as it is added, and lets go of them as soon as it is removed,
		// whoever changes the rules (control API, scenario, Go).
		s.unwatch = s.faults.Subscribe(s.ctx, s.faultsChanged)
		s.mu.Lock()
		for _, r := range s.faults.List() {
			if isJobRule(r) {
				s.timeRule(r)
			}
		}
		s.unlock()
	}
	return s, nil
}

// Close kills the running jobs, stops every timer and waits for every
// goroutine of the server to end. Jobs are not finished: their output is
// not staged. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	if s.unwatch != nil {
		s.unwatch()
	}
	for id := range s.ruleTimers {
		s.stopRuleTimers(id)
	}
	for _, j := range s.jobs {
		j.stopTimers()
		if j.run != nil {
			s.kill(j.run)
		}
	}
	if s.stopComeUp != nil {
		s.stopComeUp()
	}
	s.unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Info implements Backend.
func (s *Server) Info(context.Context) ServerInfo {
	return ServerInfo{Name: s.name, Host: s.host, Version: s.version, DefaultQueue: s.defaultQueue, HistoryEnable: s.history}
}

// Queues implements Backend.
func (s *Server) Queues(context.Context) []Queue {
	s.mu.Lock()
	defer s.unlock()
	out := make([]Queue, len(s.queues))
	for i, q := range s.queues {
		out[i] = q.Queue
	}
	return out
}

// Nodes implements Backend.
func (s *Server) Nodes(context.Context) []Node {
	s.mu.Lock()
	defer s.unlock()
	out := make([]Node, len(s.nodes))
	for i, n := range s.nodes {
		nd := Node{Name: n.name, Host: n.host, State: n.stateName(), NCPUs: n.ncpus, AssignedCPUs: n.used,
			Mem: pbsunit.KBString(n.mem), Comment: n.comment, LastStateChange: n.lastStateChange, LastUsed: n.lastUsed}
		if n.memUsed > 0 {
			nd.AssignedMem = pbsunit.KBString(n.memUsed)
		} else {
			nd.AssignedMem = "0kb"
		}
		for idx, j := range n.cpus {
			if j != nil {
				nd.Jobs = append(nd.Jobs, fmt.Sprintf("%s/%d", j.ID, idx))
			}
		}
		out[i] = nd
	}
	return out
}

func (n *node) stateName() string {
	switch {
	case n.state != "":
		return n.state
	case n.excl:
		return "job-exclusive"
	case n.used >= n.ncpus && n.ncpus > 0:
		return "job-busy"
	default:
		return "free"
	}
}

// SetNodeState marks a node offline, down, or back in service (""/"free"),
// as `pbsnodes -o/-r` do. Jobs already running on it keep running.
func (s *Server) SetNodeState(name, state, comment string) error {
	switch state {
	case "", "free":
		state = ""
	case "offline", "down":
	default:
		return fmt.Errorf("node state %q: want free, offline or down", state)
	}
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	var n *node
	for _, x := range s.nodes {
		if x.name == name {
			n = x
		}
	}
	if n == nil {
		s.unlock()
		return pbsErr(ErrUnknownNode, name)
	}
	if n.state == "" && state != "" {
		s.freeCPUs -= n.ncpus - n.used
		s.totalCPUs -= n.ncpus
	} else if n.state != "" && state == "" {
		s.freeCPUs += n.ncpus - n.used
		s.totalCPUs += n.ncpus
	}
	n.state, n.comment, n.lastStateChange = state, comment, s.clock.Now()
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
	return nil
}

// after runs f on the server's clock after d, counted in the server's
// goroutines; the returned func cancels it.
func (s *Server) after(d time.Duration, f func()) (stop func()) {
	return batchserver.After(s.clock, &s.wg, d, f)
}

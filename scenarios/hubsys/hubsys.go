// Package hubsys is the JupyterHub system under test of the scenario
// runner: from a scenario's `system.hub` section it starts a real
// JupyterHub (Debian's jupyterhub 3, through package scenarios/hub) whose
// spawner starts the stand-in UI server (`jobsim uiserver`, with the
// scenario's server faults), performs the timeline's `spawn`,
// `stop_server` and `remove_server` steps through the hub's REST API, and
// records what the hub reports about every server as `hub.server` events
// (pending, ready, failed with the hub's message, stopped, refused with
// the hub's 4xx and message, removed) for the checkers of package
// scenarios/check. With system.hub.allow_named_servers a user's named
// servers are named USER/NAME (ServerRef) and tracked beside
// the default one.
//
// Spawners (system.hub.spawner):
//   - local: SimpleLocalProcessSpawner, servers run as the hub's user.
//   - local-unix: LocalProcessSpawner, the users are Unix accounts and the
//     hub runs as root (skipped otherwise).
//   - batch-pbs: a PBS batch spawner that submits the server as a job
//     through the fake host's qsub over ssh and polls it with qstat.
//   - batch-slurm: batchspawner's SlurmSpawner (the real one, no
//     stand-in) submitting the server as a Slurm job with sbatch over ssh,
//     polled with squeue, stopped with scancel (in-process hosts).
//   - ssh: an ssh spawner that copies a start script with scp and starts
//     the server through an ssh tunnel on the fake host.
//   - ssh-nersc: NERSC's sshspawner (the real one), asyncssh and kill.
//
// A scenario's system.hub.form is the site's spawn form; spawn_form steps
// fill it in as a person does (form.go).
//
// On hosts that are not the test machine (containers: runner.HarnessAddresser)
// the hub's API listens on every address and servers call it by the
// host's name for the test machine; batch-pbs and batch-slurm run the real
// batchspawner when the host carries it for the job (runner.SpawnerCarrier),
// the hub resolving the compute nodes' names to their addresses
// (runner.Addresser) through nss_wrapper; stand-ins start the host's own
// jobsim (runner.JobsimCarrier). See docs/hub-spawners.md.
//
// batch-pbs runs the real batchspawner.PBSSpawner (installed outside the
// repository by scripts/setup-hub.sh; skipped with the install command
// when it is not), its batchspawner-singleuser in the job reporting the
// port to the hub; with `PBSSpawner.exec_prefix: '""'` in the scenario's
// config the hub runs on the login node and PBS is found through
// /etc/pbs.conf. Stand-ins written in Python (jobsim_spawners.py, next to
// this file), which run the same commands with the same parsing and errors
// as the real spawners, remain for what the real ones cannot run here:
// batch-pbs on node containers without batchspawner, batch-pbs with
// stand-in server faults, and the ssh spawner. See docs/hub-spawners.md.
//
// Register it with the runner:
//
//	r, _ := runner.New(runner.WithBackend(inprocess.New()),
//		runner.WithSystem("hub", hubsys.Factory(hubsys.WithJobsim(bin))))
package hubsys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// LifecycleEvent is the hub starting and stopping. Fields: state (started,
// stopped), url, startup_seconds (on start), leaked (processes Close had
// to kill, on stop).
const LifecycleEvent events.Kind = "hub.lifecycle"

// RequestEvent is one request of a `request` step, made with a user's own
// token. Fields: as, request ("GET /hub/api/users/bob" or "GET
// /user/bob/api/status"), status, want, ok (status == want), note.
const RequestEvent events.Kind = "hub.request"

// Server states recorded in ServerState ("hub.server") events.
const (
	StatePending = "pending"
	StateReady   = "ready"
	StateFailed  = "failed"
	StateStopped = "stopped"
	// StateRefused: the hub answered the spawn request with a 4xx and
	// started nothing, e.g. 400 "User alice already has the maximum of 2
	// named servers. One must be deleted before a new server can be
	// created" (fields status and message).
	StateRefused = "refused"
	// StateRemoved: the hub accepted a remove_server request (the named
	// server is stopped and deleted; 202: deleted once its stop ends).
	StateRemoved = "removed"
)

// DefaultWatchInterval is how often the hub's user list is read.
const DefaultWatchInterval = 250 * time.Millisecond

// EnvJobsim names the jobsim binary whose `uiserver` the spawners start,
// when WithJobsim is not given.
const EnvJobsim = "JOBSIM_BIN"

// InstallHint says how to get JupyterHub.
const InstallHint = "jupyterhub is not installed: run scripts/setup-hub.sh as root (installs Debian bookworm's jupyterhub 3)"

type options struct {
	jobsim     string
	command    []string
	logger     *slog.Logger
	watchEvery time.Duration
	startLimit time.Duration
	standIns   bool
	form       []hub.FormField
	authz      *hub.SiteAuthz
	authzFile  string
}

// Option configures the system.
type Option func(*options)

// WithJobsim names the jobsim binary whose `uiserver` subcommand is the
// stand-in server (default $JOBSIM_BIN).
func WithJobsim(path string) Option { return func(o *options) { o.jobsim = path } }

// WithHubCommand sets the hub command (default: jupyterhub from PATH).
func WithHubCommand(argv ...string) Option { return func(o *options) { o.command = argv } }

// WithStandIns makes spawners batch-pbs and ssh run jobsim's stand-ins
// even where the real spawner packages are installed: for measuring them
// beside the real ones (BenchmarkSpawnerLife), not for judging a hub.
func WithStandIns() Option { return func(o *options) { o.standIns = true } }

// WithOptionsForm gives every user's spawner a spawn form (Spawner.
// options_form, checked by options_from_form): its answers become
// user_options, which batchspawner renders into the job script (queue,
// runtime, memory, nprocs).
func WithOptionsForm(fields ...hub.FormField) Option {
	return func(o *options) { o.form = append(o.form, fields...) }
}

// WithSiteAuthz runs a site-authorization service as a hub-managed
// service: jobsim's stand-in (`jobsim authz-service`) reading siteFile
// when a.Command is empty, or the site's own command. Owners default to
// the scenario's users and the token to a random one (System.AuthzToken).
func WithSiteAuthz(a hub.SiteAuthz, siteFile string) Option {
	return func(o *options) { o.authz, o.authzFile = &a, siteFile }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithWatchInterval sets how often the hub is asked for its users' servers
// (default DefaultWatchInterval).
func WithWatchInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.watchEvery = d
		}
	}
}

// Factory returns the runner.SystemFactory of the hub system, for
// runner.WithSystem("hub", hubsys.Factory()).
func Factory(opts ...Option) runner.SystemFactory {
	return func(ctx context.Context, f *scenario.File, topo runner.Topology, env runner.Env, log *events.Log) (runner.System, error) {
		s, err := New(ctx, f, topo, env, log, opts...)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// System is one scenario's JupyterHub. Create it with New; the runner
// calls Version, Start, Do, Holds, Settled, Stop and CollectArtifacts.
type System struct {
	f    *scenario.File
	spec *Config
	topo runner.Topology
	env  runner.Env
	log  *events.Log
	o    options
	dir  string // the hub's directory: config, database, log, keys
	plan *plan

	hub       *hub.Hub
	client    *hub.Client
	watchStop context.CancelFunc
	watchDone chan struct{}

	mu     sync.Mutex
	tokens map[string]string // user -> API token of their own, for request steps
	// servers is what was recorded about each server, by its scenario
	// spelling ("alice", "alice/lab"): every user's default server from
	// the start, named servers from their first step or sighting.
	servers  map[string]*serverState
	inflight int // spawn and stop steps not yet answered
	stopped  bool
	// browsers are the users' Chromiums of browser steps, by user.
	browsers map[string]*userBrowser
	// sessions are viewable conditions' logins, by service/user; lists
	// the last list recorded for each.
	sessions map[string]*hub.Session
	lists    map[string]string
	// accounts are the Unix accounts the run made (system.hub.accounts).
	accounts *hub.Accounts
}

// serverState is what the system last recorded about one server.
type serverState struct {
	ref           ServerRef
	state         string // "" before anything was seen
	since         time.Time
	spawnAt       time.Time
	spawning      bool // a spawn request is out, not answered yet
	stopRequested bool
	stopAt        time.Time
}

// New prepares the hub of scenario f over a started topology. It checks
// that the hub and the stand-in server are there (a missing jupyterhub is
// a *runner.SkipError naming scripts/setup-hub.sh) and writes nothing yet.
func New(ctx context.Context, f *scenario.File, topo runner.Topology, env runner.Env, log *events.Log, opts ...Option) (*System, error) {
	if ConfigOf(f) == nil {
		return nil, errors.New("hubsys: the scenario's system is not hub")
	}
	o := options{command: []string{"jupyterhub"}, logger: slog.Default(), watchEvery: DefaultWatchInterval, startLimit: 2 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.command) == 0 {
		return nil, errors.New("hubsys: WithHubCommand: empty command")
	}
	if _, err := exec.LookPath(o.command[0]); err != nil {
		return nil, &runner.SkipError{Reason: fmt.Sprintf("%s (%s: %v)", InstallHint, o.command[0], err)}
	}
	if o.jobsim == "" {
		o.jobsim = os.Getenv(EnvJobsim)
	}
	if o.jobsim == "" {
		return nil, fmt.Errorf("hubsys: no stand-in server: give WithJobsim or set $%s to a jobsim binary (go build -o /tmp/jobsim ./cmd/jobsim)", EnvJobsim)
	}
	abs, err := filepath.Abs(o.jobsim)
	if err != nil {
		return nil, fmt.Errorf("hubsys: jobsim binary: %w", err)
	}
	if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("hubsys: jobsim binary %s is not an executable file (%v); build it with go build -o %s ./cmd/jobsim", abs, err, abs)
	}
	o.jobsim = abs
	if env.Dir == "" {
		return nil, errors.New("hubsys: the runner gave no scratch directory (Env.Dir)")
	}
	s := &System{f: f, spec: ConfigOf(f), topo: topo, env: env, log: log, o: o,
		dir: filepath.Join(env.Dir, "hub"), servers: map[string]*serverState{}, tokens: map[string]string{},
		browsers: map[string]*userBrowser{}, sessions: map[string]*hub.Session{}, lists: map[string]string{}}
	if err := checkBrowser(f); err != nil {
		return nil, err
	}
	if err := checkAccounts(s.spec); err != nil {
		return nil, err
	}
	for _, u := range s.spec.Users {
		s.servers[u] = &serverState{ref: ServerRef{User: u}}
	}
	if s.plan, err = makePlan(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements runner.System.
func (s *System) Name() string { return "hub" }

// Version runs `jupyterhub --version`.
func (s *System) Version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.o.command[0], append(slices.Clone(s.o.command[1:]), "--version")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("hubsys: %s --version: %w: %s", s.o.command[0], err, strings.TrimSpace(string(out)))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// Start writes the hub's configuration and starts it; it returns once the
// hub's API answers, with the watcher recording server states.
func (s *System) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.hub != nil {
		s.mu.Unlock()
		return errors.New("hubsys: the hub is already started")
	}
	s.mu.Unlock()
	if err := s.plan.write(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.startLimit)
	defer cancel()
	if err := s.createAccounts(ctx); err != nil {
		return err
	}
	h, err := hub.Start(ctx, s.plan.hubOptions(s.o)...)
	if err != nil {
		if rerr := s.removeAccounts(context.WithoutCancel(ctx)); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if errors.Is(err, hub.ErrNotInstalled) {
			return &runner.SkipError{Reason: InstallHint}
		}
		return fmt.Errorf("hubsys: start the hub: %w", err)
	}
	s.mu.Lock()
	s.hub, s.client = h, h.Client()
	s.mu.Unlock()
	s.log.Record(events.Event{Kind: LifecycleEvent, Msg: fmt.Sprintf("hub started at %s in %s (%s spawner)", h.URL(), h.StartupTime().Round(time.Millisecond), s.spec.Spawner),
		Fields: map[string]any{"state": "started", "url": h.URL(), "startup_seconds": h.StartupTime().Seconds(), "spawner": s.spec.Spawner, "spawner_class": s.plan.spawner.Class, "stand_in": s.plan.standIn}})
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	s.watchStop, s.watchDone = wcancel, make(chan struct{})
	go s.watch(wctx)
	return nil
}

// Do performs a spawn, stop_server or remove_server step: the requests
// for all the servers it names (USER or USER/NAME) go out at once; the
// step returns when the hub has answered each. A spawn the hub reports
// failed, or refuses with a 4xx, is recorded, not returned as an error.
func (s *System) Do(ctx context.Context, step scenario.Action) error {
	c, err := s.started()
	if err != nil {
		return err
	}
	var refs []string
	var act func(context.Context, *hub.Client, *serverState) error
	switch a := step.(type) {
	case ServerAction:
		refs = a.Servers
		switch a.Verb {
		case "spawn":
			act = s.spawn
		case "stop_server":
			act = s.stopServer
		case "remove_server":
			act = s.removeServer
		default:
			return fmt.Errorf("hubsys: the hub has no action %q", a.Verb)
		}
	case Requests:
		return s.requests(ctx, c, a)
	case Stop:
		return s.Stop(ctx)
	case ReloadService:
		return s.reloadService(ctx, c, a)
	case BrowserStep:
		return s.browse(ctx, a)
	case Login:
		return s.login(ctx, c, a)
	case SpawnForm:
		return s.spawnForm(ctx, c, a)
	default:
		return fmt.Errorf("hubsys: the hub has no action %q (it knows spawn, stop_server, remove_server, request and stop)", step)
	}
	states := make([]*serverState, len(refs))
	for i, r := range refs {
		st, err := s.server(r)
		if err != nil {
			return err
		}
		states[i] = st
	}
	errs := make([]error, len(states))
	var wg sync.WaitGroup
	for i, st := range states {
		wg.Go(func() { errs[i] = act(ctx, c, st) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// server returns the state of a server the scenario names ("alice",
// "alice/lab"), tracking a named server from its first mention.
func (s *System) server(ref string) (*serverState, error) {
	r, err := ParseServerRef(ref)
	if err != nil {
		return nil, fmt.Errorf("hubsys: %w", err)
	}
	if !slices.Contains(s.spec.Users, r.User) {
		return nil, fmt.Errorf("hubsys: %s is not a hub user of this scenario (users: %v)", r.User, s.spec.Users)
	}
	if r.Named() && !s.spec.AllowNamedServers {
		return nil, fmt.Errorf("hubsys: %s is a named server but the hub does not allow named servers", ref)
	}
	return s.track(r), nil
}

// track returns the state of server r, adding it if new.
func (s *System) track(r ServerRef) *serverState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.servers[r.String()]
	if !ok {
		st = &serverState{ref: r}
		s.servers[r.String()] = st
	}
	return st
}

func (s *System) started() (*hub.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil, errors.New("hubsys: the hub is not started (a `do: start` step comes first)")
	}
	if s.stopped {
		return nil, errors.New("hubsys: the hub has been stopped")
	}
	return s.client, nil
}

// spawn asks the hub to start a server and records what it answers.
func (s *System) spawn(ctx context.Context, c *hub.Client, st *serverState) error {
	r := st.ref
	defer s.beginSpawn(st)()
	s.transition(st, StatePending, "spawn requested", nil)
	res, err := c.StartNamedServer(ctx, r.User, r.Name, nil)
	var failed *hub.SpawnFailedError
	var refused *hub.APIError
	switch {
	case errors.As(err, &failed):
		s.transition(st, StateFailed, failed.Message, map[string]any{"phase": "spawn"})
		return nil
	case errors.As(err, &refused) && refused.Status/100 == 4:
		// The hub said no and started nothing (a named-server limit,
		// named servers not enabled, a server pending stop): that is the
		// system's behaviour, for expectations to judge.
		s.transition(st, StateRefused, refused.Message, map[string]any{"phase": "request", "status": refused.Status})
		return nil
	case err != nil:
		s.transition(st, StateFailed, "spawn request failed: "+err.Error(), map[string]any{"phase": "request"})
		return fmt.Errorf("spawn %s: %w", r, err)
	case res == hub.AlreadyRunning:
		return fmt.Errorf("spawn %s: the hub says the server is already running", r)
	case res == hub.Started:
		s.transition(st, StateReady, "ready (201 to the spawn request)", nil)
	}
	return nil
}

// beginSpawn marks st as being spawned by a step until the returned func
// is called: the watcher does not take a server the hub has not
// registered yet for a failed spawn, and the hub is not stopped under it.
func (s *System) beginSpawn(st *serverState) (end func()) {
	s.mu.Lock()
	st.stopRequested = false
	st.spawnAt = time.Now()
	st.spawning = true
	s.inflight++
	s.mu.Unlock()
	return func() { s.mu.Lock(); st.spawning = false; s.inflight--; s.mu.Unlock() }
}

// stopServer asks the hub to stop a server.
func (s *System) stopServer(ctx context.Context, c *hub.Client, st *serverState) error {
	r := st.ref
	s.requestStop(st)
	defer func() { s.mu.Lock(); s.inflight--; s.mu.Unlock() }()
	res, err := c.StopNamedServer(ctx, r.User, r.Name)
	if err != nil {
		return fmt.Errorf("stop the %s: %w", label(r), err)
	}
	if res == hub.Stopped {
		s.transition(st, StateStopped, "stopped (204 to the stop request)", nil)
	}
	return nil
}

// removeServer asks the hub to stop a named server and delete it.
func (s *System) removeServer(ctx context.Context, c *hub.Client, st *serverState) error {
	r := st.ref
	s.requestStop(st)
	defer func() { s.mu.Lock(); s.inflight--; s.mu.Unlock() }()
	res, err := c.RemoveNamedServer(ctx, r.User, r.Name)
	if err != nil {
		return fmt.Errorf("remove the %s: %w", label(r), err)
	}
	if res == hub.Stopped {
		if prev := s.state(st); prev == StatePending || prev == StateReady {
			s.transition(st, StateStopped, "stopped (204 to the remove request)", nil)
		}
		s.transition(st, StateRemoved, "removed (204 to the remove request)", nil)
		return nil
	}
	s.transition(st, StateRemoved, "the hub removes the server once its stop ends (202 to the remove request)", nil)
	return nil
}

// requestStop notes a stop or remove request going out.
func (s *System) requestStop(st *serverState) {
	s.mu.Lock()
	st.stopRequested = true
	st.stopAt = time.Now()
	s.inflight++
	s.mu.Unlock()
}

// label names a server in messages, as the hub client does.
func label(r ServerRef) string { return hub.ServerLabel(r.User, r.Name) }

// transition records a hub.server event when a server's state changes.
// Fields: user, server (the name, "" for the default server), state,
// message, and what extra adds.
func (s *System) transition(st *serverState, state, msg string, extra map[string]any) {
	s.mu.Lock()
	if st.state == state {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	fields := map[string]any{"user": st.ref.User, "server": st.ref.Name, "state": state, "message": msg}
	if st.state != "" {
		fields["from"] = st.state
		fields["after_seconds"] = now.Sub(st.since).Seconds()
	}
	if !st.spawnAt.IsZero() && (state == StateReady || state == StateFailed) {
		fields["since_spawn_seconds"] = now.Sub(st.spawnAt).Seconds()
	}
	if st.stopRequested && !st.stopAt.IsZero() && state == StateStopped {
		fields["since_stop_seconds"] = now.Sub(st.stopAt).Seconds()
	}
	for k, v := range extra {
		fields[k] = v
	}
	st.state, st.since = state, now
	s.mu.Unlock()
	text := fmt.Sprintf("%s %s", label(st.ref), state)
	if msg != "" {
		text += ": " + msg
	}
	s.log.Record(events.Event{Kind: ServerState, Msg: text, Fields: fields})
}

// state returns a server's last recorded state.
func (s *System) state(st *serverState) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.state
}

// Holds implements runner.System for server conditions: {server: alice,
// ready: true|false} and {server: alice, failed: true} (alice/lab for a
// named server), on the states recorded so far.
func (s *System) Holds(ctx context.Context, p scenario.Predicate) (bool, error) {
	if v, ok := p.(ViewableCondition); ok {
		c, err := s.started()
		if err != nil {
			return false, err
		}
		return s.holdsViewable(ctx, c, v)
	}
	c, ok := p.(ServerCondition)
	if !ok {
		return false, fmt.Errorf("hubsys: the hub answers server and viewable conditions only, not %s", p)
	}
	srv, err := s.server(c.Server)
	if err != nil {
		return false, err
	}
	st := s.state(srv)
	switch {
	case c.Ready != nil:
		return (st == StateReady) == *c.Ready, nil
	case c.Failed != nil:
		return (st == StateFailed) == *c.Failed, nil
	}
	return false, fmt.Errorf("hubsys: server condition on %s says neither ready nor failed", c.Server)
}

// StateKinds implements runner.StateKinds: server states go into the transcript.
func (s *System) StateKinds() []events.Kind {
	return []events.Kind{ServerState, ServiceEvent, BrowserEvent, ViewableEvent, LoginEvent}
}

// Settled reports that nothing will change on its own: no spawn or stop
// is being answered, and no server is pending or running (a running
// server can still fail).
func (s *System) Settled(context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hub == nil || s.stopped {
		return true, nil
	}
	if s.inflight > 0 {
		return false, nil
	}
	for _, st := range s.servers {
		if st.state == StatePending || st.state == StateReady {
			return false, nil
		}
	}
	return true, nil
}

// Stop stops the hub (which stops every server through its spawner) and
// makes sure nothing it started is left running: processes the hub left
// behind are killed and reported as an error and in the lifecycle event.
func (s *System) Stop(ctx context.Context) error {
	s.mu.Lock()
	h := s.hub
	if h == nil || s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	// One last look, so that states reached just before the stop are in
	// the history.
	s.poll(ctx)
	if s.watchStop != nil {
		s.watchStop()
		<-s.watchDone
	}
	s.closeBrowsers()
	began := time.Now()
	err := h.Close()
	var leaked []string
	for _, p := range h.Leaked() {
		leaked = append(leaked, p.String())
	}
	s.log.Record(events.Event{Kind: LifecycleEvent, Msg: fmt.Sprintf("hub stopped in %s", time.Since(began).Round(time.Millisecond)),
		Fields: map[string]any{"state": "stopped", "stop_seconds": time.Since(began).Seconds(), "leaked": leaked}})
	// The hub stopped the servers it had: every server not already
	// failed or stopped is stopped now.
	for _, st := range s.tracked() {
		if state := s.state(st); state == StatePending || state == StateReady {
			s.transition(st, StateStopped, "the hub stopped", nil)
		}
	}
	if rerr := s.removeAccounts(context.WithoutCancel(ctx)); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("hubsys: stop the hub: %w", err)
	}
	if len(leaked) > 0 {
		return fmt.Errorf("hubsys: the hub left processes running, killed: %s", strings.Join(leaked, "; "))
	}
	return nil
}

// tracked lists the servers recorded so far, in a stable order.
func (s *System) tracked() []*serverState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*serverState, 0, len(s.servers))
	for _, k := range slices.Sorted(maps.Keys(s.servers)) {
		out = append(out, s.servers[k])
	}
	return out
}

// Hub is the started hub (nil before Start), for tests and tools that want
// to talk to it beyond the scenario steps.
func (s *System) Hub() *hub.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hub
}

// AuthzToken is the API token of the site-authorization service
// (WithSiteAuthz), which also authorizes its reload; "" without one.
func (s *System) AuthzToken() string {
	if s.plan == nil || s.plan.authz == nil {
		return ""
	}
	return s.plan.authz.Token
}

// Dir is the hub's directory (configuration, database, log).
func (s *System) Dir() string { return s.dir }

// Package cylcsys is the Cylc system under test of the scenario runner: it
// drives the real Cylc 8 command line (through package scenarios/cylc)
// against the fake job hosts a backend started, and records what the
// scheduler does into the run's history.
//
// From a scenario's `system.cylc` section and the started topology it
// writes an isolated Cylc environment (global.cylc with one platform on the
// scenario's host, reached through an ssh alias named after the host, and
// the ssh config with the host's address and key), installs and plays the
// workflow, performs the timeline's actions (reload, trigger, poll, kill,
// hold, release, pause, resume, stop), and watches the workflow database:
// every task state change becomes a `cylc.task` event, every entry of
// the scheduler log a `cylc.log` event, and the scheduler's start
// and exit `cylc.scheduler` events. The checkers of package scenarios/check
// judge from those.
//
// Register it with the runner:
//
//	r, _ := runner.New(runner.WithBackend(inprocess.New()),
//		runner.WithSystem("cylc", cylcsys.Factory()))
package cylcsys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// Event kinds this system records besides TaskState ("cylc.task").
const (
	// SchedulerEvent is the scheduler starting and exiting. Fields: state
	// (started, exited), pid; on exit also log_tail.
	SchedulerEvent events.Kind = "cylc.scheduler"
	// LogEvent is one entry of the scheduler log (INFO and above), so that
	// conditions and expectations can name what the scheduler said
	// ("Reload completed", "Could not connect to fakehpc"). Fields: level,
	// text (the whole entry, continuation lines included).
	LogEvent events.Kind = "cylc.log"
	// CommandEvent is a command sent to the scheduler, by a timeline step
	// or by the harness itself (by: timeline, harness): state sent when
	// the command-line client starts, actioned when the scheduler log
	// says it actioned it (entry: that log entry), returned when the
	// client exits (exit: ok or its error, duration_ms). The timeline
	// goes on once the command is actioned: a client that returns late
	// does not hold it up.
	CommandEvent events.Kind = "cylc.command"
)

// Defaults of the options.
const (
	// DefaultWatchInterval is how often the workflow database is read.
	DefaultWatchInterval = 250 * time.Millisecond
	// DefaultSettleGrace is how long after an action the system is not
	// reported settled, so that a trigger the scheduler has not acted on
	// yet is not mistaken for the end of the story.
	DefaultSettleGrace = 4 * time.Second
)

type options struct {
	executable string
	install    *cylc.Install
	cylc       *cylc.Cylc
	logger     *slog.Logger
	watchEvery time.Duration
	grace      time.Duration
}

// Option configures the system.
type Option func(*options)

// WithInstall drives the Cylc under test that LocateInstall found (the one
// the backends put on the job hosts).
func WithInstall(in *cylc.Install) Option { return func(o *options) { o.install = in } }

// WithExecutable names the cylc executable to drive (default: the
// install's Executable (WithInstall), else $JOBSIM_CYLC, else the wrapper of
// scripts/setup-cylc.sh).
func WithExecutable(path string) Option { return func(o *options) { o.executable = path } }

// WithCylc uses an already located cylc.
func WithCylc(c *cylc.Cylc) Option { return func(o *options) { o.cylc = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithWatchInterval sets how often the workflow database is read
// (default DefaultWatchInterval).
func WithWatchInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.watchEvery = d
		}
	}
}

// WithSettleGrace sets how long after an action Settled stays false
// (default DefaultSettleGrace).
func WithSettleGrace(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.grace = d
		}
	}
}

// Factory returns the runner.SystemFactory of the Cylc system, for
// runner.WithSystem("cylc", cylcsys.Factory()).
func Factory(opts ...Option) runner.SystemFactory {
	return func(ctx context.Context, f *scenario.File, topo runner.Topology, env runner.Env, log *events.Log) (runner.System, error) {
		s, err := New(ctx, f, topo, env, log, opts...)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// System is one scenario's Cylc: an isolated environment, one workflow, and
// the watcher that records its states. Create it with New; the runner calls
// Start, Do, Holds, Settled, Stop and CollectArtifacts.
type System struct {
	f      *scenario.File
	plan   *plan
	env    *cylc.Env
	log    *events.Log
	logger *slog.Logger
	opts   options

	mu         sync.Mutex
	wf         *cylc.Workflow
	watch      *watcher
	stopWatch  context.CancelFunc
	watchDone  chan struct{}
	lastAction time.Time
	version    string
	stopped    bool
	clients    sync.WaitGroup // command-line clients still running in the background
}

var _ runner.System = (*System)(nil)

// New prepares the Cylc system of scenario f over a started topology: it
// locates cylc (a missing one is a *runner.SkipError saying how to get it)
// and writes the isolated environment below env.Dir. Nothing runs until
// Start.
func New(ctx context.Context, f *scenario.File, topo runner.Topology, env runner.Env, log *events.Log, opts ...Option) (*System, error) {
	o := options{logger: slog.Default(), watchEvery: DefaultWatchInterval, grace: DefaultSettleGrace}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		return nil, errors.New("cylcsys: no event log")
	}
	c, err := locate(ctx, o)
	if err != nil {
		return nil, err
	}
	p, err := makePlan(f, topo, env)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(env.Dir, "cylc-"+f.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cylc system: %w", err)
	}
	e, err := c.NewEnv(ctx, dir, cylc.WithSSHConfig(p.ssh), cylc.WithGlobalConfig(p.global))
	if err != nil {
		return nil, fmt.Errorf("cylc system: %w", err)
	}
	return &System{f: f, plan: p, env: e, log: log, logger: o.logger, opts: o}, nil
}

func locate(ctx context.Context, o options) (*cylc.Cylc, error) {
	if o.cylc != nil {
		return o.cylc, nil
	}
	lopts := []cylc.Option{cylc.WithLogger(o.logger)}
	switch {
	case o.executable != "":
		lopts = append(lopts, cylc.WithExecutable(o.executable))
	case o.install != nil && o.install.Executable != "":
		lopts = append(lopts, cylc.WithExecutable(o.install.Executable))
	}
	c, err := cylc.Locate(ctx, lopts...)
	if errors.Is(err, cylc.ErrNotFound) {
		return nil, &runner.SkipError{Reason: "Cylc is not installed: " + err.Error()}
	}
	if err != nil {
		return nil, fmt.Errorf("cylc system: %w", err)
	}
	return c, nil
}

// Name implements runner.System.
func (s *System) Name() string { return "cylc" }

// Env is the isolated Cylc environment (for tests and tools).
func (s *System) Env() *cylc.Env { return s.env }

// Workflow is the installed workflow, nil before Start.
func (s *System) Workflow() *cylc.Workflow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wf
}

// Version implements runner.System: `cylc version` of the Cylc under test.
func (s *System) Version(ctx context.Context) (string, error) {
	s.mu.Lock()
	v := s.version
	s.mu.Unlock()
	if v != "" {
		return v, nil
	}
	v, err := s.env.Cylc().Version(ctx)
	if err != nil {
		return "", fmt.Errorf("cylc version: %w; %s", err, cylc.SkipReason)
	}
	s.mu.Lock()
	s.version = v
	s.mu.Unlock()
	return v, nil
}

// Start implements runner.System: `cylc install` of the scenario's
// workflow, `cylc play` (detached), and the watcher; a second start (after
// a stop step) plays the installed run again, which Cylc restarts.
func (s *System) Start(ctx context.Context) error {
	s.mu.Lock()
	wf, w := s.wf, s.watch
	s.mu.Unlock()
	if wf != nil {
		return s.restart(ctx, wf, w)
	}
	wf, err := s.env.Install(ctx, ConfigOf(s.f).Workflow, cylc.WithWorkflowName(s.f.Name))
	if err != nil {
		return err
	}
	w = newWatcher(wf, s.log, s.plan.platform)
	s.mu.Lock()
	s.wf, s.watch, s.lastAction = wf, w, time.Now()
	s.mu.Unlock()
	if err := wf.Play(ctx); err != nil {
		return err
	}
	w.schedulerStarted(wf.SchedulerPID())
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	s.mu.Lock()
	s.stopWatch, s.watchDone = cancel, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		w.run(wctx, s.opts.watchEvery)
	}()
	return nil
}

// restart starts the stopped workflow again from its run (`cylc play` on
// an existing run: Cylc restarts it from its database, jobs still running
// on the hosts included); the watcher goes on.
func (s *System) restart(ctx context.Context, wf *cylc.Workflow, w *watcher) error {
	if wf.Running() {
		return errors.New("cylc: the workflow is still running: stop it before starting it again")
	}
	s.touch()
	defer s.touch()
	s.recordCommand("play (restart)", "", "sent", "timeline", nil)
	start := time.Now()
	err := wf.Play(ctx)
	s.recordCommand("play (restart)", "", "returned", "timeline", map[string]any{"exit": exitText(err), "duration_ms": msSince(start)})
	if err != nil {
		return err
	}
	w.schedulerStarted(wf.SchedulerPID())
	return nil
}

// started returns the workflow and watcher, or an error before Start.
func (s *System) started() (*cylc.Workflow, *watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wf == nil {
		return nil, nil, errors.New("cylc: the workflow has not been started (the timeline needs `do: start` first)")
	}
	return s.wf, s.watch, nil
}

// Do implements runner.System: one action step. A task or workflow
// command's client runs in the background: Do returns once the scheduler
// has actioned the command (its log says "Command ... <command>") and the
// database has been read after that, so the next step and the settling
// see its effect, without waiting for a client that returns late; or when
// the client failed first, with its error; or, when the scheduler does not
// say so within actionWait, without waiting longer. The history has the
// command's sending, actioning and the client's return (CommandEvent). A
// stop waits for the scheduler to exit.
func (s *System) Do(ctx context.Context, step scenario.Action) error {
	wf, w, err := s.started()
	if err != nil {
		return err
	}
	s.touch()
	defer s.touch()
	name := schedulerCommand(step)
	if name == "" {
		s.recordCommand(step.String(), "", "sent", "timeline", nil)
		start := time.Now()
		err := s.act(ctx, wf, step)
		s.recordCommand(step.String(), "", "returned", "timeline", map[string]any{"exit": exitText(err), "duration_ms": msSince(start)})
		w.poll(context.WithoutCancel(ctx))
		return err
	}
	mark := w.logMark()
	s.recordCommand(step.String(), name, "sent", "timeline", nil)
	returned := make(chan error, 1)
	s.clients.Add(1)
	go func() {
		defer s.clients.Done()
		start := time.Now()
		err := s.act(ctx, wf, step)
		s.touch()
		s.recordCommand(step.String(), name, "returned", "timeline", map[string]any{"exit": exitText(err), "duration_ms": msSince(start)})
		returned <- err
	}()
	err = s.awaitActioned(ctx, w, mark, step.String(), name, returned)
	w.poll(context.WithoutCancel(ctx))
	return err
}

// touch notes an action, for Settled's grace period.
func (s *System) touch() {
	s.mu.Lock()
	s.lastAction = time.Now()
	s.mu.Unlock()
}

// recordCommand records a CommandEvent.
func (s *System) recordCommand(what, name, state, by string, extra map[string]any) {
	f := map[string]any{"command": what, "state": state, "by": by, "progress": true} // progress: the transcript shows it
	if name != "" {
		f["scheduler_command"] = name
	}
	msg := what + ": " + state
	if by == "harness" {
		msg = "harness: " + msg
	}
	for k, v := range extra {
		f[k] = v
		if k == "exit" && v != "ok" {
			msg += " (" + fmt.Sprint(v) + ")"
		}
	}
	s.log.Record(events.Event{Kind: CommandEvent, Msg: msg, Fields: f})
}

func exitText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// actionWait bounds how long Do waits for the scheduler to action a command.
const actionWait = 30 * time.Second

// schedulerCommand names the scheduler command a step queues, as its log
// names it ("" for stop, which waits for the scheduler to exit anyway).
func schedulerCommand(step scenario.Action) string {
	switch a := step.(type) {
	case WorkflowCommand:
		switch a {
		case "reload":
			return "reload_workflow"
		case "pause", "resume":
			return string(a)
		}
	case TaskCommand:
		switch a.Command {
		case "trigger":
			return "force_trigger_tasks"
		case "poll":
			return "poll_tasks"
		case "kill":
			return "kill_tasks"
		case "hold", "release":
			return a.Command
		}
	}
	return ""
}

// act runs the Cylc command-line client of step.
func (s *System) act(ctx context.Context, wf *cylc.Workflow, step scenario.Action) error {
	switch a := step.(type) {
	case WorkflowCommand:
		switch a {
		case "stop":
			return wf.Stop(ctx, cylc.StopClean)
		case "stop-now":
			return wf.Stop(ctx, cylc.StopNow)
		case "kill-scheduler":
			return s.killScheduler(ctx, wf)
		case "reload":
			return wf.Reload(ctx)
		case "pause":
			return wf.Pause(ctx)
		case "resume":
			return wf.Resume(ctx)
		}
	case TaskCommand:
		ids := taskIDs(a.Tasks)
		switch a.Command {
		case "trigger":
			return wf.Trigger(ctx, ids...)
		case "poll":
			return wf.Poll(ctx, ids...)
		case "kill":
			return wf.Kill(ctx, ids...)
		case "hold":
			return wf.Hold(ctx, ids...)
		case "release":
			return wf.Release(ctx, ids...)
		}
	}
	return fmt.Errorf("cylc: %s is not a Cylc action", step)
}

// awaitActioned polls until a scheduler log entry after mark says the
// command was actioned: "Command succeeded: force_trigger_tasks(...)" (8.0),
// `Command "force_trigger_tasks" actioned` (8.2+), or the command failed;
// it records that entry. Then it reads the database once more after the
// scheduler's end-of-cycle write. A client that fails before the scheduler
// actioned the command ends the wait with its error; one that succeeds
// leaves the wait to the log. It gives up quietly after actionWait or when
// the scheduler exits.
func (s *System) awaitActioned(ctx context.Context, w *watcher, mark int, what, cmd string, returned <-chan error) error {
	re := regexp.MustCompile(`Command\b.*\b` + regexp.QuoteMeta(cmd) + `\b`)
	ctx, cancel := context.WithTimeout(ctx, actionWait)
	defer cancel()
	t := time.NewTicker(s.opts.watchEvery)
	defer t.Stop()
	for {
		_, running := w.poll(ctx)
		if entry, ok := w.logFind(mark, re); ok {
			s.recordCommand(what, cmd, "actioned", "timeline", map[string]any{"entry": entry})
			break
		}
		if !running {
			return nil
		}
		select {
		case err := <-returned:
			if err != nil {
				return err
			}
			returned = nil // the client is done; the log decides
		case <-ctx.Done():
			s.logger.Warn("cylc: the scheduler did not say it actioned the command", "command", cmd, "waited", actionWait)
			return nil
		case <-t.C:
		}
	}
	// The database is written at the end of the main-loop cycle that
	// actioned the command; a cycle takes about a second.
	select {
	case <-ctx.Done():
	case <-time.After(1200 * time.Millisecond):
	}
	return nil
}

// taskIDs turns the scenario's task selectors into Cylc task ids: "1/foo"
// stays, a bare "foo" selects the task in every cycle ("*/foo"). Cylc
// matches globs against the task pool only: to hold a task that has not
// spawned yet, name it in full ("1/foo").
func taskIDs(sel []string) []string {
	out := make([]string, len(sel))
	for i, t := range sel {
		if !strings.Contains(t, "/") {
			t = "*/" + t
		}
		out[i] = t
	}
	return out
}

// Holds implements runner.System: whether a task is in a state now, read
// from the workflow database (and recorded, so what a step saw is in the
// history too).
func (s *System) Holds(ctx context.Context, p scenario.Predicate) (bool, error) {
	c, ok := p.(TaskCondition)
	if !ok {
		return false, fmt.Errorf("cylc: cannot judge %s (only task conditions)", p)
	}
	s.mu.Lock()
	w := s.watch
	s.mu.Unlock()
	if w == nil {
		return false, nil // not started: no task is in any state yet
	}
	states, _ := w.poll(ctx)
	for id, st := range states {
		if taskMatches(c.Task, id) && st.state == c.State {
			return true, nil
		}
	}
	return false, nil
}

// StateKinds implements runner.StateKinds: task states go into the transcript.
func (s *System) StateKinds() []events.Kind { return []events.Kind{TaskState} }

// Settled implements runner.System: the scheduler has exited, or every
// task is in a final state (succeeded, failed, submit-failed, expired),
// nothing changed for a moment, and no action was sent within the grace
// period.
func (s *System) Settled(ctx context.Context) (bool, error) {
	s.mu.Lock()
	w, last, grace := s.watch, s.lastAction, s.opts.grace
	s.mu.Unlock()
	if w == nil {
		return false, nil
	}
	states, running := w.poll(ctx)
	if !running && w.everRan() {
		return true, nil
	}
	if len(states) == 0 || time.Since(last) < grace || time.Since(w.lastChange()) < time.Second {
		return false, nil
	}
	for _, st := range states {
		if !finalStates[st.state] {
			return false, nil
		}
	}
	return true, nil
}

var finalStates = map[string]bool{
	cylc.StatusSucceeded: true, cylc.StatusFailed: true, cylc.StatusSubmitFailed: true, cylc.StatusExpired: true,
}

// taskMatches reports whether task id "1/foo" is selected by "1/foo" or "foo".
func taskMatches(sel, id string) bool {
	if strings.Contains(sel, "/") {
		return sel == id
	}
	_, name, _ := strings.Cut(id, "/")
	return name == sel
}

// Stop implements runner.System: it records the last states, stops the
// scheduler and kills every process the environment started (ssh
// clients, local jobs, command-line clients still running). Processes on
// the job host are the host's to end when the topology closes. Safe to
// call more than once, and before Start. What it does to the scheduler is
// in the history (stopScheduler).
func (s *System) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	wf, w, cancel, done := s.wf, s.watch, s.stopWatch, s.watchDone
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if w != nil {
		w.poll(ctx) // the last state before the scheduler goes
	}
	if wf != nil {
		s.stopScheduler(ctx, wf, w)
	}
	err := s.env.Close(ctx)
	s.waitClients(ctx)
	if w != nil {
		w.poll(ctx)
		w.finish()
	}
	if err != nil {
		return fmt.Errorf("cylc: stop: %w", err)
	}
	return nil
}

// Escalation bounds of stopScheduler.
const (
	stopNowWait = 15 * time.Second // for `cylc stop --now --now` to end the scheduler
	termWait    = 10 * time.Second // after SIGTERM, before SIGKILL
	killWait    = 5 * time.Second  // after SIGKILL
)

// stopScheduler ends a scheduler still running at the end of the run and
// records each thing it does, so that the history tells a scheduler that
// exited by itself from one the harness stopped or killed: the stop
// request (CommandEvent by harness), then, while the scheduler lives on,
// SIGTERM and SIGKILL (SchedulerEvent state signalled, with signal, pid
// and why).
func (s *System) stopScheduler(ctx context.Context, wf *cylc.Workflow, w *watcher) {
	if !wf.Running() {
		return
	}
	const what = "stop --now --now"
	s.recordCommand(what, "", "sent", "harness", map[string]any{"why": "the run is over and the scheduler is still running"})
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, stopNowWait)
	err := wf.Stop(sctx, cylc.StopNowNow)
	cancel()
	s.recordCommand(what, "", "returned", "harness", map[string]any{"exit": exitText(err), "duration_ms": msSince(start)})
	for _, sig := range []struct {
		sig  syscall.Signal
		name string
		wait time.Duration
	}{{syscall.SIGTERM, "SIGTERM", termWait}, {syscall.SIGKILL, "SIGKILL", killWait}} {
		if !wf.Running() {
			break
		}
		pid := wf.SchedulerPID()
		why := fmt.Sprintf("the scheduler still ran %s after %q", time.Since(start).Round(100*time.Millisecond), what)
		s.logger.Warn("cylc: signalling the scheduler", "pid", pid, "signal", sig.name, "why", why)
		s.log.Record(events.Event{Kind: SchedulerEvent, Msg: fmt.Sprintf("harness sent %s to the scheduler (pid %d): %s", sig.name, pid, why),
			Fields: map[string]any{"state": "signalled", "signal": sig.name, "pid": pid, "workflow": wf.ID(), "why": why}})
		if err := syscall.Kill(pid, sig.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			s.logger.Warn("cylc: signal", "pid", pid, "err", err)
		}
		wctx, cancel := context.WithTimeout(ctx, sig.wait)
		_ = wf.WaitStopped(wctx)
		cancel()
	}
	if w != nil {
		w.poll(ctx)
	}
}

// killScheduler is the kill-scheduler step: SIGKILL to the scheduler, as
// a crash or an out-of-memory kill would end it (its jobs run on), and
// wait until it is gone.
func (s *System) killScheduler(ctx context.Context, wf *cylc.Workflow) error {
	pid := wf.SchedulerPID()
	if !wf.Running() {
		return fmt.Errorf("cylc: kill-scheduler: the scheduler (pid %d) is not running", pid)
	}
	s.log.Record(events.Event{Kind: SchedulerEvent, Msg: fmt.Sprintf("timeline sent SIGKILL to the scheduler (pid %d)", pid),
		Fields: map[string]any{"state": "signalled", "signal": "SIGKILL", "pid": pid, "workflow": wf.ID(), "why": "a kill-scheduler step"}})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cylc: kill-scheduler: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, killWait)
	defer cancel()
	if err := wf.WaitStopped(wctx); err != nil {
		return err
	}
	// A killed daemon is a zombie until init reaps it, and while it is one
	// the next `cylc play` cannot tell whether the workflow still runs
	// ("Cannot determine whether workflow is running": psutil cannot read
	// a zombie's command line). A host's init reaps at once; wait for that
	// here too, within the bound, so that a restart step meets what it
	// would meet on a host.
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		select {
		case <-wctx.Done():
			s.logger.Warn("cylc: the killed scheduler is not reaped yet", "pid", pid)
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitClients waits for the command-line clients still running in the
// background (the environment's close has killed them), within ctx.
func (s *System) waitClients(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.clients.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.logger.Warn("cylc: command-line clients still running after the stop")
	}
}

// LocateInstall locates the Cylc under test (WithExecutable, else
// $JOBSIM_CYLC, else the wrapper of scripts/setup-cylc.sh) and describes it
// for backends (inprocess.WithCylc, containers.WithCylc) and the system (WithInstall): the executable, plus the overlay
// directory when it is the self-contained layout setup-cylc.sh builds
// (bin/cylc, lib/, and its .complete stamp), which job hosts copy so that
// the library lies on the host. A missing cylc is a *runner.SkipError.
func LocateInstall(ctx context.Context, opts ...Option) (*cylc.Install, error) {
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	c, err := locate(ctx, o)
	if err != nil {
		return nil, err
	}
	in := &cylc.Install{Executable: c.Path()}
	bin := c.BinDir()
	if filepath.Base(bin) == "bin" {
		dir := filepath.Dir(bin)
		_, errLib := os.Stat(filepath.Join(dir, "lib"))
		_, errStamp := os.Stat(filepath.Join(dir, ".complete"))
		if errLib == nil && errStamp == nil {
			in.Overlay = dir
		}
	}
	return in, nil
}

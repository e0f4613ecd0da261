// Package runner runs scenario files: it brings up the topology on a
// backend, starts the system under test, plays the timeline (faults, actions,
// waits), waits until the expectations can be decided, and judges the run
// over its recorded history. Each run leaves an artifacts folder with the
// history, logs, generated configs and a one-page incident transcript.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// Verdict is the outcome of one scenario run.
type Verdict string

// Verdicts.
const (
	Pass  Verdict = "pass"
	Fail  Verdict = "fail"
	Error Verdict = "error" // the run could not be carried out (setup failed, a wait timed out)
	Skip  Verdict = "skip"  // a needed part is absent; Reason says which and how to get it
)

// Report is the result of one scenario run.
type Report struct {
	Name     string         `json:"name"`
	File     string         `json:"file"`
	Labels   []string       `json:"labels"`
	Mode     scenario.Mode  `json:"mode"`
	Version  string         `json:"version,omitempty"` // of the system under test
	JudgedAs scenario.Mode  `json:"judged_as"`         // reproducer only where the bug applies to Version
	Verdict  Verdict        `json:"verdict"`
	Reason   string         `json:"reason,omitempty"` // why it failed, errored or skipped
	Results  []check.Result `json:"results"`
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration"`
	Dir      string         `json:"artifacts,omitempty"`

	judgedWhole bool // judged with the caller's context still live (see interrupt)
}

// Runner runs scenarios. Configure it with options; it is safe to call Run
// from several goroutines.
type Runner struct {
	backend   Backend
	systems   map[string]SystemFactory
	hosts     map[string]HostPlugin
	artifacts string
	parallel  int
	alone     func(*scenario.File) bool
	progress  io.Writer
	logger    *slog.Logger
	user      string
	notice    time.Duration // how often a blocked wait says what it waits for
}

// Option configures a Runner.
type Option func(*Runner)

// WithBackend sets where hosts run (required).
func WithBackend(b Backend) Option { return func(r *Runner) { r.backend = b } }

// WithSystem registers the factory for a system under test ("cylc", "hub").
func WithSystem(name string, f SystemFactory) Option {
	return func(r *Runner) { r.systems[name] = f }
}

// WithHostPlugin adds a plug-in that acts on the hosts (a batch system):
// steps and conditions whose Owner is its name go to it.
func WithHostPlugin(p HostPlugin) Option {
	return func(r *Runner) { r.hosts[p.Name()] = p }
}

// WithArtifacts sets the folder that receives one subfolder per scenario
// (default out/scenarios).
func WithArtifacts(dir string) Option { return func(r *Runner) { r.artifacts = dir } }

// WithParallel runs up to n scenarios at once (default 1). Scenarios share
// nothing, so any n is safe; the machine's cores are the limit.
func WithParallel(n int) Option { return func(r *Runner) { r.parallel = max(1, n) } }

// WithAlone makes the scenarios pick selects run with no other scenario
// at once, after the others (as Ginkgo's Serial specs): timing-sensitive
// ones, whose verdict depends on the system under test answering within
// its own intervals, which a machine busy with other scenarios delays.
func WithAlone(pick func(*scenario.File) bool) Option { return func(r *Runner) { r.alone = pick } }

// WithProgress writes one line per step and per verdict to w as the run goes.
func WithProgress(w io.Writer) Option { return func(r *Runner) { r.progress = w } }

// WithWaitNotice sets how often a wait that blocks records what it is
// waiting for (a check.Waiting event; default DefaultWaitNotice).
func WithWaitNotice(d time.Duration) Option { return func(r *Runner) { r.notice = max(d, pollEvery) } }

// DefaultWaitNotice is how often a blocked wait says what it waits for.
const DefaultWaitNotice = 10 * time.Second

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.logger = l } }

// New returns a Runner.
func New(opts ...Option) (*Runner, error) {
	r := &Runner{systems: map[string]SystemFactory{}, hosts: map[string]HostPlugin{}, artifacts: filepath.Join("out", "scenarios"), parallel: 1, progress: io.Discard, logger: slog.Default(), notice: DefaultWaitNotice}
	if u, err := user.Current(); err == nil {
		r.user = u.Username
	}
	for _, o := range opts {
		o(r)
	}
	if r.backend == nil {
		return nil, errors.New("runner: no backend (WithBackend)")
	}
	return r, nil
}

// RunAll runs the files, up to the parallel limit at once, then those
// WithAlone picks one at a time, and returns their reports in the order of
// files.
func (r *Runner) RunAll(ctx context.Context, files []*scenario.File) []Report {
	out := make([]Report, len(files))
	var alone []int
	sem := make(chan struct{}, r.parallel)
	var wg sync.WaitGroup
	for i, f := range files {
		if r.alone != nil && r.alone(f) {
			alone = append(alone, i)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = r.Run(ctx, f)
		}()
	}
	wg.Wait()
	for _, i := range alone {
		out[i] = r.Run(ctx, files[i])
	}
	return out
}

// progressf writes one progress line.
func (r *Runner) progressf(name, format string, args ...any) {
	fmt.Fprintf(r.progress, "%s  %-32s %s\n", time.Now().Format("15:04:05"), name, fmt.Sprintf(format, args...))
}

func systemName(f *scenario.File) string { return f.System.Name }

// Run runs one scenario and judges it. Nothing it started is left running
// when it returns, whatever the outcome.
func (r *Runner) Run(ctx context.Context, f *scenario.File) (rep Report) {
	rep = Report{Name: f.Name, File: f.Path, Labels: f.Labels, Mode: f.Mode, JudgedAs: scenario.Gate, Started: time.Now()}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, f.Timeout.D()+2*time.Minute) // headroom for setup and teardown
	defer cancel()
	rep.Dir = filepath.Join(r.artifacts, f.Name)
	defer func() {
		rep.Duration = time.Since(rep.Started)
		r.progressf(f.Name, "%s in %s%s", rep.Verdict, rep.Duration.Round(100*time.Millisecond), reasonSuffix(rep.Reason))
	}()
	defer rep.interrupt(parent)
	if err := os.RemoveAll(rep.Dir); err != nil {
		return rep.errorf("clear artifacts: %v", err)
	}
	if err := os.MkdirAll(rep.Dir, 0o755); err != nil {
		return rep.errorf("artifacts: %v", err)
	}
	sink, err := os.Create(filepath.Join(rep.Dir, "events.jsonl"))
	if err != nil {
		return rep.errorf("artifacts: %v", err)
	}
	defer sink.Close()
	log := events.NewLog(events.WithSink(sink))

	factory, ok := r.systems[systemName(f)]
	if !ok {
		rep.Verdict, rep.Reason = Skip, fmt.Sprintf("no driver for system %q in this runner", systemName(f))
		return rep
	}
	scratch, err := os.MkdirTemp("", "jobsim-run-")
	if err != nil {
		return rep.errorf("scratch dir: %v", err)
	}
	defer os.RemoveAll(scratch)
	env := Env{Dir: scratch, Log: log, User: r.user}

	r.progressf(f.Name, "starting topology (%d hosts, %s)", len(f.Topology.Hosts), r.backend.Name())
	topo, err := r.backend.Start(ctx, f.Topology, env)
	if err != nil {
		return rep.classify(err, "start topology")
	}
	if _, ok := topo.(NodeController); f.HasNodeSteps() && !ok {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		_ = topo.Close(cctx)
		ccancel()
		rep.Verdict, rep.Reason = Skip, fmt.Sprintf("the timeline has node steps (disconnect, pause, kill, restart a machine), which the %s backend cannot do: run it with --backend containers", r.backend.Name())
		return rep
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer ccancel()
		if err := topo.Close(cctx); err != nil && rep.Verdict == Pass {
			rep.Verdict, rep.Reason = Error, fmt.Sprintf("topology teardown: %v", err)
		}
	}()
	for _, h := range topo.Hosts() {
		for _, n := range h.Notes() {
			r.progressf(f.Name, "%s: %s", h.Name(), n)
			log.Record(events.Event{Kind: events.Note, Host: h.Name(), Msg: n})
		}
	}
	sys, err := factory(ctx, f, topo, env, log)
	if err != nil {
		return rep.classify(err, "set up "+systemName(f))
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer scancel()
		if err := sys.Stop(sctx); err != nil {
			r.logger.Warn("stopping the system under test", "scenario", f.Name, "err", err)
		}
		if err := sys.CollectArtifacts(sctx, rep.Dir); err != nil {
			r.logger.Warn("collecting artifacts", "scenario", f.Name, "err", err)
		}
		rep.interrupt(parent)
		var states []events.Kind
		if sk, ok := sys.(StateKinds); ok {
			states = sk.StateKinds()
		}
		hist := log.All()
		writeTranscript(rep.Dir, f, &rep, hist, states)
		if err := writeHTMLReport(rep.Dir, f, &rep, hist); err != nil {
			r.logger.Warn("writing the HTML report", "scenario", f.Name, "err", err)
		}
	}()
	if rep.Version, err = sys.Version(ctx); err != nil {
		return rep.classify(err, "version of "+sys.Name())
	}
	if applies, err := f.Applies(rep.Version); err != nil {
		return rep.errorf("%v", err)
	} else if applies {
		rep.JudgedAs = scenario.Reproducer
	}

	pl := &play{r: r, f: f, topo: topo, sys: sys, log: log, start: time.Now()}
	runCtx, runCancel := context.WithDeadline(ctx, pl.start.Add(f.Timeout.D()))
	defer runCancel()
	log.Record(events.Event{Kind: check.Step, Msg: "scenario started", Fields: map[string]any{"scenario": f.Name, "version": rep.Version}})
	stepErr := pl.timeline(runCtx)
	if stepErr == nil {
		pl.settle(runCtx)
	}
	end := time.Now()
	rep.Results = evaluate(f, check.Run{Start: pl.start, End: end, Events: log.All()})
	rep.judge(f, stepErr)
	rep.judgedWhole = parent.Err() == nil
	return rep
}

// evaluate judges every expectation of f over run.
func evaluate(f *scenario.File, run check.Run) []check.Result {
	out := make([]check.Result, len(f.Expect))
	for i, e := range f.Expect {
		out[i] = e.Judge.Evaluate(run)
		out[i].ID = e.ID
	}
	return out
}

func reasonSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func (rep *Report) errorf(format string, args ...any) Report {
	rep.Verdict, rep.Reason = Error, fmt.Sprintf(format, args...)
	return *rep
}

// SkipError marks a missing prerequisite (no FUSE, no cylc, no Docker): the
// scenario is skipped with the error's text as the reason.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return e.Reason }

func (rep *Report) classify(err error, what string) Report {
	var skip *SkipError
	if errors.As(err, &skip) {
		rep.Verdict, rep.Reason = Skip, skip.Reason
		return *rep
	}
	return rep.errorf("%s: %v", what, err)
}

// judge sets the verdict from the results: a gate passes when every
// expectation holds; a reproducer (on a release the bug affects) passes when
// exactly the expectations the bug shows fail.
func (rep *Report) judge(f *scenario.File, stepErr error) {
	if stepErr != nil {
		rep.Verdict, rep.Reason = Fail, stepErr.Error()
		return
	}
	var failed []string
	for _, res := range rep.Results {
		if !res.OK {
			failed = append(failed, res.ID)
		}
	}
	if rep.JudgedAs == scenario.Reproducer {
		shows := f.Reproduces.Shows
		var missing, extra []string
		for _, id := range shows {
			if !slices.Contains(failed, id) {
				missing = append(missing, id)
			}
		}
		for _, id := range failed {
			if !slices.Contains(shows, id) {
				extra = append(extra, id)
			}
		}
		switch {
		case len(missing) > 0:
			rep.Verdict, rep.Reason = Fail, fmt.Sprintf("bug %s did not show on %s: %v held", f.Reproduces.ID, rep.Version, missing)
		case len(extra) > 0:
			rep.Verdict, rep.Reason = Fail, fmt.Sprintf("bug %s showed, but so did other failures: %v", f.Reproduces.ID, extra)
		default:
			rep.Verdict, rep.Reason = Pass, fmt.Sprintf("reproduced %s on %s", f.Reproduces.ID, rep.Version)
		}
		return
	}
	if len(failed) > 0 {
		rep.Verdict, rep.Reason = Fail, fmt.Sprintf("expectations failed: %v", failed)
		return
	}
	rep.Verdict = Pass
}

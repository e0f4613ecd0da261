package runner

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// fakeBackend starts hosts that are only a control API over a fault set,
// recording into the run's log: enough to test the runner's own logic.
type fakeBackend struct{ closed int }

type fakeTopo struct {
	b     *fakeBackend
	hosts []Host
	srvs  []*httptest.Server
}

type fakeHost struct {
	name string
	c    *control.Client
	set  *fault.Set
}

func (h *fakeHost) Name() string                    { return h.name }
func (h *fakeHost) SSH(string) (SSHEndpoint, error) { return SSHEndpoint{}, nil }
func (h *fakeHost) Control() *control.Client        { return h.c }
func (h *fakeHost) Notes() []string                 { return nil }
func (h *fakeHost) ProcessPath(p string) string     { return p }
func (b *fakeBackend) Name() string                 { return "fake" }
func (t *fakeTopo) Hosts() []Host                   { return t.hosts }
func (t *fakeTopo) Close(context.Context) error {
	for _, s := range t.srvs {
		s.Close()
	}
	t.b.closed++
	return nil
}
func (t *fakeTopo) Host(name string) (Host, bool) {
	for _, h := range t.hosts {
		if h.Name() == name {
			return h, true
		}
	}
	return nil, false
}

func (b *fakeBackend) Start(ctx context.Context, t scenario.Topology, env Env) (Topology, error) {
	topo := &fakeTopo{b: b}
	for _, hs := range t.Hosts {
		rec := events.ForHost(env.Log, hs.Name)
		set := fault.NewSet(fault.WithRecorder(rec))
		srv, err := control.NewServer("tok", control.WithFaults(set), control.WithEvents(env.Log))
		if err != nil {
			return nil, err
		}
		ts := httptest.NewServer(srv)
		topo.srvs = append(topo.srvs, ts)
		topo.hosts = append(topo.hosts, &fakeHost{name: hs.Name, c: control.NewClient(ts.URL, "tok"), set: set})
	}
	return topo, nil
}

// fakeCylc plays a tiny scheduler, the toy system: on start it goes
// preparing; it is submitted and succeeds 300 ms later unless a pbs qsub
// fault is armed, in which case (the bug) it stays in preparing forever.
type fakeCylc struct {
	mu      sync.Mutex
	log     *events.Log
	host    *fakeHost
	state   string
	stopped bool
	version string
	// archive, when set, records a toy.archived event this long after
	// the system settled (a job that ends after its task did).
	archive time.Duration
}

func (s *fakeCylc) Name() string                            { return "toy" }
func (s *fakeCylc) Version(context.Context) (string, error) { return s.version, nil }
func (s *fakeCylc) CollectArtifacts(_ context.Context, d string) error {
	return os.WriteFile(filepath.Join(d, "log"), []byte("scheduler log\n"), 0o644)
}
func (s *fakeCylc) set(st string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	s.log.Record(events.Event{Kind: toyState, Msg: "toy " + st, Fields: map[string]any{"state": st}})
}
func (s *fakeCylc) Start(ctx context.Context) error {
	s.set("preparing")
	go func() {
		time.Sleep(300 * time.Millisecond)
		if len(s.host.set.Check(fault.Op{Layer: fault.PBS, Name: "qsub"})) > 0 {
			return // the bug: the failed submission is never noticed
		}
		s.set("submitted")
		s.set("succeeded")
		if s.archive > 0 {
			time.Sleep(s.archive)
			s.log.Record(events.Event{Kind: "toy.archived", Msg: "toy archived"})
		}
	}()
	return nil
}
func (s *fakeCylc) Do(ctx context.Context, a scenario.Action) error { return nil }
func (s *fakeCylc) Holds(ctx context.Context, p scenario.Predicate) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == p.(toyCondition).State, nil
}
func (s *fakeCylc) StateKinds() []events.Kind { return []events.Kind{toyState} }
func (s *fakeCylc) Settled(context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == "succeeded", nil
}
func (s *fakeCylc) Stop(context.Context) error { s.stopped = true; return nil }

const scenarioText = `name: NAME
labels: [gate, toy]
MODE
timeout: 20s
topology:
  hosts: [{name: fakehpc}]
system:
  toy: {}
timeline:
  - do: start
FAULT
expect:
  - {id: done, reaches: succeeded, within: 3s}
  - {id: not-stuck, never: preparing, longer_than: 1s}
`

func load(t *testing.T, name, mode, faultStep string) *scenario.File {
	t.Helper()
	dir := t.TempDir()
	body := strings.NewReplacer("NAME", name, "MODE", mode, "FAULT", faultStep).Replace(scenarioText)
	p := filepath.Join(dir, name+".yaml")
	os.WriteFile(p, []byte(body), 0o644)
	f, err := testVocabulary.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newRunner is a runner of the toy system (version) on a fake backend,
// with artifacts in a temporary directory and opts; sys gets the toy of
// the last run.
func newRunner(t *testing.T, version string, sys **fakeCylc, opts ...Option) (*Runner, *fakeBackend, string) {
	b := &fakeBackend{}
	art := t.TempDir()
	r, err := New(append([]Option{WithBackend(b), WithArtifacts(art), WithSystem("toy", func(ctx context.Context, f *scenario.File, topo Topology, env Env, log *events.Log) (System, error) {
		h, _ := topo.Host("fakehpc")
		*sys = &fakeCylc{log: log, host: h.(*fakeHost), version: version}
		return *sys, nil
	})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r, b, art
}

const rejectQsub = `  - fault: {id: reject, layer: pbs, ops: [qsub], effect: {kind: exit, exit_code: 1}}`

func TestGatePassesAndLeavesArtifacts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, b, art := newRunner(t, "8.0.3", &sys)
	rep := r.Run(ctx, load(t, "happy", "", ""))
	if rep.Verdict != Pass {
		t.Fatalf("verdict %s: %s %+v", rep.Verdict, rep.Reason, rep.Results)
	}
	if !sys.stopped || b.closed != 1 {
		t.Fatalf("system stopped %v, topology closed %d times", sys.stopped, b.closed)
	}
	if rep.Duration > 5*time.Second {
		t.Errorf("a settled run took %s: the runner did not stop waiting once the system settled", rep.Duration)
	}
	for _, name := range []string{"events.jsonl", "transcript.md", "log"} {
		if _, err := os.Stat(filepath.Join(art, "happy", name)); err != nil {
			t.Errorf("artifact %s: %v", name, err)
		}
	}
	tr, _ := os.ReadFile(filepath.Join(art, "happy", "transcript.md"))
	if !strings.Contains(string(tr), "toy succeeded") || !strings.Contains(string(tr), "verdict: **PASS**") {
		t.Errorf("transcript lacks the task's states or verdict:\n%s", tr)
	}
}

func TestGateFailsWhenTheBugShows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, _, _ := newRunner(t, "8.0.3", &sys)
	rep := r.Run(ctx, load(t, "stuck", "", rejectQsub))
	if rep.Verdict != Fail || !strings.Contains(rep.Reason, "done") || !strings.Contains(rep.Reason, "not-stuck") {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
}

const reproducerMode = `mode: reproducer
reproduces: {id: fake#1, affects: "<8.0.3", shows: [done, not-stuck]}`

func TestReproducerPassesWhenTheBugShowsOnAffectedRelease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, _, _ := newRunner(t, "8.0.2", &sys)
	rep := r.Run(ctx, load(t, "repro", reproducerMode, rejectQsub))
	if rep.Verdict != Pass || rep.JudgedAs != scenario.Reproducer {
		t.Fatalf("verdict %s as %s: %s", rep.Verdict, rep.JudgedAs, rep.Reason)
	}
	// The same file on a fixed release is a gate: the bug still showing fails it.
	r2, _, _ := newRunner(t, "8.0.3", &sys)
	rep = r2.Run(ctx, load(t, "repro", reproducerMode, rejectQsub))
	if rep.Verdict != Fail || rep.JudgedAs != scenario.Gate {
		t.Fatalf("on a fixed release: verdict %s as %s", rep.Verdict, rep.JudgedAs)
	}
	// And on an affected release without the bug showing, the reproducer fails.
	r3, _, _ := newRunner(t, "8.0.2", &sys)
	rep = r3.Run(ctx, load(t, "repro", reproducerMode, ""))
	if rep.Verdict != Fail || !strings.Contains(rep.Reason, "did not show") {
		t.Fatalf("reproducer without the bug: verdict %s: %s", rep.Verdict, rep.Reason)
	}
}

func TestWaitThatNeverHoldsFailsTheRunWithItsBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, b, _ := newRunner(t, "8.0.3", &sys)
	rep := r.Run(ctx, load(t, "wait", "", rejectQsub+"\n  - wait: {state: succeeded, within: 1s}"))
	if rep.Verdict != Fail || !strings.Contains(rep.Reason, "step 3 (wait until toy is succeeded): toy is succeeded did not happen within 1s") {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
	if !sys.stopped || b.closed != 1 {
		t.Fatal("a failed run left the system or topology up")
	}
}

func TestJUnitReport(t *testing.T) {
	reps := []Report{
		{Name: "a", Labels: []string{"gate"}, Verdict: Pass, Duration: time.Second},
		{Name: "b", Verdict: Fail, Reason: "expectations failed: [x]", Results: []check.Result{{ID: "x", Detail: "stuck"}}},
		{Name: "c", Verdict: Skip, Reason: "no FUSE"},
	}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, "jobsim", reps); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("invalid XML: %v\n%s", err, buf.String())
	}
	if got.Tests != 3 || got.Failures != 1 || got.Skipped != 1 || got.Suites[0].Cases[1].Failure == nil || !strings.Contains(got.Suites[0].Cases[1].Failure.Body, "FAIL x: stuck") {
		t.Fatalf("junit %+v", got)
	}
	var sum bytes.Buffer
	WriteSummary(&sum, reps)
	if !strings.Contains(sum.String(), "1 passed, 1 failed, 0 errored, 1 skipped") {
		t.Fatalf("summary:\n%s", sum.String())
	}
}

// A step waits for an event that happened before it began waiting:
// since: start counts it, the default (since the step) does not.
func TestEventConditionSinceStartSeesWhatHappenedBefore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	const step = "  - wait: {for: 1s}\n  - wait: {event: {kind: toy.state, fields: {state: ^preparing$}}, since: start, within: 1s}"
	r, _, _ := newRunner(t, "8.0.3", &sys)
	if rep := r.Run(ctx, load(t, "since-start", "", step)); rep.Verdict != Pass {
		t.Fatalf("since: start: verdict %s: %s", rep.Verdict, rep.Reason)
	}
	r2, _, _ := newRunner(t, "8.0.3", &sys)
	rep := r2.Run(ctx, load(t, "since-step", "", strings.Replace(step, ", since: start", "", 1)))
	if rep.Verdict != Fail || !strings.Contains(rep.Reason, "did not happen within 1s") {
		t.Fatalf("since the step: verdict %s: %s", rep.Verdict, rep.Reason)
	}
}

// An order whose last event comes after the system settled: judged when
// the timeline ends (linger: 0s) it fails; with a linger, given or the
// default one, the run waits for it, and only as long as it is pending.
func TestLingerWaitsForPendingCoreExpectations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(name, linger string) Report {
		b := &fakeBackend{}
		r, err := New(WithBackend(b), WithArtifacts(t.TempDir()), WithSystem("toy", func(ctx context.Context, f *scenario.File, topo Topology, env Env, log *events.Log) (System, error) {
			h, _ := topo.Host("fakehpc")
			return &fakeCylc{log: log, host: h.(*fakeHost), version: "8.0.3", archive: 1500 * time.Millisecond}, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		f := load(t, name, linger, "")
		f.Expect = append(f.Expect, mustExpect(t, "archived", "{order: [{kind: toy.state, fields: {state: succeeded}}, {kind: toy.archived}]}"))
		return r.Run(ctx, f)
	}
	if rep := run("no-linger", "linger: 0s"); rep.Verdict != Fail || !strings.Contains(rep.Reason, "archived") {
		t.Fatalf("linger: 0s: verdict %s: %s", rep.Verdict, rep.Reason)
	}
	for name, linger := range map[string]string{"linger": "linger: 20s", "default-linger": ""} {
		rep := run(name, linger)
		if rep.Verdict != Pass {
			t.Fatalf("%s: verdict %s: %s %+v", name, rep.Verdict, rep.Reason, rep.Results)
		}
		if rep.Duration > 10*time.Second {
			t.Errorf("%s: the run lingered %s, past the moment nothing was pending", name, rep.Duration)
		}
	}
}

// mustExpect parses one expectation of the core.
func mustExpect(t *testing.T, id, body string) scenario.Expectation {
	t.Helper()
	src := strings.NewReplacer("NAME", "x", "MODE", "", "FAULT", "").Replace(scenarioText) + "  - {id: " + id + ", " + strings.TrimPrefix(body, "{")
	f, err := testVocabulary.Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f.Expect[len(f.Expect)-1]
}

// A wait that blocks says, now and then, what it waits for: the step's
// condition, then the expectations still pending after the timeline.
func TestBlockedWaitsSayWhatTheyWaitFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, _, art := newRunner(t, "8.0.3", &sys, WithWaitNotice(300*time.Millisecond))
	// The qsub fault keeps the toy preparing: the wait blocks for its
	// bound, and the never: preparing expectation keeps the run going.
	rep := r.Run(ctx, load(t, "blocked", "", rejectQsub+"\n  - wait: {state: succeeded, within: 1500ms}"))
	if rep.Verdict != Fail {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
	data, err := os.ReadFile(filepath.Join(art, "blocked", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := events.ReadJSONLines(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Kind == check.Waiting {
			n++
			if e.Fields["waiting_for"] != "toy is succeeded" || !strings.HasPrefix(e.Msg, "waiting for: toy is succeeded (") {
				t.Errorf("waiting event %+v", e)
			}
		}
	}
	if n < 2 {
		t.Errorf("%d waiting events during a 1.5 s wait noticed every 300 ms", n)
	}
	tr, _ := os.ReadFile(filepath.Join(art, "blocked", "transcript.md"))
	if !strings.Contains(string(tr), "waiting for: toy is succeeded") {
		t.Errorf("the transcript does not say what the run waited for:\n%s", tr)
	}
}

// After the timeline, the run waiting for pending expectations names them.
func TestSettlingSaysWhichExpectationsItWaitsFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, _, art := newRunner(t, "8.0.3", &sys, WithWaitNotice(300*time.Millisecond))
	f := load(t, "settling", "linger: 1500ms", "")
	f.Expect = append(f.Expect, mustExpect(t, "never-comes", "{events: {kind: toy.never, min: 1}}"))
	r.Run(ctx, f)
	data, _ := os.ReadFile(filepath.Join(art, "settling", "events.jsonl"))
	evs, _ := events.ReadJSONLines(bytes.NewReader(data))
	var saw bool
	for _, e := range evs {
		saw = saw || e.Kind == check.Waiting && e.Fields["waiting_for"] == "expectations to be decided: never-comes"
	}
	if !saw {
		t.Errorf("no waiting event naming the pending expectation in %d events", len(evs))
	}
}

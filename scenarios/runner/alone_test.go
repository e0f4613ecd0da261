package runner

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// emptyBackend starts topologies with no hosts (the toy system needs none).
type emptyBackend struct{}

type emptyTopo struct{}

func (emptyBackend) Name() string { return "empty" }
func (emptyBackend) Start(context.Context, scenario.Topology, Env) (Topology, error) {
	return emptyTopo{}, nil
}
func (emptyTopo) Hosts() []Host               { return nil }
func (emptyTopo) Host(string) (Host, bool)    { return nil, false }
func (emptyTopo) Close(context.Context) error { return nil }

// span records when each scenario's system ran.
type span struct{ from, to time.Time }

// timedToy is the toy system that succeeds 300 ms after start and records
// when it ran.
type timedToy struct {
	name  string
	log   *events.Log
	mu    *sync.Mutex
	spans map[string]*span
	state string
}

func (s *timedToy) Name() string                            { return "toy" }
func (s *timedToy) Version(context.Context) (string, error) { return "1", nil }
func (s *timedToy) CollectArtifacts(context.Context, string) error {
	return nil
}
func (s *timedToy) Start(context.Context) error {
	s.mu.Lock()
	s.spans[s.name] = &span{from: time.Now()}
	s.state = "preparing"
	s.mu.Unlock()
	go func() {
		time.Sleep(300 * time.Millisecond)
		s.mu.Lock()
		s.state = "succeeded"
		s.mu.Unlock()
		s.log.Record(events.Event{Kind: toyState, Msg: "toy succeeded", Fields: map[string]any{"state": "succeeded"}})
	}()
	return nil
}
func (s *timedToy) Do(context.Context, scenario.Action) error { return nil }
func (s *timedToy) Holds(_ context.Context, p scenario.Predicate) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == p.(toyCondition).State, nil
}
func (s *timedToy) StateKinds() []events.Kind { return []events.Kind{toyState} }
func (s *timedToy) Settled(context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == "succeeded", nil
}
func (s *timedToy) Stop(context.Context) error {
	s.mu.Lock()
	s.spans[s.name].to = time.Now()
	s.mu.Unlock()
	return nil
}

// A scenario WithAlone picks never shares the machine with another one,
// while the others still run side by side, and the reports keep the order
// of the files.
func TestAloneScenariosRunWithNothingElseAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	spans := map[string]*span{}
	r, err := New(WithBackend(emptyBackend{}), WithArtifacts(t.TempDir()), WithParallel(3),
		WithAlone(func(f *scenario.File) bool { return f.Name == "touchy" }),
		WithSystem("toy", func(ctx context.Context, f *scenario.File, topo Topology, env Env, log *events.Log) (System, error) {
			return &timedToy{name: f.Name, log: log, mu: &mu, spans: spans}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"first", "touchy", "second", "third"}
	var files []*scenario.File
	for _, n := range names {
		files = append(files, load(t, n, "", ""))
	}
	reps := r.RunAll(ctx, files)
	for i, rep := range reps {
		if rep.Name != names[i] || rep.Verdict != Pass {
			t.Errorf("report %d: %s %s %s, want %s pass", i, rep.Name, rep.Verdict, rep.Reason, names[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	overlap := func(a, b *span) bool { return a.from.Before(b.to) && b.from.Before(a.to) }
	touchy := spans["touchy"]
	if touchy == nil || touchy.to.IsZero() {
		t.Fatalf("touchy did not run: %+v", spans)
	}
	for _, n := range []string{"first", "second", "third"} {
		s := spans[n]
		if s == nil || s.to.IsZero() {
			t.Fatalf("%s did not run", n)
		}
		if overlap(s, touchy) {
			t.Errorf("%s ran at the same time as touchy, which runs alone", n)
		}
	}
	if !overlap(spans["first"], spans["second"]) || !overlap(spans["second"], spans["third"]) {
		t.Errorf("the other scenarios did not run side by side with --parallel 3: %+v %+v %+v", *spans["first"], *spans["second"], *spans["third"])
	}
}

package runner

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// toyPlugin is a system under test's scenario plug-in as small as can be,
// to test the runner without any real system: system.toy, a state
// condition ({state: S}) and two expectations ({reaches: S, within: D},
// {never: S, longer_than: D}) over toyState events. The runner knows none
// of it.
type toyPlugin struct{}

const toyState events.Kind = "toy.state"

func (toyPlugin) Name() string { return "toy" }

func (toyPlugin) ParseSystem(f *scenario.File, v scenario.Value) (any, error) {
	var c struct{}
	return c, v.Decode(&c)
}

func (toyPlugin) ConditionKeys() []string { return []string{"state"} }

type toyCondition struct {
	State string `yaml:"state"`
}

func (c toyCondition) String() string { return "toy is " + c.State }

func (toyPlugin) ParseCondition(f *scenario.File, key string, v scenario.Value) (scenario.Predicate, error) {
	var c toyCondition
	return c, v.Decode(&c)
}

func (toyPlugin) ExpectationKeys() []string { return []string{"reaches", "never"} }

type toyExpectation struct {
	Reaches    string            `yaml:"reaches"`
	Within     scenario.Duration `yaml:"within"`
	Never      string            `yaml:"never"`
	LongerThan scenario.Duration `yaml:"longer_than"`
}

func (toyPlugin) ParseExpectation(f *scenario.File, key string, v scenario.Value) (check.Expectation, error) {
	e := &toyExpectation{}
	if err := v.Decode(e); err != nil {
		return nil, err
	}
	if (e.Reaches == "") == (e.Never == "") {
		return nil, v.Where().Errorf("say reaches or never")
	}
	return e, nil
}

func (e *toyExpectation) Evaluate(run check.Run) check.Result {
	var from time.Time
	cur := ""
	for _, ev := range run.Events {
		if ev.Kind != toyState {
			continue
		}
		st, _ := ev.Fields["state"].(string)
		if e.Reaches != "" && st == e.Reaches {
			if ev.Time.After(run.Start.Add(e.Within.D())) {
				return check.Result{Detail: "too late"}
			}
			return check.Result{OK: true, Detail: "reached " + st}
		}
		if cur == e.Never && e.Never != "" && ev.Time.Sub(from) > e.LongerThan.D() {
			return check.Result{Detail: fmt.Sprintf("stayed in %s", cur)}
		}
		cur, from = st, ev.Time
	}
	if e.Reaches != "" {
		return check.Result{Detail: "never reached " + e.Reaches}
	}
	if cur == e.Never && run.End.Sub(from) > e.LongerThan.D() {
		return check.Result{Detail: fmt.Sprintf("stayed in %s to the end", cur)}
	}
	return check.Result{OK: true, Detail: "never held " + e.Never + " too long"}
}

func (e *toyExpectation) Pending(run check.Run, now time.Time) bool {
	res := e.Evaluate(run)
	if e.Reaches != "" {
		return !res.OK && now.Before(run.Start.Add(e.Within.D()))
	}
	cur := ""
	for _, ev := range run.Events {
		if ev.Kind == toyState {
			cur, _ = ev.Fields["state"].(string)
		}
	}
	return res.OK && cur == e.Never
}

// testVocabulary is the toy system and the toy host plug-in.
var testVocabulary = scenario.MustVocabulary(toyPlugin{}, newToyHost())

// toyHost is a host plug-in (the shape of a batch system): a step
// {bump: HOST} it performs on the topology, and a condition {bumped: HOST}
// that holds once it did.
type toyHost struct {
	mu     *sync.Mutex
	bumped map[string]bool
}

func newToyHost() toyHost { return toyHost{mu: &sync.Mutex{}, bumped: map[string]bool{}} }

func (toyHost) Name() string        { return "bumper" }
func (toyHost) StepKeys() []string  { return []string{"bump"} }
func (toyHost) DoActions() []string { return nil }

type bump string

func (b bump) String() string { return "bump " + string(b) }

func (toyHost) ParseStep(f *scenario.File, key string, v scenario.Value) (scenario.Action, error) {
	var h string
	if err := v.Decode(&h); err != nil {
		return nil, err
	}
	if _, ok := f.Host(h); !ok {
		return nil, v.Where().Errorf("bump: no host %q", h)
	}
	return bump(h), nil
}

func (toyHost) ConditionKeys() []string { return []string{"bumped"} }

func (toyHost) ParseCondition(f *scenario.File, key string, v scenario.Value) (scenario.Predicate, error) {
	var c struct {
		Bumped string `yaml:"bumped"`
	}
	if err := v.Decode(&c); err != nil {
		return nil, err
	}
	return bump(c.Bumped), nil
}

func (t toyHost) Do(ctx context.Context, topo Topology, a scenario.Action) error {
	h, ok := topo.Host(string(a.(bump)))
	if !ok {
		return fmt.Errorf("no host %s", a)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bumped[h.Name()] = true
	return nil
}

func (t toyHost) Holds(ctx context.Context, topo Topology, p scenario.Predicate) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bumped[string(p.(bump))], nil
}

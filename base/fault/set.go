package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
)

// Set is the live collection of rules of a host (or a topology). Every layer
// asks it, for each operation, which rules fire. Rules are kept in the order
// they were added. Safe for concurrent use.
type Set struct {
	mu      sync.Mutex
	clock   clock.Clock
	rec     events.Recorder
	seed    uint64
	nextID  int
	rules   []*armed
	cleared chan struct{} // closed and replaced whenever a rule is removed, to end hangs
	nextW   int
	watch   map[int]func(Rule)
}

type armed struct {
	Rule
	added      time.Time
	matches    int
	activation int
	rng        *rand.Rand
}

// SetOption configures a Set.
type SetOption func(*Set)

// WithClock makes the Set measure windows and latencies on c.
func WithClock(c clock.Clock) SetOption { return func(s *Set) { s.clock = c } }

// WithRecorder records every activation, addition and removal to r.
func WithRecorder(r events.Recorder) SetOption { return func(s *Set) { s.rec = r } }

// WithSeed sets the seed that rules without their own Seed derive theirs from.
func WithSeed(seed int64) SetOption { return func(s *Set) { s.seed = uint64(seed) } }

// NewSet returns an empty rule set.
func NewSet(opts ...SetOption) *Set {
	s := &Set{clock: clock.Real{}, rec: events.Discard{}, seed: 1, cleared: make(chan struct{}), watch: map[int]func(Rule){}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Add validates r and arms it, returning the rule as stored (with its ID).
func (s *Set) Add(r Rule) (Rule, error) {
	if err := r.Validate(); err != nil {
		return Rule{}, fmt.Errorf("fault rule %s: %w", ruleName(r), err)
	}
	s.mu.Lock()
	s.nextID++
	if r.ID == "" {
		r.ID = fmt.Sprintf("%s-%d", r.Layer, s.nextID)
	}
	for _, a := range s.rules {
		if a.ID == r.ID {
			s.mu.Unlock()
			return Rule{}, fmt.Errorf("fault rule %s: a rule with this id exists", r.ID)
		}
	}
	seed := uint64(r.Seed)
	if seed == 0 {
		seed = s.seed*1000003 + uint64(s.nextID)
	}
	a := &armed{Rule: r, added: s.clock.Now(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s.rules = append(s.rules, a)
	watchers := make([]func(Rule), 0, len(s.watch))
	for _, w := range s.watch {
		watchers = append(watchers, w)
	}
	s.mu.Unlock()
	s.rec.Record(events.Event{Kind: events.FaultAdded, Msg: describe(r), Fields: map[string]any{"rule": r}})
	for _, w := range watchers {
		w(r)
	}
	return r, nil
}

// OnAdd calls fn with every rule added from now on, after it is armed and
// before Add returns, so that a layer can act on its state at once (the PBS
// server applies a vanish rule to a job already running). cancel stops it.
func (s *Set) OnAdd(fn func(Rule)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextW++
	id := s.nextW
	s.watch[id] = fn
	return func() {
		s.mu.Lock()
		delete(s.watch, id)
		s.mu.Unlock()
	}
}

func ruleName(r Rule) string {
	if r.ID != "" {
		return fmt.Sprintf("%q", r.ID)
	}
	return fmt.Sprintf("(%s %s)", r.Layer, r.Effect.Kind)
}

func describe(r Rule) string {
	s := fmt.Sprintf("%s %s %s", r.ID, r.Layer, r.Effect.Kind)
	for _, kv := range [][2]string{{"ops", fmt.Sprint(r.Ops)}, {"path", r.Path}, {"command", r.Command}, {"user", r.User}, {"job", r.Job}, {"errno", r.Effect.Errno}} {
		if kv[1] != "" && kv[1] != "[]" {
			s += " " + kv[0] + "=" + kv[1]
		}
	}
	return s
}

// Remove clears the rule with the given id, reporting whether it existed.
// Operations hanging on it are released.
func (s *Set) Remove(id string) bool {
	s.mu.Lock()
	found := false
	for i, a := range s.rules {
		if a.ID == id {
			s.rules = append(s.rules[:i], s.rules[i+1:]...)
			found = true
			break
		}
	}
	if found {
		close(s.cleared)
		s.cleared = make(chan struct{})
	}
	s.mu.Unlock()
	if found {
		s.rec.Record(events.Event{Kind: events.FaultCleared, Msg: id, Fields: map[string]any{"id": id}})
	}
	return found
}

// Clear removes every rule of the given layers (all layers when none given)
// and returns how many it removed.
func (s *Set) Clear(layers ...Layer) int {
	var ids []string
	for _, r := range s.List() {
		if len(layers) == 0 || containsLayer(layers, r.Layer) {
			ids = append(ids, r.ID)
		}
	}
	n := 0
	for _, id := range ids {
		if s.Remove(id) {
			n++
		}
	}
	return n
}

func containsLayer(ls []Layer, l Layer) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// Status is a rule with its counters, as listed by the control API.
type Status struct {
	Rule
	Matches     int  `json:"matches"`
	Activations int  `json:"activations"`
	Armed       bool `json:"armed"`
}

// List returns the rules in the order they were added.
func (s *Set) List() []Rule {
	st := s.Status()
	out := make([]Rule, len(st))
	for i, x := range st {
		out[i] = x.Rule
	}
	return out
}

// Status returns the rules with their counters.
func (s *Set) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	out := make([]Status, len(s.rules))
	for i, a := range s.rules {
		out[i] = Status{Rule: a.Rule, Matches: a.matches, Activations: a.activation, Armed: a.inWindow(now) && !a.exhausted()}
	}
	return out
}

func (a *armed) inWindow(now time.Time) bool {
	from := a.added.Add(a.Start.D())
	if now.Before(from) {
		return false
	}
	return a.For == 0 || now.Before(from.Add(a.For.D()))
}

func (a *armed) exhausted() bool { return a.Count > 0 && a.activation >= a.Count }

// Check returns the rules that fire for op, in the order they were added,
// and records an activation event for each. It is the one call every layer
// makes per operation; when no rule exists it costs one lock.
func (s *Set) Check(op Op) []Rule { return s.CheckWhere(op, nil) }

// CheckWhere is Check over only the rules for which applies reports true
// (nil: all): a layer whose rules mean something only at some operations
// (an ssh refuse-auth rule at login, not at exec) asks this way, so that a
// rule is neither counted nor recorded as fired where it does nothing.
func (s *Set) CheckWhere(op Op, applies func(Rule) bool) []Rule {
	s.mu.Lock()
	if len(s.rules) == 0 {
		s.mu.Unlock()
		return nil
	}
	now := s.clock.Now()
	var fired []Rule
	for _, a := range s.rules {
		if !a.selects(op) || !a.inWindow(now) || a.exhausted() || (applies != nil && !applies(a.Rule)) {
			continue
		}
		a.matches++
		if a.matches <= a.After {
			continue
		}
		if p := a.Probability; p != nil && a.rng.Float64() >= *p {
			continue
		}
		a.activation++
		fired = append(fired, a.Rule)
	}
	s.mu.Unlock()
	for _, r := range fired {
		s.rec.Record(events.Event{Kind: events.FaultActivate, Msg: fmt.Sprintf("%s fired on %s %s", r.ID, op.Layer, opText(op)),
			Fields: map[string]any{"rule": r.ID, "layer": op.Layer, "op": op.Name, "path": op.Path, "command": op.Command, "user": op.User, "job": op.Job, "effect": r.Effect.Kind}})
	}
	return fired
}

func opText(op Op) string {
	s := op.Name
	for _, x := range []string{op.Path, op.Command, op.Job} {
		if x != "" {
			s += " " + x
		}
	}
	return s
}

// Wait applies the waiting effects among fired (latency, slow banner, hang):
// it sleeps on the set's clock for the latencies and blocks for a hang until
// ctx ends or any rule is cleared. It returns ctx.Err() when ctx ended.
func (s *Set) Wait(ctx context.Context, fired []Rule) error {
	for _, r := range fired {
		switch r.Effect.Kind {
		case Latency, SlowBanner:
			if err := s.clock.Sleep(ctx, r.Effect.Latency.D()); err != nil {
				return err
			}
		case Hang:
			if err := s.hang(ctx, r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// hang blocks until ctx ends or the rule id is no longer in the set.
func (s *Set) hang(ctx context.Context, id string) error {
	for {
		s.mu.Lock()
		present := false
		for _, a := range s.rules {
			present = present || a.ID == id
		}
		ch := s.cleared
		s.mu.Unlock()
		if !present {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// First returns the first rule in fired whose kind is one of kinds.
func First(fired []Rule, kinds ...Kind) (Rule, bool) {
	for _, r := range fired {
		for _, k := range kinds {
			if r.Effect.Kind == k {
				return r, true
			}
		}
	}
	return Rule{}, false
}

package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
)

// Set is the live collection of rules of a host (or a topology). Every layer
// asks it, for each operation, which rules fire. Rules are kept in the order
// they were added. Layers whose state a rule pins (a job kept in a state, a
// command held) subscribe to its changes, so that adding, removing and
// clearing a rule all take effect at once. Safe for concurrent use.
type Set struct {
	// notify serialises changes with the delivery of their Change, so that
	// subscribers see changes one at a time in the order they took effect.
	notify sync.Mutex

	mu     sync.Mutex
	clock  clock.Clock
	rec    events.Recorder
	seed   uint64
	nextID int
	rules  []*armed
	nextW  int
	subs   map[int]func(Change)
}

type armed struct {
	Rule
	added      time.Time
	matches    int
	activation int
	rng        *rand.Rand
}

// Change is one change to a Set's rules, as told to subscribers: the rules
// added (one, by Add) or removed (one by Remove, every rule of the chosen
// layers by Clear).
type Change struct {
	Added   []Rule
	Removed []Rule
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
	s := &Set{clock: clock.Real{}, rec: events.Discard{}, seed: 1, subs: map[int]func(Change){}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Add validates r and arms it, returning the rule as stored (with its ID).
// Subscribers are told before Add returns.
func (s *Set) Add(r Rule) (Rule, error) {
	if err := r.Validate(); err != nil {
		return Rule{}, fmt.Errorf("fault rule %s: %w", ruleName(r), err)
	}
	s.notify.Lock()
	defer s.notify.Unlock()
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
	r.gone = make(chan struct{})
	a := &armed{Rule: r, added: s.clock.Now(), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s.rules = append(s.rules, a)
	subs := s.subscribers()
	s.mu.Unlock()
	s.rec.Record(events.Event{Kind: events.FaultAdded, Msg: describe(r), Fields: ruleFields(r)})
	ch := Change{Added: []Rule{r}}
	for _, fn := range subs {
		fn(ch)
	}
	return r, nil
}

// Subscribe calls fn with every change to the rules from now on, until ctx
// ends or cancel is called. fn runs before the Add, Remove or Clear that
// made the change returns, after the change took effect and without the
// set's lock held, so that a layer can act on its state at once: the PBS
// server applies a new vanish rule to a job already running, and lets a
// job go on from the state a cleared stuck rule kept it in. Changes are
// delivered one at a time in the order they took effect. fn may read the
// set (Check, List) but must not add or remove rules, and should not block.
func (s *Set) Subscribe(ctx context.Context, fn func(Change)) (cancel func()) {
	s.mu.Lock()
	s.nextW++
	id := s.nextW
	s.subs[id] = func(c Change) {
		if ctx.Err() == nil {
			fn(c)
		}
	}
	s.mu.Unlock()
	unsub := func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, unsub)
	return func() {
		stop()
		unsub()
	}
}

// subscribers returns the subscribed functions in the order they
// subscribed. Called with s.mu held.
func (s *Set) subscribers() []func(Change) {
	ids := make([]int, 0, len(s.subs))
	for id := range s.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]func(Change), len(ids))
	for i, id := range ids {
		out[i] = s.subs[id]
	}
	return out
}

func ruleName(r Rule) string {
	if r.ID != "" {
		return quote(r.ID)
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
// Operations waiting on it (a hang, a latency) are released, and
// subscribers are told, before Remove returns.
func (s *Set) Remove(id string) bool {
	return s.remove(func(r *Rule) bool { return r.ID == id }) == 1
}

// Clear removes every rule of the given layers (all layers when none given)
// at once and returns how many it removed; subscribers are told of them in
// one Change.
func (s *Set) Clear(layers ...Layer) int {
	return s.remove(func(r *Rule) bool { return len(layers) == 0 || containsLayer(layers, r.Layer) })
}

// remove removes the rules for which match reports true, releases what
// waits on them, records their clearing and tells the subscribers.
func (s *Set) remove(match func(*Rule) bool) int {
	s.notify.Lock()
	defer s.notify.Unlock()
	s.mu.Lock()
	var removed []Rule
	kept := s.rules[:0]
	for _, a := range s.rules {
		if match(&a.Rule) {
			removed = append(removed, a.Rule)
			close(a.gone)
		} else {
			kept = append(kept, a)
		}
	}
	clear(s.rules[len(kept):])
	s.rules = kept
	var subs []func(Change)
	if len(removed) > 0 {
		subs = s.subscribers()
	}
	s.mu.Unlock()
	for _, r := range removed {
		s.rec.Record(events.Event{Kind: events.FaultCleared, Msg: r.ID, Fields: ruleFields(r)})
	}
	if len(removed) > 0 {
		ch := Change{Removed: removed}
		for _, fn := range subs {
			fn(ch)
		}
	}
	return len(removed)
}

// ruleFields are the fields of a fault.added or fault.cleared event: the
// rule whole (rule), and its id, layer, selector (those set) and effect
// kind one by one, so that a scenario's event match can select them.
func ruleFields(r Rule) map[string]any {
	f := map[string]any{"rule": r, "id": r.ID, "layer": string(r.Layer), "effect": string(r.Effect.Kind)}
	if len(r.Ops) > 0 {
		f["ops"] = slices.Clone(r.Ops)
	}
	for k, v := range map[string]string{"path": r.Path, "command": r.Command, "user": r.User, "job": r.Job} {
		if v != "" {
			f[k] = v
		}
	}
	return f
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

// Window returns when the rule with the given id is armed (from) and
// disarmed (until; zero when it stays armed until cleared), on the set's
// clock, and whether there is such a rule. A layer that keeps state for a
// rule (a job a stuck rule keeps) lets go of it at until.
func (s *Set) Window(id string) (from, until time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.rules {
		if a.ID == id {
			from = a.added.Add(a.Start.D())
			if a.For > 0 {
				until = from.Add(a.For.D())
			}
			return from, until, true
		}
	}
	return time.Time{}, time.Time{}, false
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

// Wait applies the waiting effects among fired (latency, slow banner,
// hang): it sleeps on the set's clock for the latencies and blocks for a
// hang until ctx ends or the hang rule's window ("for") closes. Removing a
// rule ends the wait on it at once: the operation goes on as if the rule
// had not fired (a hang or a latency cleared lets it through, as removing a
// Toxiproxy latency toxic lets the data it holds through). It returns
// ctx.Err() when ctx ended.
func (s *Set) Wait(ctx context.Context, fired []Rule) error {
	for _, r := range fired {
		switch r.Effect.Kind {
		case Latency, SlowBanner:
			if err := s.sleep(ctx, r, r.Effect.Latency.D()); err != nil {
				return err
			}
		case Hang:
			if _, until, ok := s.Window(r.ID); ok && !until.IsZero() {
				if err := s.sleep(ctx, r, until.Sub(s.clock.Now())); err != nil {
					return err
				}
				continue
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.gone(r):
			}
		}
	}
	return nil
}

// sleep waits d on the set's clock, or until r is removed.
func (s *Set) sleep(ctx context.Context, r Rule, d time.Duration) error {
	gone := s.gone(r)
	select {
	case <-gone:
		return nil
	default:
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-gone:
			cancel()
		case <-done:
		}
	}()
	err := s.clock.Sleep(wctx, d)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// Cleared returns a channel that is closed when r (as returned by Add or
// Check) is removed from the set, or at once when it is not in the set. A
// layer that acts on a rule over time (the stand-in UI server's crash after
// a delay) stops when the rule is cleared.
func (s *Set) Cleared(r Rule) <-chan struct{} { return s.gone(r) }

// gone returns the channel closed when r is removed from the set. A rule
// as returned by Add or Check carries it; for one built by hand it is
// found by ID (closed when there is no such rule).
func (s *Set) gone(r Rule) <-chan struct{} {
	if r.gone != nil {
		return r.gone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.rules {
		if a.ID == r.ID {
			return a.gone
		}
	}
	gone := make(chan struct{})
	close(gone)
	return gone
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

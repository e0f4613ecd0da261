package runner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// pollEvery is how often conditions are re-evaluated.
const pollEvery = 200 * time.Millisecond

// play is one run of a timeline.
type play struct {
	r     *Runner
	f     *scenario.File
	topo  Topology
	sys   System
	log   *events.Log
	start time.Time
	last  time.Time // when the previous step ran
}

func (p *play) timeline(ctx context.Context) error {
	p.last = p.start
	for i, s := range p.f.Timeline {
		label := fmt.Sprintf("step %d (%s)", i+1, describeStep(s))
		if err := p.trigger(ctx, s); err != nil {
			return fmt.Errorf("%s: trigger: %w", label, err)
		}
		p.r.progressf(p.f.Name, "+%-6s %s", time.Since(p.start).Round(time.Second), describeStep(s))
		p.log.Record(events.Event{Kind: check.Step, Msg: describeStep(s), Fields: map[string]any{"step": i + 1}})
		if err := p.act(ctx, s); err != nil {
			p.log.Record(events.Event{Kind: check.Step, Msg: label + " failed: " + err.Error(), Fields: map[string]any{"step": i + 1, "error": err.Error()}})
			return fmt.Errorf("%s: %w", label, err)
		}
		p.last = time.Now()
	}
	return nil
}

func describeStep(s scenario.Step) string {
	switch {
	case s.Action != nil:
		return s.Action.String()
	case s.Do != "":
		return s.Do
	case s.Fault != nil:
		r := s.Fault.Rule
		return fmt.Sprintf("fault %s on %s: %s %s", r.ID, s.Fault.Host, r.Layer, r.Effect.Kind)
	case s.Clear != nil:
		return "clear " + strings.Join(s.Clear, " ")
	case s.Wait != nil && s.Wait.For != 0:
		return "wait " + s.Wait.For.D().String()
	case s.Wait != nil:
		return "wait until " + describeCondition(s.Wait.Condition)
	case s.Note != "":
		return "note: " + s.Note
	case s.Node != nil:
		return fmt.Sprintf("node %s: %s", s.Node.Name, s.Node.Action)
	}
	return "?"
}

func describeCondition(c scenario.Condition) string {
	switch {
	case c.Predicate != nil:
		return c.Predicate.String()
	case c.Event != nil && c.Since == scenario.SinceStart:
		return "an event " + c.Event.Describe() + " since the start"
	case c.Event != nil:
		return "an event " + c.Event.Describe()
	}
	return "?"
}

// trigger waits until the step may run.
func (p *play) trigger(ctx context.Context, s scenario.Step) error {
	switch {
	case s.At != nil:
		return sleepUntil(ctx, p.start.Add(s.At.D()))
	case s.After != nil:
		return sleepUntil(ctx, p.last.Add(s.After.D()))
	case s.When != nil:
		return p.waitFor(ctx, *s.When, s.Within.D())
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the scenario timed out: %w", ctx.Err())
	}
}

// waitFor polls until c holds, within bound (0: until ctx ends).
func (p *play) waitFor(ctx context.Context, c scenario.Condition, bound time.Duration) error {
	var seq int64 // events after this one count
	if c.Since != scenario.SinceStart {
		if since := p.log.Since(0); len(since) > 0 {
			seq = since[len(since)-1].Seq
		}
	}
	if bound > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	n := p.notices(describeCondition(c))
	for {
		ok, err := p.holds(ctx, c, seq)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		n.tick()
		select {
		case <-ctx.Done():
			if bound > 0 {
				return fmt.Errorf("%s did not happen within %s", describeCondition(c), bound)
			}
			return fmt.Errorf("%s did not happen before the scenario timed out", describeCondition(c))
		case <-time.After(pollEvery):
		}
	}
}

func (p *play) holds(ctx context.Context, c scenario.Condition, sinceSeq int64) (bool, error) {
	switch {
	case c.Event != nil:
		m, err := check.Compile(*c.Event)
		if err != nil {
			return false, err
		}
		for _, e := range p.log.Since(sinceSeq) {
			if m.Matches(e) {
				return true, nil
			}
		}
		return false, nil
	}
	var ok bool
	var err error
	switch {
	case c.Owner == p.sys.Name():
		ok, err = p.sys.Holds(ctx, c.Predicate)
	case p.r.hosts[c.Owner] != nil:
		ok, err = p.r.hosts[c.Owner].Holds(ctx, p.topo, c.Predicate)
	default:
		return false, fmt.Errorf("no plug-in %q in this runner judges %s", c.Owner, describeCondition(c))
	}
	if err != nil && ctx.Err() != nil {
		return false, nil
	}
	return ok, err
}

// act performs the step's action.
func (p *play) act(ctx context.Context, s scenario.Step) error {
	switch {
	case s.Do == "start":
		return p.sys.Start(ctx)
	case s.Fault != nil:
		h, ok := p.topo.Host(s.Fault.Host)
		if !ok {
			return fmt.Errorf("no host %q", s.Fault.Host)
		}
		_, err := h.Control().AddFault(ctx, s.Fault.Rule)
		return err
	case s.Clear != nil:
		for _, h := range p.topo.Hosts() {
			if slices.Contains(s.Clear, "all") {
				if _, err := h.Control().ClearFaults(ctx); err != nil {
					return err
				}
				continue
			}
			st, err := h.Control().Faults(ctx)
			if err != nil {
				return err
			}
			for _, r := range st {
				if slices.Contains(s.Clear, r.ID) {
					if err := h.Control().RemoveFault(ctx, r.ID); err != nil {
						return err
					}
				}
			}
		}
		return nil
	case s.Wait != nil && s.Wait.For != 0:
		return sleepUntil(ctx, time.Now().Add(s.Wait.For.D()))
	case s.Wait != nil:
		return p.waitFor(ctx, s.Wait.Condition, s.Wait.Within.D())
	case s.Note != "":
		p.log.Record(events.Event{Kind: events.Note, Msg: s.Note})
		return nil
	case s.Node != nil:
		nc, ok := p.topo.(NodeController)
		if !ok {
			return fmt.Errorf("the %s backend cannot act on nodes", p.r.backend.Name())
		}
		return nc.NodeAction(ctx, s.Node.Name, s.Node.Action)
	case s.Owner == p.sys.Name():
		return p.sys.Do(ctx, s.Action)
	case p.r.hosts[s.Owner] != nil:
		return p.r.hosts[s.Owner].Do(ctx, p.topo, s.Action)
	}
	return fmt.Errorf("no plug-in %q in this runner performs %s", s.Owner, describeStep(s))
}

// settle waits, after the timeline, until every expectation can be decided
// (none is Pending: a bound not passed yet, a watched state still held, an
// order or a count not yet complete), within the scenario's linger: the
// core's expectations hold the run only within linger, the plug-ins' (which
// carry their own bounds) until the system settles and linger has passed.
func (p *play) settle(ctx context.Context) {
	lingerEnd := time.Now().Add(p.f.LingerFor())
	n := p.notices("")
	for {
		pending, done := p.decided(ctx, lingerEnd)
		if done {
			return
		}
		n.what = "expectations to be decided: " + strings.Join(pending, ", ")
		n.tick()
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollEvery):
		}
	}
}

// decided reports whether the run may end, and else the ids of the
// expectations it waits for.
func (p *play) decided(ctx context.Context, lingerEnd time.Time) ([]string, bool) {
	now := time.Now()
	lingering := now.Before(lingerEnd)
	run := check.Run{Start: p.start, End: now, Events: p.log.All()}
	if !lingering {
		if settled, err := p.sys.Settled(ctx); err == nil && settled {
			return nil, true
		}
	}
	var pending []string
	for _, e := range p.f.Expect {
		if (e.Owner != "" || lingering) && e.Judge.Pending(run, now) {
			pending = append(pending, e.ID)
		}
	}
	return pending, len(pending) == 0
}

// notice records, every r.notice while a wait blocks, what it waits for.
type notice struct {
	p     *play
	what  string
	began time.Time
	next  time.Time
}

func (p *play) notices(what string) *notice {
	now := time.Now()
	return &notice{p: p, what: what, began: now, next: now.Add(p.r.notice)}
}

// tick records a check.Waiting event when one is due.
func (n *notice) tick() {
	now := time.Now()
	if now.Before(n.next) {
		return
	}
	n.next = now.Add(n.p.r.notice)
	waited := now.Sub(n.began).Round(time.Second)
	n.p.log.Record(events.Event{Kind: check.Waiting, Msg: fmt.Sprintf("waiting for: %s (%s so far)", n.what, waited),
		Fields: map[string]any{"waiting_for": n.what, "waited_s": waited.Seconds()}})
}

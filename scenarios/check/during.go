package check

import (
	"fmt"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

// During is the core's expectation on what happens, or what state holds,
// while something else is the case: "the task failed while its job was
// still running", "the task was held while its job ran". The interval is
// one event until another (From until Until: each event like From opens
// one, the next event like Until closes it, or the run's end does), or
// the moment of an event (At). Exactly one of Happens, Never and Holds
// says what is expected:
//
//   - Happens: an event like this occurs inside some interval;
//   - Never: no event like this occurs inside any interval;
//   - Holds: a state, itself an interval (from an event until another),
//     holds throughout every interval (began before it, ends after it).
//
// An interval that never begins fails the expectation: a scenario expects
// the situation it describes to arise.
type During struct {
	From    *Match `yaml:"from"`
	Until   *Match `yaml:"until"`
	At      *Match `yaml:"at"`
	Happens *Match `yaml:"happens"`
	Never   *Match `yaml:"never"`
	Holds   *Span  `yaml:"holds"`
}

// Span is a state as an interval of the history: from an event like From
// until the next like Until (or the end of the run).
type Span struct {
	From  Match  `yaml:"from"`
	Until *Match `yaml:"until"`
}

// Validate checks that d has an interval and one expectation, and that
// its matches compile.
func (d During) Validate() error {
	switch {
	case (d.At != nil) == (d.From != nil):
		return fmt.Errorf("during: give from (with until) or at")
	case d.At != nil && d.Until != nil:
		return fmt.Errorf("during: at is a moment; until goes with from")
	}
	n := 0
	for _, set := range []bool{d.Happens != nil, d.Never != nil, d.Holds != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("during: give exactly one of happens, never and holds")
	}
	if d.At != nil && d.Holds == nil {
		return fmt.Errorf("during: at is a moment, where only holds can be judged")
	}
	for _, m := range []struct {
		name string
		m    *Match
	}{{"from", d.From}, {"until", d.Until}, {"at", d.At}, {"happens", d.Happens}, {"never", d.Never}} {
		if m.m == nil {
			continue
		}
		if err := m.m.Validate(); err != nil {
			return fmt.Errorf("during.%s: %w", m.name, err)
		}
	}
	if h := d.Holds; h != nil {
		if err := h.From.Validate(); err != nil {
			return fmt.Errorf("during.holds.from: %w", err)
		}
		if h.Until != nil {
			if err := h.Until.Validate(); err != nil {
				return fmt.Errorf("during.holds.until: %w", err)
			}
		}
	}
	return nil
}

// interval is a stretch of the history by event index: from the event at
// from until the one at until (len(events) when it has not ended).
type interval struct{ from, until int }

func (iv interval) open(n int) bool { return iv.until == n }

// intervals finds the intervals of from..until in evs; moments (until nil
// and moment set) are zero-length intervals at each matching event.
func intervals(evs []events.Event, from, until *Match, moment bool) ([]interval, error) {
	f, err := Compile(*from)
	if err != nil {
		return nil, err
	}
	var u *Matcher
	if until != nil {
		if u, err = Compile(*until); err != nil {
			return nil, err
		}
	}
	var out []interval
	cur := -1
	for i, ev := range evs {
		if moment {
			if f.Matches(ev) {
				out = append(out, interval{i, i})
			}
			continue
		}
		if cur >= 0 {
			if u != nil && u.Matches(ev) {
				out = append(out, interval{cur, i})
				cur = -1
			}
			continue
		}
		if f.Matches(ev) {
			cur = i
		}
	}
	if cur >= 0 {
		out = append(out, interval{cur, len(evs)})
	}
	return out, nil
}

func (d During) spans(run Run) ([]interval, error) {
	if d.At != nil {
		return intervals(run.Events, d.At, nil, true)
	}
	return intervals(run.Events, d.From, d.Until, false)
}

func (d During) describe() string {
	if d.At != nil {
		return "at " + d.At.Describe()
	}
	s := "from " + d.From.Describe()
	if d.Until != nil {
		s += " until " + d.Until.Describe()
	}
	return s
}

func seqOf(run Run, i int) string {
	if i >= len(run.Events) {
		return "the end"
	}
	return fmt.Sprintf("#%d (+%s)", run.Events[i].Seq, Since(run.Start, run.Events[i].Time))
}

// Evaluate implements Expectation.
func (d During) Evaluate(run Run) Result {
	ivs, err := d.spans(run)
	if err != nil {
		return Result{Detail: err.Error()}
	}
	if len(ivs) == 0 {
		return Result{Detail: fmt.Sprintf("the interval never began: no %s", d.describe())}
	}
	switch {
	case d.Happens != nil, d.Never != nil:
		m := d.Happens
		if m == nil {
			m = d.Never
		}
		c, err := Compile(*m)
		if err != nil {
			return Result{Detail: err.Error()}
		}
		for _, iv := range ivs {
			for i := iv.from + 1; i < iv.until; i++ {
				if !c.Matches(run.Events[i]) {
					continue
				}
				what := fmt.Sprintf("%s at %s, during %s..%s", m.Describe(), seqOf(run, i), seqOf(run, iv.from), seqOf(run, iv.until))
				if d.Never != nil {
					return Result{Detail: "happened: " + what}
				}
				return Result{OK: true, Detail: what}
			}
		}
		if d.Never != nil {
			return Result{OK: true, Detail: fmt.Sprintf("no %s in %d intervals %s", m.Describe(), len(ivs), d.describe())}
		}
		return Result{Detail: fmt.Sprintf("no %s in %d intervals %s", m.Describe(), len(ivs), d.describe())}
	default:
		states, err := intervals(run.Events, &d.Holds.From, d.Holds.Until, false)
		if err != nil {
			return Result{Detail: err.Error()}
		}
		n := len(run.Events)
		for _, iv := range ivs {
			covered := false
			for _, st := range states {
				ends := st.until > iv.until || st.until == iv.until && iv.until > iv.from // a moment must be inside
				if st.from < iv.from && (ends || st.open(n)) {
					covered = true
					break
				}
			}
			if !covered {
				return Result{Detail: fmt.Sprintf("state %s did not hold throughout %s..%s", d.Holds.From.Describe(), seqOf(run, iv.from), seqOf(run, iv.until))}
			}
		}
		return Result{OK: true, Detail: fmt.Sprintf("state %s held throughout %d intervals %s", d.Holds.From.Describe(), len(ivs), d.describe())}
	}
}

// Pending implements Expectation: happens until it happened; never and
// holds while no interval has begun or one is open.
func (d During) Pending(run Run, now time.Time) bool {
	if d.Happens != nil && d.Evaluate(run).OK {
		return false
	}
	// Otherwise as long as an interval is open or none has begun: once the
	// last one closed, only an interval that has not begun could change
	// the verdict, and the run does not wait on what may never begin.
	ivs, err := d.spans(run)
	if err != nil {
		return false
	}
	return len(ivs) == 0 || ivs[len(ivs)-1].open(len(run.Events))
}

// String describes d (for messages).
func (d During) String() string {
	var what string
	switch {
	case d.Happens != nil:
		what = "happens " + d.Happens.Describe()
	case d.Never != nil:
		what = "never " + d.Never.Describe()
	case d.Holds != nil:
		what = "holds " + d.Holds.From.Describe()
	}
	return strings.TrimSpace("during " + d.describe() + " " + what)
}

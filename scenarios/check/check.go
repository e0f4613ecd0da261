// Package check judges a scenario run by its recorded history, Jepsen style:
// the runner only records (ssh commands, batch-system calls and job
// states, fault activations, what the system under test was seen doing),
// and the expectations of the scenario are evaluated over that history
// afterwards. It holds what every expectation shares (the history, the
// verdict on one expectation, event matches) and the core's own
// expectations (event counts and orders); the systems under test and the
// batch systems bring their own Expectations as plug-ins.
package check

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

// Step is the kind of the events the runner records for each timeline step.
const Step events.Kind = "scenario.step"

// Waiting is the kind of the events the runner records while a wait
// blocks (a wait: or when: condition, or the settling after the
// timeline): what it is waiting for and since when, so that a run that
// hangs says why.
const Waiting events.Kind = "scenario.waiting"

// Result is the verdict on one expectation.
type Result struct {
	ID     string `json:"id"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Run is the history of one scenario run and its time span.
type Run struct {
	Start, End time.Time
	Events     []events.Event
}

// Expectation is one thing a run is judged by, as its plug-in (or the
// core) parsed it from the scenario file.
type Expectation interface {
	// Evaluate judges the whole history. The runner sets Result.ID.
	Evaluate(run Run) Result
	// Pending reports whether the run should go on, at now, for the sake
	// of this expectation: its verdict may still change (a bound not yet
	// passed, a watched state still held). When no expectation is pending
	// (or the system under test has settled) the runner stops waiting.
	Pending(run Run, now time.Time) bool
}

// Since formats t as an offset from the run's start (+3.2s).
func Since(start, t time.Time) string { return t.Sub(start).Round(100 * time.Millisecond).String() }

// OrNone joins s, or says "nothing".
func OrNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

// Match selects events of the history.
type Match struct {
	Kind string `yaml:"kind"` // exact, or a prefix ending in "." (e.g. "ssh.")
	Host string `yaml:"host"`
	// Msg is a regular expression over the event's message.
	Msg string `yaml:"msg"`
	// Fields are regular expressions over the event's fields (as text).
	Fields map[string]string `yaml:"fields"`
}

// Validate checks that m names a kind and that its expressions compile.
func (m Match) Validate() error {
	if m.Kind == "" {
		return fmt.Errorf("an event match needs kind (e.g. pbs.call, ssh.exec, fault.activation, cylc.task, or a prefix such as ssh.)")
	}
	_, err := Compile(m)
	return err
}

// Count bounds how many events match: the core's events expectation.
type Count struct {
	Match `yaml:",inline"`
	Count *int `yaml:"count"`
	Min   *int `yaml:"min"`
	Max   *int `yaml:"max"`
}

// Order is the core's order expectation: events like these happened in
// this order.
type Order []Match

// Matcher is a compiled event match.
type Matcher struct {
	m      Match
	msg    *regexp.Regexp
	fields map[string]*regexp.Regexp
}

// Compile prepares a match (validated by the scenario parser already).
func Compile(m Match) (*Matcher, error) {
	c := &Matcher{m: m, fields: map[string]*regexp.Regexp{}}
	var err error
	if m.Msg != "" {
		if c.msg, err = regexp.Compile(m.Msg); err != nil {
			return nil, fmt.Errorf("msg: %w", err)
		}
	}
	for k, v := range m.Fields {
		if c.fields[k], err = regexp.Compile(v); err != nil {
			return nil, fmt.Errorf("fields.%s: %w", k, err)
		}
	}
	return c, nil
}

// Matches reports whether ev is selected.
func (c *Matcher) Matches(ev events.Event) bool {
	k := string(ev.Kind)
	if strings.HasSuffix(c.m.Kind, ".") {
		if !strings.HasPrefix(k, c.m.Kind) {
			return false
		}
	} else if k != c.m.Kind {
		return false
	}
	if c.m.Host != "" && ev.Host != c.m.Host {
		return false
	}
	if c.msg != nil && !c.msg.MatchString(ev.Msg) {
		return false
	}
	for k, re := range c.fields {
		v, ok := ev.Fields[k]
		if !ok || !re.MatchString(fieldText(v)) {
			return false
		}
	}
	return true
}

func fieldText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return strings.Join(x, " ")
	case []any:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = fmt.Sprint(e)
		}
		return strings.Join(s, " ")
	}
	return fmt.Sprint(v)
}

// Describe is the match as text, for results.
func (m Match) Describe() string {
	s := m.Kind
	if m.Host != "" {
		s += "@" + m.Host
	}
	if m.Msg != "" {
		s += fmt.Sprintf(" msg~%q", m.Msg)
	}
	keys := make([]string, 0, len(m.Fields))
	for k := range m.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s += fmt.Sprintf(" %s~%q", k, m.Fields[k])
	}
	return s
}

// Pending implements Expectation: a count below its count or min may
// still rise to it (a max only, or one reached, is decided).
func (c Count) Pending(run Run, _ time.Time) bool {
	want := -1
	switch {
	case c.Count != nil:
		want = *c.Count
	case c.Min != nil:
		want = *c.Min
	}
	if want < 0 {
		return false
	}
	m, err := Compile(c.Match)
	if err != nil {
		return false
	}
	n := 0
	for _, ev := range run.Events {
		if m.Matches(ev) {
			n++
		}
	}
	return n < want
}

// Evaluate implements Expectation.
func (c Count) Evaluate(run Run) Result {
	m, err := Compile(c.Match)
	if err != nil {
		return Result{Detail: err.Error()}
	}
	n := 0
	for _, ev := range run.Events {
		if m.Matches(ev) {
			n++
		}
	}
	want := c.Match.Describe()
	switch {
	case c.Count != nil && n != *c.Count:
		return Result{Detail: fmt.Sprintf("%d events %s, want exactly %d", n, want, *c.Count)}
	case c.Min != nil && n < *c.Min:
		return Result{Detail: fmt.Sprintf("%d events %s, want at least %d", n, want, *c.Min)}
	case c.Max != nil && n > *c.Max:
		return Result{Detail: fmt.Sprintf("%d events %s, want at most %d", n, want, *c.Max)}
	}
	return Result{OK: true, Detail: fmt.Sprintf("%d events %s", n, want)}
}

// Pending implements Expectation: an order not yet complete may still be.
func (ms Order) Pending(run Run, _ time.Time) bool { return !ms.Evaluate(run).OK }

// Evaluate implements Expectation.
func (ms Order) Evaluate(run Run) Result {
	i := 0
	var at []string
	for _, m := range ms {
		c, err := Compile(m)
		if err != nil {
			return Result{Detail: err.Error()}
		}
		found := false
		for ; i < len(run.Events); i++ {
			if c.Matches(run.Events[i]) {
				at = append(at, fmt.Sprintf("#%d", run.Events[i].Seq))
				found = true
				i++
				break
			}
		}
		if !found {
			return Result{Detail: fmt.Sprintf("no %s after %s", m.Describe(), strings.Join(append([]string{"the start"}, at...), ", "))}
		}
	}
	return Result{OK: true, Detail: "in order at " + strings.Join(at, ", ")}
}

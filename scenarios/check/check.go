// Package check judges a scenario run by its recorded history, Jepsen style:
// the runner only records (ssh commands, PBS calls and job states, fault
// activations, task states the Cylc driver saw, hub server states), and the
// expectations of the scenario are evaluated over that history afterwards.
package check

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// Event kinds drivers record for the checkers. Fields:
//   - TaskState: task ("1/foo"), state, submit_num, job_id (when known), platform
//   - ServerState: user, server (a named server's name, "" or absent for
//     the default server), state (pending, ready, failed, stopped,
//     refused, removed), message
const (
	TaskState   events.Kind = "cylc.task"
	ServerState events.Kind = "hub.server"
	Step        events.Kind = "scenario.step"
)

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

// Evaluate judges every expectation of f over run.
func Evaluate(f *scenario.File, run Run) []Result {
	out := make([]Result, len(f.Expect))
	for i, e := range f.Expect {
		out[i] = evaluate(e, run)
		out[i].ID = e.ID
	}
	return out
}

func evaluate(e scenario.Expectation, run Run) Result {
	switch {
	case e.Task != "" && e.Reaches != "":
		return reaches(e, run)
	case e.Task != "" && e.Never != "":
		return never(e, run)
	case e.Stuck != nil:
		return stuck(*e.Stuck, run)
	case e.Events != nil:
		return count(*e.Events, run)
	case len(e.Order) > 0:
		return order(e.Order, run)
	case e.Server != "":
		return server(e, run)
	}
	return Result{Detail: "empty expectation"}
}

// TaskMatches reports whether a task id ("1/foo") is selected by sel ("1/foo" or "foo").
func TaskMatches(sel, task string) bool {
	if strings.Contains(sel, "/") {
		return sel == task
	}
	_, name, _ := strings.Cut(task, "/")
	return name == sel
}

// interval is a span of time a task spent in one state.
type interval struct {
	task, state, jobID string
	from, to           time.Time
	open               bool // still in the state when the run ended
}

// taskIntervals rebuilds, from the TaskState events, the spans each task
// spent in each state.
func taskIntervals(run Run) []interval {
	var out []interval
	current := map[string]int{} // task -> index of its open interval in out
	for _, ev := range run.Events {
		if ev.Kind != TaskState {
			continue
		}
		task, _ := ev.Fields["task"].(string)
		state, _ := ev.Fields["state"].(string)
		job, _ := ev.Fields["job_id"].(string)
		if i, ok := current[task]; ok {
			if out[i].state == state {
				if job != "" {
					out[i].jobID = job
				}
				continue
			}
			out[i].to, out[i].open = ev.Time, false
		}
		out = append(out, interval{task: task, state: state, jobID: job, from: ev.Time, to: run.End, open: true})
		current[task] = len(out) - 1
	}
	return out
}

func reaches(e scenario.Expectation, run Run) Result {
	deadline := run.Start.Add(e.Within.D())
	var seen []string
	for _, iv := range taskIntervals(run) {
		if !TaskMatches(e.Task, iv.task) {
			continue
		}
		seen = append(seen, fmt.Sprintf("%s %s at +%s", iv.task, iv.state, since(run.Start, iv.from)))
		if iv.state == e.Reaches {
			if iv.from.After(deadline) {
				return Result{Detail: fmt.Sprintf("%s reached %s at +%s, later than %s", iv.task, e.Reaches, since(run.Start, iv.from), e.Within.D())}
			}
			return Result{OK: true, Detail: fmt.Sprintf("%s reached %s at +%s (bound %s)", iv.task, e.Reaches, since(run.Start, iv.from), e.Within.D())}
		}
	}
	if len(seen) == 0 {
		return Result{Detail: fmt.Sprintf("task %s was never seen", e.Task)}
	}
	return Result{Detail: fmt.Sprintf("task %s never reached %s within %s; its states: %s", e.Task, e.Reaches, e.Within.D(), strings.Join(seen, ", "))}
}

func never(e scenario.Expectation, run Run) Result {
	limit := e.LongerThan.D()
	longest := time.Duration(0)
	for _, iv := range taskIntervals(run) {
		if !TaskMatches(e.Task, iv.task) || iv.state != e.Never {
			continue
		}
		d := iv.to.Sub(iv.from)
		if d > limit {
			still := ""
			if iv.open {
				still = " and was still there when the run ended"
			}
			return Result{Detail: fmt.Sprintf("%s stayed in %s for %s from +%s (bound %s)%s", iv.task, iv.state, d.Round(time.Second), since(run.Start, iv.from), limit, still)}
		}
		longest = max(longest, d)
	}
	return Result{OK: true, Detail: fmt.Sprintf("%s never held %s longer than %s (longest %s)", e.Task, e.Never, limit, longest.Round(time.Millisecond))}
}

// stuck is the generic stuck detector: a task in one of the states past
// the bound is stuck unless the batch system showed its job queued (Q, H or
// W) at the end of that span.
func stuck(s scenario.Stuck, run Run) Result {
	limit := s.LongerThan.D()
	var bad []string
	for _, iv := range taskIntervals(run) {
		if !slices.Contains(s.States, iv.state) || iv.to.Sub(iv.from) <= limit {
			continue
		}
		if iv.jobID != "" && slices.Contains([]string{"Q", "H", "W"}, pbsStateAt(run, iv.jobID, iv.to)) {
			continue
		}
		msg := fmt.Sprintf("%s in %s for %s from +%s", iv.task, iv.state, iv.to.Sub(iv.from).Round(time.Second), since(run.Start, iv.from))
		if iv.jobID != "" {
			msg += fmt.Sprintf(" (job %s: %s)", iv.jobID, orUnknown(pbsStateAt(run, iv.jobID, iv.to)))
		}
		if iv.open {
			msg += ", still there at the end"
		}
		bad = append(bad, msg)
	}
	if len(bad) > 0 {
		return Result{Detail: "stuck: " + strings.Join(bad, "; ")}
	}
	return Result{OK: true, Detail: fmt.Sprintf("no task stayed in %s longer than %s without a queued job", strings.Join(s.States, " or "), limit)}
}

func orUnknown(s string) string {
	if s == "" {
		return "not known to PBS"
	}
	return "state " + s
}

// pbsStateAt is the last state the PBS server reported for job id at or before t.
func pbsStateAt(run Run, id string, t time.Time) string {
	state := ""
	seq, _, _ := strings.Cut(id, ".")
	for _, ev := range run.Events {
		if ev.Kind != events.PBSJobState || ev.Time.After(t) {
			continue
		}
		j, _ := ev.Fields["job"].(string)
		if js, _, _ := strings.Cut(j, "."); j == id || js == seq {
			state, _ = ev.Fields["to"].(string)
		}
	}
	return state
}

// Matcher is a compiled event match.
type Matcher struct {
	m      scenario.Match
	msg    *regexp.Regexp
	fields map[string]*regexp.Regexp
}

// Compile prepares a match (validated by the scenario parser already).
func Compile(m scenario.Match) (*Matcher, error) {
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

func describeMatch(m scenario.Match) string {
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

func count(c scenario.Count, run Run) Result {
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
	want := describeMatch(c.Match)
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

func order(ms []scenario.Match, run Run) Result {
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
			return Result{Detail: fmt.Sprintf("no %s after %s", describeMatch(m), strings.Join(append([]string{"the start"}, at...), ", "))}
		}
	}
	return Result{OK: true, Detail: "in order at " + strings.Join(at, ", ")}
}

func server(e scenario.Expectation, run Run) Result {
	want := "ready"
	if e.Failed != nil && *e.Failed {
		want = "failed"
	}
	if e.Ready != nil && !*e.Ready {
		want = "not ready"
	}
	deadline := run.Start.Add(e.Within.D())
	ref, err := scenario.ParseServerRef(e.Server)
	if err != nil {
		return Result{Detail: err.Error()}
	}
	var seen []string
	for _, ev := range run.Events {
		if ev.Kind != ServerState || ev.Fields["user"] != ref.User {
			continue
		}
		if name, _ := ev.Fields["server"].(string); name != ref.Name {
			continue
		}
		st, _ := ev.Fields["state"].(string)
		seen = append(seen, fmt.Sprintf("%s at +%s", st, since(run.Start, ev.Time)))
		if want == "not ready" {
			if st == "ready" {
				return Result{Detail: fmt.Sprintf("server %s became ready at +%s", e.Server, since(run.Start, ev.Time))}
			}
			continue
		}
		if st == want {
			if ev.Time.After(deadline) {
				return Result{Detail: fmt.Sprintf("server %s was %s only at +%s (bound %s)", e.Server, want, since(run.Start, ev.Time), e.Within.D())}
			}
			return Result{OK: true, Detail: fmt.Sprintf("server %s %s at +%s", e.Server, want, since(run.Start, ev.Time))}
		}
	}
	if want == "not ready" {
		return Result{OK: true, Detail: fmt.Sprintf("server %s never became ready (%s)", e.Server, strings.Join(seen, ", "))}
	}
	return Result{Detail: fmt.Sprintf("server %s never %s within %s; seen: %s", e.Server, want, e.Within.D(), orNone(seen))}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

func since(start, t time.Time) string { return t.Sub(start).Round(100 * time.Millisecond).String() }

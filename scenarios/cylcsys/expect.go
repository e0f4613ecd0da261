package cylcsys

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// TaskExpectation is a task expectation: Task ("1/foo" or "foo") reaches
// a state within a bound of the scenario start, or never holds a state
// longer than a bound.
type TaskExpectation struct {
	Task    string            `yaml:"task"`
	Reaches string            `yaml:"reaches"` // the task reaches this state...
	Within  scenario.Duration `yaml:"within"`  // ...within this long of the scenario start
	// Never with LongerThan: the task never holds this state longer than that.
	Never      string            `yaml:"never"`
	LongerThan scenario.Duration `yaml:"longer_than"`
}

// Stuck is the generic stuck detector: no task stays in one of States
// longer than LongerThan unless the batch system shows its job queued.
type Stuck struct {
	States     []string          `yaml:"states"` // default: preparing, submitted
	LongerThan scenario.Duration `yaml:"longer_than"`
}

// Pending implements check.Expectation: not yet failed, and some task sits
// in a watched state.
func (s *Stuck) Pending(run check.Run, now time.Time) bool {
	return s.Evaluate(run).OK && inWatchedState("", s.States, run)
}

// inWatchedState reports whether some task selected by sel ("" for all)
// is currently in one of states.
func inWatchedState(sel string, states []string, run check.Run) bool {
	current := map[string]string{}
	for _, ev := range run.Events {
		if ev.Kind == TaskState {
			t, _ := ev.Fields["task"].(string)
			s, _ := ev.Fields["state"].(string)
			if sel == "" || taskMatches(sel, t) {
				current[t] = s
			}
		}
	}
	for _, s := range current {
		if slices.Contains(states, s) {
			return true
		}
	}
	return false
}

// interval is a span of time a task spent in one state.
type interval struct {
	task, state, jobID string
	from, to           time.Time
	open               bool // still in the state when the run ended
}

// taskIntervals rebuilds, from the TaskState events, the spans each task
// spent in each state.
func taskIntervals(run check.Run) []interval {
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

// Evaluate implements check.Expectation.
func (e *TaskExpectation) Evaluate(run check.Run) check.Result {
	if e.Reaches != "" {
		return e.reaches(run)
	}
	return e.never(run)
}

// Pending implements check.Expectation: a reaches not yet met before its
// bound, or a never (not yet failed) whose task sits in the watched state.
func (e *TaskExpectation) Pending(run check.Run, now time.Time) bool {
	res := e.Evaluate(run)
	if e.Reaches != "" {
		return !res.OK && now.Before(run.Start.Add(e.Within.D()))
	}
	return res.OK && inWatchedState(e.Task, []string{e.Never}, run)
}

func (e *TaskExpectation) reaches(run check.Run) check.Result {
	deadline := run.Start.Add(e.Within.D())
	var seen []string
	for _, iv := range taskIntervals(run) {
		if !taskMatches(e.Task, iv.task) {
			continue
		}
		seen = append(seen, fmt.Sprintf("%s %s at +%s", iv.task, iv.state, check.Since(run.Start, iv.from)))
		if iv.state == e.Reaches {
			if iv.from.After(deadline) {
				return check.Result{Detail: fmt.Sprintf("%s reached %s at +%s, later than %s", iv.task, e.Reaches, check.Since(run.Start, iv.from), e.Within.D())}
			}
			return check.Result{OK: true, Detail: fmt.Sprintf("%s reached %s at +%s (bound %s)", iv.task, e.Reaches, check.Since(run.Start, iv.from), e.Within.D())}
		}
	}
	if len(seen) == 0 {
		return check.Result{Detail: fmt.Sprintf("task %s was never seen", e.Task)}
	}
	return check.Result{Detail: fmt.Sprintf("task %s never reached %s within %s; its states: %s", e.Task, e.Reaches, e.Within.D(), strings.Join(seen, ", "))}
}

func (e *TaskExpectation) never(run check.Run) check.Result {
	limit := e.LongerThan.D()
	longest := time.Duration(0)
	for _, iv := range taskIntervals(run) {
		if !taskMatches(e.Task, iv.task) || iv.state != e.Never {
			continue
		}
		d := iv.to.Sub(iv.from)
		if d > limit {
			still := ""
			if iv.open {
				still = " and was still there when the run ended"
			}
			return check.Result{Detail: fmt.Sprintf("%s stayed in %s for %s from +%s (bound %s)%s", iv.task, iv.state, d.Round(time.Second), check.Since(run.Start, iv.from), limit, still)}
		}
		longest = max(longest, d)
	}
	return check.Result{OK: true, Detail: fmt.Sprintf("%s never held %s longer than %s (longest %s)", e.Task, e.Never, limit, longest.Round(time.Millisecond))}
}

// stuck is the generic stuck detector: a task in one of the states past
// the bound is stuck unless the batch system showed its job queued (Q, H or
// W) at the end of that span.
// Evaluate implements check.Expectation.
func (s *Stuck) Evaluate(run check.Run) check.Result {
	limit := s.LongerThan.D()
	var bad []string
	for _, iv := range taskIntervals(run) {
		if !slices.Contains(s.States, iv.state) || iv.to.Sub(iv.from) <= limit {
			continue
		}
		if iv.jobID != "" && slices.Contains([]string{"Q", "H", "W"}, pbsStateAt(run, iv.jobID, iv.to)) {
			continue
		}
		msg := fmt.Sprintf("%s in %s for %s from +%s", iv.task, iv.state, iv.to.Sub(iv.from).Round(time.Second), check.Since(run.Start, iv.from))
		if iv.jobID != "" {
			msg += fmt.Sprintf(" (job %s: %s)", iv.jobID, orUnknown(pbsStateAt(run, iv.jobID, iv.to)))
		}
		if iv.open {
			msg += ", still there at the end"
		}
		bad = append(bad, msg)
	}
	if len(bad) > 0 {
		return check.Result{Detail: "stuck: " + strings.Join(bad, "; ")}
	}
	return check.Result{OK: true, Detail: fmt.Sprintf("no task stayed in %s longer than %s without a queued job", strings.Join(s.States, " or "), limit)}
}

func orUnknown(s string) string {
	if s == "" {
		return "not known to PBS"
	}
	return "state " + s
}

// pbsStateAt is the last state the PBS server reported for job id at or before t.
func pbsStateAt(run check.Run, id string, t time.Time) string {
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

package check

import (
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func n(i int) *int { return &i }

// history: a fault fires, a reload step, then two PBS calls.
func history() Run {
	evs := []events.Event{
		{Time: at(1), Kind: "cylc.task", Fields: map[string]any{"task": "1/foo", "state": "waiting"}},
		{Time: at(5), Kind: events.FaultActivate, Fields: map[string]any{"rule": "slow-qsub"}},
		{Time: at(6), Kind: Step, Msg: "reload"},
		{Time: at(7), Kind: events.PBSCall, Host: "fakehpc", Fields: map[string]any{"command": "qsub", "exit": 0}},
		{Time: at(8), Kind: events.PBSCall, Host: "fakehpc", Fields: map[string]any{"command": "qstat", "exit": 0, "args": []string{"-f", "7"}}},
	}
	for i := range evs {
		evs[i].Seq = int64(i + 1)
	}
	return Run{Start: t0, End: at(300), Events: evs}
}

func TestCoreExpectationsOverAHistory(t *testing.T) {
	cases := []struct {
		e       Expectation
		ok      bool
		detail  string
		pending bool // the verdict may still change: a min or an order not yet reached
	}{
		{Count{Match: Match{Kind: "pbs.call", Fields: map[string]string{"command": "^qsub$"}}, Count: n(1)}, true, "1 events", false},
		{Count{Match: Match{Kind: "pbs."}, Max: n(1)}, false, "want at most 1", false},
		{Count{Match: Match{Kind: "pbs.", Host: "other"}, Min: n(1)}, false, "want at least 1", true},
		{Count{Match: Match{Kind: "pbs.call", Fields: map[string]string{"args": "^-f 7$"}}, Count: n(1)}, true, "1 events", false},
		{Order{{Kind: "fault.activation"}, {Kind: "scenario.step", Msg: "reload"}, {Kind: "pbs.call"}}, true, "#2, #3, #4", false},
		{Order{{Kind: "pbs.call"}, {Kind: "fault.activation"}}, false, "no fault.activation after", true},
	}
	run := history()
	for _, c := range cases {
		r := c.e.Evaluate(run)
		if r.OK != c.ok || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%+v\n  got ok=%v %q\n  want ok=%v containing %q", c.e, r.OK, r.Detail, c.ok, c.detail)
		}
		if c.e.Pending(run, at(1)) != c.pending {
			t.Errorf("%+v: pending %v, want %v", c.e, !c.pending, c.pending)
		}
	}
}

func TestMatchValidate(t *testing.T) {
	if err := (Match{}).Validate(); err == nil || !strings.Contains(err.Error(), "needs kind") {
		t.Errorf("a match without kind: %v", err)
	}
	if err := (Match{Kind: "x", Msg: "("}).Validate(); err == nil || !strings.Contains(err.Error(), "msg") {
		t.Errorf("a bad msg expression: %v", err)
	}
	if err := (Match{Kind: "x", Fields: map[string]string{"a": "["}}).Validate(); err == nil || !strings.Contains(err.Error(), "fields.a") {
		t.Errorf("a bad field expression: %v", err)
	}
}

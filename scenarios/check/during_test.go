package check

import (
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

// A history where task foo fails while its PBS job still runs, and is
// held from before the job starts until after it ends.
func duringHistory(n int) Run {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []events.Event{
		{Kind: "cylc.task", Fields: map[string]any{"task": "1/foo", "state": "waiting", "held": true}},
		{Kind: "pbs.job", Fields: map[string]any{"name": "foo", "from": "Q", "to": "R"}},
		{Kind: "cylc.task", Fields: map[string]any{"task": "1/foo", "state": "failed", "held": true}},
		{Kind: "pbs.job", Fields: map[string]any{"name": "foo", "from": "R", "to": "E"}},
		{Kind: "cylc.task", Fields: map[string]any{"task": "1/foo", "state": "failed"}, Msg: "released"},
	}
	run := Run{Start: t0}
	for i, e := range all[:n] {
		e.Seq, e.Time = int64(i+1), t0.Add(time.Duration(i)*time.Second)
		run.Events = append(run.Events, e)
	}
	run.End = t0.Add(time.Minute)
	return run
}

func TestDuringJudgesWhatHappensAndWhatHoldsInAnInterval(t *testing.T) {
	jobRuns := &Match{Kind: "pbs.job", Fields: map[string]string{"name": "^foo$", "to": "^R$"}}
	jobEnds := &Match{Kind: "pbs.job", Fields: map[string]string{"name": "^foo$", "from": "^R$"}}
	failed := &Match{Kind: "cylc.task", Fields: map[string]string{"task": "^1/foo$", "state": "^failed$"}}
	held := &Span{From: Match{Kind: "cylc.task", Fields: map[string]string{"held": "true"}}, Until: &Match{Kind: "cylc.task", Msg: "released"}}
	full := duringHistory(5)
	for _, c := range []struct {
		name string
		d    During
		ok   bool
		want string
	}{
		{"failed while the job ran", During{From: jobRuns, Until: jobEnds, Happens: failed}, true, "during #2 (+1s)..#4 (+3s)"},
		{"never failed while it ran", During{From: jobRuns, Until: jobEnds, Never: failed}, false, "happened: cylc.task"},
		{"no success while it ran", During{From: jobRuns, Until: jobEnds, Never: &Match{Kind: "cylc.task", Fields: map[string]string{"state": "succeeded"}}}, true, "in 1 intervals"},
		{"held while the job ran", During{From: jobRuns, Until: jobEnds, Holds: held}, true, "held throughout 1 intervals"},
		{"held at the failure", During{At: failed, Holds: held}, false, "did not hold throughout #5"},
		{"running at the failure", During{At: &Match{Kind: "cylc.task", Fields: map[string]string{"state": "^failed$"}, Msg: "^$"}, Holds: &Span{From: *jobRuns, Until: jobEnds}}, true, "held throughout"},
		{"an interval that never began", During{From: &Match{Kind: "pbs.job", Fields: map[string]string{"to": "^H$"}}, Happens: failed}, false, "the interval never began"},
	} {
		if err := c.d.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		res := c.d.Evaluate(full)
		if res.OK != c.ok || !strings.Contains(res.Detail, c.want) {
			t.Errorf("%s: ok %v %q, want %v and %q", c.name, res.OK, res.Detail, c.ok, c.want)
		}
	}
	// Undecided while the interval is open or has not begun; decided once it closed.
	happens := During{From: jobRuns, Until: jobEnds, Happens: failed}
	never := During{From: jobRuns, Until: jobEnds, Never: &Match{Kind: "x"}}
	for n, want := range map[int]bool{1: true, 2: true, 4: false} {
		if got := never.Pending(duringHistory(n), time.Time{}); got != want {
			t.Errorf("never, after %d events: pending %v, want %v", n, got, want)
		}
	}
	if !happens.Pending(duringHistory(2), time.Time{}) || happens.Pending(duringHistory(3), time.Time{}) {
		t.Error("happens: pending until it happened")
	}
	// Decided (failed) once its interval closed without it.
	succeeded := During{From: jobRuns, Until: jobEnds, Happens: &Match{Kind: "cylc.task", Fields: map[string]string{"state": "^succeeded$"}}}
	if !succeeded.Pending(duringHistory(3), time.Time{}) || succeeded.Pending(duringHistory(4), time.Time{}) {
		t.Error("happens: pending while the interval is open, decided once it closed without it")
	}
	for _, bad := range []struct {
		d    During
		want string
	}{
		{During{Happens: failed}, "give from (with until) or at"},
		{During{From: jobRuns, Happens: failed, Never: failed}, "exactly one of happens, never and holds"},
		{During{At: failed, Happens: failed}, "only holds"},
		{During{From: jobRuns, Happens: &Match{Kind: "x", Msg: "("}}, "during.happens: msg"},
	} {
		if err := bad.d.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad.d, err, bad.want)
		}
	}
}

// Counts and orders not yet complete are pending: the run may wait for them.
func TestCountAndOrderArePendingUntilComplete(t *testing.T) {
	one, two := 1, 2
	run := duringHistory(2)
	if !(Count{Match: Match{Kind: "pbs.job"}, Min: &two}).Pending(run, time.Time{}) || (Count{Match: Match{Kind: "pbs.job"}, Count: &one}).Pending(run, time.Time{}) ||
		(Count{Match: Match{Kind: "pbs.job"}, Max: &one}).Pending(run, time.Time{}) {
		t.Error("count pending")
	}
	o := Order{{Kind: "pbs.job"}, {Kind: "cylc.task", Fields: map[string]string{"state": "failed"}}}
	if !o.Pending(run, time.Time{}) || o.Pending(duringHistory(3), time.Time{}) {
		t.Error("order pending")
	}
}

package cylcsys

import (
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func task(s int, name, state, job string) events.Event {
	return events.Event{Time: at(s), Kind: TaskState, Fields: map[string]any{"task": name, "state": state, "job_id": job}}
}

func pbs(s int, job, to string) events.Event {
	return events.Event{Time: at(s), Kind: events.PBSJobState, Fields: map[string]any{"job": job, "to": to}}
}

func d(s int) scenario.Duration { return scenario.Duration(time.Duration(s) * time.Second) }

// A history in which 1/foo got stuck in preparing after a reload (the
// incident), and 1/bar was submitted and sat queued in PBS for a long time
// (not stuck: the batch system shows it queued).
func incident() check.Run {
	evs := []events.Event{
		task(1, "1/foo", "waiting", ""),
		task(1, "1/bar", "waiting", ""),
		task(2, "1/bar", "preparing", ""),
		task(3, "1/bar", "submitted", "7.fakehpc"),
		pbs(3, "7.fakehpc", "Q"),
		{Time: at(5), Kind: events.FaultActivate, Fields: map[string]any{"rule": "slow-qsub"}},
		task(5, "1/foo", "preparing", ""),
		{Time: at(6), Kind: "scenario.step", Msg: "reload"},
		{Time: at(7), Kind: events.PBSCall, Fields: map[string]any{"command": "qsub", "exit": 0}},
		{Time: at(8), Kind: events.PBSCall, Fields: map[string]any{"command": "qstat", "exit": 0}},
	}
	for i := range evs {
		evs[i].Seq = int64(i + 1)
	}
	return check.Run{Start: t0, End: at(300), Events: evs}
}

func TestExpectationsOverAnIncidentHistory(t *testing.T) {
	cases := []struct {
		e      check.Expectation
		ok     bool
		detail string
	}{
		{&TaskExpectation{Task: "1/bar", Reaches: "submitted", Within: d(10)}, true, "reached submitted at +3s"},
		{&TaskExpectation{Task: "1/bar", Reaches: "submitted", Within: d(1)}, false, "later than 1s"},
		{&TaskExpectation{Task: "foo", Reaches: "succeeded", Within: d(60)}, false, "never reached succeeded"},
		{&TaskExpectation{Task: "1/baz", Reaches: "succeeded", Within: d(60)}, false, "never seen"},
		{&TaskExpectation{Task: "1/foo", Never: "preparing", LongerThan: d(60)}, false, "stayed in preparing for 4m55s from +5s (bound 1m0s) and was still there"},
		{&TaskExpectation{Task: "1/bar", Never: "preparing", LongerThan: d(60)}, true, "longest 1s"},
		{&Stuck{States: []string{"preparing", "submitted"}, LongerThan: d(90)}, false, "1/foo in preparing"},
	}
	run := incident()
	for _, c := range cases {
		r := c.e.Evaluate(run)
		if r.OK != c.ok || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%+v\n  got ok=%v %q\n  want ok=%v containing %q", c.e, r.OK, r.Detail, c.ok, c.detail)
		}
	}
}

func TestStuckDetectorExcusesQueuedJobs(t *testing.T) {
	run := incident()
	r := (&Stuck{States: []string{"submitted"}, LongerThan: d(60)}).Evaluate(run)
	if !r.OK {
		t.Fatalf("1/bar sat queued in PBS, yet the detector says %q", r.Detail)
	}
	// The same, but PBS lost the job: now it is stuck.
	run.Events = append(run.Events, pbs(100, "7.fakehpc", "F"))
	r = (&Stuck{States: []string{"submitted"}, LongerThan: d(60)}).Evaluate(run)
	if r.OK || !strings.Contains(r.Detail, "job 7.fakehpc: state F") {
		t.Fatalf("a submitted task whose job finished in PBS was not flagged: %q", r.Detail)
	}
}

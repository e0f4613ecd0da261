package check

import (
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
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
func n(i int) *int              { return &i }

// A history in which 1/foo got stuck in preparing after a reload (the
// incident), and 1/bar was submitted and sat queued in PBS for a long time
// (not stuck: the batch system shows it queued).
func incident() Run {
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
	return Run{Start: t0, End: at(300), Events: evs}
}

func TestExpectationsOverAnIncidentHistory(t *testing.T) {
	yes := true
	cases := []struct {
		e      scenario.Expectation
		ok     bool
		detail string
	}{
		{scenario.Expectation{Task: "1/bar", Reaches: "submitted", Within: d(10)}, true, "reached submitted at +3s"},
		{scenario.Expectation{Task: "1/bar", Reaches: "submitted", Within: d(1)}, false, "later than 1s"},
		{scenario.Expectation{Task: "foo", Reaches: "succeeded", Within: d(60)}, false, "never reached succeeded"},
		{scenario.Expectation{Task: "1/baz", Reaches: "succeeded", Within: d(60)}, false, "never seen"},
		{scenario.Expectation{Task: "1/foo", Never: "preparing", LongerThan: d(60)}, false, "stayed in preparing for 4m55s from +5s (bound 1m0s) and was still there"},
		{scenario.Expectation{Task: "1/bar", Never: "preparing", LongerThan: d(60)}, true, "longest 1s"},
		{scenario.Expectation{Stuck: &scenario.Stuck{States: []string{"preparing", "submitted"}, LongerThan: d(90)}}, false, "1/foo in preparing"},
		{scenario.Expectation{Events: &scenario.Count{Match: scenario.Match{Kind: "pbs.call", Fields: map[string]string{"command": "^qsub$"}}, Count: n(1)}}, true, "1 events"},
		{scenario.Expectation{Events: &scenario.Count{Match: scenario.Match{Kind: "pbs."}, Max: n(1)}}, false, "want at most 1"},
		{scenario.Expectation{Order: []scenario.Match{{Kind: "fault.activation"}, {Kind: "scenario.step", Msg: "reload"}, {Kind: "pbs.call"}}}, true, "#6, #8, #9"},
		{scenario.Expectation{Order: []scenario.Match{{Kind: "pbs.call"}, {Kind: "fault.activation"}}}, false, "no fault.activation after"},
		{scenario.Expectation{Server: "alice", Ready: &yes, Within: d(10)}, false, "never ready"},
	}
	run := incident()
	for _, c := range cases {
		r := evaluate(c.e, run)
		if r.OK != c.ok || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%+v\n  got ok=%v %q\n  want ok=%v containing %q", c.e, r.OK, r.Detail, c.ok, c.detail)
		}
	}
}

func TestStuckDetectorExcusesQueuedJobs(t *testing.T) {
	run := incident()
	r := evaluate(scenario.Expectation{Stuck: &scenario.Stuck{States: []string{"submitted"}, LongerThan: d(60)}}, run)
	if !r.OK {
		t.Fatalf("1/bar sat queued in PBS, yet the detector says %q", r.Detail)
	}
	// The same, but PBS lost the job: now it is stuck.
	run.Events = append(run.Events, pbs(100, "7.fakehpc", "F"))
	r = evaluate(scenario.Expectation{Stuck: &scenario.Stuck{States: []string{"submitted"}, LongerThan: d(60)}}, run)
	if r.OK || !strings.Contains(r.Detail, "job 7.fakehpc: state F") {
		t.Fatalf("a submitted task whose job finished in PBS was not flagged: %q", r.Detail)
	}
}

// TestServerExpectationsTellNamedServersApart: alice's default server and
// her named server lab are judged on their own events; an event without a
// server field (recorded before named servers) is the default server's.
func TestServerExpectationsTellNamedServersApart(t *testing.T) {
	yes := true
	srv := func(s int, user, name, state string) events.Event {
		f := map[string]any{"user": user, "state": state}
		if name != "-" {
			f["server"] = name
		}
		return events.Event{Time: at(s), Kind: ServerState, Fields: f}
	}
	run := Run{Start: t0, End: at(60), Events: []events.Event{
		srv(1, "alice", "lab", "pending"),
		srv(2, "alice", "lab", "ready"),
		srv(3, "alice", "pbs", "refused"),
		srv(5, "alice", "-", "ready"),
	}}
	for _, c := range []struct {
		server string
		ok     bool
		detail string
	}{
		{"alice/lab", true, "server alice/lab ready at +2s"},
		{"alice", true, "server alice ready at +5s"},
		{"alice/pbs", false, "seen: refused at +3s"},
		{"alice/none", false, "seen: nothing"},
	} {
		r := evaluate(scenario.Expectation{Server: c.server, Ready: &yes, Within: d(10)}, run)
		if r.OK != c.ok || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%s: got ok=%v %q, want ok=%v containing %q", c.server, r.OK, r.Detail, c.ok, c.detail)
		}
	}
}

package hubsys

import (
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// TestServerExpectationsTellNamedServersApart: alice's default server and
// her named server lab are judged on their own events; an event without a
// server field (recorded before named servers) is the default server's.
func TestServerExpectationsTellNamedServersApart(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	yes := true
	srv := func(s int, user, name, state string) events.Event {
		f := map[string]any{"user": user, "state": state}
		if name != "-" {
			f["server"] = name
		}
		return events.Event{Time: t0.Add(time.Duration(s) * time.Second), Kind: ServerState, Fields: f}
	}
	run := check.Run{Start: t0, End: t0.Add(time.Minute), Events: []events.Event{
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
		r := (&ServerExpectation{Server: c.server, Ready: &yes, Within: scenario.Duration(10 * time.Second)}).Evaluate(run)
		if r.OK != c.ok || !strings.Contains(r.Detail, c.detail) {
			t.Errorf("%s: got ok=%v %q, want ok=%v containing %q", c.server, r.OK, r.Detail, c.ok, c.detail)
		}
	}
}

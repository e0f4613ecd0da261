package check

import (
	"testing"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// A scenario selects fault events by what the user wrote in the rule: its
// layer, ops, path, ... one by one, on fault.added and fault.cleared alike.
func TestFaultEventsMatchByTheRulesFields(t *testing.T) {
	log := events.NewLog()
	s := fault.NewSet(fault.WithRecorder(log))
	if _, err := s.Add(fault.Rule{ID: "slow-qsub", Layer: fault.PBS, Ops: []string{"qstat", "qsub"}, Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(1e9)}}); err != nil {
		t.Fatal(err)
	}
	s.Remove("slow-qsub")
	for _, c := range []struct {
		m    Match
		want int
	}{
		{Match{Kind: "fault.", Fields: map[string]string{"layer": "^pbs$", "ops": `\bqsub\b`}}, 2},
		{Match{Kind: "fault.cleared", Fields: map[string]string{"id": "^slow-qsub$", "effect": "^latency$"}}, 1},
		{Match{Kind: "fault.added", Fields: map[string]string{"ops": `\bqdel\b`}}, 0},
		{Match{Kind: "fault.added", Fields: map[string]string{"path": "."}}, 0},
	} {
		res := Count{Match: c.m, Count: &c.want}.Evaluate(Run{Events: log.All()})
		if !res.OK {
			t.Errorf("%s: %s", c.m.Describe(), res.Detail)
		}
	}
}

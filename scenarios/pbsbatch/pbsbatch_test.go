package pbsbatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/inprocess"
	"github.com/jobsim/jobsim/scenarios/hubsys"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim"
)

// A hub whose batch spawner needs a PBS host: the PBS plug-in's step and
// condition are at home there.
const hubPBS = `name: pbs-steps
topology:
  hosts: [{name: fakehpc}]
system:
  hub: {spawner: batch-pbs, users: [alice]}
timeline:
  - do: start
  - wait: {job: "jupyterhub*", state: R, within: 30s}
  - pbs: {action: restart, down: 2s, jobs: lost}
`

var vocab = scenario.MustVocabulary(hubsys.Plugin{}, pbsbatch.Plugin{})

func TestParsesItsStepAndCondition(t *testing.T) {
	f, err := vocab.Parse("p.yaml", []byte(hubPBS))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Timeline[1].Wait.Condition
	if c.Owner != pbsbatch.Name || c.Predicate.String() != "PBS job jupyterhub* is R" {
		t.Errorf("job condition %+v", c)
	}
	s := f.Timeline[2]
	if s.Owner != pbsbatch.Name || s.Action.String() != "pbs restart on fakehpc (jobs lost)" {
		t.Errorf("pbs step %+v", s)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"state: R", "state: X", `p.yaml:8:39: PBS job state "X": want one letter of Q R H W E S F`},
		{"state: R", "state: RUNNING", `PBS job state "RUNNING"`},
		{`job: "jupyterhub*"`, `job: "["`, `p.yaml:8:17: job "[" is not a valid glob`},
		{`job: "jupyterhub*"`, `job: ""`, `job "" is not a valid glob`},
		{"state: R, within", "state: R, queue: workq, within", `p.yaml:8:42: unknown field "queue" in a job condition`},
		{"jobs: lost", "jobs: some", `p.yaml:9:44: step 3: pbs: jobs "some": want kept or lost`},
		{"down: 2s", "down: -2s", `p.yaml:9:34: step 3: duration "-2s": must not be negative`},
		{"action: restart", "action: reboot", `p.yaml:9:19: step 3: pbs: action "reboot": want one of restart`},
	} {
		src := strings.Replace(hubPBS, tc.from, tc.to, 1)
		if src == hubPBS {
			t.Fatalf("%q not found", tc.from)
		}
		if _, err := vocab.Parse("p.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: error %v\n  want it to contain %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// The plug-in judges job conditions and restarts the server through the
// host's control API.
func TestActsOnTheHostsPBSServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := sim.NewHost(ctx, sim.WithPBS(), sim.WithUsers("alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if res, err := h.RunPBS(ctx, "alice", "qsub", "-h", "-N", "hello", "--", "/bin/true"); err != nil || res.ExitCode != 0 {
		t.Fatalf("qsub: %v %q", err, res.Stderr)
	}
	p := pbsbatch.Plugin{}
	tp := inprocess.Over(h)
	for _, c := range []struct {
		cond pbsbatch.Job
		want bool
	}{{pbsbatch.Job{Job: "hel*", State: "H"}, true}, {pbsbatch.Job{Job: "hel*", State: "R"}, false}, {pbsbatch.Job{Job: "other", State: "H"}, false}} {
		if got, err := p.Holds(ctx, tp, &c.cond); err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", &c.cond, got, err, c.want)
		}
	}
	if err := p.Do(ctx, tp, &pbsbatch.Step{Host: h.Name(), Action: "restart", Down: scenario.Duration(time.Millisecond), Jobs: "lost"}); err != nil {
		t.Fatal(err)
	}
	for {
		held, err := p.Holds(ctx, tp, &pbsbatch.Job{Job: "hel*", State: "H"})
		if err == nil && !held {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the held job survived a restart that loses jobs (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.Do(ctx, tp, &pbsbatch.Step{Host: "nowhere", Action: "restart"}); err == nil {
		t.Error("a restart on an unknown host succeeded")
	}
}

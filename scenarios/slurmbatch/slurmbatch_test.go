package slurmbatch_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/inprocess"
	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/scenarios/slurmbatch"
	"github.com/jobsim/jobsim/sim"
	"github.com/jobsim/jobsim/sim/batch"
)

// A Cylc workflow on a Slurm host: the Slurm plug-in's step and condition
// are at home there.
const cylcSlurm = `name: slurm-steps
topology:
  hosts:
    - name: fakehpc
      slurm: {partitions: [{name: short, max_time: 1h}], nodes: [{name: cn1, cpus: 4, memory: 2000}]}
system:
  cylc: {workflow: wf}
timeline:
  - do: start
  - wait: {slurm_job: "foo.1.*", state: RUNNING, within: 30s}
  - slurm: {action: restart, down: 2s, jobs: lost}
`

// Both batch plug-ins in one vocabulary: their keys do not clash.
var vocab = scenario.MustVocabulary(cylcsys.Plugin{}, pbsbatch.Plugin{}, slurmbatch.Plugin{})

func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "wf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wf", "flow.cylc"), []byte("[scheduling]\n    [[graph]]\n        R1 = foo\n[runtime]\n    [[foo]]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParsesTheSlurmBlockStepAndCondition(t *testing.T) {
	f, err := vocab.Load(write(t, cylcSlurm))
	if err != nil {
		t.Fatal(err)
	}
	h := f.Topology.Hosts[0]
	if h.Slurm == nil || h.PBS != nil || len(h.Slurm.ServerOptions()) != 2 {
		t.Errorf("host %+v: want a Slurm block (nodes and partitions) and no PBS", h)
	}
	if c := cylcsys.ConfigOf(f); c.Platform.Runner != "slurm" {
		t.Errorf("a Slurm host's platform runner defaults to %q, want slurm", c.Platform.Runner)
	}
	c := f.Timeline[1].Wait.Condition
	if c.Owner != slurmbatch.Name || c.Predicate.String() != "Slurm job foo.1.* is RUNNING" {
		t.Errorf("slurm_job condition %+v", c)
	}
	s := f.Timeline[2]
	if s.Owner != slurmbatch.Name || s.Action.String() != "slurm restart on fakehpc (jobs lost)" {
		t.Errorf("slurm step %+v", s)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"state: RUNNING", "state: R", ""},
		{"state: RUNNING", "state: RUN", `s.yaml:10:41: Slurm job state "RUN": want one of PENDING`},
		{`slurm_job: "foo.1.*"`, `slurm_job: "["`, `s.yaml:10:23: slurm_job "[" is not a valid glob`},
		{"jobs: lost", "jobs: some", `s.yaml:11:46: step 3: slurm: jobs "some": want kept or lost`},
		{"down: 2s", "down: -2s", `step 3: duration "-2s": must not be negative`},
		{"action: restart", "action: reboot", `s.yaml:11:21: step 3: slurm: action "reboot": want one of restart`},
		{"slurm: {partitions", "pbs: {}\n      slurm: {partitions", `s.yaml:6:14: host "fakehpc" has both pbs and slurm`},
		{"cpus: 4", "cpus: -4", `s.yaml:5:66: a Slurm node needs a name`},
		{"max_time: 1h", "max_time: 1h, nodes: [cn2]", `s.yaml:5:64: partition short: node "cn2" is not one of the Slurm nodes`},
		{"max_time: 1h", "max_time: -1h", `duration "-1h": must not be negative`},
		{"memory: 2000}", "memory: 2000, gpus: 1}", `unknown field "gpus"`},
		{"cylc: {workflow: wf}", "cylc: {workflow: wf, platform: {runner: pbs}}", `runner pbs: host "fakehpc" runs Slurm`},
	} {
		src := strings.Replace(cylcSlurm, tc.from, tc.to, 1)
		if src == cylcSlurm {
			t.Fatalf("%q not found", tc.from)
		}
		_, err := vocab.Load(write(t, src))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q -> %q: %v", tc.from, tc.to, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q -> %q: error %v\n  want it to contain %q", tc.from, tc.to, err, tc.want)
		}
	}
}

// The plug-in judges slurm_job conditions (a name with '/' as Cylc's) and
// restarts the controller through the host's control API.
func TestActsOnTheHostsSlurmController(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := sim.NewHost(ctx, sim.WithSlurm(), sim.WithUsers("alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	res := h.Batch().Run(ctx, batch.Invocation{Command: "sbatch", Args: []string{"-H", "-J", "foo.1.wf/run1", "--wrap", "true"}, User: "alice", Cwd: "/home/alice"})
	if res.ExitCode != 0 {
		t.Fatalf("sbatch: %q", res.Stderr)
	}
	f, err := vocab.Load(write(t, cylcSlurm))
	if err != nil {
		t.Fatal(err)
	}
	cond := func(glob, state string) scenario.Predicate {
		src := strings.Replace(strings.Replace(cylcSlurm, "foo.1.*", glob, 1), "state: RUNNING", "state: "+state, 1)
		f, err := vocab.Load(write(t, src))
		if err != nil {
			t.Fatal(err)
		}
		return f.Timeline[1].Wait.Condition.Predicate
	}
	p := slurmbatch.Plugin{}
	tp := inprocess.Over(h)
	for _, c := range []struct {
		glob, state string
		want        bool
	}{{"foo.1.*", "PENDING", true}, {"foo.1.*", "PD", true}, {"foo.1.*", "RUNNING", false}, {"bar.*", "PENDING", false}} {
		if got, err := p.Holds(ctx, tp, cond(c.glob, c.state)); err != nil || got != c.want {
			t.Errorf("%s %s: %v, %v; want %v", c.glob, c.state, got, err, c.want)
		}
	}
	if err := p.Do(ctx, tp, f.Timeline[2].Action); err != nil {
		t.Fatal(err)
	}
	if !h.Batch().Down() {
		t.Error("slurmctld is not down after a restart step")
	}
	for {
		held, err := p.Holds(ctx, tp, cond("foo.1.*", "PENDING"))
		if err == nil && !held && !h.Batch().Down() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the pending job survived a restart that loses jobs (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if js, err := h.Client().SlurmJobs(ctx, false); err != nil || len(js) != 0 {
		t.Errorf("jobs after the restart: %+v %v", js, err)
	}
	if err := p.Do(ctx, tp, &slurmbatch.Step{Host: "nowhere", Action: "restart"}); err == nil {
		t.Error("a restart on an unknown host succeeded")
	}
}

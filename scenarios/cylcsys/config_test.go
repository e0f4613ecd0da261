package cylcsys

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

const planScenario = `name: plan
timeout: 3m
topology:
  hosts:
    - name: fakehpc
      users: [alice]
      cylc: /sw/cylc
system:
  cylc:
    workflow: remote-two-task
    process_pool_timeout: 7s
    platform: {name: hpc, comms: zmq, runner: pbs, execution_polling: 3s}
    global: |
      [scheduler]
          [[events]]
              stall timeout = PT9S
timeline:
  - do: start
`

func startFakeTopo(t *testing.T, text string) (*fakeTopo, runner.Env) {
	t.Helper()
	return startTopo(t, parseScenario(t, "plan", text).Topology)
}

func startTopo(t *testing.T, st scenario.Topology) (*fakeTopo, runner.Env) {
	t.Helper()
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog(), User: "tester"}
	topo, err := fakeBackend{}.Start(context.Background(), st, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.Close(context.Background()) })
	return topo.(*fakeTopo), env
}

// The generated configuration is what makes Cylc reach the fake host: the
// platform under the scenario's name, its host the ssh alias, the alias
// mapped to the host's ssh address, user and key, and the job-side cylc at
// the host's cylc path as the host's processes see it.
func TestPlanPointsThePlatformAtTheHost(t *testing.T) {
	topo, env := startFakeTopo(t, planScenario)
	f := parseScenario(t, "plan", planScenario)
	p, err := makePlan(f, topo, env)
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.global.Render("/x/ssh_config")
	if err != nil {
		t.Fatal(err)
	}
	gs := string(g)
	root := topo.hosts[0].root
	for _, want := range []string{
		"process pool timeout = PT7S",
		"stall timeout = PT180S",
		"abort on stall timeout = True",
		"inactivity timeout = PT180S",
		"abort on inactivity timeout = True",
		"    [[hpc]]\n",
		"hosts = fakehpc\n",
		"job runner = pbs\n",
		"install target = hpc\n",
		"cylc path = " + filepath.Join(root, "sw/cylc/bin") + "\n",
		"communication method = zmq\n",
		"submission polling intervals = PT2S\n",
		"execution polling intervals = PT3S\n",
		"ssh command = ssh -F /x/ssh_config -oBatchMode=yes -oConnectTimeout=10\n",
		// The scenario's own text comes last, so it wins.
		"[scheduler]\n    [[events]]\n        stall timeout = PT9S\n",
	} {
		if !strings.Contains(gs, want) {
			t.Errorf("global.cylc lacks %q:\n%s", want, gs)
		}
	}
	if !strings.HasSuffix(gs, "stall timeout = PT9S\n") {
		t.Errorf("the scenario's global text is not last:\n%s", gs)
	}
	sc, err := p.ssh.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Host fakehpc\n", "HostName 127.0.0.1\n", "Port 2222\n", "User alice\n",
		"IdentityFile " + filepath.Join(root, "id_ed25519") + "\n", "IdentitiesOnly yes\n", "BatchMode yes\n"} {
		if !strings.Contains(string(sc), want) {
			t.Errorf("ssh_config lacks %q:\n%s", want, sc)
		}
	}
	if p.remoteHome != filepath.Join(root, "home/alice") {
		t.Errorf("remote home %q", p.remoteHome)
	}
}

func TestPlanDefaults(t *testing.T) {
	text := `name: plan
timeout: 10s
topology:
  hosts: [{name: fakehpc}]
system:
  cylc: {workflow: remote-two-task}
timeline:
  - do: start
`
	topo, env := startFakeTopo(t, text)
	p, err := makePlan(parseScenario(t, "plan", text), topo, env)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := p.global.Render("")
	gs := string(g)
	for _, want := range []string{
		"process pool timeout = PT120S", // DefaultProcessPoolTimeout
		"stall timeout = PT30S",         // never below minWorkflowTimeout
		"    [[fakehpc]]\n", "job runner = pbs\n", "communication method = poll\n",
		"cylc path = " + filepath.Join(topo.hosts[0].root, "opt/cylc/bin") + "\n",
		"execution polling intervals = PT2S\n",
	} {
		if !strings.Contains(gs, want) {
			t.Errorf("global.cylc lacks %q:\n%s", want, gs)
		}
	}
	if p.user != "tester" {
		t.Errorf("user %q, want the runner's default user", p.user)
	}
}

func TestPlanNeedsTheHostStarted(t *testing.T) {
	text := `name: plan
topology:
  hosts: [{name: fakehpc}, {name: other}]
system:
  cylc: {workflow: remote-two-task, platform: {host: other}}
timeline:
  - do: start
`
	f := parseScenario(t, "plan", text)
	started := f.Topology
	started.Hosts = started.Hosts[:1] // "other" did not come up
	topo, env := startTopo(t, started)
	_, err := makePlan(f, topo, env)
	if err == nil || !strings.Contains(err.Error(), `"other"`) {
		t.Fatalf("err %v, want one naming the host that was not started", err)
	}
}

// Without a Cylc the scenario is skipped, and the reason says how to get one.
func TestMissingCylcIsASkip(t *testing.T) {
	t.Setenv("JOBSIM_CYLC", "")
	t.Setenv("JOBSIM_CACHE", t.TempDir())
	topo, env := startFakeTopo(t, planScenario)
	_, err := New(context.Background(), parseScenario(t, "plan", planScenario), topo, env, env.Log, WithLogger(testLogger()))
	var skip *runner.SkipError
	if !errors.As(err, &skip) {
		t.Fatalf("err %v (%T), want a *runner.SkipError", err, err)
	}
	if !strings.Contains(skip.Reason, "make setup-cylc") {
		t.Errorf("skip reason %q does not say how to get Cylc", skip.Reason)
	}
	// An explicit executable that is not there is an error, not a skip.
	_, err = New(context.Background(), parseScenario(t, "plan", planScenario), topo, env, env.Log, WithExecutable("/nonexistent/cylc"))
	if err == nil || errors.As(err, &skip) || !strings.Contains(err.Error(), "/nonexistent/cylc") {
		t.Errorf("explicit missing executable: %v", err)
	}
}

// harnessTopo is a fakeTopo whose hosts advertise a name for the test
// machine, as containers do.
type harnessTopo struct{ *fakeTopo }

type harnessHost struct{ *fakeHost }

func (harnessHost) HarnessHost() string { return "testmachine" }

func (t harnessTopo) Host(name string) (runner.Host, bool) {
	h, ok := t.fakeTopo.Host(name)
	if !ok {
		return nil, false
	}
	return harnessHost{h.(*fakeHost)}, true
}

func (t harnessTopo) Hosts() []runner.Host {
	out := t.fakeTopo.Hosts()
	for i, h := range out {
		out[i] = harnessHost{h.(*fakeHost)}
	}
	return out
}

// Where the scheduler's host name is hardwired for job hosts in
// containers, a start after kill-scheduler (the killed scheduler's contact
// file left behind) is skipped, saying why and where it runs; a restart
// after a clean stop, or a kill followed by a clean stop, is planned; and
// without a hardwired name the restart after a kill is planned too.
func TestStartAfterKillSkipsWhereTheHostIsHardwired(t *testing.T) {
	restart := func(between ...string) string {
		steps := ""
		for _, s := range between {
			steps += "  - do: " + s + "\n"
		}
		return planScenario + steps + "  - do: start\n"
	}
	topo, env := startFakeTopo(t, planScenario)
	for _, tc := range []struct {
		between []string
		skip    bool
	}{
		{[]string{"kill-scheduler"}, true},
		{[]string{"stop-now"}, false},
		{[]string{"stop"}, false},
		{[]string{"kill-scheduler", "pause", "stop-now"}, false},
	} {
		f := parseScenario(t, "plan", restart(tc.between...))
		_, err := makePlan(f, harnessTopo{topo}, env)
		var skip *runner.SkipError
		if got := errors.As(err, &skip); got != tc.skip {
			t.Errorf("%v: err %v, want skip %v", tc.between, err, tc.skip)
			continue
		}
		if tc.skip && (!strings.Contains(skip.Reason, "step 3 starts the workflow again after a kill-scheduler step") ||
			!strings.Contains(skip.Reason, "testmachine") || !strings.Contains(skip.Reason, "--backend inprocess")) {
			t.Errorf("skip reason %q", skip.Reason)
		}
		if !tc.skip && err != nil {
			t.Errorf("%v: %v", tc.between, err)
		}
	}
	if _, err := makePlan(parseScenario(t, "plan", restart("kill-scheduler")), topo, env); err != nil {
		t.Errorf("in-process restart after a kill: %v", err)
	}
}

package hubsys

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/inprocess"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/scenarios/slurmbatch"
)

const scenarioDir = "../../fixtures/scenarios/hub"

// noHosts is a backend for hub scenarios whose servers run on the test
// machine (spawner local and local-unix): it starts no host.
type noHosts struct{}

func (noHosts) Name() string { return "none" }
func (noHosts) Start(_ context.Context, t scenario.Topology, _ runner.Env) (runner.Topology, error) {
	if len(t.Hosts) > 0 {
		return nil, &runner.SkipError{Reason: "this test backend starts no job hosts"}
	}
	return emptyTopo{}, nil
}

type emptyTopo struct{}

func (emptyTopo) Hosts() []runner.Host            { return nil }
func (emptyTopo) Host(string) (runner.Host, bool) { return nil, false }
func (emptyTopo) Close(context.Context) error     { return nil }

// runScenario runs one fixture through the runner and fails the test
// unless it passes; a skip verdict skips the test with its reason.
func runScenario(t testing.TB, b runner.Backend, file string, opts ...Option) runner.Report {
	t.Helper()
	needHub(t)
	f, err := testVocabulary.Load(filepath.Join(scenarioDir, file))
	if err != nil {
		t.Fatal(err)
	}
	art := t.TempDir()
	if a := os.Getenv("JOBSIM_ARTIFACTS"); a != "" {
		art = a
	}
	if os.Geteuid() == 0 {
		// Servers of other users (local-unix) write their records there.
		os.Chmod(art, 0o755)
	}
	var progress strings.Builder
	r, err := runner.New(runner.WithBackend(b), runner.WithArtifacts(art), runner.WithProgress(&progress),
		runner.WithSystem("hub", Factory(append([]Option{WithJobsim(jobsimBin)}, opts...)...)), runner.WithHostPlugin(pbsbatch.Plugin{}), runner.WithHostPlugin(slurmbatch.Plugin{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.Timeout.D()+3*time.Minute)
	defer cancel()
	rep := r.Run(ctx, f)
	t.Logf("progress:\n%s", progress.String())
	for _, res := range rep.Results {
		t.Logf("%-40s ok=%-5v %s", res.ID, res.OK, res.Detail)
	}
	switch rep.Verdict {
	case runner.Skip:
		t.Skip(rep.Reason)
	case runner.Pass:
	default:
		if b, err := os.ReadFile(filepath.Join(rep.Dir, "hub", "hub.log")); err == nil {
			t.Logf("hub log:\n%s", tail(string(b), 80))
		}
		if b, err := os.ReadFile(filepath.Join(rep.Dir, "transcript.md")); err == nil {
			t.Logf("transcript:\n%s", b)
		}
		t.Fatalf("%s: %s: %s", file, rep.Verdict, rep.Reason)
	}
	return rep
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestLocalThreeUsers(t *testing.T) {
	rep := runScenario(t, noHosts{}, "local-three-users.yaml")
	// The hub's log and generated config land in the artifacts.
	for _, name := range []string{"hub.log", "jupyterhub_config.py"} {
		if b, err := os.ReadFile(filepath.Join(rep.Dir, "hub", name)); err != nil || len(b) == 0 {
			t.Errorf("artifact hub/%s: %d bytes, %v", name, len(b), err)
		}
	}
}

func TestLocalUnixThreeUsers(t *testing.T) {
	runScenario(t, noHosts{}, "local-unix-three-users.yaml")
}

func TestLocalServerFaults(t *testing.T) {
	runScenario(t, noHosts{}, "local-server-faults.yaml")
}

func TestAuthzMatrix(t *testing.T) {
	runScenario(t, noHosts{}, "authz-matrix.yaml")
}

// hostBackend starts the topology's hosts in-process.
func hostBackend(tb testing.TB) runner.Backend {
	return inprocess.New(inprocess.WithJobsimBinary(jobsimBin))
}

func TestBatchPBSLife(t *testing.T) {
	rep := runScenario(t, hostBackend(t), "batch-pbs-life.yaml")
	wantRealSpawner(t, rep, RealPBSSpawner)
	wantPortReported(t, rep, "alice", "bob")
}

// TestBatchSlurmLife: the real SlurmSpawner submits, polls and cancels two
// users' servers on a host with Slurm.
func TestBatchSlurmLife(t *testing.T) {
	rep := runScenario(t, hostBackend(t), "batch-slurm-life.yaml")
	wantRealSpawner(t, rep, RealSlurmSpawner)
	wantPortReported(t, rep, "alice", "bob")
}

// TestBatchSlurmHostFaults: Slurm and ssh faults end the real
// SlurmSpawner's spawns in the hub's failure, with the reason.
func TestBatchSlurmHostFaults(t *testing.T) {
	rep := runScenario(t, hostBackend(t), "batch-slurm-host-faults.yaml")
	wantRealSpawner(t, rep, RealSlurmSpawner)
}

// TestSpawnFormScenarios: a person's answers in the spawn form reach the
// batch job (PBS queue, Slurm partition and time limit) with the real
// batchspawner; with NERSC's sshspawner the form works but goes nowhere.
func TestSpawnFormScenarios(t *testing.T) {
	for file, class := range map[string]string{
		"batch-pbs-form.yaml":   RealPBSSpawner,
		"batch-slurm-form.yaml": RealSlurmSpawner,
		"ssh-nersc-form.yaml":   RealNERSCSSHSpawner,
	} {
		t.Run(file, func(t *testing.T) {
			rep := runScenario(t, hostBackend(t), file)
			wantRealSpawner(t, rep, class)
		})
	}
}

// wantPortReported fails the test unless each user's job ran
// batchspawner-singleuser, which reported its port to the hub.
func wantPortReported(t *testing.T, rep runner.Report, users ...string) {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(rep.Dir, "hub", "hub.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if !strings.Contains(string(log), "POST /hub/api/batchspawner ("+u+"@") {
			t.Errorf("hub log: no POST /hub/api/batchspawner from %s's job", u)
		}
	}
}

// wantRealSpawner fails the test unless the scenario's hub ran class.
func wantRealSpawner(t *testing.T, rep runner.Report, class string) {
	t.Helper()
	for _, ev := range readEvents(t, filepath.Join(rep.Dir, "events.jsonl")) {
		if ev.Kind == LifecycleEvent && ev.Fields["state"] == "started" {
			if got := ev.Fields["spawner_class"]; got != class {
				t.Errorf("hub ran spawner %v (%v), want %s", got, ev.Fields["stand_in"], class)
			}
			return
		}
	}
	t.Errorf("no hub start recorded")
}

func TestBatchPBSHostFaults(t *testing.T) {
	rep := runScenario(t, hostBackend(t), "batch-pbs-host-faults.yaml")
	wantRealSpawner(t, rep, RealPBSSpawner)
}

func TestSSHLife(t *testing.T) {
	needHub(t)
	runScenario(t, hostBackend(t), "ssh-life.yaml")
}

func TestSSHHostFaults(t *testing.T) {
	runScenario(t, hostBackend(t), "ssh-host-faults.yaml")
}

func TestNamedServers(t *testing.T) {
	runScenario(t, noHosts{}, "named-servers.yaml")
}

// TestBatchPBSLoginNode: the real PBSSpawner with an empty exec_prefix (a
// hub on the login node) reaches PBS through the node's /etc/pbs.conf only.
func TestBatchPBSLoginNode(t *testing.T) {
	rep := runScenario(t, hostBackend(t), "batch-pbs-login-node.yaml")
	wantRealSpawner(t, rep, RealPBSSpawner)
	log, err := os.ReadFile(filepath.Join(rep.Dir, "hub", "hub.log"))
	if err != nil {
		t.Fatal(err)
	}
	// batchspawner ran qsub itself: no ssh or sudo in front.
	// batchspawner joins the empty exec_prefix and qsub with a space.
	if !regexp.MustCompile(`Spawner submitting command: +qsub\n`).Match(log) || !strings.Contains(string(log), "POST /hub/api/batchspawner (alice@") {
		t.Errorf("hub log: want batchspawner submitting with a bare qsub and the job reporting its port:\n%s", tail(string(log), 40))
	}
}

// TestSSHNERSCLife: NERSC's real sshspawner starts, polls and stops two
// users' servers on an in-process host.
func TestSSHNERSCLife(t *testing.T) {
	rep := runScenario(t, hostBackend(t), "ssh-nersc-life.yaml")
	wantRealSpawner(t, rep, RealNERSCSSHSpawner)
}

// TestSSHNERSCHostFaults: host faults end NERSC's sshspawner's spawns in
// the hub's failure.
func TestSSHNERSCHostFaults(t *testing.T) {
	rep := runScenario(t, hostBackend(t), "ssh-nersc-host-faults.yaml")
	wantRealSpawner(t, rep, RealNERSCSSHSpawner)
}

// TestSiteAuthz runs the site-authorization scenario: the stand-in
// service's lists, a browser following a link and being refused, and a
// reload with a changed site file (skipped without Chromium).
func TestSiteAuthz(t *testing.T) {
	runScenario(t, noHosts{}, "site-authz.yaml")
}

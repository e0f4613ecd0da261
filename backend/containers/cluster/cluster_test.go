package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers/cluster"
	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/internal/testenv"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/internal/testutil"
)

var (
	testImage image.Image
	skipWhy   string
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &testImage, &skipWhy)) }

// startCluster brings up a login node and compute nodes cn1, cn2 (one cpu
// each) for alice, removed at the end of the test.
func startCluster(t *testing.T, log *events.Log, requeue time.Duration) *cluster.Topology {
	t.Helper()
	return startTopology(t, log, requeue, cluster.Host{Name: "login", Users: []string{"alice"},
		PBS: &fakepbs.Config{History: true, Nodes: []fakepbs.NodeConfig{{Name: "cn1", NCPUs: 1}, {Name: "cn2", NCPUs: 1}}}})
}

// startTopology brings up topo, removed at the end of the test.
func startTopology(t *testing.T, log *events.Log, requeue time.Duration, topo ...cluster.Host) *cluster.Topology {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := container.NewRunID()
	tp, err := cluster.Start(ctx, testImage, topo, cluster.WithRun(run), cluster.WithEventLog(log), cluster.WithNodeFailRequeue(requeue))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := tp.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if rep, err := container.Sweep(ctx, run); err != nil || len(rep.Containers)+len(rep.Networks) > 0 {
			t.Errorf("left behind after Close: %+v %v", rep, err)
		}
	})
	return tp
}

// ssh runs a command on a machine with the real OpenSSH client.
func ssh(t *testing.T, m *cluster.Machine, command string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client (apt-get install openssh-client)")
	}
	cfg, err := m.SSHConfig("m", "alice")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", "-F", f, "m", command).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	return string(out), 0
}

// until polls command on m until its output matches re.
func until(t *testing.T, m *cluster.Machine, command string, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	var out string
	if err := testutil.Poll(fmt.Sprintf("%q to print %s", command, re), within, func() bool {
		out, _ = ssh(t, m, command)
		return re.MatchString(out)
	}); err != nil {
		t.Fatalf("%v; last:\n%s", err, out)
	}
	return out
}

// runningOn submits two jobs on login, each writing its node's name to
// one of the files (in the shared home), and returns the nodes they run on.
func runningOn(t *testing.T, login *cluster.Machine, submit, file1, file2 string) (node1, node2 string) {
	t.Helper()
	if out, code := ssh(t, login, submit); code != 0 {
		t.Fatalf("%s: %d %s", submit, code, out)
	}
	out := until(t, login, "cat "+file1+" "+file2+" 2>/dev/null | tr '\n' ' '", regexp.MustCompile(`^cn\d cn\d $`), 20*time.Second)
	f := strings.Fields(out)
	return f[0], f[1]
}

func TestJobsRunOnTheComputeNodes(t *testing.T) {
	tp := startCluster(t, events.NewLog(), 0)
	login, _ := tp.Machine("login")
	out, code := ssh(t, login, "pbsnodes -a")
	if code != 0 || !strings.Contains(out, "cn1\n") || !strings.Contains(out, "cn2\n") || strings.Count(out, "state = free") != 2 {
		t.Fatalf("pbsnodes -a: want cn1 and cn2 free, got %d:\n%s", code, out)
	}
	// Two one-cpu jobs fill both nodes; each reports where it ran, and the
	// second asks the server about itself from its compute node.
	out, code = ssh(t, login, `for i in 1 2; do echo 'echo ran on $(hostname); sleep 2; qstat $PBS_JOBID >/dev/null && echo qstat ok' | qsub -N job$i -l select=1:ncpus=1; done`)
	if code != 0 {
		t.Fatalf("qsub: %d %s", code, out)
	}
	until(t, login, "qstat -f 1 2 | grep exec_host", regexp.MustCompile(`(?s)exec_host = cn1/0.*exec_host = cn2/0|exec_host = cn2/0.*exec_host = cn1/0`), 20*time.Second)
	out = until(t, login, "cat job1.o1 job2.o2 2>/dev/null", regexp.MustCompile(`(?s)ran on cn\d.*qstat ok.*ran on cn\d.*qstat ok`), 30*time.Second)
	if !strings.Contains(out, "ran on cn1") || !strings.Contains(out, "ran on cn2") {
		t.Errorf("the jobs did not run one on each node:\n%s", out)
	}
	out, _ = ssh(t, login, "qstat -x -f 1 2 | grep -E 'Exit_status|job_state'")
	if strings.Count(out, "Exit_status = 0") != 2 {
		t.Errorf("want both jobs finished with Exit_status 0:\n%s", out)
	}
}

// TestKilledNodesRequeueOrDeleteTheirJobs follows OpenPBS's
// node_down_requeue: once a job's node has been down for
// node_fail_requeue, a rerunnable job goes back to the queue (and runs
// again when a node is free), a job submitted with -r n is deleted; both
// get Exit_status -20.
func TestKilledNodesRequeueOrDeleteTheirJobs(t *testing.T) {
	log := events.NewLog()
	tp := startCluster(t, log, 3*time.Second)
	login, _ := tp.Machine("login")
	rerunNode, keepNode := runningOn(t, login, "echo 'hostname > running.$PBS_JOBID; sleep 300' | qsub -N rerun -l select=1:ncpus=1; echo 'hostname > running.$PBS_JOBID; sleep 300' | qsub -r n -N keep -l select=1:ncpus=1",
		"running.1.login", "running.2.login")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := tp.NodeAction(ctx, keepNode, "kill"); err != nil {
		t.Fatal(err)
	}
	until(t, login, "pbsnodes "+keepNode, regexp.MustCompile(`state = down`), 15*time.Second)
	out := until(t, login, "qstat -x -f 2 | grep -E 'job_state|Exit_status'", regexp.MustCompile(`job_state = F`), 20*time.Second)
	if !strings.Contains(out, "Exit_status = -20") {
		t.Errorf("the -r n job of a dead node: want it finished with Exit_status = -20 (JOB_EXEC_RERUN_MS_FAIL), got\n%s", out)
	}

	if err := tp.NodeAction(ctx, rerunNode, "kill"); err != nil {
		t.Fatal(err)
	}
	out = until(t, login, "qstat -f 1 | grep -E 'job_state|Exit_status|exec_host'", regexp.MustCompile(`job_state = Q`), 30*time.Second)
	if !strings.Contains(out, "Exit_status = -20") || strings.Contains(out, "exec_host") {
		t.Errorf("the rerunnable job of a dead node: want it queued again, Exit_status = -20, no exec_host; got\n%s", out)
	}
	if err := tp.NodeAction(ctx, rerunNode, "restart"); err != nil {
		t.Fatal(err)
	}
	until(t, login, "pbsnodes "+rerunNode, regexp.MustCompile(`state = (free|job-busy)`), 15*time.Second)
	out = until(t, login, "qstat -f 1 | grep -E 'job_state|run_count|exec_host'", regexp.MustCompile(`job_state = R`), 20*time.Second)
	if !strings.Contains(out, "run_count = 2") || !strings.Contains(out, "exec_host = "+rerunNode+"/0") {
		t.Errorf("the requeued job once its node is back: want it running again there, run_count = 2; got\n%s", out)
	}
	var sawDown, sawUp, sawRequeue, sawDelete bool
	for _, e := range log.All() {
		if e.Kind != "pbs.node" {
			continue
		}
		switch e.Fields["state"] {
		case "down":
			sawDown = true
		case "free":
			sawUp = true
		case "requeued":
			sawRequeue = true
		case "deleted":
			sawDelete = true
		}
	}
	if !sawDown || !sawUp || !sawRequeue || !sawDelete {
		t.Errorf("the history lacks pbs.node events: down %v up %v requeued %v deleted %v", sawDown, sawUp, sawRequeue, sawDelete)
	}
}

func TestPausedAndDisconnectedNodesGoDownAndComeBack(t *testing.T) {
	tp := startCluster(t, events.NewLog(), 0)
	login, _ := tp.Machine("login")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, step := range []struct{ node, cut, heal string }{{"cn1", "pause", "unpause"}, {"cn2", "disconnect", "reconnect"}} {
		if err := tp.NodeAction(ctx, step.node, step.cut); err != nil {
			t.Fatal(err)
		}
		until(t, login, "pbsnodes "+step.node, regexp.MustCompile(`state = down`), 15*time.Second)
		if err := tp.NodeAction(ctx, step.node, step.heal); err != nil {
			t.Fatal(err)
		}
		until(t, login, "pbsnodes "+step.node, regexp.MustCompile(`state = free`), 15*time.Second)
	}
	// The reconnected node is reachable by the harness again.
	cn2, _ := tp.Machine("cn2")
	if out, code := ssh(t, cn2, "hostname"); code != 0 || strings.TrimSpace(out) != "cn2" {
		t.Errorf("ssh to the reconnected node: %d %q", code, out)
	}
}

// A Slurm cluster's compute node that dies fails in the controller as a
// node whose slurmd stopped answering: DOWN ("Not responding"), its
// --no-requeue job NODE_FAIL, its other job requeued (PENDING again, as
// JobRequeue=1 makes it); restarted, it returns to service.
func TestKilledSlurmNodesFailTheirJobs(t *testing.T) {
	log := events.NewLog()
	tp := startTopology(t, log, 0, cluster.Host{Name: "login", Users: []string{"alice"},
		Slurm: &fakeslurm.Config{Nodes: []fakeslurm.NodeConfig{{Name: "cn1", CPUs: 1}, {Name: "cn2", CPUs: 1}}}})
	login, _ := tp.Machine("login")
	rerunNode, keepNode := runningOn(t, login, `sbatch -J rerun --wrap 'hostname > running.$SLURM_JOB_ID; sleep 300'; sbatch -J keep --no-requeue --wrap 'hostname > running.$SLURM_JOB_ID; sleep 300'`,
		"running.1", "running.2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := tp.NodeAction(ctx, keepNode, "kill"); err != nil {
		t.Fatal(err)
	}
	until(t, login, "sinfo -h -N -o '%N %T'", regexp.MustCompile(`(?m)^`+keepNode+` down\*?$`), 15*time.Second)
	if out := until(t, login, "scontrol show node "+keepNode, regexp.MustCompile(`State=DOWN`), 5*time.Second); !strings.Contains(out, "Reason=Not responding") {
		t.Errorf("scontrol show node %s: want Reason=Not responding:\n%s", keepNode, out)
	}
	until(t, login, "sacct -n -X -P -j 2 -o State", regexp.MustCompile(`^NODE_FAIL`), 15*time.Second)

	if err := tp.NodeAction(ctx, rerunNode, "kill"); err != nil {
		t.Fatal(err)
	}
	until(t, login, "squeue -h -j 1 -o '%T %r'", regexp.MustCompile(`^PENDING`), 15*time.Second)
	if err := tp.NodeAction(ctx, rerunNode, "restart"); err != nil {
		t.Fatal(err)
	}
	until(t, login, "sinfo -h -N -o '%N %T'", regexp.MustCompile(`(?m)^`+rerunNode+` idle$`), 15*time.Second)
	var downs int
	for _, e := range log.All() {
		if e.Kind == "pbs.node" {
			t.Errorf("a pbs.node event from a Slurm cluster: %s", e.Msg)
		}
		if e.Kind == "slurm.node" && e.Fields["state"] == "DOWN" {
			downs++
		}
	}
	if downs != 2 {
		t.Errorf("%d slurm.node DOWN events, want 2 (one per killed node)", downs)
	}
}

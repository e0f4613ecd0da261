package containers_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers"
	"github.com/jobsim/jobsim/backend/containers/cluster"
	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/internal/testenv"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

var (
	testImage image.Image
	skipWhy   string
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &testImage, &skipWhy)) }

// sshTo runs command on a runner host through its SSH endpoint with the
// real OpenSSH client.
func sshTo(t *testing.T, h runner.Host, user, command string) (string, error) {
	t.Helper()
	ep, err := h.SSH(user)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(ep.Addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", "-i", ep.KeyFile, "-p", port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", ep.User+"@"+host, command).CombinedOutput()
	return string(out), err
}

func TestScenarioTopologyOnContainers(t *testing.T) {
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client (apt-get install openssh-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := containers.New(containers.WithImage(testImage))
	if b.Name() != "containers" {
		t.Fatalf("name %q", b.Name())
	}
	log := events.NewLog()
	topo := scenario.Topology{Hosts: []scenario.Host{
		{Name: "hpc1", Executor: "real", Users: []string{"alice"}, PBS: &scenario.PBS{}},
		{Name: "hpc2", Executor: "real"},
	}}
	tp, err := b.Start(ctx, topo, runner.Env{Dir: t.TempDir(), Log: log, User: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	var run string
	defer func() {
		if err := tp.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if rep, err := container.Sweep(ctx, run); err != nil || len(rep.Containers)+len(rep.Networks) > 0 {
			t.Errorf("left behind: %+v %v", rep, err)
		}
	}()
	nc, ok := tp.(runner.NodeController)
	if !ok {
		t.Fatal("the containers topology does not act on nodes")
	}
	if c, ok := tp.(interface{ Cluster() *cluster.Topology }); ok {
		run = c.Cluster().Run()
	} else {
		t.Fatal("the containers topology does not expose its cluster")
	}
	if len(tp.Hosts()) != 2 {
		t.Fatalf("hosts %d", len(tp.Hosts()))
	}
	h1, _ := tp.Host("hpc1")
	h2, _ := tp.Host("hpc2")
	if h1.ProcessPath("/opt/cylc") != "/opt/cylc" {
		t.Errorf("ProcessPath is not the identity: %s", h1.ProcessPath("/opt/cylc"))
	}
	if _, err := h2.SSH("carol"); err != nil {
		t.Errorf("a host without users gets the default user: %v", err)
	}
	hh, ok := h1.(interface{ HarnessHost() string })
	if !ok || hh.HarnessHost() == "" {
		t.Fatal("the containers' hosts do not name the test machine")
	}
	out, err := sshTo(t, h1, "alice", "hostname; echo true | qsub; getent hosts hpc2 >/dev/null && echo sees-hpc2; getent hosts "+hh.HarnessHost())
	if err != nil || !strings.Contains(out, "hpc1") || !strings.Contains(out, "1.hpc1") || !strings.Contains(out, "sees-hpc2") {
		t.Fatalf("ssh hpc1: %v\n%s", err, out)
	}
	if strings.Contains(out, "127.0.0.1") || !strings.Contains(out, hh.HarnessHost()) {
		t.Errorf("the test machine's name must resolve to the engine's gateway inside containers, not loopback:\n%s", out)
	}
	// The hosts' events reach the run's history.
	waitEvent(t, log, func(e events.Event) bool { return e.Host == "hpc1" && e.Kind == events.Kind("pbs.call") })

	// Files on a host come back for the artifacts (Cylc's job.out).
	fc, ok := h1.(runner.FileCopier)
	if !ok {
		t.Fatal("container hosts cannot copy files out")
	}
	if out, err := sshTo(t, h1, "alice", "mkdir -p logs/01 && echo hello > logs/01/job.out"); err != nil {
		t.Fatalf("ssh: %v %s", err, out)
	}
	dst := t.TempDir()
	if err := fc.CopyOut(ctx, "/home/alice/logs", dst, 1<<20); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "01", "job.out")); err != nil || string(b) != "hello\n" {
		t.Errorf("copied job.out: %q %v", b, err)
	}

	// A restarted host is healthy again, keeps its address, and its new
	// history streams in as well.
	if err := nc.NodeAction(ctx, "hpc2", "restart"); err != nil {
		t.Fatal(err)
	}
	mark := len(log.All())
	if out, err := sshTo(t, h2, "carol", "echo back"); err != nil || strings.TrimSpace(out) != "back" {
		t.Fatalf("ssh after restart: %v %q", err, out)
	}
	waitEvent(t, log, func(e events.Event) bool {
		return e.Seq > int64(mark) && e.Host == "hpc2" && e.Kind == events.Kind("ssh.exec")
	})

	ad, ok := tp.(interface {
		Address(context.Context, string) (string, error)
	})
	if !ok {
		t.Fatal("the containers topology gives no machine addresses")
	}
	ip, err := ad.Address(ctx, "hpc2")
	if err != nil {
		t.Fatal(err)
	}
	// The control port is not published on this address, and still answers there.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ip + ":7070/v1/health"); err != nil {
		t.Errorf("the machine's address does not reach its control port from the test machine: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("control port at the machine's address without a token: %d, want 401", resp.StatusCode)
	}

	if err := nc.NodeAction(ctx, "hpc2", "disconnect"); err != nil {
		t.Fatal(err)
	}
	if out, err := sshTo(t, h1, "alice", "timeout 3 bash -c 'echo > /dev/tcp/hpc2/22' && echo reached || echo unreachable"); err != nil || !strings.Contains(out, "unreachable") {
		t.Errorf("a disconnected host must be unreachable from its peers: %v %q", err, out)
	}
	if err := nc.NodeAction(ctx, "hpc2", "reconnect"); err != nil {
		t.Fatal(err)
	}
	if out, err := sshTo(t, h1, "alice", "timeout 3 bash -c 'echo > /dev/tcp/hpc2/22' && echo reached || echo unreachable"); err != nil || !strings.Contains(out, "reached") {
		t.Errorf("a reconnected host must be reachable again: %v %q", err, out)
	}
}

func waitEvent(t *testing.T, log *events.Log, match func(events.Event) bool) {
	t.Helper()
	testutil.WaitFor(t, "the event in the history", 10*time.Second, func() bool {
		return slices.ContainsFunc(log.All(), match)
	})
}

// With the published-port mode forced (as for an engine on another
// machine), hosts are reached only through the ports the engine picked:
// ssh works there, a restarted host is followed to its ports again, and a
// machine's network address is a skip, not an address the test machine
// cannot reach.
func TestPublishedPortModeOnContainers(t *testing.T) {
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client (apt-get install openssh-client)")
	}
	t.Setenv(container.EnvPublished, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := containers.New(containers.WithImage(testImage))
	tp, err := b.Start(ctx, scenario.Topology{Hosts: []scenario.Host{{Name: "pubhpc", Executor: "real", Users: []string{"alice"}, PBS: &scenario.PBS{}}}},
		runner.Env{Dir: t.TempDir(), Log: events.NewLog(), User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var run string
	defer func() {
		if err := tp.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if rep, err := container.Sweep(ctx, run); err != nil || len(rep.Containers)+len(rep.Networks) > 0 {
			t.Errorf("left behind: %+v %v", rep, err)
		}
	}()
	cl := tp.(interface{ Cluster() *cluster.Topology }).Cluster()
	run = cl.Run()
	m, _ := cl.Machine("pubhpc")
	if r := m.Reach(); !r.Published || r.Host != "127.0.0.1" {
		t.Fatalf("reach %+v, want the published-port mode dialled at 127.0.0.1", r)
	}
	h, _ := tp.Host("pubhpc")
	if out, err := sshTo(t, h, "alice", "hostname; echo true | qsub"); err != nil || !strings.Contains(out, "pubhpc") || !strings.Contains(out, "1.pubhpc") {
		t.Fatalf("ssh through the published port: %v\n%s", err, out)
	}
	t.Logf("ssh at %s before the restart", m.SSHAddr())
	if err := tp.(runner.NodeController).NodeAction(ctx, "pubhpc", "restart"); err != nil {
		t.Fatal(err)
	}
	if out, err := sshTo(t, h, "alice", "echo back"); err != nil || strings.TrimSpace(out) != "back" {
		t.Fatalf("ssh after restart (at %s): %v %q", m.SSHAddr(), err, out)
	}
	_, err = tp.(runner.Addresser).Address(ctx, "pubhpc")
	var skip *runner.SkipError
	if !errors.As(err, &skip) || !strings.Contains(err.Error(), "published-port mode") {
		t.Errorf("Address in the published-port mode: %v, want a skip saying why", err)
	}
}

// A host that asks to see the machine's Cylc cannot have it here: the
// containers' userland never carries it, so the scenario skips, saying
// which backend can run it.
func TestIsolateFalseSkipsOnContainers(t *testing.T) {
	off := false
	_, err := containers.ClusterHosts(scenario.Topology{Hosts: []scenario.Host{{Name: "fakehpc", Executor: "real", Cylc: "/opt/cylc", Isolate: &off}}})
	var skip *runner.SkipError
	if !errors.As(err, &skip) || !strings.Contains(skip.Reason, "--backend inprocess") {
		t.Fatalf("isolate: false: %v, want a skip naming the in-process backend", err)
	}
	if _, err := containers.ClusterHosts(scenario.Topology{Hosts: []scenario.Host{{Name: "fakehpc", Executor: "real", Isolate: &off}}}); err != nil {
		t.Fatalf("isolate: false on a host without Cylc (nothing to show): %v", err)
	}
}

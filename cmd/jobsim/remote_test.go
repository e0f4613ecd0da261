package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/scenarios/runner"
)

// A Docker engine on another machine: the suite reaches it over TCP
// (here socat turns the local engine's socket into a TCP endpoint on
// loopback) and its containers only through the ports it publishes, with
// the published-port mode forced. A Cylc scenario whose jobs message the
// scheduler and a cluster scenario that kills and restarts a compute node
// (whose control port the engine may move) run end to end and pass.
func TestRunOnAnEngineReachedOverTCP(t *testing.T) {
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("socat is not installed (make setup installs it): it serves the engine on TCP for this test")
	}
	testutil.NeedOpenSSH(t, "ssh")
	sock := "/var/run/docker.sock"
	if dh := os.Getenv("DOCKER_HOST"); dh != "" {
		p, ok := strings.CutPrefix(dh, "unix://")
		if !ok {
			t.Skipf("DOCKER_HOST=%s is not a unix socket this test can serve on TCP", dh)
		}
		sock = p
	}
	if _, err := os.Stat(sock); err != nil {
		t.Skipf("no Docker engine socket: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := container.DockerAvailable(ctx); err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	bin := buildJobsim(t)

	port := testutil.FreePort(t)
	var socatLog testutil.SyncBuffer
	socat := exec.Command("socat", "-d", "-d", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port), "UNIX-CONNECT:"+sock)
	socat.Stderr = &socatLog
	if err := socat.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// socat and its forked children (one per open connection) go.
		_ = socat.Process.Kill()
		_ = socat.Wait()
	}()
	dockerHost := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	waitListening(t, ctx, fmt.Sprintf("127.0.0.1:%d", port))

	art := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "run", "--backend", "containers", "--parallel", "2", "-o", "json", "--artifacts", art,
		"../../fixtures/scenarios/cylc/happy-zmq.yaml", "../../fixtures/scenarios/cluster/node-dies.yaml")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+dockerHost, container.EnvPublished+"=1", "JOBSIM_BIN="+bin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var reps []runner.Report
	if err := json.Unmarshal(stdout.Bytes(), &reps); err != nil {
		t.Fatalf("jobsim run: %v, output not JSON: %v\n%s\n%s", runErr, err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "published-port mode") {
		t.Errorf("the run did not say it reached containers through published ports:\n%s", stderr.String())
	}
	for _, r := range reps {
		switch {
		case r.Verdict == runner.Skip:
			t.Skipf("%s skipped: %s", r.Name, r.Reason)
		case r.Verdict != runner.Pass:
			t.Errorf("%s: %s (%s); artifacts %s", r.Name, r.Verdict, r.Reason, r.Dir)
		}
	}
	if len(reps) != 2 {
		t.Errorf("%d reports, want 2", len(reps))
	}
	if runErr != nil {
		t.Errorf("jobsim run: %v\n%s", runErr, stderr.String())
	}
	// The engine was reached through the TCP endpoint, not its socket.
	if n := strings.Count(socatLog.String(), "accepting connection"); n == 0 {
		t.Errorf("no connection went through the TCP endpoint; socat said:\n%s", socatLog.String())
	}
	// The containers were published on loopback at ports the engine
	// picked, dialled there: the ssh configs the Cylc scenario wrote name
	// 127.0.0.1 and a port.
	cfgs, _ := filepath.Glob(filepath.Join(art, "cylc-happy-pbs-zmq", "ssh_config"))
	if len(cfgs) == 0 {
		t.Errorf("the Cylc scenario left no ssh_config in %s", art)
	}
	for _, f := range cfgs {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), "127.0.0.1") {
			t.Errorf("%s does not dial the engine host:\n%s", f, b)
		}
	}
}

func waitListening(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nothing listens on %s: %v", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/internal/testutil"
)

// A person's fake cluster: `jobsim up` starts a login node and a compute
// node, its printed ssh config reaches the login node, a job runs on the
// compute node, and Ctrl-C (SIGINT) removes every container and network.
func TestUpServesAClusterUntilInterrupted(t *testing.T) {
	testutil.NeedOpenSSH(t, "ssh")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := container.DockerAvailable(ctx); err != nil {
		t.Skipf("jobsim up needs a Docker engine: %v", err)
	}
	var info upInfo
	t.Cleanup(func() {
		if info.Run != "" { // after a failure: leave nothing behind
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _ = container.Sweep(cctx, info.Run)
		}
	})
	stop := startServing(t, ctx, &info, syscall.SIGINT, "up", "-o", "json", "--name", "uphpc", "--users", "alice", "--nodes", "upcn1")
	if len(info.Machines) != 2 || info.Machines[0].Name != "uphpc" || info.Machines[1].PBSNode != "upcn1" || info.Run == "" {
		t.Fatalf("machines %+v", info.Machines)
	}

	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte(info.SSHConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh := func(remote string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "ssh", "-F", cfg, "-o", "BatchMode=yes", "uphpc", remote).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh uphpc %q: %v\n%s", remote, err, out)
		}
		return string(out)
	}
	if id := strings.TrimSpace(ssh("echo hostname | qsub -N where")); id != "1.uphpc" {
		t.Fatalf("qsub on the login node: %q", id)
	}
	var out string
	if err := testutil.Poll("the job's output naming the compute node", time.Minute, func() bool {
		// The job's output (written on the compute node, in the /home it
		// shares with the login node) names the node it ran on.
		out = ssh("cat where.o1 2>/dev/null || true")
		return out == "upcn1\n"
	}); err != nil {
		t.Fatalf("the job did not run on the compute node: %v:\n%s", err, out)
	}

	if err := stop(); err != nil {
		t.Fatalf("jobsim up did not end cleanly on Ctrl-C: %v", err)
	}
	objs, err := container.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Run == info.Run {
			t.Errorf("left behind after Ctrl-C: %s %s (%s)", o.Kind, o.Name, o.State)
		}
	}
}

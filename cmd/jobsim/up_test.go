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

// startUp runs `jobsim up -o json args...` (skipping without the OpenSSH
// client or a Docker engine) and returns what it printed, an ssh through
// the real OpenSSH client with the printed config to one of its machines,
// and stop: Ctrl-C (SIGINT), after which nothing of the run may be left.
func startUp(t *testing.T, ctx context.Context, args ...string) (info *upInfo, ssh func(machine, remote string) string, stop func()) {
	t.Helper()
	testutil.NeedOpenSSH(t, "ssh")
	if err := container.DockerAvailable(ctx); err != nil {
		t.Skipf("jobsim up needs a Docker engine: %v", err)
	}
	info = &upInfo{}
	t.Cleanup(func() {
		if info.Run != "" { // after a failure: leave nothing behind
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _ = container.Sweep(cctx, info.Run)
		}
	})
	halt := startServing(t, ctx, info, syscall.SIGINT, append([]string{"up", "-o", "json"}, args...)...)
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte(info.SSHConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	ssh = func(machine, remote string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "ssh", "-F", cfg, "-o", "BatchMode=yes", machine, remote).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh %s %q: %v\n%s", machine, remote, err, out)
		}
		return string(out)
	}
	stop = func() {
		t.Helper()
		if err := halt(); err != nil {
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
	return info, ssh, stop
}

// A person's fake cluster: `jobsim up` starts a login node and a compute
// node, its printed ssh config reaches the login node, a job runs on the
// compute node, and Ctrl-C (SIGINT) removes every container and network.
func TestUpServesAClusterUntilInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, ssh, stop := startUp(t, ctx, "--name", "uphpc", "--users", "alice", "--nodes", "upcn1")
	if len(info.Machines) != 2 || info.Machines[0].Name != "uphpc" || info.Machines[1].PBSNode != "upcn1" || info.Run == "" {
		t.Fatalf("machines %+v", info.Machines)
	}
	if id := strings.TrimSpace(ssh("uphpc", "echo hostname | qsub -N where")); id != "1.uphpc" {
		t.Fatalf("qsub on the login node: %q", id)
	}
	var out string
	if err := testutil.Poll("the job's output naming the compute node", time.Minute, func() bool {
		// The job's output (written on the compute node, in the /home it
		// shares with the login node) names the node it ran on.
		out = ssh("uphpc", "cat where.o1 2>/dev/null || true")
		return out == "upcn1\n"
	}); err != nil {
		t.Fatalf("the job did not run on the compute node: %v:\n%s", err, out)
	}
	stop()
}

// A person's fake Slurm cluster: `jobsim up --slurm` starts a login node
// with the controller and a compute node; through the real OpenSSH client
// sbatch --wrap queues a job that squeue lists, it runs on the compute node
// (its hostname and SLURM_JOB_NODELIST name it), sacct reports it
// COMPLETED with 0:0 on that node, the compute node's own Slurm commands
// (a non-login ssh session) reach the controller, and Ctrl-C removes
// everything.
func TestUpServesASlurmClusterUntilInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, ssh, stop := startUp(t, ctx, "--slurm", "--name", "upslurm", "--users", "alice", "--nodes", "upscn1")
	if len(info.Machines) != 2 || info.Machines[0].Name != "upslurm" || info.Machines[1].SlurmNode != "upscn1" || info.Machines[1].PBSNode != "" || info.Run == "" {
		t.Fatalf("machines %+v", info.Machines)
	}
	out := ssh("upslurm", `sbatch --wrap 'echo "$(hostname) $SLURM_JOB_NODELIST"'; squeue`)
	if !strings.HasPrefix(out, "Submitted batch job 1\n") || !strings.Contains(out, "JOBID PARTITION") || !strings.Contains(out, " alice ") {
		t.Fatalf("sbatch --wrap; squeue on the login node: %q", out)
	}
	if err := testutil.Poll("sacct showing the job completed on the compute node", time.Minute, func() bool {
		out = ssh("upslurm", "sacct -n -X -P -j 1 -o JobName,State,ExitCode,NodeList")
		return strings.TrimSpace(out) == "wrap|COMPLETED|0:0|upscn1"
	}); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if out = ssh("upslurm", "cat slurm-1.out"); out != "upscn1 upscn1\n" {
		t.Errorf("the job's output (hostname, SLURM_JOB_NODELIST) is %q, want the compute node twice", out)
	}
	if out = ssh("upscn1", "squeue -h -t all -o '%i %T %N'"); strings.TrimSpace(out) != "1 COMPLETED upscn1" {
		t.Errorf("squeue on the compute node: %q", out)
	}
	stop()
}

package remote_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/remote"
)

// cylcBin is the Cylc 8.0.2 that scripts/setup-cylc.sh installs.
func cylcBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("JOBSIM_CYLC"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "jobsim", "cylc-8.0.2", "bin", "cylc")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("Cylc 8.0.2 is not installed (scripts/setup-cylc.sh): %v", err)
	}
	return p
}

// cylc runs a cylc job command as the scheduler runs it on a job host,
// with the jobsim executables first on PATH.
func (h *host) cylc(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = h.dir
	cmd.Env = []string{"HOME=" + h.dir, "USER=alice", "PATH=" + h.bin + ":/usr/bin:/bin", "LANG=C.UTF-8",
		remote.ServerEnv + "=unix:" + h.sock, "SLURM_CONF=" + filepath.Join(h.dir, "absent.conf")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("cylc %v: %v\n%s%s", args, err, out.String(), errb.String())
	}
	return out.String()
}

// pollSummary is the JSON of `cylc jobs-poll`'s summary line.
func pollSummary(t *testing.T, out string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "[TASK JOB SUMMARY]") {
			continue
		}
		_, js, ok := strings.Cut(line, "|1/t/01|")
		if !ok {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(js), &m); err != nil {
			t.Fatalf("poll summary %q: %v", line, err)
		}
		return m
	}
	t.Fatalf("no poll summary in %q", out)
	return nil
}

// Cylc 8.0.2's own job runner code (cylc jobs-submit, jobs-poll,
// jobs-kill with its slurm handler) against the jobsim executables: the id
// is read from sbatch, the poll finds the job in squeue, the kill goes
// through scancel, and a job that left the queue is polled as exited.
func TestCylcJobRunnerLive(t *testing.T) {
	cylc := cylcBin(t)
	h := startHost(t)
	root := filepath.Join(h.dir, "cylc-run", "w", "log", "job")
	dir := filepath.Join(root, "1", "t", "01")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	job := "#!/bin/bash -l\n#\n# ++++ THIS IS A CYLC JOB SCRIPT ++++\n# Workflow: w\n# Task: 1/t\n" +
		"# Job log directory: 1/t/01\n# Job runner: slurm\n# Execution time limit: 90.0\n\n" +
		"# DIRECTIVES:\n#SBATCH --job-name=t.1.w\n#SBATCH --output=cylc-run/w/log/job/1/t/01/job.out\n" +
		"#SBATCH --error=cylc-run/w/log/job/1/t/01/job.err\n#SBATCH --time=1:30\n\nsleep 600\n"
	if err := os.WriteFile(filepath.Join(dir, "job"), []byte(job), 0o755); err != nil {
		t.Fatal(err)
	}
	out := h.cylc(t, cylc, "jobs-submit", root, "1/t/01")
	if !strings.Contains(out, "|1/t/01|0|1\n") {
		t.Fatalf("jobs-submit: Cylc did not read job id 1: %q", out)
	}
	st, err := os.ReadFile(filepath.Join(dir, "job.status"))
	if err != nil || !strings.Contains(string(st), "CYLC_JOB_RUNNER_NAME=slurm\n") || !strings.Contains(string(st), "CYLC_JOB_ID=1\n") {
		t.Fatalf("job.status: %q %v", st, err)
	}
	j, err := h.srv.Job(context.Background(), 1)
	if err != nil || j.Name != "t.1.w" || j.TimeLimit != 2*time.Minute || j.WorkDir != h.dir {
		t.Errorf("submitted job: %+v %v", j, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if j, _ := h.srv.Job(context.Background(), 1); j.State == fakeslurm.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job 1 does not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := pollSummary(t, h.cylc(t, cylc, "jobs-poll", root, "1/t/01")); s["job_runner_exit_polled"] != float64(0) || s["job_id"] != "1" {
		t.Errorf("poll of the running job: %v", s)
	}
	if out := h.cylc(t, cylc, "jobs-kill", root, "1/t/01"); !strings.Contains(out, "|1/t/01|0\n") {
		t.Errorf("jobs-kill: %q", out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		s := pollSummary(t, h.cylc(t, cylc, "jobs-poll", root, "1/t/01"))
		if s["job_runner_exit_polled"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed job is still polled as in the queue: %v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if j, _ := h.srv.Status(context.Background(), 1); j.State != fakeslurm.Cancelled {
		t.Errorf("job 1 after jobs-kill: %v", j.State)
	}
}

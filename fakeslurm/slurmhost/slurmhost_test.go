package slurmhost_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/slurmhost"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// A Slurm controller as a host's batch system: commands run through Run as
// in the host's shells, Jobs reports them with their Slurm state, the
// control API's JSON is the full Slurm record, and a restart that loses
// jobs leaves none.
func TestSlurmAsABatchSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	ve := virtual.New(virtual.WithFS(fs), virtual.WithClock(clk), virtual.WithHostname("node1"))
	srv, err := fakeslurm.NewServer(ctx, fakeslurm.WithClock(clk), fakeslurm.WithExecutor(ve), fakeslurm.WithFS(fs))
	if err != nil {
		t.Fatal(err)
	}
	var sys batch.System = slurmhost.New(srv, slurmhost.WithHost("fakehpc"), slurmhost.WithFS(fs),
		slurmhost.WithIDs(func(string) (int, int) { return 1234, 1234 }))
	defer func() { _ = sys.Close(); _ = ve.Close() }()

	if sys.Kind() != "slurm" || !strings.Contains(strings.Join(sys.Commands(), " "), "sbatch") {
		t.Fatalf("kind %q commands %v", sys.Kind(), sys.Commands())
	}
	res := sys.Run(ctx, batch.Invocation{Command: "sbatch", Args: []string{"-J", "hello", "-H"}, Stdin: strings.NewReader("#!/bin/bash\necho hi\n"), User: "alice", Cwd: "/home/alice"})
	if res.ExitCode != 0 || !strings.HasPrefix(string(res.Stdout), "Submitted batch job ") {
		t.Fatalf("sbatch: exit %d out %q err %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	id := strings.TrimSpace(strings.TrimPrefix(string(res.Stdout), "Submitted batch job "))
	jobs := sys.Jobs(ctx, true)
	if len(jobs) != 1 || jobs[0].ID != id || jobs[0].Name != "hello" || jobs[0].User != "alice" || jobs[0].State != "PENDING" || jobs[0].Queue != "debug" {
		t.Fatalf("jobs %+v, want %s hello of alice pending in debug", jobs, id)
	}
	raw, err := json.Marshal(jobs[0])
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil || back["Reason"] != "JobHeldUser" || back["UID"] != 1234.0 || back["WorkDir"] != "/home/alice" || back["State"] != "PENDING" {
		t.Fatalf("the control API's JSON is not the Slurm record: %s (%v)", raw, err)
	}
	if res := sys.Run(ctx, batch.Invocation{Command: "squeue", Args: []string{"-h", "-o", "%i %T"}, User: "alice"}); res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != id+" PENDING" {
		t.Fatalf("squeue: exit %d out %q err %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if err := sys.Restart(ctx, batch.RestartOptions{Down: time.Second, LoseJobs: true}); err != nil {
		t.Fatal(err)
	}
	if !sys.Down() {
		t.Fatal("not down right after a restart")
	}
	deadline := time.Now().Add(10 * time.Second)
	for sys.Down() || len(sys.Jobs(ctx, false)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after a restart that loses jobs: down %v, jobs %+v", sys.Down(), sys.Jobs(ctx, false))
		}
		clk.Advance(100 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
}

package slurmhost_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/slurmhost"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/batch/batchtest"
)

// A Slurm controller as a host's batch system: commands run through Run as
// in the host's shells, Jobs reports them with their Slurm state, the
// control API's JSON is the full Slurm record, and a restart that loses
// jobs leaves none.
func TestSlurmAsABatchSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := batchtest.New(t)
	srv, err := fakeslurm.NewServer(ctx, fakeslurm.WithClock(b.Clock), fakeslurm.WithExecutor(b.Exec), fakeslurm.WithFS(b.FS))
	if err != nil {
		t.Fatal(err)
	}
	var sys batch.System = slurmhost.New(srv, slurmhost.WithHost("fakehpc"), slurmhost.WithFS(b.FS),
		slurmhost.WithIDs(func(string) (int, int) { return 1234, 1234 }))
	defer func() { _ = sys.Close() }()

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
	b.RestartLosingJobs(ctx, t, sys, time.Second, false)
}

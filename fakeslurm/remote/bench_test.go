package remote_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakeslurm/realslurm"
	"github.com/jobsim/jobsim/fakeslurm/remote"
)

// BenchmarkExecutablesRoundTrip is sbatch + squeue + scancel through the
// jobsim executables against the fake controller on a unix socket: what a
// client on a job host pays per job. BenchmarkRealSlurmRoundTrip is the
// same sequence against Debian's real Slurm, measured in the same run.
func BenchmarkExecutablesRoundTrip(b *testing.B) {
	h := startHost(b)
	env := []string{remote.ServerEnv + "=unix:" + h.sock}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, errs, code, _ := h.run(b, env, "", "sbatch", "--parsable", "--hold", "--wrap", "true")
		id := strings.TrimSpace(out)
		if code != 0 {
			b.Fatalf("sbatch: %q %q", out, errs)
		}
		if _, errs, code, _ := h.run(b, env, "", "squeue", "-h", "-j", id, "-o", "%T"); code != 0 {
			b.Fatalf("squeue: %q", errs)
		}
		if _, errs, code, _ := h.run(b, env, "", "scancel", id); code != 0 {
			b.Fatalf("scancel: %q", errs)
		}
	}
}

func BenchmarkRealSlurmRoundTrip(b *testing.B) {
	if err := realslurm.Available(); err != nil {
		b.Skipf("real Slurm cannot run here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := realslurm.Start(ctx, realslurm.Options{})
	if err != nil {
		b.Skipf("real Slurm does not start here: %v", err)
	}
	defer func() { _ = c.Close() }()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, errs, code, err := c.Exec(ctx, nil, "sbatch", "--parsable", "--hold", "--wrap", "true")
		id := strings.TrimSpace(out)
		if err != nil || code != 0 {
			b.Fatalf("sbatch: %q %q %v", out, errs, err)
		}
		if _, errs, code, _ := c.Exec(ctx, nil, "squeue", "-h", "-j", id, "-o", "%T"); code != 0 {
			b.Fatalf("squeue: %q", errs)
		}
		if _, errs, code, _ := c.Exec(ctx, nil, "scancel", id); code != 0 {
			b.Fatalf("scancel: %q", errs)
		}
	}
}

// BenchmarkStartToReady is how long a fake controller takes from nothing
// to answering sinfo through the executable; BenchmarkRealStartToReady the
// same for Debian's real Slurm (munged, slurmctld, slurmd, node idle).
func BenchmarkStartToReady(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h := startHost(b)
		if out, errs, code, _ := h.run(b, []string{remote.ServerEnv + "=unix:" + h.sock}, "", "sinfo", "-h", "-o", "%T"); out != "idle\n" || code != 0 {
			b.Fatalf("sinfo: %q %q", out, errs)
		}
	}
}

func BenchmarkRealStartToReady(b *testing.B) {
	if err := realslurm.Available(); err != nil {
		b.Skipf("real Slurm cannot run here: %v", err)
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		c, err := realslurm.Start(ctx, realslurm.Options{})
		cancel()
		if err != nil {
			b.Skipf("real Slurm does not start here: %v", err)
		}
		b.StopTimer()
		_ = c.Close()
		b.StartTimer()
	}
}

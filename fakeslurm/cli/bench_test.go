package cli_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
)

// benchServer is the fake controller with its scheduler held off for an
// hour, so that jobs stay pending and the benchmarks measure the commands.
func benchServer(b *testing.B) *fakeslurm.Server {
	b.Helper()
	srv, err := fakeslurm.NewServer(context.Background(), fakeslurm.WithSchedulerDelay(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return srv
}

func benchInvocation(cmd string, args ...string) cli.Invocation {
	fs := afero.NewMemMapFs()
	_ = afero.WriteFile(fs, "/home/alice/job.sh", []byte("#!/bin/bash\n#SBATCH -J bench\n#SBATCH --time=10:00\n#SBATCH --mem=500M\n#SBATCH -o job-%j.out\nsleep 60\n"), 0o644)
	return cli.Invocation{Command: cmd, Args: args, User: "alice", UID: 1000, GID: 1000, Host: "login1", Cwd: "/home/alice", FS: fs,
		Env: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LOGNAME=alice", "SHELL=/bin/bash", "LANG=C.UTF-8"}}
}

// BenchmarkSbatchInProcess is sbatch of a script file with directives
// against the real fake controller, in-process: the throughput a
// simulation can submit at (aim: 50,000 jobs/s, as qsub).
func BenchmarkSbatchInProcess(b *testing.B) {
	srv := benchServer(b)
	inv := benchInvocation("sbatch", "job.sh")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if res := cli.Run(ctx, srv, inv); res.ExitCode != 0 {
			b.Fatalf("sbatch: %q", res.Stderr)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkSqueue10000 is the default squeue table over 10,000 jobs (aim:
// under 50 ms), and the single-job query clients poll with.
func BenchmarkSqueue10000(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	sub := benchInvocation("sbatch", "job.sh")
	for i := 0; i < 10000; i++ {
		if res := cli.Run(ctx, srv, sub); res.ExitCode != 0 {
			b.Fatalf("sbatch: %q", res.Stderr)
		}
	}
	b.Run("table", func(b *testing.B) {
		inv := benchInvocation("squeue")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if res := cli.Run(ctx, srv, inv); res.ExitCode != 0 || len(res.Stdout) < 10001*75 {
				b.Fatalf("squeue: %d bytes, %q", len(res.Stdout), res.Stderr)
			}
		}
	})
	b.Run("one-job", func(b *testing.B) {
		inv := benchInvocation("squeue", "-h", "-j", strconv.Itoa(5000), "-o", "%T %B")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if res := cli.Run(ctx, srv, inv); string(res.Stdout) != "PENDING n/a\n" {
				b.Fatalf("squeue -j: %q %q", res.Stdout, res.Stderr)
			}
		}
	})
}

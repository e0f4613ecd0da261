package cli

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/spf13/afero"
)

// benchServer is the real fake PBS server with a stopped queue, so that
// jobs stay queued and the benchmarks measure the commands, not job runs.
func benchServer(b *testing.B) *fakepbs.Server {
	b.Helper()
	srv, err := fakepbs.NewServer(context.Background(), fakepbs.WithName("pbs"),
		fakepbs.WithQueues(fakepbs.Queue{Name: "workq", Enabled: true, Started: false}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return srv
}

func benchInvocation(cmd string, args ...string) Invocation {
	fs := afero.NewMemMapFs()
	_ = afero.WriteFile(fs, "/home/alice/job.sh", []byte("#!/bin/bash\n#PBS -N bench\n#PBS -l walltime=00:10:00\n#PBS -l select=1:ncpus=1:mem=1gb\n#PBS -j oe\nsleep 60\n"), 0o644)
	return Invocation{Command: cmd, Args: args, User: "alice", Host: "login1", Cwd: "/home/alice", FS: fs,
		Env: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LOGNAME=alice", "SHELL=/bin/bash", "LANG=C.UTF-8"}}
}

// BenchmarkQsubInProcess is qsub of a script file with directives against
// the real server, in-process: the throughput a simulation can submit at.
func BenchmarkQsubInProcess(b *testing.B) {
	benchQsub(b, benchServer(b), func() {})
}

// BenchmarkQsubFrontEndOnly is the same qsub against the in-test fake: the
// front end's own cost (parsing, directives, Variable_List).
func BenchmarkQsubFrontEndOnly(b *testing.B) {
	f := newFake()
	benchQsub(b, f, func() {
		if len(f.jobs) > 10000 {
			b.StopTimer()
			f.jobs, f.submits = nil, nil
			b.StartTimer()
		}
	})
}

// benchQsub submits the bench script b.N times to backend and reports
// jobs/s; after runs after each submission, off the clock if it stops it.
func benchQsub(b *testing.B, backend fakepbs.Backend, after func()) {
	inv := benchInvocation("qsub", "job.sh")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if res := Run(ctx, backend, inv); res.ExitCode != 0 {
			b.Fatalf("qsub: %q", res.Stderr)
		}
		after()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkQstatFull10k is `qstat -f` over 10,000 queued jobs.
func BenchmarkQstatFull10k(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	sub := benchInvocation("qsub", "job.sh")
	for i := 0; i < 10000; i++ {
		if res := Run(ctx, srv, sub); res.ExitCode != 0 {
			b.Fatalf("qsub: %q", res.Stderr)
		}
	}
	for _, args := range [][]string{{"-f"}, {}, {"-f", "-F", "json"}} {
		b.Run(fmt.Sprintf("qstat%v", args), func(b *testing.B) {
			inv := benchInvocation("qstat", args...)
			b.ReportAllocs()
			var size int
			for i := 0; i < b.N; i++ {
				res := Run(ctx, srv, inv)
				if res.ExitCode != 0 {
					b.Fatalf("qstat: %q", res.Stderr)
				}
				size = len(res.Stdout)
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

package fakepbs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakepbs"
)

// BenchmarkSimulatedDay runs 10,000 jobs of 1 minute to 4 hours on 100
// nodes of 4 cpus under the virtual clock: every job is scheduled, started
// on the sim executor, sleeps on the clock, is staged and finished.
// Target: under 2 s of wall time per run.
func BenchmarkSimulatedDay(b *testing.B) {
	const jobs, nodes = 10000, 100
	ctx := context.Background()
	var simulated time.Duration
	for b.Loop() {
		v := clock.NewVirtual(epoch, clock.AutoAdvance())
		var ncs []fakepbs.NodeConfig
		for i := 0; i < nodes; i++ {
			ncs = append(ncs, fakepbs.NodeConfig{Name: fmt.Sprintf("cn%03d", i), NCPUs: 4})
		}
		srv, err := fakepbs.NewServer(ctx, fakepbs.WithClock(v), fakepbs.WithExecutor(&simExec{clk: v}),
			fakepbs.WithNodes(ncs...), fakepbs.WithHistory(true, 0))
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		release := v.Hold()
		for i := 0; i < jobs; i++ {
			secs := 60 + rng.IntN(4*3600-60)
			_, err := srv.Submit(ctx, fakepbs.SubmitRequest{Owner: "alice", Name: "sim", WorkDir: "/home/alice",
				Resources: map[string]string{"walltime": "05:00:00"},
				Script:    []byte(fmt.Sprintf("echo start\nsleep %d\n", secs))})
			if err != nil {
				b.Fatal(err)
			}
		}
		release()
		settle(b, v)
		done := 0
		for _, j := range srv.Jobs(ctx, true) {
			if j.State == fakepbs.Finished && j.ExitStatus != nil && *j.ExitStatus == 0 {
				done++
			}
		}
		if done != jobs {
			b.Fatalf("%d of %d jobs finished", done, jobs)
		}
		simulated = v.Now().Sub(epoch)
		_ = srv.Close()
	}
	b.ReportMetric(simulated.Hours(), "simulated-h")
}

// BenchmarkSubmit measures in-process qsub throughput (no executor, so the
// jobs stay queued and the queue grows as in a burst of submissions).
func BenchmarkSubmit(b *testing.B) {
	ctx := context.Background()
	srv := benchServer(b, 0, fakepbs.SubmitRequest{})
	req := fakepbs.SubmitRequest{Owner: "alice", Name: "bench", WorkDir: "/home/alice",
		Resources: map[string]string{"select": "1:ncpus=1:mem=1gb", "walltime": "01:00:00"},
		Variables: []string{"PBS_O_HOME=/home/alice", "PBS_O_WORKDIR=/home/alice", "PBS_O_QUEUE=workq"},
		Script:    []byte("#!/bin/bash\nsleep 1\n")}
	for b.Loop() {
		if _, err := srv.Submit(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkJobs10k measures the snapshot qstat -f takes of 10,000 jobs.
func BenchmarkJobs10k(b *testing.B) {
	ctx := context.Background()
	srv := benchServer(b, 10000, fakepbs.SubmitRequest{Owner: "alice", Name: "bench",
		Resources: map[string]string{"walltime": "01:00:00"}})
	for b.Loop() {
		if js := srv.Jobs(ctx, true); len(js) != 10000 {
			b.Fatalf("%d jobs", len(js))
		}
	}
}

// BenchmarkJobLookup measures one qstat <id> among 10,000 jobs.
func BenchmarkJobLookup(b *testing.B) {
	ctx := context.Background()
	srv := benchServer(b, 10000, fakepbs.SubmitRequest{Owner: "alice"})
	i := 0
	for b.Loop() {
		i++
		if _, err := srv.Job(ctx, fmt.Sprint(1+i%10000), false); err != nil {
			b.Fatal(err)
		}
	}
}

// benchServer is a server without executor, closed when the benchmark
// ends, that holds n jobs submitted as req.
func benchServer(b *testing.B, n int, req fakepbs.SubmitRequest) *fakepbs.Server {
	b.Helper()
	srv, err := fakepbs.NewServer(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	for i := 0; i < n; i++ {
		if _, err := srv.Submit(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	return srv
}

// Package batchtest is the bench the tests of a batch system's host
// adapter (fakepbs/pbshost, fakeslurm/slurmhost) share: a virtual clock, an
// in-memory filesystem holding alice's home, a virtual executor as node1,
// and the check that a restart which loses jobs brings the system back
// with none. What each system prints and reports stays in its own test.
package batchtest

import (
	"context"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// Bench is where a batch system under test runs its jobs.
type Bench struct {
	Clock *clock.Virtual
	FS    afero.Fs
	Exec  *virtual.Executor // runs as node1 on FS and Clock
}

// New sets up a bench; the executor is closed when the test ends (after
// its deferred calls, so after the system under test is closed).
func New(t testing.TB) *Bench {
	t.Helper()
	b := &Bench{Clock: clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), FS: afero.NewMemMapFs()}
	if err := b.FS.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	b.Exec = virtual.New(virtual.WithFS(b.FS), virtual.WithClock(b.Clock), virtual.WithHostname("node1"))
	t.Cleanup(func() { _ = b.Exec.Close() })
	return b
}

// RestartLosingJobs restarts sys for down losing its jobs, and fails the
// test unless sys is down at once and, as the bench's clock goes on, up
// again within 10s with no jobs (finished ones included when history).
func (b *Bench) RestartLosingJobs(ctx context.Context, t testing.TB, sys batch.System, down time.Duration, history bool) {
	t.Helper()
	if err := sys.Restart(ctx, batch.RestartOptions{Down: down, LoseJobs: true}); err != nil {
		t.Fatal(err)
	}
	if !sys.Down() {
		t.Fatal("not down right after a restart")
	}
	if testutil.Poll("the system up again with no jobs", 10*time.Second, func() bool {
		if sys.Down() || len(sys.Jobs(ctx, history)) != 0 {
			b.Clock.Advance(100 * time.Millisecond)
			return false
		}
		return true
	}) != nil {
		t.Fatalf("after a restart that loses jobs: down %v, jobs %+v", sys.Down(), sys.Jobs(ctx, history))
	}
}

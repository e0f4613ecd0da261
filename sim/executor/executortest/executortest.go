// Package executortest runs commands on an executor.Executor for the
// executors' tests (sim/executor/real, sim/executor/virtual): start one
// with its output captured, wait for it with a deadline (killing it after),
// or both. What each executor must do stays in its own tests.
package executortest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor"
)

// Result is how a command ended and what it wrote.
type Result struct {
	Stdout, Stderr string
	Status         executor.Status
}

// Runner runs the commands of one executor's tests.
type Runner struct {
	Within time.Duration // how long a command may take
	User   string        // who runs a command that names nobody ("": as given)
}

// Start starts cmd on e, its stdout and stderr captured unless cmd sets
// them, and fails the test if it cannot start.
func (r Runner) Start(ctx context.Context, t testing.TB, e executor.Executor, cmd executor.Command) (executor.Process, *testutil.SyncBuffer, *testutil.SyncBuffer) {
	t.Helper()
	if cmd.User == "" {
		cmd.User = r.User
	}
	out, errb := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = errb
	}
	p, err := e.Start(ctx, cmd)
	if err != nil {
		t.Fatalf("start %q: %v", cmd.Script, err)
	}
	return p, out, errb
}

// Wait waits for p to end; after r.Within it kills p and fails the test.
func (r Runner) Wait(t testing.TB, p executor.Process) executor.Status {
	t.Helper()
	done := make(chan executor.Status, 1)
	go func() { done <- p.Wait() }()
	select {
	case st := <-done:
		return st
	case <-time.After(r.Within):
		_ = p.Signal(syscall.SIGKILL)
		<-done
		t.Fatalf("command did not end within %v", r.Within)
		return executor.Status{}
	}
}

// Run starts cmd on e and waits for it to end.
func (r Runner) Run(t testing.TB, e executor.Executor, cmd executor.Command) Result {
	t.Helper()
	p, out, errb := r.Start(context.Background(), t, e, cmd)
	st := r.Wait(t, p)
	return Result{Stdout: out.String(), Stderr: errb.String(), Status: st}
}

// Case is a script and what it must write and exit with. It is an
// unnamed struct so that tables of cases may list them unkeyed.
type Case = struct {
	Script, Stdout, Stderr string
	Code                   int
}

// Check runs each case's script on e and fails the test for each whose
// output or exit status differs from the case's.
func (r Runner) Check(t testing.TB, e executor.Executor, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		res := r.Run(t, e, executor.Command{Script: tc.Script})
		if res.Status.Code != tc.Code || res.Stdout != tc.Stdout || res.Stderr != tc.Stderr {
			t.Errorf("%s: %+v stdout %q stderr %q, want exit %d stdout %q stderr %q",
				tc.Script, res.Status, res.Stdout, res.Stderr, tc.Code, tc.Stdout, tc.Stderr)
		}
	}
}

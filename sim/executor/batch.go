package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/jobsim/jobsim/sim/batch"
)

type callerActorKey struct{}

// InCallerActor marks ctx as coming from a clock actor (Clock.Go) that will
// block in Wait for the command, as the PBS server does for a job: an
// executor then runs the command inside that actor instead of starting an
// actor of its own, so that a virtual clock counts the job as idle exactly
// while its script sleeps.
func InCallerActor(ctx context.Context) context.Context {
	return context.WithValue(ctx, callerActorKey{}, true)
}

// CallerActor reports whether ctx was marked by InCallerActor.
func CallerActor(ctx context.Context) bool {
	v, _ := ctx.Value(callerActorKey{}).(bool)
	return v
}

// ForBatch adapts an Executor to a batch server's job executor: a job
// script runs as its owner in a login shell (as OpenPBS's MoM and Slurm's
// slurmd start it), in the job's working directory with the job's
// environment on top of the user's.
func ForBatch(e Executor) batch.Executor { return batchExecutor{e} }

type batchExecutor struct{ e Executor }

func (x batchExecutor) Start(ctx context.Context, spec batch.RunSpec) (batch.Process, error) {
	if x.e == nil {
		return nil, errors.New("batch job executor: no executor")
	}
	script := string(spec.Script)
	if spec.ScriptPath != "" {
		// As a MoM does: the login shell runs the script file, so $0 is its path.
		shell := spec.Shell
		if shell == "" {
			shell = "/bin/bash"
		}
		script = "exec " + shellQuote(shell) + " " + shellQuote(spec.ScriptPath)
	}
	p, err := x.e.Start(InCallerActor(ctx), Command{
		User:   spec.User,
		Script: script,
		Shell:  spec.Shell,
		Login:  true,
		Env:    spec.Env,
		Dir:    spec.Dir,
		Stdout: spec.Stdout,
		Stderr: spec.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", spec.JobID, err)
	}
	return pbsProcess{p}, nil
}

type pbsProcess struct{ p Process }

func (p pbsProcess) Signal(sig syscall.Signal) error { return p.p.Signal(sig) }

// Wait reports the script's exit code or the signal that killed it. A
// script that could not be run at all ends with code -1, as OpenPBS's
// JOB_EXEC_FAIL1 does.
func (p pbsProcess) Wait() batch.ExitStatus {
	st := p.p.Wait()
	if st.Err != nil && st.Code == 0 && st.Signal == 0 {
		return batch.ExitStatus{Code: -1}
	}
	return batch.ExitStatus{Code: st.Code, Signal: st.Signal, Usage: st.Usage}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Package bashexec is a test aid: a minimal fakepbs.Executor that runs job
// scripts with the machine's bash as real processes, in their own process
// group, as the invoking user. It is what fakepbs's own tests use to prove
// that jobs really run; the job hosts of the simulator use the executors of
// sim/executor instead (users, virtual filesystems, faults).
package bashexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
)

// Executor starts each script with Shell (default "bash") reading it from a
// temporary file. Its scripts run in real time: under a virtual clock the
// clock stands still while they run.
type Executor struct {
	Shell string
}

// Start implements fakepbs.Executor.
func (e Executor) Start(ctx context.Context, spec fakepbs.RunSpec) (fakepbs.Process, error) {
	shell := spec.Shell
	if shell == "" {
		shell = e.Shell
	}
	if shell == "" {
		shell = "bash"
	}
	f, err := os.CreateTemp("", "pbsjob-*.sh")
	if err != nil {
		return nil, fmt.Errorf("bashexec: job %s: %w", spec.JobID, err)
	}
	script := f.Name()
	if _, err := f.Write(spec.Script); err != nil {
		_ = f.Close()
		_ = os.Remove(script)
		return nil, fmt.Errorf("bashexec: job %s: write script: %w", spec.JobID, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(script)
		return nil, fmt.Errorf("bashexec: job %s: write script: %w", spec.JobID, err)
	}
	cmd := exec.Command(shell, script)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	cmd.Stdout = spec.Stdout
	cmd.Stderr = spec.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second // background children holding the pipes
	if err := cmd.Start(); err != nil {
		_ = os.Remove(script)
		return nil, fmt.Errorf("bashexec: job %s: start %s: %w", spec.JobID, shell, err)
	}
	p := &process{cmd: cmd, script: script, done: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { _ = p.Signal(syscall.SIGKILL) })
	go func() {
		err := cmd.Wait()
		stop()
		_ = os.Remove(script)
		p.status = statusOf(cmd, err)
		close(p.done)
	}()
	return p, nil
}

type process struct {
	cmd    *exec.Cmd
	script string
	done   chan struct{}
	status fakepbs.ExitStatus
	mu     sync.Mutex
}

// Signal delivers sig to the script's whole process group, as the MOM
// signals a job's session.
func (p *process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("bashexec: signal %v to process group %d: %w", sig, p.cmd.Process.Pid, err)
	}
	return nil
}

// Wait implements fakepbs.Process.
func (p *process) Wait() fakepbs.ExitStatus {
	<-p.done
	return p.status
}

func statusOf(cmd *exec.Cmd, err error) fakepbs.ExitStatus {
	st := cmd.ProcessState
	if st == nil {
		return fakepbs.ExitStatus{Code: 1}
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fakepbs.ExitStatus{Signal: ws.Signal(), Usage: fakepbs.UsageOf(st)}
	}
	return fakepbs.ExitStatus{Code: st.ExitCode(), Usage: fakepbs.UsageOf(st)}
}

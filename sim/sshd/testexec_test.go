package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/creack/pty"

	"github.com/jobsim/jobsim/sim/executor"
)

// bashExec is a tiny executor for these tests: real `bash -c` processes in
// their own process group (or session, with a pty), as the current OS user,
// with HOME set to the host's home directory on the real disk.
type bashExec struct{ home string }

type bashProc struct {
	cmd     *exec.Cmd
	mu      sync.Mutex // guards ptmx against Resize racing the Close in Wait
	ptmx    *os.File
	outDone chan struct{}
	stop    func() bool
}

func (b bashExec) Start(ctx context.Context, c executor.Command) (executor.Process, error) {
	args := []string{"-c", c.Script}
	if c.Script == "" {
		args = []string{"-l"}
		if c.TTY == nil {
			args = append(args, "-s")
		}
	}
	cmd := exec.Command("/bin/bash", args...)
	cmd.Dir = b.home
	if c.Dir != "" {
		cmd.Dir = c.Dir
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + b.home, "USER=" + c.User, "LOGNAME=" + c.User, "SHELL=/bin/bash"}
	if c.TTY != nil {
		env = append(env, "TERM="+c.TTY.Term)
	}
	cmd.Env = append(env, c.Env...)
	p := &bashProc{cmd: cmd}
	if c.TTY != nil {
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: uint16(c.TTY.Height), Cols: uint16(c.TTY.Width)})
		if err != nil {
			return nil, fmt.Errorf("start %q with pty: %w", c.Script, err)
		}
		p.ptmx = ptmx
		p.outDone = make(chan struct{})
		go func() { _, _ = io.Copy(ptmx, c.Stdin) }()
		go func() {
			defer close(p.outDone)
			_, _ = io.Copy(c.Stdout, ptmx)
		}()
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %q: %w", c.Script, err)
		}
	}
	pid := cmd.Process.Pid
	p.stop = context.AfterFunc(ctx, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	return p, nil
}

func (p *bashProc) Signal(sig syscall.Signal) error { return syscall.Kill(-p.cmd.Process.Pid, sig) }

func (p *bashProc) Resize(w executor.Window) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ptmx == nil {
		return nil
	}
	return pty.Setsize(p.ptmx, &pty.Winsize{Rows: uint16(w.Height), Cols: uint16(w.Width)})
}

func (p *bashProc) Wait() executor.Status {
	err := p.cmd.Wait()
	p.stop()
	if p.outDone != nil {
		<-p.outDone
		p.mu.Lock()
		p.ptmx.Close()
		p.ptmx = nil
		p.mu.Unlock()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return executor.Status{Err: err}
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return executor.Status{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return executor.Status{Code: ws.ExitStatus()}
}

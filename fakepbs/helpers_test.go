package fakepbs_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakepbs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// simExec is a virtual executor for these tests: a tiny script language
// whose sleep waits on the server's clock, so hours of job time pass in no
// wall time. Lines: "sleep SECONDS", "echo TEXT", "echo TEXT >&2",
// "env NAME" (prints NAME=value), "trap TERM" (ignore SIGTERM), "exit N";
// blank lines and # comments are skipped. Following the executor's clock
// contract, the script runs in a plain goroutine and sleeps with the
// context Start was given, so it shares the server's actor for the job.
type simExec struct {
	clk clock.Clock

	mu      sync.Mutex
	started []fakepbs.RunSpec
}

func (e *simExec) Start(ctx context.Context, spec fakepbs.RunSpec) (fakepbs.Process, error) {
	e.mu.Lock()
	e.started = append(e.started, spec)
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	p := &simProc{cancel: cancel, done: make(chan struct{})}
	go p.run(ctx, e.clk, spec)
	return p, nil
}

func (e *simExec) specs() []fakepbs.RunSpec {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]fakepbs.RunSpec(nil), e.started...)
}

type simProc struct {
	cancel     context.CancelFunc
	done       chan struct{}
	mu         sync.Mutex
	ignoreTerm bool
	sleeping   chan struct{} // closed when the current sleep returns
	killedBy   syscall.Signal
	status     fakepbs.ExitStatus
}

func (p *simProc) run(ctx context.Context, clk clock.Clock, spec fakepbs.RunSpec) {
	defer close(p.done)
	defer p.cancel()
	env := map[string]string{}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, line := range strings.Split(string(spec.Script), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmd, arg, _ := strings.Cut(line, " ")
		switch cmd {
		case "sleep":
			secs, _ := strconv.ParseFloat(arg, 64)
			woke := make(chan struct{})
			p.mu.Lock()
			p.sleeping = woke
			p.mu.Unlock()
			err := clk.Sleep(ctx, time.Duration(secs*float64(time.Second)))
			p.mu.Lock()
			p.sleeping = nil
			p.mu.Unlock()
			close(woke)
			if err != nil {
				p.finish(fakepbs.ExitStatus{Code: 1})
				return
			}
		case "echo":
			if text, ok := strings.CutSuffix(arg, " >&2"); ok {
				fmt.Fprintln(spec.Stderr, text)
			} else {
				fmt.Fprintln(spec.Stdout, arg)
			}
		case "env":
			fmt.Fprintf(spec.Stdout, "%s=%s\n", arg, env[arg])
		case "trap":
			p.mu.Lock()
			p.ignoreTerm = arg == "TERM"
			p.mu.Unlock()
		case "exit":
			n, _ := strconv.Atoi(arg)
			p.finish(fakepbs.ExitStatus{Code: n})
			return
		}
	}
	p.finish(fakepbs.ExitStatus{})
}

func (p *simProc) finish(st fakepbs.ExitStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killedBy != 0 {
		st = fakepbs.ExitStatus{Signal: p.killedBy}
	}
	p.status = st
}

// Signal kills the script (SIGSTOP and SIGCONT are not modelled, SIGTERM
// can be trapped) and, as the executor contract asks, returns only once a
// sleeping script has woken up.
func (p *simProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	switch {
	case sig == syscall.SIGSTOP || sig == syscall.SIGCONT,
		sig == syscall.SIGTERM && p.ignoreTerm:
		p.mu.Unlock()
		return nil
	}
	if p.killedBy == 0 {
		p.killedBy = sig
	}
	woke := p.sleeping
	p.cancel()
	p.mu.Unlock()
	if woke != nil {
		<-woke
	}
	return nil
}

func (p *simProc) Wait() fakepbs.ExitStatus {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// virtualServer is a server on a virtual clock starting at epoch with the
// sim executor.
func virtualServer(t testing.TB, opts ...fakepbs.Option) (*fakepbs.Server, *clock.Virtual, *simExec) {
	t.Helper()
	v := clock.NewVirtual(epoch, clock.AutoAdvance())
	srv, ex := serverOn(t, v, opts...)
	return srv, v, ex
}

// serverOn is a server on the virtual clock v with the sim executor.
func serverOn(t testing.TB, v *clock.Virtual, opts ...fakepbs.Option) (*fakepbs.Server, *simExec) {
	t.Helper()
	ex := &simExec{clk: v}
	all := append([]fakepbs.Option{fakepbs.WithClock(v), fakepbs.WithExecutor(ex), fakepbs.WithHost("login1.example.org")}, opts...)
	srv, err := fakepbs.NewServer(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, ex
}

// settle waits until the virtual clock has nothing left to do.
func settle(t testing.TB, v *clock.Virtual) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := v.WaitIdle(ctx); err != nil {
		t.Fatalf("the simulation did not settle: %v", err)
	}
}

func submit(t testing.TB, srv *fakepbs.Server, req fakepbs.SubmitRequest) fakepbs.Job {
	t.Helper()
	if req.Owner == "" {
		req.Owner = "alice"
	}
	if req.WorkDir == "" {
		req.WorkDir = "/home/alice/work"
	}
	j, err := srv.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("submit %q: %v", req.Name, err)
	}
	return j
}

func job(t testing.TB, srv *fakepbs.Server, id string) fakepbs.Job {
	t.Helper()
	j, err := srv.Job(context.Background(), id, true)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// pbsCode returns the pbs_errno of err, or 0.
func pbsCode(err error) int {
	var pe *fakepbs.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}

func wantCode(t testing.TB, err error, code int, text string) {
	t.Helper()
	if pbsCode(err) != code {
		t.Fatalf("error %v (%T), want pbs_errno %d", err, err, code)
	}
	if text != "" && err.Error() != text {
		t.Fatalf("error text %q, want %q", err.Error(), text)
	}
}

func needBash(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not on PATH; install bash to run the real-process job tests")
	}
}

func exitOf(j fakepbs.Job) string {
	if j.ExitStatus == nil {
		return "<nil>"
	}
	return strconv.Itoa(*j.ExitStatus)
}

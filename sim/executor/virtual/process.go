package virtual

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/internal/syncio"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/fsys"
)

// errProcessDone is returned when signalling a process that has ended.
var errProcessDone = errors.New("virtual process already finished")

// errShellExited cancels the background jobs of a shell that has ended.
var errShellExited = errors.New("shell exited")

// process is one started command: a top shell and the shells it runs.
type process struct {
	e       *Executor
	pid     int
	user    User
	cmd     executor.Command
	dir     string
	started time.Time

	// ctx ends on SIGKILL, when Start's context ends, or on Close.
	ctx    context.Context
	cancel context.CancelCauseFunc

	// fs is the host filesystem as this process sees it: fault rules
	// select its user, and hangs end with the process.
	fs afero.Fs

	pty     int      // N of /dev/pts/N when the command has a pty, else -1
	stdin   *os.File // the shell's standard input
	closers []io.Closer
	stdout  io.Writer
	stderr  io.Writer

	mu       sync.Mutex
	frames   []*frame // running shells, outermost first
	stopped  bool
	cont     chan struct{}        // closed by SIGCONT
	contWake []context.CancelFunc // end the waits of a stopped process
	sleepers map[*sleeper]struct{}
	bgSrc    map[string]string   // background job and process substitution texts by token
	psubs    map[string]*psubEnd // /dev/fd/N of process substitutions
	holds    map[int]bgHold      // clock holds of running background jobs
	nextID   int
	done     chan struct{}
	status   executor.Status
}

// sleeper is a wait of the process on the host clock.
type sleeper struct {
	ctx  context.Context
	woke chan struct{}
}

// bgHold keeps the clock counting a background job as running.
type bgHold struct {
	f       *frame
	release func()
}

// sleep waits d on the host clock, registered so that Signal can wait for
// the wake-up it causes.
func (p *process) sleep(ctx context.Context, d time.Duration) error {
	s := &sleeper{ctx: ctx, woke: make(chan struct{})}
	p.mu.Lock()
	p.sleepers[s] = struct{}{}
	p.mu.Unlock()
	err := p.e.clock.Sleep(ctx, d)
	p.mu.Lock()
	delete(p.sleepers, s)
	p.mu.Unlock()
	close(s.woke)
	return err
}

// awaitWoken waits until every sleep whose context has ended has returned:
// a virtual clock must not move on while a sleeper still has to wake up to
// a signal (see fakepbs.Process).
func (p *process) awaitWoken() {
	p.mu.Lock()
	var wait []chan struct{}
	for s := range p.sleepers {
		if s.ctx.Err() != nil {
			wait = append(wait, s.woke)
		}
	}
	p.mu.Unlock()
	for _, w := range wait {
		select {
		case <-w:
		case <-p.done:
		}
	}
}

func newProcess(ctx context.Context, e *Executor, pid int, u User, cmd executor.Command, dir string) *process {
	pctx, cancel := context.WithCancelCause(ctx)
	return &process{
		fs: fsys.ForContext(fsys.ForUser(e.fs, u.Name), pctx),
		e:  e, pid: pid, user: u, cmd: cmd, dir: dir, pty: -1,
		started: e.clock.Now(),
		ctx:     pctx, cancel: cancel,
		sleepers: map[*sleeper]struct{}{},
		bgSrc:    map[string]string{},
		holds:    map[int]bgHold{},
		done:     make(chan struct{}),
	}
}

// setupIO prepares the standard streams: a pipe for stdin when the caller's
// reader is not a file (the interpreter needs an *os.File), locked writers
// (background jobs write concurrently), and pty-like translation with TTY.
func (p *process) setupIO() error {
	out, errw := p.cmd.Stdout, p.cmd.Stderr
	if out == nil {
		out = io.Discard
	}
	if errw == nil {
		errw = io.Discard
	}
	var tty io.Writer
	if p.cmd.TTY != nil {
		tty = &syncio.Writer{W: onlcr{w: out}}
		p.stdout, p.stderr = tty, tty
	} else if sameWriter(out, errw) {
		lw := &syncio.Writer{W: out}
		p.stdout, p.stderr = lw, lw
	} else {
		p.stdout, p.stderr = &syncio.Writer{W: out}, &syncio.Writer{W: errw}
	}
	if f, ok := p.cmd.Stdin.(*os.File); ok && f != nil && tty == nil {
		p.stdin = f
		return nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stdin pipe: %w", err)
	}
	p.stdin = pr
	p.closers = append(p.closers, pr)
	if p.cmd.Stdin == nil {
		pw.Close()
		return nil
	}
	// Not waited for: the copy ends when the caller's reader does, or when a
	// write fails because the shell is gone (the read end is closed).
	go func(src io.Reader) {
		defer pw.Close()
		if tty != nil {
			p.copyTTYInput(pw, src, tty)
			return
		}
		_, _ = io.Copy(pw, src)
	}(p.cmd.Stdin)
	return nil
}

func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil { // uncomparable writer types
			same = false
		}
	}()
	return a == b
}

// copyTTYInput acts as a terminal's line discipline: carriage returns become
// newlines, input is echoed, ^C interrupts, ^D ends the input.
func (p *process) copyTTYInput(dst io.Writer, src io.Reader, tty io.Writer) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		out := make([]byte, 0, n)
		for _, b := range buf[:n] {
			switch b {
			case '\r':
				b = '\n'
			case 0x03:
				_, _ = tty.Write([]byte("^C\n"))
				_ = p.Signal(syscall.SIGINT)
				continue
			case 0x04:
				if len(out) > 0 {
					_, _ = dst.Write(out)
				}
				return
			}
			out = append(out, b)
		}
		if len(out) > 0 {
			_, _ = tty.Write(out)
			if _, werr := dst.Write(out); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// onlcr turns "\n" into "\r\n" as a terminal does.
type onlcr struct{ w io.Writer }

func (t onlcr) Write(b []byte) (int, error) {
	out := make([]byte, 0, len(b)+8)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// killed reports whether the process was sent SIGKILL (before it ended).
func (p *process) killed() (syscall.Signal, bool) {
	var s signalled
	if errors.As(context.Cause(p.ctx), &s) && s.sig == syscall.SIGKILL {
		return s.sig, true
	}
	return 0, false
}

// finish records the status and releases Wait.
func (p *process) finish(st executor.Status) {
	p.cancel(errShellExited)
	for _, c := range p.closers {
		_ = c.Close()
	}
	p.mu.Lock()
	p.status = st
	p.resumeLocked()
	p.mu.Unlock()
	close(p.done)
}

// resumeLocked ends a stop (SIGCONT, or the process's end): the waits of
// the stopped process wake up. Called with p.mu held.
func (p *process) resumeLocked() {
	if !p.stopped {
		return
	}
	p.stopped = false
	close(p.cont)
	for _, wake := range p.contWake {
		wake()
	}
	p.contWake = nil
}

// Wait implements executor.Process.
func (p *process) Wait() executor.Status {
	<-p.done
	return p.status
}

// Resize implements executor.Process; the virtual terminal has no size to
// change.
func (p *process) Resize(executor.Window) error { return nil }

// Signal implements executor.Process: it delivers sig to every shell of the
// process, as to a process group, and returns once the sleeps it ends have
// woken up. See the package documentation for how closely this follows a
// real shell.
func (p *process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return errProcessDone
	default:
	}
	if sig < 0 || sig > 64 {
		return fmt.Errorf("signal %d: %w", sig, syscall.EINVAL)
	}
	defer p.awaitWoken()
	switch sig {
	case 0:
		return nil
	case syscall.SIGKILL:
		p.cancel(signalled{sig})
		return nil
	case syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
		p.mu.Lock()
		if !p.stopped {
			p.stopped = true
			p.cont = make(chan struct{})
		}
		p.mu.Unlock()
		return nil
	case syscall.SIGCONT:
		p.mu.Lock()
		p.resumeLocked()
		p.mu.Unlock()
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.frames) == 0 {
		if terminates(sig) {
			p.cancel(signalled{sig})
		}
		return nil
	}
	name := sigName(sig)
	for i := len(p.frames) - 1; i >= 0; i-- {
		f := p.frames[i]
		code, trapped := f.traps[name]
		if f.execing {
			if i < len(p.frames)-1 {
				continue // replaced by the shell it exec'd, which took the signal
			}
			trapped = trapped && code == "" // only ignored signals survive exec
		}
		switch {
		case trapped && code == "":
			// ignored, by the shell and the commands it runs
		case trapped:
			f.pending = append(f.pending, sig)
			if terminates(sig) {
				f.interruptLocked(sig)
			}
		case f.interactive && (sig == syscall.SIGINT || sig == syscall.SIGQUIT || sig == syscall.SIGTERM):
			// an interactive shell survives these; its foreground command does not
			f.interruptLocked(sig)
		case terminates(sig):
			f.cancel(signalled{sig})
		}
	}
	return nil
}

// pauseIfStopped blocks while the process is stopped, sleeping on the host
// clock so that a virtual clock keeps moving.
func (p *process) pauseIfStopped(ctx context.Context) error {
	for {
		p.mu.Lock()
		if !p.stopped {
			p.mu.Unlock()
			return ctx.Err()
		}
		sctx, cancel := context.WithCancel(ctx)
		p.contWake = append(p.contWake, cancel)
		p.mu.Unlock()
		_ = p.sleep(sctx, time.Hour)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.ctx.Err(); err != nil {
			return err
		}
	}
}

// frame is one shell of a process: the top shell, or a bash or sh it runs
// (bash -c, a script file). Fields after mu-annotated ones are guarded by
// the process's mu.
type frame struct {
	p           *process
	base        context.Context // what the shell was started with
	jobs        context.Context // parent of every run of this shell; ends when it exits
	endJobs     context.CancelCauseFunc
	ctx         context.Context // the current run; ends when a signal kills the shell
	cancel      context.CancelCauseFunc
	interactive bool
	name        string    // $0, which bash puts before its own messages
	stdout      io.Writer // the shell's standard output, for >(...) jobs

	redirLines map[string]int // line of each literal redirection target
	lastLine   atomic.Int64   // line of the last simple command run

	// guarded by p.mu
	traps    map[string]string // signal name (TERM, EXIT, ERR) -> code; "" ignores
	pending  []syscall.Signal
	fg       map[*fgOp]struct{}
	inTrap   bool
	trapDone bool
	ending   bool                 // the shell has ended and reaps its jobs
	execing  bool                 // the shell ran exec CMD: CMD stands in for it
	bgEnded  int                  // background jobs of this shell that have ended
	waitWake []context.CancelFunc // wake the shell's `wait` sleeping on the clock
}

type fgOp struct{ cancel context.CancelCauseFunc }

type frameKey struct{}

func frameOf(ctx context.Context) *frame {
	f, _ := ctx.Value(frameKey{}).(*frame)
	return f
}

// pushFrame starts a new shell frame under ctx.
func (p *process) pushFrame(ctx context.Context, interactive bool) *frame {
	f := &frame{p: p, base: ctx, interactive: interactive, traps: map[string]string{}, fg: map[*fgOp]struct{}{}, redirLines: map[string]int{}}
	f.jobs, f.endJobs = context.WithCancelCause(ctx)
	f.ctx, f.cancel = context.WithCancelCause(f.jobs)
	p.mu.Lock()
	if n := len(p.frames); n > 0 {
		// Ignored signals stay ignored in child shells; caught ones reset.
		for k, v := range p.frames[n-1].traps {
			if v == "" && k != "EXIT" && k != "ERR" {
				f.traps[k] = ""
			}
		}
	}
	p.frames = append(p.frames, f)
	p.mu.Unlock()
	return f
}

func (p *process) popFrame(f *frame) {
	f.endJobs(errShellExited)
	p.mu.Lock()
	for i, g := range p.frames {
		if g == f {
			p.frames = append(p.frames[:i], p.frames[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
}

// runCtx returns the context a run of the shell uses: it carries the frame.
func (f *frame) runCtx() context.Context { return context.WithValue(f.ctx, frameKey{}, f) }

// rearm gives the shell a fresh run context (for its EXIT trap after a
// signal killed the main run).
func (f *frame) rearm() {
	ctx, cancel := context.WithCancelCause(f.jobs)
	f.p.mu.Lock()
	f.ctx, f.cancel = ctx, cancel
	f.p.mu.Unlock()
}

// killedBy returns the signal that ended the shell's current run, if any.
func (f *frame) killedBy() syscall.Signal {
	var s signalled
	if errors.As(context.Cause(f.ctx), &s) {
		return s.sig
	}
	if f.ctx.Err() != nil && f.p.ctx.Err() != nil {
		return syscall.SIGKILL // Start's context ended
	}
	return 0
}

func (f *frame) interruptLocked(sig syscall.Signal) {
	for op := range f.fg {
		op.cancel(signalled{sig})
	}
}

// foreground registers a blocking builtin (sleep) as the shell's foreground
// child: a signal the shell traps still ends it, as it would end a real child
// in the same process group.
func (f *frame) foreground(ctx context.Context) (context.Context, func()) {
	c, cancel := context.WithCancelCause(ctx)
	if f == nil {
		return c, func() { cancel(nil) }
	}
	op := &fgOp{cancel: cancel}
	f.p.mu.Lock()
	f.fg[op] = struct{}{}
	f.p.mu.Unlock()
	return c, func() {
		f.p.mu.Lock()
		delete(f.fg, op)
		f.p.mu.Unlock()
		cancel(nil)
	}
}

func (f *frame) hasPending() bool {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return len(f.pending) > 0 && !f.inTrap
}

// nextTrap pops the next pending signal whose trap is still set and returns
// its code.
func (f *frame) nextTrap() (string, bool) {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	for len(f.pending) > 0 {
		sig := f.pending[0]
		f.pending = f.pending[1:]
		if code := f.traps[sigName(sig)]; code != "" {
			return code, true
		}
	}
	return "", false
}

func (f *frame) isEnding() bool {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return f.ending
}

func (f *frame) setInTrap(v bool) {
	f.p.mu.Lock()
	f.inTrap = v
	if v {
		f.trapDone = false
	}
	f.p.mu.Unlock()
}

func (f *frame) trap(name string) (string, bool) {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	c, ok := f.traps[name]
	return c, ok
}

package virtual

import (
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// SIGPIPE, as a real host has it: a process that writes to a pipe nobody
// reads any more is killed by SIGPIPE (status 141 in $?), so that
// `producer | head -1` ends once head has what it wants. The interpreter's
// pipes are OS pipes whose writes just fail with EPIPE, which the shell's
// own echo ignores and a loop around it never notices; so the virtual shell
// acts the signal out itself:
//   - before the builtins that always write (echo, printf), when standard
//     output is a pipe with no reader left and no PIPE trap is set, the
//     command is replaced by `exit 141`: the (sub)shell dies as bash's does;
//   - a virtual command whose write to a pipe fails with EPIPE is ended
//     (its context cancelled, its later writes dropped) and exits 141,
//     unless the shell ignores PIPE (`trap '' PIPE`, inherited by children
//     on a real host), when it sees the EPIPE error as a real one would.
//
// Not acted out: the interpreter's echo and printf, with PIPE ignored, fail
// silently where bash prints "echo: write error: Broken pipe"; and sed
// reads all its input before it quits (`producer | sed 2q` waits for the
// producer's end).

// sigpipeStatus is $? of a command killed by SIGPIPE.
const sigpipeStatus = 128 + int(syscall.SIGPIPE)

// readerGone reports whether w is a pipe whose reading end is closed
// everywhere: a write to it raises SIGPIPE.
func readerGone(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(pfd, 0); err == nil && n > 0 && pfd[0].Revents&unix.POLLERR != 0 {
			gone = true
		}
	})
	return gone
}

// sigpipeWriter is a virtual command's standard output when it is a pipe.
// The first EPIPE kills the command (kill), after which nothing more is
// written to out or to its standard error; with PIPE ignored it is only
// remembered, for the command's "write error" at its end.
type sigpipeWriter struct {
	out     io.Writer
	kill    context.CancelFunc
	ignored bool
	epipe   atomic.Bool
}

func (w *sigpipeWriter) killed() bool { return !w.ignored && w.epipe.Load() }

func (w *sigpipeWriter) Write(b []byte) (int, error) {
	if w.killed() {
		return 0, syscall.EPIPE
	}
	n, err := w.out.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		w.epipe.Store(true)
		if !w.ignored {
			w.kill()
		}
	}
	return n, err
}

// mutedAfter drops writes once the command it belongs to was killed.
type mutedAfter struct {
	w   io.Writer
	sig *sigpipeWriter
}

func (m mutedAfter) Write(b []byte) (int, error) {
	if m.sig.killed() {
		return len(b), nil
	}
	return m.w.Write(b)
}

// withSIGPIPE arms SIGPIPE for a virtual command c about to run under ctx:
// it returns the context to run it with and a function that gives its exit
// status: 141 when it was killed; with PIPE ignored (a real child inherits
// that), 1 and GNU's "write error: Broken pipe" when a write failed and the
// command did not notice. With standard output not a pipe nothing changes.
func withSIGPIPE(ctx context.Context, c *Call) (context.Context, func(int) int) {
	same := func(code int) int { return code }
	if f, ok := c.Stdout.(*os.File); !ok || f == nil {
		return ctx, same
	} else if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return ctx, same
	}
	ignored := false
	if fr := frameOf(ctx); fr != nil {
		code, ok := fr.trap("PIPE")
		ignored = ok && code == ""
	}
	kctx, kill := context.WithCancel(ctx)
	w := &sigpipeWriter{out: c.Stdout, kill: kill, ignored: ignored}
	c.Stdout = w
	c.Stderr = mutedAfter{w: c.Stderr, sig: w}
	return kctx, func(code int) int {
		kill()
		switch {
		case w.killed():
			return sigpipeStatus
		case w.epipe.Load() && code == 0:
			c.warnf("write error: Broken pipe")
			return 1
		}
		return code
	}
}

package sshd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/sim/executor"
)

// session is one "session" channel: the requests that prepare it (env,
// pty-req), the one exec, shell or subsystem it runs, and the requests
// that reach the running command (window-change, signal).
type session struct {
	s    *Server
	ctx  ssh.Context
	cs   *connState
	conn *gossh.ServerConn
	ch   gossh.Channel
	user string

	mu      sync.Mutex
	env     []string
	win     *executor.Window
	proc    executor.Process
	started bool

	gone    chan struct{} // closed when the client closed the channel or the connection ended
	runDone chan struct{} // closed when the exec, shell or subsystem is over
}

// handleSession replaces gliderlabs' session handler: it owns the channel
// so that it can send exit-signal, notice the client closing the channel
// (ControlMaster clients close channels, not connections) and hand the
// pty to the executor unchanged.
func (s *Server) handleSession(_ *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	if !s.enter() {
		_ = nc.Reject(gossh.ResourceShortage, "server is shutting down")
		return
	}
	defer s.wg.Done()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ss := &session{
		s: s, ctx: ctx, cs: stateOf(ctx), conn: conn, ch: ch, user: conn.User(),
		gone: make(chan struct{}), runDone: make(chan struct{}),
	}
	if ss.cs == nil {
		ss.cs = &connState{id: "c?"}
	}
	for req := range reqs {
		ss.handleRequest(req)
	}
	close(ss.gone)
	ss.mu.Lock()
	started := ss.started
	ss.mu.Unlock()
	if started {
		<-ss.runDone
	}
	_ = ch.Close()
}

func (ss *session) handleRequest(req *gossh.Request) {
	reply := func(ok bool) { _ = req.Reply(ok, nil) }
	switch req.Type {
	case "env":
		var kv struct{ Name, Value string }
		if gossh.Unmarshal(req.Payload, &kv) != nil || kv.Name == "" || strings.ContainsRune(kv.Name, '=') {
			reply(false)
			return
		}
		if f := ss.s.cfg.acceptEnv; f != nil && !f(kv.Name) {
			reply(false)
			return
		}
		ss.mu.Lock()
		ss.env = append(ss.env, kv.Name+"="+kv.Value)
		ss.mu.Unlock()
		reply(true)
	case "pty-req":
		var p struct {
			Term                             string
			Columns, Rows, WidthPx, HeightPx uint32
			Modes                            string
		}
		if gossh.Unmarshal(req.Payload, &p) != nil {
			reply(false)
			return
		}
		ss.mu.Lock()
		ok := !ss.started && ss.win == nil
		if ok {
			ss.win = &executor.Window{Term: p.Term, Width: int(p.Columns), Height: int(p.Rows)}
		}
		ss.mu.Unlock()
		reply(ok)
	case "window-change":
		var p struct{ Columns, Rows, WidthPx, HeightPx uint32 }
		if gossh.Unmarshal(req.Payload, &p) != nil {
			reply(false)
			return
		}
		ss.mu.Lock()
		ok := ss.win != nil
		var proc executor.Process
		var w executor.Window
		if ok {
			ss.win.Width, ss.win.Height = int(p.Columns), int(p.Rows)
			proc, w = ss.proc, *ss.win
		}
		ss.mu.Unlock()
		if proc != nil {
			_ = proc.Resize(w)
		}
		reply(ok)
	case "signal":
		var p struct{ Signal string }
		_ = gossh.Unmarshal(req.Payload, &p)
		sig, known := signalByName[p.Signal]
		ss.mu.Lock()
		proc := ss.proc
		ss.mu.Unlock()
		if known && proc != nil {
			reply(proc.Signal(sig) == nil)
			return
		}
		reply(false)
	case "exec", "shell", "subsystem":
		var p struct{ Value string }
		if req.Type != "shell" && gossh.Unmarshal(req.Payload, &p) != nil {
			reply(false)
			return
		}
		var run func()
		switch req.Type {
		case "exec":
			run = func() { ss.runCommand(opExec, p.Value) }
		case "shell":
			run = func() { ss.runCommand(opShell, "") }
		default:
			run = ss.subsystem(p.Value)
		}
		ss.mu.Lock()
		ok := !ss.started && run != nil
		if ok {
			ss.started = true
		}
		ss.mu.Unlock()
		reply(ok)
		if ok {
			go func() {
				defer close(ss.runDone)
				run()
			}()
		}
	default:
		// auth-agent-req@openssh.com, x11-req and the like are not offered.
		reply(false)
	}
}

// goneContext ends when the client leaves (channel or connection) or the
// server closes.
func (ss *session) goneContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ss.s.base)
	go func() {
		select {
		case <-ss.gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// exit sends the exit status, then EOF and close. The status goes before
// the EOF: the other order (also valid by RFC 4254) made one first command
// in about fifty through a fresh OpenSSH ControlPersist master end with
// exit 255 and no message under load (the master freed the session before
// passing the status on to its mux client).
func (ss *session) exit(code int) {
	_, _ = ss.ch.SendRequest("exit-status", false, gossh.Marshal(struct{ Status uint32 }{uint32(code)}))
	_ = ss.ch.CloseWrite()
	_ = ss.ch.Close()
}

// exitSignal reports a command killed by sig (exit-signal, which gliderlabs'
// Session.Exit cannot send). The OpenSSH client exits 255 on it, as with a
// real sshd; other clients get the signal name (Go's ExitError.Signal()).
func (ss *session) exitSignal(sig syscall.Signal, code int) {
	name, ok := signalNames[sig]
	if !ok {
		ss.exit(code)
		return
	}
	_, _ = ss.ch.SendRequest("exit-signal", false, gossh.Marshal(struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}{Signal: name}))
	_ = ss.ch.CloseWrite()
	_ = ss.ch.Close()
}

// dropper cuts the TCP connection once limit bytes of output have gone to
// the client; afterwards output is discarded so that the command runs on
// as it would under a real sshd whose client vanished from the network.
type dropper struct {
	limit  int64
	closer io.Closer // the ssh connection: closing it closes the TCP connection
	mu     sync.Mutex
	sent   int64
	cut    bool
}

// allow returns how much of n bytes may still be sent, cutting the
// connection when the limit is reached.
func (d *dropper) allow(n int) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return 0, false
	}
	left := d.limit - d.sent
	if int64(n) < left {
		d.sent += int64(n)
		return n, true
	}
	d.sent = d.limit
	return int(left), false
}

func (d *dropper) drop() {
	d.mu.Lock()
	already := d.cut
	d.cut = true
	d.mu.Unlock()
	if !already {
		_ = d.closer.Close()
	}
}

func (d *dropper) dropped() bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cut
}

// countWriter counts output and applies a drop fault. Once discarding
// (a pty whose client went away) it swallows what is written, so that a
// command that survives its hangup never blocks on a terminal nobody reads.
type countWriter struct {
	w       io.Writer
	n       atomic.Int64
	drop    *dropper
	discard atomic.Bool
	// tty: a failed write (the channel is closed: the client left) is
	// swallowed too, as a terminal's output has nowhere to block.
	tty bool
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.discard.Load() {
		return len(p), nil
	}
	if c.drop == nil {
		n, err := c.w.Write(p)
		c.n.Add(int64(n))
		if err != nil && c.tty {
			c.discard.Store(true)
			return len(p), nil
		}
		return n, err
	}
	k, more := c.drop.allow(len(p))
	if k > 0 {
		n, _ := c.w.Write(p[:k])
		c.n.Add(int64(n))
	}
	if !more {
		c.drop.drop()
	}
	return len(p), nil
}

type countReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// preFaults applies the ssh rules for op that act before a session
// request runs, noting them in its event fields f: it waits out latency
// and hang rules (a client that goes away meanwhile ends the request with
// 255, and done gets -1 and held), then an exit rule ends it with the
// rule's stderr (wroteErr, when set, gets its length) and status (default
// 255). over reports that the request has ended and done was called.
func (ss *session) preFaults(op fault.Op, f map[string]any, held string, wroteErr func(n int), done func(code int, why string)) (fired []fault.Rule, over bool) {
	s := ss.s
	fired = s.faultsFor(op)
	if len(fired) > 0 {
		f["faults"] = ruleIDs(fired)
	}
	wctx, stop := ss.goneContext()
	defer stop()
	if err := s.wait(wctx, fired); err != nil {
		ss.exit(255)
		done(-1, held)
		return fired, true
	}
	if r, ok := fault.First(fired, fault.Exit); ok {
		code := 255
		if r.Effect.ExitCode != nil {
			code = *r.Effect.ExitCode
		}
		msg := r.Effect.StderrLine()
		_, _ = io.WriteString(ss.ch.Stderr(), msg)
		if wroteErr != nil {
			wroteErr(len(msg))
		}
		ss.exit(code)
		done(code, "")
		return fired, true
	}
	return fired, false
}

// runCommand runs an exec request (op "exec") or a shell (op "shell").
func (ss *session) runCommand(op, command string) {
	s := ss.s
	start := time.Now()
	ss.mu.Lock()
	var win *executor.Window
	if ss.win != nil {
		w := *ss.win
		win = &w
	}
	env := append([]string(nil), ss.env...)
	ss.mu.Unlock()

	f := map[string]any{"user": ss.user, "op": op, "command": command, "conn": ss.cs.id, "pty": win != nil}
	done := func(code int, format string, args ...any) {
		f["exit"] = code
		f["duration_ms"] = float64(time.Since(start).Microseconds()) / 1000
		what := command
		if op == opShell {
			what = "shell"
		}
		msg := fmt.Sprintf("%s %q by %s: exit %d", op, what, ss.user, code)
		if format != "" {
			f["error"] = fmt.Sprintf(format, args...)
			msg += " (" + f["error"].(string) + ")"
		}
		s.record(events.SSHExec, msg, f)
	}

	fired, over := ss.preFaults(fault.Op{Layer: fault.SSH, Name: op, Command: command, User: ss.user}, f,
		"client went away while a fault held the command",
		func(n int) { f["bytes_err"] = int64(n) },
		func(code int, why string) {
			if why == "" {
				done(code, "")
				return
			}
			done(code, "%s", why)
		})
	if over {
		return
	}
	var drop *dropper
	if r, ok := fault.First(fired, fault.Drop); ok {
		drop = &dropper{limit: r.Effect.AfterBytes, closer: ss.conn}
	}
	if s.cfg.exec == nil {
		msg := "jobsim sshd: this host has no executor: commands cannot run\n"
		_, _ = io.WriteString(ss.ch.Stderr(), msg)
		ss.exit(127)
		done(127, "no executor")
		return
	}

	stdout := &countWriter{w: ss.ch, drop: drop}
	stderr := &countWriter{w: ss.ch.Stderr(), drop: drop}
	stdin := &countReader{r: ss.ch}
	pr, pw, err := os.Pipe()
	if err != nil {
		_, _ = fmt.Fprintf(ss.ch.Stderr(), "jobsim sshd: stdin pipe: %v\n", err)
		ss.exit(127)
		done(127, "stdin pipe: %v", err)
		return
	}
	// The command reads a real pipe: executors that run real processes
	// then need no copying goroutine of their own that could block Wait on
	// a client that never sends EOF.
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(pw, stdin)
		pw.Close()
	}()
	cmd := executor.Command{
		User:   ss.user,
		Script: command,
		Login:  op == opShell,
		Env:    append(ss.sshEnv(), env...),
		Stdin:  pr,
		Stdout: stdout,
		Stderr: stderr,
		TTY:    win,
	}
	// cannot ends the request when the command could not be started: what
	// says what failed to the client, why in the event.
	cannot := func(what, why string, err error) {
		pr.Close()
		pw.Close()
		_, _ = fmt.Fprintf(ss.ch.Stderr(), "jobsim sshd: %s: %v\n", what, err)
		ss.exit(127)
		<-copied
		done(127, "%s: %v", why, err)
	}
	var outs *outPipes
	if win != nil {
		cmd.Stderr = stdout
		stdout.tty = true
	} else if outs, err = newOutPipes(stdout, stderr); err != nil {
		cannot("output pipes", "output pipes", err)
		return
	} else {
		cmd.Stdout, cmd.Stderr = outs.stdoutW, outs.stderrW
	}
	pctx, kill := context.WithCancel(s.base)
	defer kill()
	proc, err := s.cfg.exec.Start(pctx, cmd)
	if err != nil {
		outs.abandon()
		cannot("cannot run command", "start", err)
		return
	}
	ss.mu.Lock()
	ss.proc = proc
	if win != nil && ss.win != nil && *ss.win != *win {
		_ = proc.Resize(*ss.win)
	}
	ss.mu.Unlock()
	if drop != nil && drop.limit == 0 {
		drop.drop()
	}

	procDone := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-procDone:
			return
		case <-s.base.Done():
			// Close: the executor kills the command (pctx); output that
			// an orphan still holds open is not waited for.
			outs.abandon()
			return
		case <-ss.gone:
		}
		switch {
		case drop.dropped():
			// A cut network: the command is not told and runs on.
		case s.cfg.killOnDisconnect:
			f["client_gone_ms"] = time.Since(start).Milliseconds()
			f["killed_on_disconnect"] = true
			// Hang up at once, terminate half way through the grace
			// period, kill at its end.
			_ = proc.Signal(syscall.SIGHUP)
			for _, step := range []func(){func() { _ = proc.Signal(syscall.SIGTERM) }, kill} {
				t := time.NewTimer(s.cfg.killGrace / 2)
				select {
				case <-procDone:
					t.Stop()
					return
				case <-t.C:
					step()
				}
			}
			// Killed: what still holds the output (a process that left
			// the group) is not waited for.
			outs.closeReaders()
		default:
			f["client_gone_ms"] = time.Since(start).Milliseconds()
			ss.clientGone(proc, stdout, outs)
		}
		// The command may outlive its client, not the server.
		select {
		case <-procDone:
		case <-s.base.Done():
			outs.abandon()
		}
	}()
	st := proc.Wait()
	outs.wait() // the output, until every process holding it closed it (as sshd)
	close(procDone)
	<-watched
	ss.mu.Lock()
	ss.proc = nil
	ss.mu.Unlock()
	pr.Close()
	pw.Close()

	f["bytes_in"] = stdin.n.Load()
	f["bytes_out"] = stdout.n.Load()
	f["bytes_err"] = stderr.n.Load()
	if drop.dropped() {
		f["dropped"] = true
	}
	switch {
	case st.Err != nil:
		_, _ = fmt.Fprintf(ss.ch.Stderr(), "jobsim sshd: command failed to run: %v\n", st.Err)
		ss.exit(127)
		<-copied
		done(127, "run: %v", st.Err)
	case st.Signal != 0:
		ss.exitSignal(st.Signal, st.Code)
		<-copied
		if name, ok := signalNames[st.Signal]; ok {
			f["signal"] = name
		}
		done(st.Code, "")
	default:
		ss.exit(st.Code)
		<-copied
		done(st.Code, "")
	}
}

// clientGone is what OpenSSH's sshd does to a command when its client goes
// away (the connection ends, or only the channel, as when a ControlMaster
// client is killed): it closes its side of the command's streams and
// nothing more. Without a pty the command runs on with standard input at
// EOF, and its next write to standard output or error fails with EPIPE
// (SIGPIPE for a real process). With a pty, closing the terminal's master
// hangs it up: the command gets SIGHUP (here sent to its process group)
// and what it still writes goes nowhere.
func (ss *session) clientGone(proc executor.Process, ptyOut *countWriter, outs *outPipes) {
	if outs != nil {
		outs.closeReaders()
		return
	}
	ptyOut.discard.Store(true)
	_ = proc.Signal(syscall.SIGHUP)
}

// outPipes are a command's standard output and error when it has no pty:
// real pipes whose write ends the command holds and whose read ends the
// server copies to the channel. Closing the read ends is how the command
// loses its output when the client goes away, as under OpenSSH's sshd; an
// executor that runs real processes hands the write ends to the process
// itself, so the kernel raises SIGPIPE in whichever process writes next.
type outPipes struct {
	stdoutW, stderrW *os.File
	readers          []*os.File
	copies           sync.WaitGroup
	closeW           sync.Once
	closeR           sync.Once
}

// newOutPipes makes the two pipes and starts copying them to stdout and
// stderr; a copy that cannot write any more closes its read end at once.
func newOutPipes(stdout, stderr io.Writer) (*outPipes, error) {
	o := &outPipes{}
	for _, w := range []io.Writer{stdout, stderr} {
		r, pw, err := os.Pipe()
		if err != nil {
			o.abandon()
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		if o.stdoutW == nil {
			o.stdoutW = pw
		} else {
			o.stderrW = pw
		}
		o.readers = append(o.readers, r)
		o.copies.Add(1)
		go func(w io.Writer, r *os.File) {
			defer o.copies.Done()
			_, _ = io.Copy(w, r)
			r.Close()
		}(w, r)
	}
	return o, nil
}

// closeReaders makes the command's further writes fail (EPIPE).
func (o *outPipes) closeReaders() {
	if o == nil {
		return
	}
	o.closeR.Do(func() {
		for _, r := range o.readers {
			r.Close()
		}
	})
}

// wait closes the server's write ends (the command has ended) and waits
// until the output has been copied: until every process that still holds
// it open (a background job) has closed it, as sshd waits for EOF.
func (o *outPipes) wait() {
	if o == nil {
		return
	}
	o.closeW.Do(func() {
		for _, w := range []*os.File{o.stdoutW, o.stderrW} {
			if w != nil {
				w.Close()
			}
		}
	})
	o.copies.Wait()
}

// abandon gives up the output: both ends are closed, nothing is waited for.
func (o *outPipes) abandon() {
	if o == nil {
		return
	}
	o.closeReaders()
	o.closeW.Do(func() {
		for _, w := range []*os.File{o.stdoutW, o.stderrW} {
			if w != nil {
				w.Close()
			}
		}
	})
}

// sshEnv is what sshd adds to a session's environment.
func (ss *session) sshEnv() []string {
	rh, rp, _ := net.SplitHostPort(ss.conn.RemoteAddr().String())
	lh, lp, _ := net.SplitHostPort(ss.conn.LocalAddr().String())
	return []string{
		"SSH_CONNECTION=" + rh + " " + rp + " " + lh + " " + lp,
		"SSH_CLIENT=" + rh + " " + rp + " " + lp,
	}
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE", syscall.SIGHUP: "HUP",
	syscall.SIGILL: "ILL", syscall.SIGINT: "INT", syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE",
	syscall.SIGQUIT: "QUIT", syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
	syscall.SIGUSR2: "USR2",
}

var signalByName = func() map[string]syscall.Signal {
	m := make(map[string]syscall.Signal, len(signalNames))
	for s, n := range signalNames {
		m[n] = s
	}
	return m
}()

// Package real is the real executor of a simulated job host: commands run
// as real processes (bash -c SCRIPT, and whatever the script runs: rsync
// --server, python, cylc) in the host's root directory on the real disk,
// with each user's home under it (<root>/home/alice) and a clean
// environment whose PATH finds the PBS client (the jobsim binary under the
// names qsub, qstat, ...) first.
//
// Every command runs in a process group of its own, so that Signal and the
// cancellation of Start's context reach everything it started: cancelling
// sends SIGTERM to the group, then SIGKILL to what is left after a grace
// period. Processes run as the uid of the harness (root or not): the
// executor never changes user, so USER, LOGNAME and HOME say who the
// command runs for while `id -u` tells the truth.
//
// A command dies with the process that started it: it gets SIGKILL from
// the kernel when jobsim dies (the parent-death signal; Linux sends it
// when the creating OS thread exits, and Go ends a thread only when a
// goroutine locked to it with runtime.LockOSThread returns, which no
// caller of Start does; an executor hiding directories (WithHidden) forks
// from a thread of its own that lives until Close). Under a jobsim run ($JOBSIM_RUN, package
// internal/runreg) commands carry the run id in their environment, so
// that the run's watcher also finds what they started in new sessions.
package real

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/creack/pty"

	"github.com/jobsim/jobsim/internal/runreg"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor"
)

// DefaultPath is the PATH after the bin directory when WithPath is not given.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// Option configures an Executor.
type Option func(*Executor)

// WithBinDir puts dir first on PATH, also in login shells (whose
// /etc/profile resets PATH): the directory of the PBS client links.
func WithBinDir(dir string) Option { return func(e *Executor) { e.binDir = dir } }

// WithPath sets the PATH after the bin directory.
func WithPath(p string) Option { return func(e *Executor) { e.path = p } }

// WithHome sets where a user's home is. Without it the home of user U is
// <root>/home/U, and <root>/root for root.
func WithHome(home func(user string) string) Option { return func(e *Executor) { e.home = home } }

// WithEnv adds KEY=value pairs to every command's base environment.
func WithEnv(kv ...string) Option { return func(e *Executor) { e.env = append(e.env, kv...) } }

// WithKillGrace sets how long a cancelled command's process group has
// between SIGTERM and SIGKILL (default 2s; 0 sends SIGKILL at once).
func WithKillGrace(d time.Duration) Option { return func(e *Executor) { e.grace = d } }

// WithKillOrphans makes the executor end what is left of a command's process
// group once its top process has exited, as a batch system does at the end
// of a job. Without it such orphans keep running, and Wait waits until they
// close the command's output, as sshd does.
func WithKillOrphans() Option { return func(e *Executor) { e.killOrphans = true } }

// WithShell sets the shell used when a Command names none (default: bash
// found on the harness's PATH).
func WithShell(path string) Option { return func(e *Executor) { e.shell = path } }

// WithLogger sets the logger for process starts and ends (debug level).
func WithLogger(l *slog.Logger) Option { return func(e *Executor) { e.log = l } }

// Executor starts real processes. It implements executor.Executor.
type Executor struct {
	root        string
	binDir      string
	path        string
	home        func(string) string
	env         []string
	grace       time.Duration
	killOrphans bool
	shell       string
	log         *slog.Logger
	hidden      []string
	ns          *mountNS // nil: processes start in the machine's mount namespace
	isoErr      error    // why the hidden directories are not hidden

	mu     sync.Mutex
	procs  map[*process]struct{}
	closed bool
}

var _ executor.Executor = (*Executor)(nil)

// New returns an executor whose host root is root, an existing directory.
// It creates <root>/tmp (TMPDIR of every command) when missing.
func New(root string, opts ...Option) (*Executor, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("real executor: host root %q must be an absolute path", root)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("real executor: host root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("real executor: host root %s is not a directory", root)
	}
	e := &Executor{root: root, path: DefaultPath, grace: 2 * time.Second, log: slog.New(slog.DiscardHandler), procs: map[*process]struct{}{}}
	for _, o := range opts {
		o(e)
	}
	if e.home == nil {
		e.home = func(u string) string {
			if u == "root" {
				return filepath.Join(root, "root")
			}
			return filepath.Join(root, "home", u)
		}
	}
	if e.shell == "" {
		sh, err := exec.LookPath("bash")
		if err != nil {
			return nil, fmt.Errorf("real executor: no bash on PATH (install bash or pass WithShell): %w", err)
		}
		e.shell = sh
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o777); err != nil {
		return nil, fmt.Errorf("real executor: %w", err)
	}
	_ = os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	if len(e.hidden) > 0 {
		hide, err := hideable(e.hidden)
		if err != nil {
			return nil, fmt.Errorf("real executor: %w", err)
		}
		if len(hide) > 0 { // else nothing there to hide
			if e.ns, err = newMountNS(hide); err != nil {
				e.isoErr = err
			}
		}
	}
	return e, nil
}

// Root returns the host root directory.
func (e *Executor) Root() string { return e.root }

// Home returns the home directory of user.
func (e *Executor) Home(user string) string { return e.home(user) }

// pathEnv is the PATH of every command.
func (e *Executor) pathEnv() string {
	if e.binDir == "" {
		return e.path
	}
	return e.binDir + ":" + e.path
}

// environ is the environment of a command for user.
func (e *Executor) environ(cmd executor.Command, shell string) []string {
	home := e.home(cmd.User)
	env := []string{
		"HOME=" + home,
		"USER=" + cmd.User,
		"LOGNAME=" + cmd.User,
		"SHELL=" + shell,
		"PATH=" + e.pathEnv(),
		"LANG=C.UTF-8",
		"TMPDIR=" + filepath.Join(e.root, "tmp"),
	}
	if cmd.TTY != nil {
		term := cmd.TTY.Term
		if term == "" {
			term = "xterm"
		}
		env = append(env, "TERM="+term)
		if cmd.Login && cmd.Script == "" && e.binDir != "" && isBash(shell) {
			// An interactive login shell reads /etc/profile, which resets
			// PATH; put the bin directory back before the first prompt.
			env = append(env, "PROMPT_COMMAND="+e.pathFix())
		}
	}
	if run := os.Getenv(runreg.EnvVar); run != "" {
		// The jobsim run this host belongs to: its watcher finds the
		// command (and what it starts) by it if the run is killed.
		env = append(env, runreg.EnvVar+"="+run)
	}
	env = append(env, e.env...)
	return mergeEnv(env, cmd.Env)
}

// pathFix is shell code that puts the bin directory back on PATH.
func (e *Executor) pathFix() string {
	q := shellQuote(e.binDir)
	return `case ":$PATH:" in *:` + q + `:*) ;; *) PATH=` + q + `:$PATH;; esac`
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// mergeEnv adds extra to base, later entries replacing earlier ones of the
// same name.
func mergeEnv(base, extra []string) []string {
	out := make([]string, 0, len(base)+len(extra))
	idx := map[string]int{}
	for _, kv := range append(base, extra...) {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if i, seen := idx[k]; seen {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func isBash(shell string) bool { return filepath.Base(shell) == "bash" }

// takesLogin reports whether shell understands --login (or -l).
func takesLogin(shell string) bool {
	switch filepath.Base(shell) {
	case "bash", "sh", "dash", "ksh", "zsh", "mksh":
		return true
	}
	return false
}

// args builds the shell's arguments for cmd.
func (e *Executor) args(cmd executor.Command, shell string) []string {
	var a []string
	if cmd.Login && takesLogin(shell) {
		if isBash(shell) {
			a = append(a, "--login")
		} else {
			a = append(a, "-l")
		}
	}
	if cmd.Script == "" {
		if cmd.TTY == nil {
			a = append(a, "-s") // commands from standard input
		}
		return a
	}
	script := cmd.Script
	if cmd.Login && e.binDir != "" && isBash(shell) {
		// /etc/profile resets PATH; the fix goes on the script's first
		// line so that its line numbers stay right.
		script = e.pathFix() + "; " + script
	}
	return append(a, "-c", script)
}

// Start implements executor.Executor.
func (e *Executor) Start(ctx context.Context, cmd executor.Command) (executor.Process, error) {
	if cmd.User == "" {
		return nil, errors.New("real executor: command has no user")
	}
	shell := cmd.Shell
	if shell == "" {
		shell = e.shell
	} else if !filepath.IsAbs(shell) {
		sh, err := exec.LookPath(shell)
		if err != nil {
			return nil, fmt.Errorf("real executor: shell %q: %w", cmd.Shell, err)
		}
		shell = sh
	}
	dir := cmd.Dir
	home := e.home(cmd.User)
	if dir == "" {
		dir = home
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join(home, dir)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("real executor: working directory for %s: %w", cmd.User, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("real executor: working directory %s for %s is not a directory", dir, cmd.User)
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, errors.New("real executor: closed")
	}

	c := exec.Command(shell, e.args(cmd, shell)...)
	c.Args[0] = filepath.Base(shell) // as sshd starts it; bash words its messages after argv[0]
	c.Dir = dir
	c.Env = e.environ(cmd, shell)
	p := &process{e: e, cmd: c, exited: make(chan struct{}), done: make(chan struct{})}
	start := func() error {
		if cmd.TTY != nil {
			return p.startPTY(cmd)
		}
		return p.startPipes(cmd)
	}
	var err error
	if e.ns != nil {
		err = e.ns.do(start) // forked from the namespace's thread
	} else {
		err = start()
	}
	if err != nil {
		return nil, fmt.Errorf("real executor: start %s for %s: %w", shell, cmd.User, err)
	}
	p.pgid = c.Process.Pid
	e.mu.Lock()
	e.procs[p] = struct{}{}
	closed = e.closed
	e.mu.Unlock()
	if closed { // Close ran while this one started
		p.terminate()
	}
	e.log.Debug("real process start", "pid", p.pgid, "user", cmd.User, "dir", dir)
	go p.wait()
	go func() {
		select {
		case <-ctx.Done():
			p.terminate()
		case <-p.done:
		}
	}()
	return p, nil
}

// Close kills every running command's process group and waits for them.
func (e *Executor) Close() error {
	e.mu.Lock()
	e.closed = true
	ps := make([]*process, 0, len(e.procs))
	for p := range e.procs {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		p.terminate()
	}
	for _, p := range ps {
		<-p.done
	}
	e.mu.Lock()
	late := make([]*process, 0, len(e.procs))
	for p := range e.procs {
		late = append(late, p)
	}
	e.mu.Unlock()
	for _, p := range late { // started while Close ran; terminated by Start
		<-p.done
	}
	if e.ns != nil {
		if left := e.ns.close(); len(left) > 0 {
			e.log.Warn("processes outlive the host's mount namespace; its mounts (a FUSE fault mount among them) stay until they end", "pids", left)
		}
	}
	return nil
}

// process is a started command.
type process struct {
	e    *Executor
	cmd  *exec.Cmd
	pgid int
	ptmx *os.File

	copies  sync.WaitGroup
	readers []*os.File // our ends of the output pipes (or the pty master)

	termOnce sync.Once
	termDone chan struct{} // closed when terminate has finished, once started
	exited   chan struct{} // the top process has been reaped
	done     chan struct{}
	status   executor.Status
}

// startPipes starts the command with pipes for the streams that are not
// files. The copy of standard input is not waited for: it ends when the
// caller's reader does or when nobody reads the pipe any more.
func (p *process) startPipes(cmd executor.Command) error {
	c := p.cmd
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	var stdinCopy func()
	switch in := cmd.Stdin.(type) {
	case nil:
	case *os.File:
		c.Stdin = in
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		c.Stdin = pr
		childEnds = append(childEnds, pr)
		stdinCopy = func() {
			_, _ = io.Copy(pw, in)
			pw.Close()
		}
	}
	outFile := func(w io.Writer) (*os.File, error) {
		if w == nil {
			return nil, nil
		}
		if f, ok := w.(*os.File); ok {
			return f, nil
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		childEnds = append(childEnds, pw)
		p.readers = append(p.readers, pr)
		p.copies.Add(1)
		go func() {
			defer p.copies.Done()
			_, _ = io.Copy(w, pr)
		}()
		return pw, nil
	}
	var err error
	if c.Stdout, err = outFile(cmd.Stdout); err != nil {
		closeAll(childEnds)
		return err
	}
	if sameWriter(cmd.Stdout, cmd.Stderr) {
		c.Stderr = c.Stdout
	} else if c.Stderr, err = outFile(cmd.Stderr); err != nil {
		closeAll(childEnds)
		return err
	}
	if err := c.Start(); err != nil {
		closeAll(childEnds)
		closeAll(p.readers)
		return err
	}
	closeAll(childEnds)
	if stdinCopy != nil {
		go stdinCopy()
	}
	return nil
}

func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a != nil && a == b
}

// startPTY starts the command on a new pseudo-terminal, in a session of its
// own; the terminal carries both output streams. The master stays in
// non-blocking mode (no Fd() on it), so that closing it ends a blocked read
// and Resize cannot race the close.
func (p *process) startPTY(cmd executor.Command) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return err
	}
	if err := pty.Setsize(tty, &pty.Winsize{Cols: uint16(cmd.TTY.Width), Rows: uint16(cmd.TTY.Height)}); err != nil {
		ptmx.Close()
		tty.Close()
		return err
	}
	c := p.cmd
	c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
	err = c.Start()
	tty.Close()
	if err != nil {
		ptmx.Close()
		return err
	}
	p.ptmx = ptmx
	p.readers = append(p.readers, ptmx)
	if cmd.Stdin != nil {
		go func() { _, _ = io.Copy(ptmx, cmd.Stdin) }()
	}
	out := cmd.Stdout
	if out == nil {
		out = io.Discard
	}
	p.copies.Add(1)
	go func() {
		defer p.copies.Done()
		// Reading the master fails with EIO once every slave is closed.
		_, _ = io.Copy(out, ptmx)
	}()
	return nil
}

// wait reaps the top process, waits for the output to be copied and
// records the status.
func (p *process) wait() {
	err := p.cmd.Wait()
	close(p.exited)
	st := executor.Status{}
	if ps := p.cmd.ProcessState; ps != nil {
		ws, _ := ps.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			st.Signal = ws.Signal()
			st.Code = 128 + int(ws.Signal())
		default:
			st.Code = ps.ExitCode()
		}
		st.Usage = batch.UsageOf(ps)
	} else if err != nil {
		st.Err = err
		st.Code = -1
	}
	if p.e.killOrphans {
		p.terminate()
	}
	p.copies.Wait()
	// Once a termination has begun, the command is over when its whole
	// group is gone.
	p.e.mu.Lock()
	termDone := p.termDone
	p.e.mu.Unlock()
	if termDone != nil {
		<-termDone
	}
	for _, r := range p.readers {
		r.Close()
	}
	p.status = st
	p.e.mu.Lock()
	delete(p.e.procs, p)
	p.e.mu.Unlock()
	p.e.log.Debug("real process end", "pid", p.pgid, "code", st.Code, "signal", st.Signal)
	close(p.done)
}

// groupAlive reports whether any live process of the command's group is
// left. Zombies do not count: an orphan that died is reparented to a pid 1
// that may never reap it, and kill(2) still finds it.
func (p *process) groupAlive() bool {
	if syscall.Kill(-p.pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // no /proc: trust kill(2)
	}
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		f := procStat(name)
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if f[2] == strconv.Itoa(p.pgid) {
			return true
		}
	}
	return false
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (state ppid pgrp ...), none when the process is gone.
func procStat(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
	stat := string(b)
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(stat[i+1:])
}

// terminate ends the process group: SIGTERM (and SIGCONT, so that a
// stopped group can act on it), then SIGKILL after the grace period, then,
// if something outside the group still holds the output open, gives up
// reading it.
func (p *process) terminate() {
	p.termOnce.Do(func() {
		p.e.mu.Lock()
		p.termDone = make(chan struct{})
		p.e.mu.Unlock()
		go func() {
			defer close(p.termDone)
			if p.e.grace > 0 {
				_ = syscall.Kill(-p.pgid, syscall.SIGTERM)
				_ = syscall.Kill(-p.pgid, syscall.SIGCONT)
				deadline := time.Now().Add(p.e.grace)
				for time.Now().Before(deadline) && p.groupAlive() {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if p.groupAlive() {
				_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
			}
			<-p.exited
			copied := make(chan struct{})
			go func() {
				p.copies.Wait()
				close(copied)
			}()
			select {
			case <-copied:
			case <-time.After(p.e.grace + time.Second):
				for _, r := range p.readers {
					r.Close()
				}
			}
		}()
	})
}

// Signal implements executor.Process: sig goes to the whole process group.
func (p *process) Signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		if !p.groupAlive() {
			return os.ErrProcessDone
		}
	default:
	}
	if err := syscall.Kill(-p.pgid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return fmt.Errorf("signal %d to process group %d: %w", sig, p.pgid, err)
	}
	return nil
}

// Resize implements executor.Process: TIOCSWINSZ on the master, through
// the file's own synchronisation (a closed terminal is no error).
func (p *process) Resize(w executor.Window) error {
	if p.ptmx == nil {
		return nil
	}
	sc, err := p.ptmx.SyscallConn()
	if err != nil {
		return nil
	}
	ws := &pty.Winsize{Cols: uint16(w.Width), Rows: uint16(w.Height)}
	var ioctlErr error
	if err := sc.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(ws))); e != 0 {
			ioctlErr = e
		}
	}); err != nil {
		return nil // closed: the command has ended
	}
	if ioctlErr != nil {
		return fmt.Errorf("resize terminal: %w", ioctlErr)
	}
	return nil
}

// Wait implements executor.Process.
func (p *process) Wait() executor.Status {
	<-p.done
	return p.status
}

// Pid returns the process id of the top process (also its process group id).
func (p *process) Pid() int { return p.pgid }

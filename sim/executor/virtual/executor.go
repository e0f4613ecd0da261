// Package virtual is the virtual executor of a simulated job host: an
// embedded bash interpreter (mvdan.cc/sh/v3/interp) whose every file access
// goes through the host's afero filesystem, so that injected filesystem
// faults apply, and whose commands are Go builtins (a small coreutils set,
// sleep on the host clock, kill on a virtual process table, plus any command
// the host plugs in, such as the PBS client). No real process is ever started
// and no file outside the host filesystem is read or written (not even the
// named pipes of process substitution), so thousands
// of hosts fit in one test process and a virtual clock makes `sleep 3600`
// return at once.
//
// Approximations, each chosen over a heavier emulation:
//   - Signals act at command boundaries. SIGTERM, SIGINT, SIGHUP and the other
//     terminating signals end a script at once unless it traps them; a
//     trapped signal interrupts the running sleep (as the signal would kill a
//     real child in the same process group) and its trap runs before the next
//     command, then the script goes on, as bash does. The EXIT trap runs when
//     the script ends, also when a signal ended it. SIGKILL ends it at once.
//   - SIGSTOP and SIGTSTP take effect at the next command or sleep boundary,
//     not in the middle of a builtin; a sleep keeps counting while stopped.
//     SIGCONT resumes. While stopped, the script waits on the host clock in
//     one-hour steps, so a virtual clock keeps moving.
//   - `$$` in the script text is the virtual pid; in eval'd or sourced text it
//     is the simulator's own pid, which `kill` also takes to mean "this shell".
//     `$!` is the interpreter's "gN" job id, which `kill` cannot signal.
//   - Background jobs still running when their shell exits are killed (a
//     real shell would leave them running as orphans).
//   - Traps are kept per shell, not per subshell: a trap set inside `( ... )`
//     applies to the enclosing shell.
//   - File ownership: a file without owner information, or owned by the uid
//     the simulator runs as, counts as owned by the calling user.
//   - `type`, `command -v` and `which` report builtins as /usr/bin/NAME.
//   - The whole -c script is parsed before it runs: a syntax error anywhere
//     means nothing runs (bash runs the lines before it).
//   - Time is shown in UTC whatever TZ says.
//   - Clock accounting: the top shell is one actor (Clock.Go, or the caller's
//     actor when ctx is marked with executor.InCallerActor); each `X &` of
//     the script text is an actor of its own, and `wait` idles on the clock
//     while such jobs run. The two sides of a pipeline, process
//     substitutions and `&` inside eval'd or sourced text share their
//     shell's actor, so sleeps on both sides of a pipe add up. A shell
//     blocked reading standard input counts as running (the clock waits).
//   - `type`, `command -v` and `command -V` answer from the host's own
//     builtins and PATH (lookup.go); `source NAME` finds NAME on the host's
//     PATH or in the working directory. A sourced file that uses process
//     substitution runs as eval'd text (so `return` at its top level and
//     $BASH_SOURCE differ), and only without arguments.
//   - Process substitution uses in-memory pipes named /dev/fd/N (psub.go),
//     never a FIFO on the real disk; the substituted commands run as a
//     background job of a command substitution, so `wait` and `$!` of the
//     shell do not see them, and >(...) writes to the shell's original
//     standard output.
//   - Builtins implement the options scripts commonly use, not all of GNU's;
//     an unknown option gets GNU's "invalid option" message. Long options
//     may be abbreviated as with glibc, but only among the long options a
//     builtin knows ("ls --c" is --classify here, ambiguous with GNU).
//   - grep and sed match POSIX leftmost-longest with Go's regexp (see
//     regex.go): back-references in a pattern (\1 to \9) and the [.x.] and
//     [=x=] bracket forms are refused with a message saying so; submatch
//     boundaries follow Go's rules (which agree with GNU's on the cases the
//     GNU comparison test holds, where strict POSIX rules would differ).
package virtual

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/sim/executor"
)

// DefaultPath is the PATH a user gets when no WithPath option is given.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// User is a host account as the executor needs it.
type User struct {
	Name  string
	UID   int
	GID   int
	Group string // primary group name; the user name when empty
	Home  string
	Shell string // login shell; /bin/bash when empty
}

// Option configures an Executor.
type Option func(*Executor)

// WithFS sets the host filesystem every file access goes through. Without it
// the host has an empty in-memory filesystem.
func WithFS(fs afero.Fs) Option { return func(e *Executor) { e.fs = fs } }

// WithClock sets the host clock that sleep, date and file times use.
func WithClock(c clock.Clock) Option { return func(e *Executor) { e.clock = c } }

// WithHostname sets the name hostname prints and HOSTNAME holds.
func WithHostname(name string) Option { return func(e *Executor) { e.hostname = name } }

// WithUsers sets how user names map to accounts. lookup returns an error for
// an unknown user, which Start reports. Without it every name is a valid user
// with uid 1000 (0 for root) and home /home/NAME (/root for root).
func WithUsers(lookup func(name string) (User, error)) Option {
	return func(e *Executor) { e.users = lookup }
}

// WithPath sets the PATH users start with.
func WithPath(p string) Option { return func(e *Executor) { e.path = p } }

// WithEnv adds KEY=value pairs to every user's base environment (before
// Command.Env), for example PBS_SERVER.
func WithEnv(kv ...string) Option { return func(e *Executor) { e.env = append(e.env, kv...) } }

// WithBuiltin adds a command, found by name before the standard builtins, so
// that a host can plug in the PBS client (qsub, qstat, ...) or any other
// command in process. A nil fn removes a standard builtin.
func WithBuiltin(name string, fn Builtin) Option {
	return func(e *Executor) { e.extra[name] = fn }
}

// WithLogger sets the logger for process starts and ends (debug level).
func WithLogger(l *slog.Logger) Option { return func(e *Executor) { e.log = l } }

// Executor runs commands in an embedded shell over a host filesystem. It
// implements executor.Executor. Close it to end its processes and remove its
// temporary directory.
type Executor struct {
	fs       afero.Fs
	clock    clock.Clock
	hostname string
	users    func(string) (User, error)
	path     string
	env      []string
	extra    map[string]Builtin
	log      *slog.Logger

	mu      sync.Mutex
	closed  bool
	nextPid int
	procs   map[int]*process
	ptys    map[int]bool // pseudo-terminal numbers in use (/dev/pts/N)
	wg      sync.WaitGroup
}

var _ executor.Executor = (*Executor)(nil)

// New returns a virtual executor.
func New(opts ...Option) *Executor {
	e := &Executor{
		clock:    clock.Real{},
		hostname: "localhost",
		path:     DefaultPath,
		extra:    map[string]Builtin{},
		log:      slog.New(slog.DiscardHandler),
		nextPid:  1000,
		procs:    map[int]*process{},
	}
	for _, o := range opts {
		o(e)
	}
	if e.fs == nil {
		e.fs = afero.NewMemMapFs()
	}
	if e.users == nil {
		e.users = defaultUser
	}
	return e
}

func defaultUser(name string) (User, error) {
	if name == "" {
		return User{}, errors.New("no user name given")
	}
	if name == "root" {
		return User{Name: "root", Home: "/root"}, nil
	}
	return User{Name: name, UID: 1000, GID: 1000, Home: "/home/" + name}, nil
}

// FS returns the host filesystem the executor works on.
func (e *Executor) FS() afero.Fs { return e.fs }

// Clock returns the host clock.
func (e *Executor) Clock() clock.Clock { return e.clock }

// Hostname returns the host name.
func (e *Executor) Hostname() string { return e.hostname }

func (e *Executor) lookupUser(name string) (User, error) {
	u, err := e.users(name)
	if err != nil {
		return User{}, err
	}
	if u.Name == "" {
		u.Name = name
	}
	if u.Group == "" {
		u.Group = u.Name
	}
	if u.Shell == "" {
		u.Shell = "/bin/bash"
	}
	if u.Home == "" {
		u.Home = "/home/" + u.Name
	}
	return u, nil
}

// Start implements executor.Executor. The command runs as a simulated actor
// on the host clock (Clock.Go), or inside the caller's actor when ctx is
// marked with executor.InCallerActor; Wait for its Process.
func (e *Executor) Start(ctx context.Context, cmd executor.Command) (executor.Process, error) {
	u, err := e.lookupUser(cmd.User)
	if err != nil {
		return nil, fmt.Errorf("virtual executor on %s: user %q: %w", e.hostname, cmd.User, err)
	}
	if cmd.Shell != "" && !isShell(cmd.Shell) {
		return nil, fmt.Errorf("virtual executor on %s: shell %q: only bash and sh scripts run on a virtual host", e.hostname, cmd.Shell)
	}
	dir := cmd.Dir
	if dir == "" {
		dir = u.Home
	}
	if !path.IsAbs(dir) {
		dir = path.Join(u.Home, dir)
	}
	dir = path.Clean(dir)
	if fi, err := e.fs.Stat(dir); err != nil {
		return nil, fmt.Errorf("virtual executor on %s: working directory %s: %s", e.hostname, dir, errText(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("virtual executor on %s: working directory %s: Not a directory", e.hostname, dir)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, fmt.Errorf("virtual executor on %s: closed", e.hostname)
	}
	e.nextPid++
	pid := e.nextPid
	p := newProcess(ctx, e, pid, u, cmd, dir)
	if cmd.TTY != nil {
		p.pty = e.allocPTY()
	}
	e.procs[pid] = p
	e.wg.Add(1)
	e.mu.Unlock()

	if err := p.setupIO(); err != nil {
		e.forget(p)
		e.wg.Done()
		p.cancel(errors.New("start failed"))
		return nil, fmt.Errorf("virtual executor on %s: %w", e.hostname, err)
	}
	e.log.Debug("virtual process start", "host", e.hostname, "pid", pid, "user", u.Name, "script", truncate(cmd.Script, 200))
	body := func(actx context.Context) {
		defer e.wg.Done()
		st := p.run(actx)
		// A SIGKILL delivered before the shell ended ends it, whatever
		// the shell managed to do in the meantime: a sleep whose clock
		// came due in the same instant may have returned first.
		if sig, ok := p.killed(); ok && st.Signal == 0 {
			st = executor.Status{Signal: sig}
		}
		e.forget(p)
		p.finish(st)
		e.log.Debug("virtual process end", "host", e.hostname, "pid", pid, "code", st.Code, "signal", st.Signal)
	}
	if executor.CallerActor(ctx) {
		// The caller (the PBS server) is an actor blocked in Wait: the
		// script runs inside that actor (see fakepbs.Executor).
		go body(p.ctx)
	} else {
		e.clock.Go(p.ctx, body)
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (e *Executor) forget(p *process) {
	e.mu.Lock()
	delete(e.procs, p.pid)
	if p.pty >= 0 {
		delete(e.ptys, p.pty)
	}
	e.mu.Unlock()
}

// allocPTY takes the lowest free pseudo-terminal number, as Linux's devpts
// does. Called with e.mu held.
func (e *Executor) allocPTY() int {
	if e.ptys == nil {
		e.ptys = map[int]bool{}
	}
	n := 0
	for e.ptys[n] {
		n++
	}
	e.ptys[n] = true
	return n
}

func (e *Executor) lookup(pid int) *process {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.procs[pid]
}

// ProcessInfo describes a running virtual process.
type ProcessInfo struct {
	Pid     int
	User    string
	Command string // the script or command line, as started
	Started time.Time
	Stopped bool
}

// Processes lists the running processes, by pid.
func (e *Executor) Processes() []ProcessInfo {
	e.mu.Lock()
	ps := make([]*process, 0, len(e.procs))
	for _, p := range e.procs {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	out := make([]ProcessInfo, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		out = append(out, ProcessInfo{Pid: p.pid, User: p.user.Name, Command: p.cmd.Script, Started: p.started, Stopped: p.stopped})
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out
}

// Signal sends sig to the process with the given pid, as kill(1) would.
func (e *Executor) Signal(pid int, sig syscall.Signal) error {
	p := e.lookup(pid)
	if p == nil {
		return fmt.Errorf("virtual executor on %s: pid %d: %w", e.hostname, pid, syscall.ESRCH)
	}
	return p.Signal(sig)
}

// Close kills every process still running, waits for them, and removes the
// executor's temporary directory. Start fails afterwards.
func (e *Executor) Close() error {
	e.mu.Lock()
	e.closed = true
	ps := make([]*process, 0, len(e.procs))
	for _, p := range e.procs {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		_ = p.Signal(syscall.SIGKILL)
	}
	e.wg.Wait()
	return nil
}

func isShell(sh string) bool {
	return slices.Contains([]string{"bash", "sh", "dash", "ksh", "rbash"}, path.Base(sh))
}

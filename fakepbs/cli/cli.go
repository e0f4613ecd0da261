// Package cli is the command-line front end of the fake PBS server: qsub,
// qstat, qdel, qsig, qhold, qrls and pbsnodes with the options, output bytes
// and exit codes of OpenPBS, run in-process against a fakepbs.Backend.
//
// The behaviour follows the OpenPBS sources (src/cmds/*.c, src/lib/Libcmds)
// rather than guesses: glibc getopt with its messages, OpenPBS's usage texts,
// the qstat table and its truncation rules, qstat -f line wrapping, OpenPBS's
// own JSON writer with its quirks, and `<cmd>: <text> <jobid>` errors that
// exit with pbs_errno & 0xff. Faults from the shared fault set (layer "pbs")
// apply per command: rejected, slow, hanging, garbage output, unreachable
// server and truncated job ids.
package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/internal/cmdrun"
	"github.com/spf13/afero"
)

// Commands are the PBS command names the front end implements.
var Commands = []string{"qsub", "qstat", "qdel", "qsig", "qhold", "qrls", "pbsnodes"}

// IsCommand reports whether name (a program name or path) is one of Commands.
func IsCommand(name string) bool { return cmdrun.IsCommand(name, Commands) }

// Invocation is one run of a PBS command: what a real process would get from
// its argv, environment, working directory, credentials and standard input.
type Invocation struct {
	Command   string    // qsub, qstat, ... (a path is reduced to its base name)
	Args      []string  // the arguments after the command name
	Stdin     io.Reader // read only by qsub without a script operand; nil reads nothing
	StdinTTY  bool      // standard input is a terminal
	StdoutTTY bool      // standard output is a terminal (qsub -I checks both)
	Env       []string  // KEY=value, the command's environment
	Cwd       string    // working directory (PBS_O_WORKDIR, relative script paths)
	User      string    // the calling user
	Host      string    // the host the command runs on (PBS_O_HOST, Job_Owner)
	// FS is where qsub reads script files: the host's filesystem. Nil means
	// the operating system's.
	FS afero.Fs
}

// Result is what the command wrote and how it exited.
type Result = cmdrun.Result

// Option configures Run.
type Option func(*config)

type config struct {
	faults   *fault.Set
	rec      events.Recorder
	loc      *time.Location
	now      func() time.Time
	poll     time.Duration
	log      *slog.Logger
	stdinMax int64
}

// WithFaults applies the "pbs" layer rules of set to every command (nil: none).
func WithFaults(set *fault.Set) Option { return func(c *config) { c.faults = set } }

// WithRecorder records every command as an events.PBSCall event.
func WithRecorder(r events.Recorder) Option { return func(c *config) { c.rec = r } }

// WithLocation sets the time zone of the dates qstat and pbsnodes print
// (ctime format); the default is time.Local, as on a real host.
func WithLocation(loc *time.Location) Option { return func(c *config) { c.loc = loc } }

// WithNow sets the clock qsub -a reads relative dates from and that stamps
// JSON output; the default is time.Now.
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPollInterval sets how often qsub -W block=true asks for the job's state
// when the backend cannot wait itself (is no Waiter; default 50ms).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithLogger logs what the front end does at debug level.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Waiter is implemented by backends that can block until a job has ended;
// qsub -W block=true uses it instead of polling. *fakepbs.Server implements
// it: the job's Exit_status comes back with or without job history, a
// deleted job's message as a *fakepbs.AbortedError, and
// fakepbs.ErrNoReply for a job OpenPBS would never report (qsub then waits
// until interrupted). Polling, the fallback, cannot tell a finished job's
// exit status once the server has forgotten it (no history): qsub then
// exits 0.
type Waiter interface {
	WaitJob(ctx context.Context, id string) (fakepbs.Job, error)
}

// HistoryPurger is implemented by backends that can drop a job's history
// (qdel -x): a finished job leaves history at once, a live one is deleted
// and leaves none when it finishes. *fakepbs.Server implements it. Without
// it, qdel -x deletes live jobs and ignores finished ones.
type HistoryPurger interface {
	PurgeHistory(ctx context.Context, user, id string) error
}

// run is the state of one command run.
type run struct {
	ctx     context.Context
	b       fakepbs.Backend
	inv     Invocation
	cfg     *config
	prog    string // argv[0] as messages show it
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	env     map[string]string
	info    *fakepbs.ServerInfo
	fired   []fault.Rule
	truncID bool
}

// Run executes one PBS command against backend and returns its output and
// exit status as OpenPBS would produce them.
func Run(ctx context.Context, backend fakepbs.Backend, inv Invocation, opts ...Option) Result {
	cfg := config{loc: time.Local, now: time.Now, poll: 50 * time.Millisecond, rec: events.Discard{}, stdinMax: 64 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	r := &run{ctx: ctx, b: backend, inv: inv, cfg: &cfg, prog: path.Base(inv.Command)}
	if inv.FS == nil {
		r.inv.FS = afero.NewOsFs()
	}
	return cmdrun.Done{
		Kind: events.PBSCall, LogMsg: "pbs command", Log: cfg.log, Rec: cfg.rec,
		Prog: r.prog, Args: inv.Args, User: inv.User, Stdout: &r.stdout, Stderr: &r.stderr,
	}.Run(r.exec)
}

func commandLine(prog string, args []string) string { return cmdrun.CommandLine(prog, args) }

// exec dispatches to the command after applying faults.
func (r *run) exec() int {
	if !IsCommand(r.prog) {
		fmt.Fprintf(&r.stderr, "%s: not a PBS command (want one of %s)\n", r.prog, strings.Join(Commands, ", "))
		return 127
	}
	if code, done := r.applyFaults(); done {
		return code
	}
	if r.b.Down() {
		// The server is restarting: nothing listens on its port, as with
		// an unreachable rule of the default style.
		return r.unreachable(fault.Rule{})
	}
	var err error
	switch r.prog {
	case "qsub":
		err = r.qsub()
	case "qstat":
		err = r.qstat()
	case "qdel":
		err = r.qdel()
	case "qsig":
		err = r.qsig()
	case "qhold":
		err = r.qholdRls(true)
	case "qrls":
		err = r.qholdRls(false)
	case "pbsnodes":
		err = r.pbsnodes()
	}
	code := cmdrun.Status(err, &r.stderr, r.prog+": ")
	cmdrun.Garble(r.fired, &r.stdout)
	return code
}

// exit ends the command with status code & 0xff, as exit(3) does.
func exit(code int) error { return cmdrun.Exit(code) }

// applyFaults checks the "pbs" rules for this command and applies the ones
// that act before it runs: waits (latency, hang), rejection, unreachable
// server. It reports done when the command must not run.
func (r *run) applyFaults() (int, bool) {
	if r.cfg.faults == nil {
		return 0, false
	}
	op := fault.Op{Layer: fault.PBS, Name: r.prog, Command: commandLine(r.prog, r.inv.Args), User: r.inv.User, Job: r.firstJobOperand()}
	var code int
	var done bool
	if r.fired, code, done = cmdrun.Check(r.ctx, r.cfg.faults, op, &r.stderr); done || len(r.fired) == 0 {
		return code, done
	}
	if u, ok := fault.First(r.fired, fault.Unreachable); ok {
		return r.unreachable(u), true
	}
	if _, ok := fault.First(r.fired, fault.TruncateIDs); ok {
		r.truncID = true
	}
	return 0, false
}

// firstJobOperand is the first operand that looks like a job id, as a full
// id, for fault rules that select jobs.
func (r *run) firstJobOperand() string {
	if r.prog == "qsub" || r.prog == "pbsnodes" {
		return ""
	}
	for _, a := range r.inv.Args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if id, ok := parseJobID(a); ok {
			return fullJobID(id, r.serverName())
		}
	}
	return ""
}

// unreachable writes what a PBS command prints when its server does not
// answer (see Unreachable) and returns its exit status. Effect.Stderr, when
// set, replaces the whole message; Effect.ExitCode the status.
func (r *run) unreachable(rule fault.Rule) int {
	res := Unreachable(r.prog, r.serverName(), rule.Effect.Style)
	if rule.Effect.Stderr != "" {
		r.stderr.WriteString(rule.Effect.StderrLine())
	} else {
		r.stderr.Write(res.Stderr)
	}
	if rule.Effect.ExitCode != nil {
		return *rule.Effect.ExitCode & 0xff
	}
	return res.ExitCode
}

// Unreachable is what the PBS command cmd prints and how it exits when it
// cannot reach its server named server. Style "refused" (the default) is
// PBS Pro 18 with the server down: perror's "Connection refused", then
// "<cmd>: cannot connect to server <server> (errno=111)". Style
// "cannot-connect" is PBS 2021 and later when the server host does not
// answer: "Connection timed out" and pbs_errno 15010 (PBSE_NOSERVER); Cylc
// 8.0's PBS handler, which looks for "Connection refused", does not
// recognise it (cylc-flow#6531). qstat exits 255 (its failed connection
// handle, -1), pbsnodes 1, the others pbs_errno & 0xff.
func Unreachable(cmd, server, style string) Result {
	cmd = path.Base(cmd)
	newer := style == "cannot-connect"
	errno := 111
	first := "Connection refused"
	if newer {
		errno = 15010
		first = "Connection timed out"
	}
	code := errno & 0xff
	var msg string
	switch cmd {
	case "qstat":
		msg = fmt.Sprintf("qstat: cannot connect to server %s (errno=%d)\n", server, errno)
		code = 255
	case "pbsnodes":
		msg = fmt.Sprintf("pbsnodes: cannot connect to server %s, error=%d\n", server, errno)
		code = 1
	case "qdel":
		if newer {
			msg = fmt.Sprintf("Couldn't connect to cluster: %s\n", server)
		} else {
			msg = fmt.Sprintf("qdel: cannot connect to server %s (errno=%d)\n", server, errno)
		}
	default:
		msg = fmt.Sprintf("%s: cannot connect to server %s (errno=%d)\n", cmd, server, errno)
	}
	return Result{Stdout: []byte{}, Stderr: []byte(first + "\n" + msg), ExitCode: code}
}

// getenv reads the invocation's environment (last definition wins).
func (r *run) getenv(k string) (string, bool) {
	if r.env == nil {
		r.env = make(map[string]string, len(r.inv.Env))
		for _, kv := range r.inv.Env {
			if key, v, ok := strings.Cut(kv, "="); ok {
				r.env[key] = v
			}
		}
	}
	v, ok := r.env[k]
	return v, ok
}

// server returns the server's description, asked once per command.
func (r *run) server() fakepbs.ServerInfo {
	if r.info == nil {
		i := r.b.Info(r.ctx)
		r.info = &i
	}
	return *r.info
}

// serverName is the default server as the commands name it (PBS_SERVER).
func (r *run) serverName() string {
	if s := r.server().Name; s != "" {
		return s
	}
	return r.server().Host
}

// pbsVersion is what --version and JSON output report.
func (r *run) pbsVersion() string {
	if v := r.server().Version; v != "" {
		return v
	}
	return "22.05.11"
}

// printVersion handles PRINT_VERSION_AND_EXIT: a lone --version argument.
func (r *run) printVersion() bool {
	if len(r.inv.Args) == 1 && strings.EqualFold(r.inv.Args[0], "--version") {
		fmt.Fprintf(&r.stdout, "pbs_version = %s\n", r.pbsVersion())
		return true
	}
	return false
}

// pbsErr turns a backend error into its pbs_errno and text.
func pbsErr(err error) (int, string) {
	var pe *fakepbs.Error
	if errors.As(err, &pe) {
		return pe.Code, pe.Text
	}
	return fakepbs.ErrInternal, "Internal Server Error"
}

// jobErr prints an error as prt_job_err does: "<cmd>: <text> <id>".
func (r *run) jobErr(err error, id string) int {
	code, text := pbsErr(err)
	fmt.Fprintf(&r.stderr, "%s: %s %s\n", r.prog, text, id)
	return code
}

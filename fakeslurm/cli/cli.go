// Package cli is the command-line front end of fakeslurm: sbatch, squeue,
// scancel, sacct, sinfo, scontrol and srun with the options, output bytes
// and exit codes of Slurm 22.05 (Debian's slurm-wlm 22.05.8), run in-process
// against a Backend (*fakeslurm.Server).
//
// Where the output matters to a client it was compared with the real
// commands (the differential tests of this package start Debian's slurmctld
// and slurmd and run the same sequences against both). Faults from the
// shared fault set (layer "slurm") apply per command: rejected, slow,
// hanging, garbage output, and a controller that does not answer — with
// each command's own message, exit code and the time a real client spends
// retrying (MessageTimeout from the cluster's configuration).
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
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/internal/cmdrun"
)

// Commands are the Slurm command names the front end implements.
var Commands = []string{"sbatch", "squeue", "scancel", "sacct", "sinfo", "scontrol", "srun"}

// IsCommand reports whether name (a program name or path) is one of Commands.
func IsCommand(name string) bool { return cmdrun.IsCommand(name, Commands) }

// Backend is what the commands need from a controller; *fakeslurm.Server
// implements it.
type Backend interface {
	Info(ctx context.Context) fakeslurm.Info
	Now() time.Time
	Down() bool
	Submit(ctx context.Context, req fakeslurm.SubmitRequest) (int, error)
	Job(ctx context.Context, id int) (fakeslurm.Job, error)
	Jobs(ctx context.Context) ([]fakeslurm.Job, error)
	History(ctx context.Context) ([]fakeslurm.Job, error)
	Cancel(ctx context.Context, user string, uid, id int) error
	Signal(ctx context.Context, user string, uid, id int, sig syscall.Signal, batch bool) error
	Hold(ctx context.Context, user string, id int) error
	Release(ctx context.Context, user string, id int) error
	Nodes(ctx context.Context) ([]fakeslurm.Node, error)
	Partitions(ctx context.Context) ([]fakeslurm.Partition, error)
}

// NodeAdmin is implemented by backends whose nodes `scontrol update
// NodeName=... State=...` can change; *fakeslurm.Server implements it.
type NodeAdmin interface {
	FailNode(ctx context.Context, name, reason string) error
	DrainNode(ctx context.Context, name, reason string) error
	ResumeNode(ctx context.Context, name string) error
}

// StatusReader is implemented by backends that find a job after slurmctld
// forgot it (sbatch --wait uses it); *fakeslurm.Server implements it.
type StatusReader interface {
	Status(ctx context.Context, id int) (fakeslurm.Job, error)
}

var (
	_ Backend      = (*fakeslurm.Server)(nil)
	_ NodeAdmin    = (*fakeslurm.Server)(nil)
	_ StatusReader = (*fakeslurm.Server)(nil)
)

// Invocation is one run of a Slurm command: what a real process would get
// from its argv, environment, working directory, credentials and stdin.
type Invocation struct {
	Command string   // sbatch, squeue, ... (a path is reduced to its base name)
	Args    []string // the arguments after the command name
	Stdin   io.Reader
	Env     []string // KEY=value
	Cwd     string
	User    string
	UID     int
	GID     int
	Group   string // primary group; default: User
	Host    string // the host the command runs on (SLURM_SUBMIT_HOST)
	// FS is where sbatch reads script files. Nil means the operating
	// system's.
	FS afero.Fs
}

// Result is what the command wrote and how it exited.
type Result = cmdrun.Result

// Option configures Run.
type Option func(*config)

type config struct {
	faults *fault.Set
	rec    events.Recorder
	loc    *time.Location
	clock  clock.Clock
	log    *slog.Logger
}

// WithFaults applies the "slurm" layer rules of set to every command.
func WithFaults(set *fault.Set) Option { return func(c *config) { c.faults = set } }

// WithRecorder records every command as a fakeslurm.SlurmCall event.
func WithRecorder(r events.Recorder) Option { return func(c *config) { c.rec = r } }

// WithLocation sets the time zone of printed times (default time.Local).
func WithLocation(loc *time.Location) Option { return func(c *config) { c.loc = loc } }

// WithClock sets the clock a command waits on when its controller does not
// answer (default clock.Real{}): a virtual one makes those waits free.
func WithClock(cl clock.Clock) Option { return func(c *config) { c.clock = cl } }

// WithLogger logs each command at debug level.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

type run struct {
	ctx    context.Context
	b      Backend
	inv    Invocation
	cfg    *config
	prog   string
	stdout bytes.Buffer
	stderr bytes.Buffer
	info   *fakeslurm.Info
	fired  []fault.Rule
	// nodeMem is the first node's RealMemory, for sacct's ReqMem.
	nodeMem int64
}

func exit(code int) error { return cmdrun.Exit(code) }

// Run executes one Slurm command against backend and returns its output and
// exit status as Slurm 22.05 would produce them.
func Run(ctx context.Context, backend Backend, inv Invocation, opts ...Option) Result {
	cfg := config{loc: time.Local, clock: clock.Real{}, rec: events.Discard{}}
	for _, o := range opts {
		o(&cfg)
	}
	r := &run{ctx: ctx, b: backend, inv: inv, cfg: &cfg, prog: path.Base(inv.Command)}
	if r.inv.FS == nil {
		r.inv.FS = afero.NewOsFs()
	}
	if r.inv.Group == "" {
		r.inv.Group = r.inv.User
	}
	return cmdrun.Done{
		Kind: fakeslurm.SlurmCall, LogMsg: "slurm command", Log: cfg.log, Rec: cfg.rec,
		Prog: r.prog, Args: inv.Args, User: inv.User, Stdout: &r.stdout, Stderr: &r.stderr,
	}.Run(r.exec)
}

func commandLine(prog string, args []string) string { return cmdrun.CommandLine(prog, args) }

func (r *run) exec() int {
	if !IsCommand(r.prog) {
		fmt.Fprintf(&r.stderr, "%s: not a Slurm command (want one of %s)\n", r.prog, strings.Join(Commands, ", "))
		return 127
	}
	if len(r.inv.Args) == 1 && (r.inv.Args[0] == "--version" || r.inv.Args[0] == "-V") {
		fmt.Fprintf(&r.stdout, "slurm-wlm %s\n", r.info0().Version)
		return 0
	}
	if code, done := r.applyFaults(); done {
		return code
	}
	var err error
	switch r.prog {
	case "sbatch":
		err = r.sbatch()
	case "squeue":
		err = r.squeue()
	case "scancel":
		err = r.scancel()
	case "sacct":
		err = r.sacct()
	case "sinfo":
		err = r.sinfo()
	case "scontrol":
		err = r.scontrol()
	case "srun":
		err = r.srun()
	}
	code := cmdrun.Status(err, &r.stderr, r.prog+": error: ")
	cmdrun.Garble(r.fired, &r.stdout)
	return code
}

// applyFaults checks the "slurm" rules for this command and applies the
// ones that act before it runs.
func (r *run) applyFaults() (int, bool) {
	if r.cfg.faults == nil {
		return 0, false
	}
	op := fault.Op{Layer: fault.Slurm, Name: r.prog, Command: commandLine(r.prog, r.inv.Args), User: r.inv.User, Job: r.firstJobOperand()}
	var code int
	var done bool
	if r.fired, code, done = cmdrun.Check(r.ctx, r.cfg.faults, op, &r.stderr); done || len(r.fired) == 0 {
		return code, done
	}
	if u, ok := fault.First(r.fired, fault.Unreachable); ok {
		errno := fakeslurm.ErrCtldConnect
		if u.Effect.Style == "cannot-connect" {
			errno = fakeslurm.ErrSocketTimeout
		}
		if !r.waitUnreachable(errno) {
			return 128 + 9, true
		}
		res := Unreachable(r.prog, r.inv.Args, errno, r.info0().ControlHost)
		if u.Effect.Stderr != "" {
			r.stderr.WriteString(u.Effect.StderrLine())
		} else {
			r.stderr.Write(res.Stderr)
		}
		r.stdout.Write(res.Stdout)
		if u.Effect.ExitCode != nil {
			return *u.Effect.ExitCode & 0xff, true
		}
		return res.ExitCode, true
	}
	return 0, false
}

// firstJobOperand is the first operand that is a job id, for rules that
// select jobs.
func (r *run) firstJobOperand() string {
	for _, a := range r.inv.Args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		id, _, _ := strings.Cut(a, ",")
		if _, err := parseJobID(id); err == nil {
			return id
		}
	}
	return ""
}

// controllerDown handles a backend that is down: the client's wait, then
// the command's message. It reports whether the command must end.
func (r *run) controllerDown() (int, bool) {
	if !r.b.Down() {
		return 0, false
	}
	if !r.waitUnreachable(fakeslurm.ErrCtldConnect) {
		return 128 + 9, true
	}
	res := Unreachable(r.prog, r.inv.Args, fakeslurm.ErrCtldConnect, r.info0().ControlHost)
	r.stdout.Write(res.Stdout)
	r.stderr.Write(res.Stderr)
	return res.ExitCode, true
}

// waitUnreachable spends the time a real client spends before it gives up
// on the controller; false when the caller's context ended first.
func (r *run) waitUnreachable(errno int) bool {
	d := UnreachableDelay(r.prog, r.inv.Args, errno, r.info0().MessageTimeout)
	return r.cfg.clock.Sleep(r.ctx, d) == nil
}

// UnreachableDelay is how long a Slurm command spends before it reports an
// absent controller: with the port closed it retries the connect once a
// second for MessageTimeout tries (so MessageTimeout-1s); a hung controller
// (socket timeout) takes MessageTimeout. A single-id `squeue -j N` or
// `scontrol show job N` makes two RPCs (a federation query first) and
// takes twice as long. `scontrol ping` answers at once.
func UnreachableDelay(cmd string, args []string, errno int, msgTimeout time.Duration) time.Duration {
	if msgTimeout <= 0 {
		msgTimeout = 10 * time.Second
	}
	d := msgTimeout
	if errno == fakeslurm.ErrCtldConnect {
		d -= time.Second
	}
	cmd = path.Base(cmd)
	switch cmd {
	case "sacct", "srun":
		return 0
	case "scontrol":
		if len(args) > 0 && args[0] == "ping" {
			return 0
		}
	}
	if singleJobQuery(cmd, args) {
		d *= 2
	}
	return d
}

// singleJobQuery reports a squeue -j or scontrol show job naming one id.
func singleJobQuery(cmd string, args []string) bool {
	switch cmd {
	case "squeue":
		for i, a := range args {
			v := ""
			switch {
			case (a == "-j" || a == "--jobs") && i+1 < len(args):
				v = args[i+1]
			case strings.HasPrefix(a, "--jobs="):
				v = strings.TrimPrefix(a, "--jobs=")
			case strings.HasPrefix(a, "-j") && len(a) > 2:
				v = a[2:]
			default:
				continue
			}
			return !strings.Contains(v, ",")
		}
	case "scontrol":
		var ops []string
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				ops = append(ops, a)
			}
		}
		return len(ops) == 3 && ops[0] == "show" && strings.HasPrefix("jobs", ops[1]) && len(ops[1]) >= 3
	}
	return false
}

// Unreachable is what cmd prints and how it exits when its controller does
// not answer, for errno ErrCtldConnect (slurmctld down, connect failure)
// or ErrSocketTimeout (slurmctld hung). host is SlurmctldHost.
func Unreachable(cmd string, args []string, errno int, host string) Result {
	cmd = path.Base(cmd)
	text := fakeslurm.Errno(errno).Text
	res := Result{Stdout: []byte{}, ExitCode: 1}
	var msg strings.Builder
	switch cmd {
	case "sbatch":
		fmt.Fprintf(&msg, "sbatch: error: Batch job submission failed: %s\n", text)
	case "sinfo":
		fmt.Fprintf(&msg, "slurm_load_partitions: %s\n", text)
	case "scancel":
		ids := jobOperands(args)
		for _, id := range ids {
			fmt.Fprintf(&msg, "scancel: error: Kill job error on job id %s: %s\n", id, text)
		}
		// scancel exits with the largest Slurm errno, cut to 8 bits.
		res.ExitCode = errno & 0xff
		if len(ids) == 0 {
			res.ExitCode = 1
			msg.WriteString("scancel: error: No job identification provided\n")
		}
	case "scontrol":
		op := ""
		var ops []string
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				ops = append(ops, a)
			}
		}
		if len(ops) > 0 {
			op = ops[0]
		}
		switch {
		case op == "ping":
			res.Stdout = []byte(fmt.Sprintf("Slurmctld(primary) at %s is DOWN\n%s", host, pingBanner))
		case op == "show" && len(ops) > 1 && strings.HasPrefix("nodes", ops[1]) && len(ops[1]) >= 1 && ops[1][0] == 'n':
			fmt.Fprintf(&msg, "slurm_load_node error: %s\n", text)
		case op == "show" && len(ops) > 1 && strings.HasPrefix("partitions", ops[1]) && ops[1][0] == 'p':
			fmt.Fprintf(&msg, "slurm_load_partitions error: %s\n", text)
		case op == "hold" || op == "release" || op == "uhold":
			for _, id := range ops[1:] {
				fmt.Fprintf(&msg, "%s for job %s\n", text, id)
			}
			fmt.Fprintf(&msg, "slurm_suspend error: %s\n", text)
		default:
			fmt.Fprintf(&msg, "slurm_load_jobs error: %s\n", text)
		}
	default: // squeue
		fmt.Fprintf(&msg, "slurm_load_jobs error: %s\n", text)
	}
	res.Stderr = []byte(msg.String())
	return res
}

const pingBanner = "*****************************************\n" +
	"** RESTORE SLURMCTLD DAEMON TO SERVICE **\n" +
	"*****************************************\n"

// jobOperands lists scancel's operands (job ids as typed).
func jobOperands(args []string) []string {
	var ids []string
	skip := false
	for _, a := range args {
		if skip {
			skip = false
			continue
		}
		if strings.HasPrefix(a, "-") {
			if len(a) == 2 && strings.ContainsAny(a[1:], "snupMAtwRq") {
				skip = true
			}
			continue
		}
		ids = append(ids, strings.Split(a, ",")...)
	}
	return ids
}

func (r *run) info0() fakeslurm.Info {
	if r.info == nil {
		i := r.b.Info(r.ctx)
		r.info = &i
	}
	return *r.info
}

// now is the controller's clock in the commands' time zone.
func (r *run) now() time.Time { return r.b.Now().In(r.cfg.loc) }

// stamp prints a time as Slurm does, or Unknown.
func (r *run) stamp(t time.Time) string {
	if t.IsZero() {
		return "Unknown"
	}
	return t.In(r.cfg.loc).Format("2006-01-02T15:04:05")
}

// errText is the text of a backend error.
func errText(err error) string {
	var e *fakeslurm.Error
	if errors.As(err, &e) {
		return e.Text
	}
	return err.Error()
}

// parseJobID reads a job id operand: digits, optionally with an array
// suffix the fake never has (_N), as scancel and squeue accept.
func parseJobID(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty job id")
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid job id %q", s)
		}
		n = n*10 + int(c-'0')
		if n > 1<<31 {
			return 0, fmt.Errorf("job id %q out of range", s)
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("invalid job id %q", s)
	}
	return n, nil
}

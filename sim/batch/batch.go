// Package batch is the contract between a job host and the batch system
// that runs on it: PBS (package fakepbs, adapted by fakepbs/pbshost) now,
// Slurm (fakeslurm) next. The host (package sim), its control API
// (sim/control), its executors (sim/executor) and the container nodes
// (backend/containers) reach the batch system through this package only;
// each batch system implements it without importing the host.
//
// A batch system gives the host a System:
//
//	Kind() string                        // "pbs", "slurm": names its fault layer and control endpoints
//	Commands() []string                  // the client commands it serves on the host (qsub, qstat, qdel, qsig, qhold,
//	                                     // qrls, pbsnodes, ...; sbatch, squeue, scancel, scontrol, sinfo, ...)
//	Run(ctx, Invocation) Result          // runs one of them as a user: submit, status, delete, signal, hold,
//	                                     // release and nodes all go this way, exactly as on a real host
//	Jobs(ctx, history bool) []Job        // every job (finished ones too with history), for the control API and
//	                                     // scenario conditions
//	Restart(ctx, RestartOptions) error   // the server goes down for a while and comes back, its jobs kept or lost
//	Down() bool                          // it is down (restarting): clients get "connection refused"
//	Close() error                        // stops it and every job it runs
//
// and runs its jobs on the host through the Executor the host hands it
// (RunSpec in, Process out, ExitStatus at the end), so that jobs run
// where the host's processes run (virtual shell, real processes, a
// compute container's MoM). Faults: a batch system checks the host's
// fault set itself, under its own fault layer (fault.PBS for PBS), when
// its commands and its server act.
package batch

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"syscall"
	"time"
)

// System is the batch system of a host. See the package doc.
type System interface {
	Kind() string
	Commands() []string
	Run(ctx context.Context, inv Invocation) Result
	Jobs(ctx context.Context, history bool) []Job
	Restart(ctx context.Context, o RestartOptions) error
	Down() bool
	Close() error
}

// Invocation is one client command run by a user on the host.
type Invocation struct {
	Command string    // qsub, sbatch, ... (a path is reduced to its base name)
	Args    []string  // the arguments after the command name
	Stdin   io.Reader // nil reads nothing
	Env     []string  // KEY=value, the command's environment
	Cwd     string    // working directory
	User    string    // the calling user
}

// Result is what a client command wrote and how it exited.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Job is one job as any batch system reports it. Native is the system's
// own record of it (a fakepbs.Job): the control API serves that, so a PBS
// host's job listing keeps every PBS attribute.
type Job struct {
	ID    string
	Name  string
	User  string
	Queue string // PBS queue, Slurm partition
	// State is the system's own state code: one letter for PBS (Q R H W E
	// F S), a name for Slurm (PENDING, RUNNING, ...).
	State  string
	Native any
}

// MarshalJSON writes Native when there is one, the summary otherwise.
func (j Job) MarshalJSON() ([]byte, error) {
	if j.Native != nil {
		return json.Marshal(j.Native)
	}
	type plain Job
	p := plain(j)
	p.Native = nil
	return json.Marshal(p)
}

// RestartOptions say how a batch server restarts.
type RestartOptions struct {
	// Down is how long it does not answer (0: the system's default).
	Down time.Duration
	// LoseJobs brings it back with an empty datastore.
	LoseJobs bool
}

// Executor runs job scripts on the job host. The sim package provides a
// virtual one (an embedded shell) and a real one (bash processes).
//
// Clock contract: the server calls Start from a clock actor (Clock.Go) and
// ctx carries that actor; the server's goroutine then blocks in Wait and
// handles the job's end inside the same actor, so that a virtual clock
// cannot move between the script's end and the server seeing it. An
// executor whose scripts wait on the host's virtual clock must therefore
// run the top shell in a plain goroutine (not Clock.Go) and make it sleep
// with ctx (or a context derived from it): the clock then counts the job as
// idle while the script sleeps and busy otherwise. Work the script puts in
// the background becomes an actor of its own (Clock.Go). An executor of
// real processes ignores this: the clock then sees the job as busy until
// it ends. Cancelling ctx must kill the script.
type Executor interface {
	Start(ctx context.Context, spec RunSpec) (Process, error)
}

// RunSpec is one job script to run.
type RunSpec struct {
	JobID  string
	User   string
	Node   string // the execution host the job was placed on
	Script []byte // the script as submitted, directives included
	// ScriptPath is where the server wrote Script on the host, as the job's
	// processes see it (OpenPBS's $PBS_HOME/mom_priv/jobs/<jobid>.SC), or
	// empty when it could not. Executors run this file rather than the
	// text, so that $0 is a path, as under a real MoM (Cylc's job scripts
	// re-exec "$0").
	ScriptPath string
	// NodeFile is the content of the job's node file ($PBS_NODEFILE): one
	// line per MPI process of each chunk, naming its execution host. The
	// server writes it on its own host; an executor on another machine
	// writes it there.
	NodeFile string
	Shell    string   // interpreter; empty means the user's login shell (bash)
	Env      []string // KEY=value, the full job environment
	Dir      string   // working directory: the user's home, as in OpenPBS
	Stdout   io.Writer
	Stderr   io.Writer
}

// Process is a running job script.
type Process interface {
	// Signal delivers sig to the script (SIGTERM, SIGKILL, SIGSTOP, SIGCONT, ...).
	// Under a virtual clock it must not return before a script sleeping on
	// the clock has woken up to the signal (or ignored it): the caller then
	// lets the clock go, and a sleeper still asleep would let it jump past
	// the signal.
	Signal(sig syscall.Signal) error
	// Wait blocks until the script ends and reports how.
	Wait() ExitStatus
}

// ExitStatus is how a script ended: an exit code, or the signal that killed it.
type ExitStatus struct {
	Code   int
	Signal syscall.Signal // non-zero when a signal killed the top shell
	Usage  Usage          // what the script used; zero where the executor cannot measure it
}

// Usage is what a job's processes consumed, which a MoM reports in the
// job's resources_used (cput, cpupercent, mem): scripts and sites read it
// back from qstat -f to size their requests.
type Usage struct {
	CPU    time.Duration `json:"cpu,omitempty"`     // user+system time of the script and the children it waited for
	MaxRSS int64         `json:"max_rss,omitempty"` // peak resident set of its largest process, in bytes
}

// UsageOf reads the usage of an ended process from its wait status.
func UsageOf(ps *os.ProcessState) Usage {
	if ps == nil {
		return Usage{}
	}
	u := Usage{CPU: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && ru != nil {
		u.MaxRSS = ru.Maxrss * 1024 // Linux reports kilobytes
	}
	return u
}

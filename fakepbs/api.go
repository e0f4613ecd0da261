// Package fakepbs is a PBS batch server that real PBS clients cannot tell
// from OpenPBS: jobs, queues, nodes, the OpenPBS job states and history, a
// scheduler loop over a (real or virtual) clock, and jobs that really run on
// the job host's executor. Its command-line front end lives in fakepbs/cli.
//
// This file is the contract between the server model and its front end.
package fakepbs

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/jobsim/jobsim/sim/batch"
)

// The job-execution contract is the host's (package sim/batch), the same
// for every batch system; these names keep fakepbs's own spelling.
type (
	// Executor runs job scripts on the job host (see batch.Executor).
	Executor = batch.Executor
	// RunSpec is one job script to run.
	RunSpec = batch.RunSpec
	// Process is a running job script.
	Process = batch.Process
	// ExitStatus is how a script ended.
	ExitStatus = batch.ExitStatus
	// Usage is what a job's processes consumed.
	Usage = batch.Usage
)

// UsageOf reads the usage of an ended process from its wait status.
func UsageOf(ps *os.ProcessState) Usage { return batch.UsageOf(ps) }

// State is a PBS job state letter.
type State byte

// The job states of OpenPBS that the server models.
const (
	Queued    State = 'Q'
	Running   State = 'R'
	Held      State = 'H'
	Waiting   State = 'W'
	Exiting   State = 'E'
	Finished  State = 'F'
	Suspended State = 'S'
)

func (s State) String() string { return string(rune(s)) }

// MarshalText writes the state as its letter, as qstat shows it.
func (s State) MarshalText() ([]byte, error) { return []byte{byte(s)}, nil }

// UnmarshalText reads a state letter.
func (s *State) UnmarshalText(b []byte) error {
	if len(b) != 1 {
		return &Error{Code: ErrBadAttrValue, Text: "Illegal attribute or resource value", JobID: string(b)}
	}
	*s = State(b[0])
	return nil
}

// Error is a PBS server error: the pbs_errno and its text. Commands exit with
// Code & 0xff and print "<cmd>: <Text> <JobID>" (see reference/pbs-cli.md).
type Error struct {
	Code  int    // pbs_errno, such as 15001
	Text  string // OpenPBS's message text, such as "Unknown Job Id"; attribute errors name the attribute ("Unknown resource Resource_List.foo")
	JobID string // the id the request named, as the user wrote it (a bare sequence number expanded to <seq>.<server>)
}

func (e *Error) Error() string {
	if e.JobID == "" {
		return e.Text
	}
	return e.Text + " " + e.JobID
}

// The pbs_errno values the server returns (OpenPBS src/include/pbs_error.h).
const (
	ErrUnknownJob    = 15001 // "Unknown Job Id"
	ErrPermission    = 15007 // "Unauthorized Request"
	ErrBadState      = 15016 // "Request invalid for state of job"
	ErrUnknownQueue  = 15018 // "Unknown queue"
	ErrBadAttrValue  = 15014 // "Illegal attribute or resource value"
	ErrQueueDisabled = 15021 // "Queue is not enabled" (PBSE_QUNOENB)
	ErrJobFinished   = 15139 // "Job has finished"
	ErrUnknownSignal = 15013 // "Unknown/illegal signal name" (PBSE_UNKSIG)
	ErrUnknownNode   = 15062 // "Unknown node"
	ErrInternal      = 15011 // "PBS server internal error"

	ErrInvalidRequest  = 15004 // "Invalid request"
	ErrNotSupported    = 15029 // "No support for requested service"
	ErrUnknownResource = 15035 // "Unknown resource"
	ErrBadDepend       = 15054 // "Invalid Job Dependency"
	ErrPlaceNoSelect   = 15111 // "Cannot have \"place\" without \"select\""
)

// AbortedError is Server.WaitJob's error for a job that ended with a
// message instead of an exit status for a waiting qsub -W block=true: a job
// deleted with qdel, for which OpenPBS's server sends "Job deleted at
// request of <user>@<host>". qsub prints "qsub: <JobID> <Message>" and
// exits 3.
type AbortedError struct {
	JobID   string
	Message string
}

func (e *AbortedError) Error() string { return e.JobID + " " + e.Message }

// ErrNoReply is Server.WaitJob's error for a job that ended in a way
// OpenPBS never reports to a blocking qsub: it vanished (fault rule) or was
// aborted before it ran because a dependency failed. A real qsub -W
// block=true waits on until it is interrupted.
var ErrNoReply = errors.New("the job ended without word to a waiting qsub")

// ErrServerClosed is Server.WaitJob's error when the server is closed
// while it waits.
var ErrServerClosed = errors.New("fakepbs: server closed")

// SubmitRequest is a job as qsub hands it to the server, after options and
// #PBS directives were merged (command line wins).
type SubmitRequest struct {
	Owner      string            // submitting user
	SubmitHost string            // host qsub ran on (PBS_O_HOST)
	WorkDir    string            // qsub's cwd (PBS_O_WORKDIR)
	Name       string            // -N, or the script's basename, or STDIN
	Queue      string            // -q; empty for the default queue
	Resources  map[string]string // -l: select, walltime, ncpus, mem, place, ...
	OutputPath string            // -o as given (may be a directory, resolved by the server)
	ErrorPath  string            // -e
	Join       string            // -j: "oe", "eo" or "n"
	KeepFiles  string            // -k
	// Variables is the complete Variable_List, KEY=value, in the order qstat -f
	// shows it: PBS_O_HOME, _LANG, _LOGNAME, _PATH, _MAIL, _SHELL, _TZ,
	// _WORKDIR, _SYSTEM, then -v and -V variables, then PBS_O_QUEUE and
	// PBS_O_HOST last (the front end resolves the default queue through
	// Info). The server keeps the list as given.
	Variables   []string
	DependOn    string    // -W depend=..., as given
	Umask       string    // -W umask=
	StartAt     time.Time // -a; zero when not given
	Hold        bool      // -h: submit held (Hold_Types = u)
	Interactive bool      // -I
	Shell       string    // -S
	Array       string    // -J range, empty for a plain job
	Script      []byte    // the script text
	Args        []string  // Submit_arguments, as typed

	// Added by the front end (fakepbs/cli); zero values mean the OpenPBS default.
	Account    string            // -A (Account_Name)
	Project    string            // -P (project); empty: _pbs_project_default
	MailPoints string            // -m (Mail_Points); empty: a
	MailUsers  string            // -M (Mail_Users)
	Rerunable  string            // -r: "y" or "n"; empty means y
	Priority   int               // -p
	Checkpoint string            // -c; empty: u
	Block      bool              // -W block=true: qsub waits for the job to end (the server keeps it for Server.WaitJob)
	Attributes map[string]string // other -W attribute=value pairs, as given
}

// Job is a snapshot of one job as the commands show it. Times are on the
// server's clock.
type Job struct {
	ID                                          string // <seq>.<server>
	Seq                                         int
	Name                                        string
	Owner                                       string // user@host
	User                                        string
	Queue                                       string
	State                                       State
	Substate                                    int
	HoldTypes                                   string // "n" or a combination of u, o, s
	Resources                                   map[string]string
	ResourcesUsed                               map[string]string
	ExecHost                                    string // node/index*ncpus, empty until running
	ExecVnode                                   string
	OutputPath                                  string // host:/path after resolution
	ErrorPath                                   string
	Join                                        string
	Variables                                   []string
	DependOn                                    string
	ExitStatus                                  *int // set once finished
	Ctime, Mtime, Qtime, Etime, Stime, Obittime time.Time
	StartAt                                     time.Time
	SubmitArgs                                  string
	SubmitHost                                  string
	Comment                                     string
	RunCount                                    int
	Interactive                                 bool

	// Added for the front end's qstat -f; zero values print OpenPBS defaults.
	Account    string // Account_Name
	Project    string // project; empty shows _pbs_project_default
	MailPoints string // Mail_Points; empty shows a
	MailUsers  string // Mail_Users
	Rerunable  string // "y" or "n"; empty shows True
	Priority   int
	Checkpoint string // empty shows u
	KeepFiles  string // Keep_Files; empty shows n
	Shell      string // Shell_Path_List
	Umask      string
	SessionID  int    // session_id of the running script; 0 until it runs
	Array      string // -J range for an array job
	// Attributes holds other attributes set with qsub -W (group_list,
	// sandbox, stagein, stageout); qstat -f shows the known ones.
	Attributes map[string]string
}

// Queue is a snapshot of a queue.
type Queue struct {
	Name    string
	Enabled bool
	Started bool
}

// Node is a snapshot of an execution host for pbsnodes.
type Node struct {
	Name         string
	Host         string
	State        string // free, job-busy, down, offline
	NCPUs        int
	AssignedCPUs int
	Mem          string   // e.g. "8gb"
	Jobs         []string // "<jobid>/<index>" entries as pbsnodes prints them
	Comment      string

	// Added for pbsnodes; zero values are left out or print 0.
	AssignedMem     string    // resources_assigned.mem, e.g. "1048576kb"
	LastStateChange time.Time // last_state_change_time
	LastUsed        time.Time // last_used_time
}

// ServerInfo describes the server itself.
type ServerInfo struct {
	Name          string // the suffix of job ids, e.g. "fakepbs"
	Host          string // the host the server runs on
	Version       string // pbs_version, e.g. "22.05.11"
	DefaultQueue  string
	HistoryEnable bool
}

// Backend is what the command-line front end needs from a server; *Server
// implements it. Every method takes the calling user so that ownership and
// permission checks happen in one place. Errors are *Error where PBS has an
// error code for them.
type Backend interface {
	Info(ctx context.Context) ServerInfo
	Submit(ctx context.Context, req SubmitRequest) (Job, error)
	// Job returns one job by id ("123.server" or the bare "123"). A finished
	// job is returned only with history (and only while the server keeps
	// history); otherwise its error is ErrJobFinished or ErrUnknownJob as
	// OpenPBS would answer.
	Job(ctx context.Context, id string, history bool) (Job, error)
	// Jobs returns every job in sequence order; with history, finished jobs
	// still kept by the server too.
	Jobs(ctx context.Context, history bool) []Job
	Delete(ctx context.Context, user, id string, force bool) error
	Signal(ctx context.Context, user, id string, sig string) error
	Hold(ctx context.Context, user, id string, types string) error
	Release(ctx context.Context, user, id string, types string) error
	Nodes(ctx context.Context) []Node
	Queues(ctx context.Context) []Queue
	// Down reports whether the server is down (restarting): clients then
	// get the answer of a server that is not running.
	Down() bool
	// Restart stops the server and starts it again (see RestartOptions).
	Restart(ctx context.Context, o RestartOptions) error
}

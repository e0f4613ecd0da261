// Package fakeslurm is a Slurm 22.05 batch system that Slurm's clients
// (Cylc's slurm job runner, batchspawner's SlurmSpawner, dask-jobqueue's
// SLURMCluster) cannot tell from the real one: partitions, nodes, the job
// states of Slurm with their reasons, a scheduler on a (real or virtual)
// clock, time limits and signals, and jobs that really run on the job host's
// executor (sim/executor). Its commands (sbatch, squeue, scancel, sacct,
// sinfo, scontrol) live in fakeslurm/cli, their executables' transport in
// fakeslurm/remote.
//
// The behaviour follows what Debian's slurm-wlm 22.05.8 does (see
// /work/shared/reference/slurm.md and the differential tests in
// fakeslurm/cli, which run the same commands against the real daemons).
//
// This file holds the types the front end and a host adapter use.
package fakeslurm

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// State is a Slurm job state (the base state; COMPLETING is a flag on top
// of it, see Job.Completing).
type State int

// The job states of Slurm 22.05 that the server models (slurm.h job_states).
const (
	Pending State = iota
	Running
	Suspended
	Completed
	Cancelled
	Failed
	Timeout
	NodeFail
	Preempted
	BootFail
	Deadline
	OutOfMemory
)

var stateNames = [...]struct{ long, short string }{
	Pending:     {"PENDING", "PD"},
	Running:     {"RUNNING", "R"},
	Suspended:   {"SUSPENDED", "S"},
	Completed:   {"COMPLETED", "CD"},
	Cancelled:   {"CANCELLED", "CA"},
	Failed:      {"FAILED", "F"},
	Timeout:     {"TIMEOUT", "TO"},
	NodeFail:    {"NODE_FAIL", "NF"},
	Preempted:   {"PREEMPTED", "PR"},
	BootFail:    {"BOOT_FAIL", "BF"},
	Deadline:    {"DEADLINE", "DL"},
	OutOfMemory: {"OUT_OF_MEMORY", "OOM"},
}

// String is the state's long name, as squeue %T prints it.
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "UNKNOWN"
	}
	return stateNames[s].long
}

// Short is the state's compact name, as squeue %t prints it.
func (s State) Short() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "?"
	}
	return stateNames[s].short
}

// Finished reports whether s is a final state.
func (s State) Finished() bool { return s >= Completed }

// ParseState reads a long or compact state name (squeue -t), case-insensitive.
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if equalFold(n.long, name) || equalFold(n.short, name) {
			return State(i), true
		}
	}
	return 0, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// MarshalText writes the long name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Error is a Slurm error: its errno (slurm_errno.h) and the text
// slurm_strerror gives for it. Commands print the text in their own frames
// ("slurm_load_jobs error: <Text>", "sbatch: error: Batch job submission
// failed: <Text>").
type Error struct {
	Code int
	Text string
}

func (e *Error) Error() string { return e.Text }

// The Slurm errno values the server returns, with slurm_strerror's texts.
const (
	ErrCtldConnect       = 1800 // SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR
	ErrInvalidPartition  = 2000 // ESLURM_INVALID_PARTITION_NAME
	ErrAccessDenied      = 2002 // ESLURM_ACCESS_DENIED
	ErrInvalidNodeCount  = 2006 // ESLURM_INVALID_NODE_COUNT
	ErrJobScriptMissing  = 2009 // ESLURM_JOB_SCRIPT_MISSING
	ErrNodeConfig        = 2014 // ESLURM_REQUESTED_NODE_CONFIG_UNAVAILABLE
	ErrPartConfig        = 2015 // ESLURM_REQUESTED_PART_CONFIG_UNAVAILABLE
	ErrInvalidJobID      = 2017 // ESLURM_INVALID_JOB_ID
	ErrInvalidNodeName   = 2018 // ESLURM_INVALID_NODE_NAME
	ErrAlreadyDone       = 2021 // ESLURM_ALREADY_DONE
	ErrDisabled          = 2037 // ESLURM_DISABLED
	ErrDependency        = 2038 // ESLURM_DEPENDENCY
	ErrJobHeld           = 2042 // ESLURM_JOB_HELD
	ErrInvalidTimeLimit  = 2051 // ESLURM_INVALID_TIME_LIMIT
	ErrPartitionNotAvail = 2070 // ESLURM_PARTITION_NOT_AVAIL
	ErrJobNotPending     = 2073 // ESLURM_JOB_NOT_PENDING
	ErrInvalidArray      = 2081 // ESLURM_INVALID_ARRAY
	ErrSocketTimeout     = 5004 // SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT
)

// errText holds slurm_strerror's texts (checked against Debian's libslurmfull).
var errText = map[int]string{
	ErrCtldConnect:       "Unable to contact slurm controller (connect failure)",
	ErrAccessDenied:      "Access/permission denied",
	ErrInvalidPartition:  "Invalid partition name specified",
	ErrNodeConfig:        "Requested node configuration is not available",
	ErrPartConfig:        "Requested partition configuration not available now",
	ErrInvalidTimeLimit:  "Requested time limit is invalid (missing or exceeds some limit)",
	ErrInvalidJobID:      "Invalid job id specified",
	ErrAlreadyDone:       "Job/step already completing or completed",
	ErrDisabled:          "Requested operation is presently disabled",
	ErrJobNotPending:     "Job is no longer pending execution",
	ErrInvalidArray:      "Invalid job array specification",
	ErrDependency:        "Job dependency problem",
	ErrInvalidNodeName:   "Invalid node name specified",
	ErrSocketTimeout:     "Socket timed out on send/recv operation",
	ErrJobScriptMissing:  "Job script not specified",
	ErrPartitionNotAvail: "Required partition not available (inactive or drain)",
	ErrInvalidNodeCount:  "Node count specification invalid",
	ErrJobHeld:           "Job is in held state, pending scheduler release",
	ErrJobPending:        "Job is pending execution",
	ErrJobFinished:       "Job has already finished",
}

// Errno returns the *Error for a Slurm errno.
func Errno(code int) *Error {
	t, ok := errText[code]
	if !ok {
		t = fmt.Sprintf("Unknown error %d", code)
	}
	return &Error{Code: code, Text: t}
}

// CodeOf returns the Slurm errno of err (SLURM_ERROR, 1, for other errors).
func CodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 1
}

// ErrServerClosed is returned by calls on a closed server.
var ErrServerClosed = errors.New("fakeslurm: server closed")

// SubmitRequest is a batch job as sbatch hands it to the controller, after
// #SBATCH directives and options were merged (the command line wins).
type SubmitRequest struct {
	User, Group string
	UID, GID    int
	SubmitHost  string
	SubmitDir   string // sbatch's cwd (SLURM_SUBMIT_DIR)
	WorkDir     string // --chdir; empty: SubmitDir
	Name        string // -J; empty: the script's base name, "wrap" or "sbatch"
	// NameUnset: a script on stdin without -J (Name "sbatch"); sbatch
	// then exports no SLURM_JOB_NAME to the job.
	NameUnset bool
	Partition string // -p; empty: the default partition
	// TimeLimit is -t; zero: the partition's default; Unlimited for
	// UNLIMITED/infinite.
	TimeLimit   time.Duration
	Nodes       int // -N minimum; 0: 1
	NodesGiven  bool
	Tasks       int // -n; 0: 1 per node
	TasksGiven  bool
	GetUserEnv  bool // --get-user-env
	CPUsPerTask int  // -c; 0: 1
	MemMB       int64
	Output      string // -o pattern as given; empty: slurm-%j.out
	Error       string // -e pattern as given; empty: as Output
	Input       string // -i; empty: /dev/null
	Export      string // --export as given; empty: ALL
	Env         []string
	Dependency  string // -d as given
	Hold        bool   // -H
	Requeue     *bool  // --requeue / --no-requeue; nil: the cluster's JobRequeue
	Array       string // --array as given
	Command     string // the script's path as given to sbatch; empty for stdin and --wrap
	Script      []byte
	Comment     string
	Account     string
	BeginTime   time.Time
	// Signal is --signal: SIG sent Before seconds before the time limit,
	// to the batch shell when Batch (B:), else to the job's steps.
	Signal    syscall.Signal
	SigBefore time.Duration
	SigBatch  bool
	OpenMode  string   // "append", or truncate (the default)
	Exclusive bool     // whole nodes
	NodeList  []string // -w: nodes the job must have
	Exclude   []string // -x: nodes it must not have
	Argv      []string // the script's arguments
}

// Unlimited is the TimeLimit of a job without a limit.
const Unlimited = time.Duration(-1)

// Job is a snapshot of one job as the commands show it. Times are on the
// server's clock; zero times are Unknown.
type Job struct {
	ID          int
	Name        string
	User, Group string
	UID, GID    int
	Partition   string
	State       State
	Completing  bool
	Reason      string
	Priority    int64
	TimeLimit   time.Duration // Unlimited or a duration
	LimitGiven  bool          // -t was given (else the partition's limit applies)
	Submit      time.Time
	Eligible    time.Time
	Accrue      time.Time
	Start       time.Time
	End         time.Time // for running jobs with a limit: the expected end
	LastSched   time.Time
	Suspended   time.Duration // time spent suspended (the fake does not suspend: 0)
	Nodes       int           // requested or allocated node count
	NodesGiven  bool
	NodeList    string
	BatchHost   string
	NumCPUs     int
	NumTasks    int
	CPUsPerTask int
	MemMB       int64
	ExitCode    int // of the batch script
	ExitSignal  int
	Requeue     bool
	Restarts    int
	Command     string
	WorkDir     string
	StdOut      string // expanded paths
	StdErr      string
	StdIn       string
	Dependency  string
	Comment     string
	Account     string
	SubmitHost  string
	AllocSID    int
	CancelledBy int  // uid of the canceller, -1 when not cancelled
	Ran         bool // the batch script was started at least once
	Scheduler   string
	// For squeue --json: the script's arguments, the -o/-e patterns as
	// given (made absolute; empty when not given), -c given, the -w
	// nodes, and the cores allocated on each node (indices counted
	// socket by socket; kept after the job ends, as slurmctld does).
	Argv        []string
	OutPattern  string
	ErrPattern  string
	CPUsGiven   bool
	ReqNodeList []string
	Cores       map[string][]int
}

// Active reports whether a default squeue shows the job: pending,
// running, suspended or completing.
func (j Job) Active() bool { return !j.State.Finished() || j.Completing }

// RunTime is how long the job has run at now (suspended time excluded).
func (j Job) RunTime(now time.Time) time.Duration {
	if j.Start.IsZero() {
		return 0
	}
	end := j.End
	if !j.State.Finished() {
		end = now
	}
	d := end.Sub(j.Start) - j.Suspended
	if d < 0 {
		return 0
	}
	return d
}

// Partition is a snapshot of a partition.
type Partition struct {
	Name      string
	Default   bool
	Up        bool
	MaxTime   time.Duration // Unlimited or a limit
	DefTime   time.Duration // Unlimited (none) or a default
	Nodes     []string
	MaxNodes  int
	TotalCPUs int
}

// Node is a snapshot of a node.
type Node struct {
	Name       string
	Addr       string
	CPUs       int
	AllocCPUs  int
	Sockets    int
	Cores      int
	Threads    int
	MemMB      int64
	AllocMemMB int64
	// State is Slurm's node state as scontrol shows it: IDLE, MIXED,
	// ALLOCATED, DOWN, DRAIN (with +flags such as IDLE+DRAIN).
	State      string
	Reason     string
	ReasonTime time.Time // when Reason was set
	Partitions []string
	Boot       time.Time
	SlurmdUp   time.Time
	LastBusy   time.Time
}

// Info describes the cluster as a client's configuration does.
type Info struct {
	ClusterName    string
	ControlHost    string // SlurmctldHost (short host name)
	Version        string // 22.05.8
	MessageTimeout time.Duration
	Accounting     bool // sacct works (accounting_storage/slurmdbd)
	MinJobAge      time.Duration
}

// UnmarshalText reads a state name, so that a job's JSON (the control
// API's job listing) reads back into a Job.
func (s *State) UnmarshalText(b []byte) error {
	st, ok := ParseState(string(b))
	if !ok {
		return fmt.Errorf("slurm job state %q: not a Slurm 22.05 state", b)
	}
	*s = st
	return nil
}

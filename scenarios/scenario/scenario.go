// Package scenario is the scenario file format: a YAML file that names a
// topology of fake job hosts, the system under test and its configuration,
// a timeline of steps (start, inject or clear faults, reload, trigger, wait
// for conditions) and the expectations the run is judged by. A scenario is
// either a gate (it passes when the system behaves) or the reproducer of a
// named bug (it passes when the bug shows). The reference page is
// docs/scenarios.md.
//
// The package knows the file's frame; the systems under test and the
// batch systems are plug-ins that parse their own parts (see plugin.go and
// Vocabulary).
package scenario

import (
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/scenarios/check"
	"time"
)

// Duration is written as a Go duration string ("90s", "2m").
type Duration = fault.Duration

// DefaultLinger is a scenario's linger when it gives none.
const DefaultLinger = Duration(30 * time.Second)

// LingerFor is how long the run of f may linger (DefaultLinger when the
// file gives no linger).
func (f *File) LingerFor() time.Duration {
	if f.Linger == nil {
		return DefaultLinger.D()
	}
	return f.Linger.D()
}

// Mode says how a scenario's outcome is judged.
type Mode string

const (
	// Gate scenarios pass when every expectation holds.
	Gate Mode = "gate"
	// Reproducer scenarios pass when an expectation fails in the way the
	// named bug predicts, on the releases the bug applies to; on other
	// releases they run as gates.
	Reproducer Mode = "reproducer"
)

// File is one parsed scenario.
type File struct {
	Path        string   `yaml:"-"`
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Labels      []string `yaml:"labels"`
	Mode        Mode     `yaml:"mode"`
	// Reproduces names the bug a reproducer shows.
	Reproduces *Bug `yaml:"reproduces"`
	// Timeout bounds the whole run (default 5m).
	Timeout Duration `yaml:"timeout"`
	// Linger is how long the run may go on after the timeline for
	// expectations still pending: the core's (an order or a count not yet
	// complete, a during interval still open), and the plug-ins' even
	// once the system under test has settled. Absent: DefaultLinger, so
	// that an expectation on what comes after the system settled (a batch
	// job's end after its task's) is waited for; `linger: 0s` judges the
	// core's expectations when the timeline ends. The run goes on no
	// longer than something is pending, so a passing run does not wait.
	Linger   *Duration     `yaml:"linger"`
	Topology Topology      `yaml:"topology"`
	System   System        `yaml:"system"`
	Timeline []Step        `yaml:"timeline"`
	Expect   []Expectation `yaml:"expect"`

	pos positions
}

// Bug is a known bug of the system under test.
type Bug struct {
	ID      string `yaml:"id"`      // e.g. cylc-flow#5102
	URL     string `yaml:"url"`     // issue or pull request
	Summary string `yaml:"summary"` // one line
	// Affects is a version range of the system under test, such as
	// ">=8.0.0 <8.0.3". On those releases the scenario must reproduce the
	// bug; on others it runs as a gate.
	Affects string `yaml:"affects"`
	// Shows names the expectations (by their id) that fail when the bug shows.
	Shows []string `yaml:"shows"`
}

// Topology is the set of fake hosts a scenario runs on.
type Topology struct {
	Hosts []Host `yaml:"hosts"`
}

// Host is one fake job host.
type Host struct {
	Name string `yaml:"name"`
	// Executor is "real" (real processes: bash, rsync, cylc) or "virtual"
	// (the embedded shell). Cylc scenarios need real.
	Executor string   `yaml:"executor"`
	Users    []string `yaml:"users"` // default: the user running the scenario
	PBS      *PBS     `yaml:"pbs"`
	// Slurm runs a Slurm controller (fakeslurm) on the host instead of a
	// PBS server; in-process backend only this far.
	Slurm *Slurm `yaml:"slurm"`
	// FaultMounts are host paths that carry the FUSE fault layer, so that
	// filesystem faults reach real processes there.
	FaultMounts []string `yaml:"fault_mounts"`
	// Cylc installs the Cylc under test on the host at this path (its
	// library below it), so job-side cylc commands run there.
	Cylc string `yaml:"cylc"`
	// Isolate hides the test machine's own copies of Cylc (its Python
	// packages) from the host's processes, so that the host shows only the
	// Cylc it carries at Cylc. Unset: on for hosts whose Cylc comes from
	// their own library directory (the overlay of scripts/setup-cylc.sh),
	// where a library Python cannot list would otherwise silently give way
	// to the machine's copy. Real executors only.
	Isolate *bool `yaml:"isolate"`
}

// PBS configures a host's PBS server.
type PBS struct {
	Server  string  `yaml:"server"` // job id suffix (default: the host name)
	Queues  []Queue `yaml:"queues"` // default: workq
	Nodes   []Node  `yaml:"nodes"`  // default: one node named after the host
	History bool    `yaml:"history"`
	// NodeFailRequeue is node_fail_requeue: how long a running job's node
	// may be down before the job is requeued (rerunnable) or deleted
	// (default OpenPBS's 310s). Only nodes that can die have it (the
	// containers backend's clusters).
	NodeFailRequeue Duration `yaml:"node_fail_requeue"`
}

// Queue is a PBS queue.
type Queue struct {
	Name     string `yaml:"name"`
	Disabled bool   `yaml:"disabled"`
}

// Node is a PBS execution node.
type Node struct {
	Name  string `yaml:"name"`
	NCPUs int    `yaml:"ncpus"`
	Mem   string `yaml:"mem"`
}

// System is the system under test: one key naming a system plug-in
// (cylc, hub, ...) over that plug-in's configuration.
type System struct {
	// Name is the plug-in's name and Spec the configuration it parsed
	// (filled in by parsing).
	Name string `yaml:"-"`
	Spec any    `yaml:"-"`
	// ext is the one key naming the plug-in, with its configuration as
	// written, for the plug-in to decode.
	ext ext
}

// Step is one entry of the timeline. Its trigger (at most one of At, After,
// When; none means "right after the previous step") says when it runs; its
// action is exactly one of the core's (Do, Fault, Clear, Wait, Note, Node)
// or one step key of a plug-in (trigger, spawn, pbs, ...).
type Step struct {
	At    *Duration  `yaml:"at"`    // since the scenario started
	After *Duration  `yaml:"after"` // since the previous step ran
	When  *Condition `yaml:"when"`  // as soon as this holds
	// Within bounds how long When may take to hold (default: the scenario timeout).
	Within Duration `yaml:"within"`

	// Do is a bare action: start (the core's), or one the system under
	// test names (stop, reload, pause, ...).
	Do string `yaml:"do"`
	// Fault adds a rule on a host (Host names it; default the only host).
	Fault *FaultStep `yaml:"fault"`
	// Clear removes fault rules by id, or every rule with "all".
	Clear []string `yaml:"clear"`
	// Wait waits for a duration or a condition.
	Wait *Wait `yaml:"wait"`
	// Note writes a line into the history (for the transcript).
	Note string `yaml:"note"`
	// Node acts on a host or PBS node as a machine: cut its network,
	// freeze it, kill or restart it (the containers backend).
	Node *NodeStep `yaml:"node"`

	// ext holds the plug-ins' step keys as written.
	ext ext
	// Owner names the plug-in whose action this step is ("" for the
	// core's), and Action is that action as the plug-in parsed it (a
	// plug-in's do: value included). Both are filled in by parsing.
	Owner  string `yaml:"-"`
	Action Action `yaml:"-"`
}

// NodeStep is a machine-level fault on a topology host or a PBS node of a
// cluster: Name names it, Action is one of NodeActions.
type NodeStep struct {
	Name   string `yaml:"name"`
	Action string `yaml:"action"`
}

// NodeActions are what a node step can do: disconnect/reconnect its
// network, pause/unpause it (docker pause: every process frozen,
// connections hang), kill it (SIGKILL to everything; it stays down), and
// restart it (start a killed node, or stop and start a running one; its
// state, a PBS server's jobs included, is lost).
var NodeActions = []string{"disconnect", "reconnect", "pause", "unpause", "kill", "restart"}

// FaultStep is a fault rule bound for a host.
type FaultStep struct {
	Host       string `yaml:"host"`
	fault.Rule `yaml:",inline"`
}

// Wait is a pause in the timeline: a fixed duration, or until a condition
// holds within a bound (failing the run when it does not). The condition's
// keys sit beside for and within.
type Wait struct {
	For    Duration `yaml:"for"`
	Within Duration `yaml:"within"`
	Event  *Match   `yaml:"event"`
	// Since says where an event condition starts counting (see Condition).
	Since Since `yaml:"since"`
	// ext holds the plug-ins' condition keys as written.
	ext ext
	// Condition is the condition waited for (filled in by parsing).
	Condition Condition `yaml:"-"`
}

// Condition is something observable: an event of the history (the core's),
// or what a plug-in observes (a Cylc task state, a PBS job state, a hub
// server state), named by one key of that plug-in.
type Condition struct {
	Event *Match `yaml:"event"` // an event like this has been recorded
	// Since says from when an event condition counts: SinceStep (the
	// default) from the moment the step begins waiting, SinceStart from the
	// start of the run ("once X has happened", which may be before the
	// step). Only event conditions take it: the plug-ins' conditions are
	// states, judged now.
	Since Since `yaml:"since"`
	// ext holds the plug-ins' condition keys as written.
	ext ext
	// Owner names the plug-in that judges the condition ("" for an
	// event), and Predicate is what it parsed. Both are filled in by
	// parsing.
	Owner     string    `yaml:"-"`
	Predicate Predicate `yaml:"-"`
}

// Since is where an event condition starts counting.
type Since string

// The values of Since.
const (
	SinceStep  Since = "step"  // from when the step begins waiting (the default)
	SinceStart Since = "start" // from the start of the run
)

// IsZero reports whether no condition is set.
func (c Condition) IsZero() bool { return c.Event == nil && c.ext.empty() }

// Match selects events of the history.
type Match = check.Match

// Count bounds how many events match.
type Count = check.Count

// Expectation is one thing the run is judged by: an event count (Events),
// an order of events (Order), what happens or holds during an interval
// (During), or one key of a plug-in (a Cylc task, the
// stuck detector, a hub server).
type Expectation struct {
	// ID names the expectation, for reports and for Bug.Shows.
	ID string `yaml:"id"`

	Events *Count        `yaml:"events"`
	Order  check.Order   `yaml:"order"`
	During *check.During `yaml:"during"`

	// ext holds the plug-ins' expectation keys as written.
	ext ext
	// Judge is the expectation as parsed, and Owner the plug-in that
	// parsed it ("" for the core's events, order and during). Both are
	// filled in by parsing.
	Judge check.Expectation `yaml:"-"`
	Owner string            `yaml:"-"`
}

// Package scenario is the scenario file format: a YAML file that names a
// topology of fake job hosts, the system under test and its configuration,
// a timeline of steps (start, inject or clear faults, reload, trigger, wait
// for conditions) and the expectations the run is judged by. A scenario is
// either a gate (it passes when the system behaves) or the reproducer of a
// named bug (it passes when the bug shows). The reference page is
// docs/scenarios.md.
package scenario

import (
	"fmt"
	"sort"
	"strings"

	"github.com/jobsim/jobsim/base/fault"
)

// Duration is written as a Go duration string ("90s", "2m").
type Duration = fault.Duration

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
	Timeout  Duration      `yaml:"timeout"`
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
	// FaultMounts are host paths that carry the FUSE fault layer, so that
	// filesystem faults reach real processes there.
	FaultMounts []string `yaml:"fault_mounts"`
	// Cylc installs the Cylc under test on the host at this path (its
	// library below it), so job-side cylc commands run there.
	Cylc string `yaml:"cylc"`
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

// System is the system under test: exactly one of its fields is set.
type System struct {
	Cylc *Cylc `yaml:"cylc"`
	Hub  *Hub  `yaml:"hub"`
}

// Cylc configures a Cylc 8 workflow run against the topology.
type Cylc struct {
	// Workflow is a source directory (relative to the scenario file) holding flow.cylc.
	Workflow string `yaml:"workflow"`
	// Platform is the platform tasks run on, pointing at a topology host.
	Platform Platform `yaml:"platform"`
	// ProcessPoolTimeout is [scheduler]process pool timeout (default PT2M as Cylc's tests shorten it).
	ProcessPoolTimeout Duration `yaml:"process_pool_timeout"`
	// Global is extra global.cylc text appended to the generated file.
	Global string `yaml:"global"`
}

// Platform is a Cylc platform on a fake host.
type Platform struct {
	Name   string `yaml:"name"`   // default: the host name
	Host   string `yaml:"host"`   // a topology host
	Runner string `yaml:"runner"` // pbs (default) or background
	Comms  string `yaml:"comms"`  // poll (default), zmq or ssh
	// SubmissionPolling and ExecutionPolling are the polling intervals.
	SubmissionPolling Duration `yaml:"submission_polling"`
	ExecutionPolling  Duration `yaml:"execution_polling"`
}

// Hub configures a JupyterHub run against the topology.
type Hub struct {
	// Spawner is local (SimpleLocalProcessSpawner: any user names, servers
	// run as the hub's user), local-unix (LocalProcessSpawner: the users are
	// Unix accounts, the hub runs as root), batch-pbs (a PBS batch spawner
	// submitting through the fake host's qsub over ssh), ssh (an ssh
	// spawner starting the server on the fake host through an ssh tunnel)
	// or ssh-nersc (NERSC's sshspawner: asyncssh, the server started in the
	// background by `bash -s`, polled and stopped with kill).
	Spawner string `yaml:"spawner"`
	// Host is the topology host batch-pbs and ssh spawners reach (default:
	// the only host).
	Host  string   `yaml:"host"`
	Users []string `yaml:"users"`
	Roles []Role   `yaml:"roles"`
	// Config sets other configurables: "Class.trait" to a value in JSON or
	// Python literal syntax (true/True, 3, "text", [1, 2]).
	Config map[string]string `yaml:"config"`
	// Server are faults of the stand-in UI server (jobsim uiserver) for
	// every user: slow_start, never_ready (http|nobind), crash_after,
	// exit_code, status (a 5xx answered...), status_after (...after this
	// many requests). See ServerFaults.
	Server map[string]string `yaml:"server"`
	// ServerFor are per-user stand-in server faults, by user; they replace
	// the keys they name in Server for that user.
	ServerFor map[string]map[string]string `yaml:"server_for"`
	// Timeout is the spawner's start_timeout (default 60s).
	Timeout Duration `yaml:"start_timeout"`
	// HTTPTimeout is how long the hub waits for a started server to answer
	// (default 30s).
	HTTPTimeout Duration `yaml:"http_timeout"`
	// PollInterval is how often the hub checks that running servers are
	// alive (default 30s).
	PollInterval Duration `yaml:"poll_interval"`
	// AllowNamedServers lets users run named servers besides their default
	// one (JupyterHub.allow_named_servers); steps and conditions name them
	// USER/NAME (see ServerRef).
	AllowNamedServers bool `yaml:"allow_named_servers"`
	// NamedServerLimitPerUser caps each user's named servers
	// (JupyterHub.named_server_limit_per_user; 0: no limit). Stopped named
	// servers count until removed (remove_server).
	NamedServerLimitPerUser int `yaml:"named_server_limit_per_user"`
}

// Hub spawner kinds.
const (
	SpawnerLocal     = "local"
	SpawnerLocalUnix = "local-unix"
	SpawnerBatchPBS  = "batch-pbs"
	SpawnerSSH       = "ssh"
	SpawnerSSHNERSC  = "ssh-nersc"
)

// HubSpawners lists the spawner kinds a hub scenario may name.
var HubSpawners = []string{SpawnerLocal, SpawnerLocalUnix, SpawnerBatchPBS, SpawnerSSH, SpawnerSSHNERSC}

// NeedsHost reports whether the spawner starts servers on a topology host.
func (h *Hub) NeedsHost() bool {
	return h.Spawner == SpawnerBatchPBS || h.Spawner == SpawnerSSH || h.Spawner == SpawnerSSHNERSC
}

// serverFaultKeys maps the scenario's stand-in server fault keys to the
// keys of `jobsim uiserver`'s fault spec (JOBSIM_UISERVER_FAULT).
var serverFaultKeys = map[string]string{
	"slow_start":   "slow-start",
	"never_ready":  "never-ready",
	"crash_after":  "crash-after",
	"exit_code":    "exit-code",
	"status":       "http-error",
	"status_after": "http-error-after",
}

// ServerFaults returns the stand-in server's fault spec for user (the
// JOBSIM_UISERVER_FAULT value, "" for none): Server overlaid with
// ServerFor[user], keys in a stable order. Unknown keys are an error.
func (h *Hub) ServerFaults(user string) (string, error) {
	merged := map[string]string{}
	for k, v := range h.Server {
		merged[k] = v
	}
	for k, v := range h.ServerFor[user] {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		if _, ok := serverFaultKeys[k]; !ok {
			return "", fmt.Errorf("server fault %q: want one of %s", k, strings.Join(sortedKeys(serverFaultKeys), ", "))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := strings.TrimSpace(merged[k])
		if strings.ContainsAny(v, ",=") {
			return "", fmt.Errorf("server fault %s: value %q may not contain ',' or '='", k, v)
		}
		parts = append(parts, serverFaultKeys[k]+"="+v)
	}
	return strings.Join(parts, ","), nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Role is a JupyterHub role.
type Role struct {
	Name   string   `yaml:"name"`
	Users  []string `yaml:"users"`
	Scopes []string `yaml:"scopes"`
}

// Step is one entry of the timeline. Its trigger (at most one of At, After,
// When; none means "right after the previous step") says when it runs; its
// action is exactly one of the remaining fields.
type Step struct {
	At    *Duration  `yaml:"at"`    // since the scenario started
	After *Duration  `yaml:"after"` // since the previous step ran
	When  *Condition `yaml:"when"`  // as soon as this holds
	// Within bounds how long When may take to hold (default: the scenario timeout).
	Within Duration `yaml:"within"`

	// Do is a bare action: start, stop, stop-now, reload, pause, resume.
	Do string `yaml:"do"`
	// Cylc actions on tasks ("1/foo", or "foo" for every cycle).
	Trigger []string `yaml:"trigger"`
	Poll    []string `yaml:"poll"`
	Kill    []string `yaml:"kill"`
	Hold    []string `yaml:"hold"`
	Release []string `yaml:"release"`
	// Fault adds a rule on a host (Host names it; default the only host).
	Fault *FaultStep `yaml:"fault"`
	// Clear removes fault rules by id, or every rule with "all".
	Clear []string `yaml:"clear"`
	// Wait waits for a duration or a condition.
	Wait *Wait `yaml:"wait"`
	// Spawn and StopServer are hub actions on users' servers, each named
	// USER (the default server) or USER/NAME (a named server; see
	// ServerRef).
	Spawn      []string `yaml:"spawn"`
	StopServer []string `yaml:"stop_server"`
	// RemoveServer stops named servers (USER/NAME) and deletes them from
	// the hub, which frees their place under named_server_limit_per_user.
	RemoveServer []string `yaml:"remove_server"`
	// Request makes hub requests with users' own tokens and records each
	// answer as a hub.request event (for authorization matrices).
	Request []Request `yaml:"request"`
	// Note writes a line into the history (for the transcript).
	Note string `yaml:"note"`
	// Node acts on a host or PBS node as a machine: cut its network,
	// freeze it, kill or restart it (the containers backend).
	Node *NodeStep `yaml:"node"`
	// PBS acts on a host's PBS server: restart it, its jobs kept or lost.
	PBS *PBSStep `yaml:"pbs"`
}

// PBSStep restarts the PBS server of a topology host (Host names it;
// default the only host with PBS), as an admin or a crash does: for Down it
// does not answer (clients get "Connection refused"), then it is back with
// its jobs (Jobs "kept", the default, as with qterm -t quick) or none
// ("lost": an empty datastore). Both backends can.
type PBSStep struct {
	Host   string   `yaml:"host"`
	Action string   `yaml:"action"`
	Down   Duration `yaml:"down"`
	Jobs   string   `yaml:"jobs"`
}

// PBSActions are what a pbs step can do.
var PBSActions = []string{"restart"}

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

// Request is one request a hub user makes with a token of their own:
// either to the hub API (API: "METHOD /path" under /hub/api) or through
// the proxy to a user's server (Server, USER or USER/NAME, and Path, a
// GET). Want is the status the scenario expects; the hub.request event
// records it with the status seen and ok, and expectations judge (the step
// itself does not fail).
type Request struct {
	As     string `yaml:"as"`
	API    string `yaml:"api"`
	Server string `yaml:"server"`
	Path   string `yaml:"path"`
	Want   int    `yaml:"want"`
	Note   string `yaml:"note"`
}

// FaultStep is a fault rule bound for a host.
type FaultStep struct {
	Host       string `yaml:"host"`
	fault.Rule `yaml:",inline"`
}

// Wait is a pause in the timeline: a fixed duration, or until a condition
// holds within a bound (failing the run when it does not).
type Wait struct {
	For       Duration `yaml:"for"`
	Condition `yaml:",inline"`
	Within    Duration `yaml:"within"`
}

// Condition is something observable: a task state, a PBS job state, an
// event, or a hub server state.
type Condition struct {
	Task  string `yaml:"task"`  // with State: a Cylc task is in this state
	State string `yaml:"state"` // a Cylc task state, or a PBS state letter with Job
	Job   string `yaml:"job"`   // a PBS job name glob (Job_Name) on a host
	Event *Match `yaml:"event"` // an event like this has been recorded
	// Server with Ready: a hub user's server (USER, or USER/NAME for a
	// named server) is (not) ready; with Failed: the spawn failed.
	Server string `yaml:"server"`
	Ready  *bool  `yaml:"ready"`
	Failed *bool  `yaml:"failed"`
}

// IsZero reports whether no condition is set.
func (c Condition) IsZero() bool {
	return c.Task == "" && c.Job == "" && c.Event == nil && c.Server == ""
}

// Match selects events of the history.
type Match struct {
	Kind string `yaml:"kind"` // exact, or a prefix ending in "." (e.g. "ssh.")
	Host string `yaml:"host"`
	// Msg is a regular expression over the event's message.
	Msg string `yaml:"msg"`
	// Fields are regular expressions over the event's fields (as text).
	Fields map[string]string `yaml:"fields"`
}

// Expectation is one thing the run is judged by. Exactly one of the groups
// is set: a task (Task with Reaches or Never), the stuck detector (Stuck),
// event counts (Events), an order of events (Order), or a hub server
// (Server).
type Expectation struct {
	// ID names the expectation, for reports and for Bug.Shows.
	ID string `yaml:"id"`

	Task    string   `yaml:"task"`
	Reaches string   `yaml:"reaches"` // the task reaches this state...
	Within  Duration `yaml:"within"`  // ...within this long of the scenario start (or of After)
	// Never with LongerThan: the task never holds this state longer than that.
	Never      string   `yaml:"never"`
	LongerThan Duration `yaml:"longer_than"`

	Stuck *Stuck `yaml:"stuck"`

	Events *Count `yaml:"events"`

	Order []Match `yaml:"order"`

	Server string `yaml:"server"` // a hub user's server (USER or USER/NAME)...
	Ready  *bool  `yaml:"ready"`  // ...is ready (or not) within Within
	Failed *bool  `yaml:"failed"` // ...is reported failed within Within
}

// Stuck is the generic stuck detector: no task stays in one of States
// longer than LongerThan unless the batch system shows its job queued.
type Stuck struct {
	States     []string `yaml:"states"` // default: preparing, submitted
	LongerThan Duration `yaml:"longer_than"`
}

// Count bounds how many events match.
type Count struct {
	Match `yaml:",inline"`
	Count *int `yaml:"count"`
	Min   *int `yaml:"min"`
	Max   *int `yaml:"max"`
}

package cylcsys

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// TaskState is the kind of the events the system records for task states.
// Fields: task ("1/foo"), state, submit_num, job_id (when known), platform.
const TaskState events.Kind = "cylc.task"

// Config configures a Cylc 8 workflow run against the topology: a
// scenario's system.cylc.
type Config struct {
	// Workflow is a source directory (relative to the scenario file) holding flow.cylc.
	Workflow string `yaml:"workflow"`
	// Platform is the platform tasks run on, pointing at a topology host.
	Platform Platform `yaml:"platform"`
	// ProcessPoolTimeout is [scheduler]process pool timeout (default PT2M as Cylc's tests shorten it).
	ProcessPoolTimeout scenario.Duration `yaml:"process_pool_timeout"`
	// Global is extra global.cylc text appended to the generated file.
	Global string `yaml:"global"`
}

// Platform is a Cylc platform on a fake host.
type Platform struct {
	Name   string `yaml:"name"`   // default: the host name
	Host   string `yaml:"host"`   // a topology host
	Runner string `yaml:"runner"` // pbs (default), slurm (default on a host with slurm:) or background
	Comms  string `yaml:"comms"`  // poll (default), zmq or ssh
	// SubmissionPolling and ExecutionPolling are the polling intervals.
	SubmissionPolling scenario.Duration `yaml:"submission_polling"`
	ExecutionPolling  scenario.Duration `yaml:"execution_polling"`
}

// States are Cylc 8's task states, as in the workflow database.
var States = []string{"waiting", "expired", "preparing", "submit-failed", "submitted", "running", "failed", "succeeded"}

// Plugin is Cylc as a scenario plug-in: system.cylc, the task steps
// (trigger, poll, kill, hold, release), the workflow's do: actions (stop,
// stop-now, reload, pause, resume), task conditions, and task and stuck
// expectations. The runner drives it through Factory.
type Plugin struct{}

var (
	_ scenario.SystemParser      = Plugin{}
	_ scenario.StepParser        = Plugin{}
	_ scenario.ConditionParser   = Plugin{}
	_ scenario.ExpectationParser = Plugin{}
)

// Name implements scenario.Plugin.
func (Plugin) Name() string { return "cylc" }

// ConfigOf returns the Cylc configuration of a parsed scenario (nil when
// its system is not Cylc).
func ConfigOf(f *scenario.File) *Config {
	c, _ := f.System.Spec.(*Config)
	return c
}

// ParseSystem implements scenario.SystemParser: it checks system.cylc,
// resolves the workflow directory and fills in the platform's defaults; the
// platform's host gets a Cylc path (/opt/cylc) and, for the pbs runner, a
// PBS server.
func (Plugin) ParseSystem(f *scenario.File, v scenario.Value) (any, error) {
	if err := f.RequireHosts(); err != nil {
		return nil, err
	}
	c := &Config{}
	if err := v.Decode(c); err != nil {
		return nil, err
	}
	at := v.Where()
	if c.Workflow == "" {
		return nil, at.Errorf("system.cylc.workflow: required, a directory holding flow.cylc (relative to this file)")
	}
	dir := c.Workflow
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(f.Path), dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "flow.cylc")); err != nil {
		return nil, at.Key("workflow").Errorf("system.cylc.workflow: %s has no flow.cylc", dir)
	}
	c.Workflow = dir
	pl := &c.Platform
	if pl.Host == "" && len(f.Topology.Hosts) == 1 {
		pl.Host = f.Topology.Hosts[0].Name
	}
	h, ok := f.Host(pl.Host)
	if !ok {
		return nil, at.Key("platform").Errorf("system.cylc.platform.host %q is not a topology host (have %s)", pl.Host, strings.Join(f.HostNames(), ", "))
	}
	if h.Executor != "real" {
		return nil, at.Key("platform").Key("host").Errorf("host %q runs Cylc jobs and needs executor: real", h.Name)
	}
	if pl.Name == "" {
		pl.Name = pl.Host
	}
	if h.Cylc == "" {
		h.Cylc = "/opt/cylc"
	}
	if pl.Runner == "" {
		pl.Runner = "pbs"
		if h.Slurm != nil {
			pl.Runner = "slurm"
		}
	}
	if pl.Runner != "pbs" && pl.Runner != "slurm" && pl.Runner != "background" {
		return nil, at.Key("platform").Key("runner").Errorf("runner %q: want pbs, slurm or background", pl.Runner)
	}
	if pl.Runner == "pbs" && h.Slurm != nil {
		return nil, at.Key("platform").Key("runner").Errorf("runner pbs: host %q runs Slurm (want runner: slurm)", h.Name)
	}
	if pl.Runner == "slurm" && h.PBS != nil {
		return nil, at.Key("platform").Key("runner").Errorf("runner slurm: host %q runs PBS (want runner: pbs)", h.Name)
	}
	if pl.Runner == "pbs" && h.PBS == nil {
		h.PBS = &scenario.PBS{}
	}
	if pl.Runner == "slurm" && h.Slurm == nil {
		h.Slurm = &scenario.Slurm{}
	}
	if pl.Comms == "" {
		pl.Comms = "poll"
	}
	if !slices.Contains([]string{"poll", "zmq", "ssh"}, pl.Comms) {
		return nil, at.Key("platform").Key("comms").Errorf("comms %q: want poll, zmq or ssh", pl.Comms)
	}
	return c, nil
}

// StepKeys implements scenario.StepParser: the task commands.
func (Plugin) StepKeys() []string { return []string{"trigger", "poll", "kill", "hold", "release"} }

// DoActions implements scenario.StepParser: the workflow commands.
func (Plugin) DoActions() []string {
	return []string{"stop", "stop-now", "kill-scheduler", "reload", "pause", "resume"}
}

// stops are the do: actions after which the scheduler is gone.
var stops = []string{"stop", "stop-now", "kill-scheduler"}

// CheckRestart implements scenario.Restarter: the workflow can be started
// again (`cylc play` on its existing run: a restart, jobs still running on
// the hosts included) once a step between the two starts has stopped the
// scheduler (stop, stop-now, or kill-scheduler: SIGKILL, as a crash).
func (Plugin) CheckRestart(f *scenario.File, prev, i int) error {
	for _, s := range f.Timeline[prev+1 : i] {
		if c, ok := s.Action.(WorkflowCommand); ok && slices.Contains(stops, string(c)) {
			return nil
		}
	}
	return f.At("timeline", i, "do").Errorf("do: start again needs the scheduler stopped first: a do: %s step between steps %d and %d (Cylc refuses to play a workflow that is running)", strings.Join(stops, ", "), prev+1, i+1)
}

// TaskCommand is a task step: Command (trigger, poll, kill, hold,
// release) on Tasks ("1/foo", or "foo" for every cycle).
type TaskCommand struct {
	Command string
	Tasks   []string
}

func (c TaskCommand) String() string { return c.Command + " " + strings.Join(c.Tasks, " ") }

// WorkflowCommand is a do: action on the workflow (stop, stop-now,
// kill-scheduler, reload, pause, resume).
type WorkflowCommand string

func (c WorkflowCommand) String() string { return string(c) }

var taskRe = regexp.MustCompile(`^([^/\s]+/)?[A-Za-z0-9_][A-Za-z0-9_+.-]*$`)

// ParseStep implements scenario.StepParser.
func (Plugin) ParseStep(f *scenario.File, key string, v scenario.Value) (scenario.Action, error) {
	if key == "do" {
		var d string
		if err := v.Decode(&d); err != nil {
			return nil, err
		}
		return WorkflowCommand(d), nil
	}
	var tasks []string
	if err := v.Decode(&tasks); err != nil {
		return nil, err
	}
	for _, t := range tasks {
		if !taskRe.MatchString(t) {
			return nil, v.Where().Errorf("task %q: want cycle/name (1/foo) or a name", t)
		}
	}
	return TaskCommand{Command: key, Tasks: tasks}, nil
}

// ConditionKeys implements scenario.ConditionParser: task conditions.
func (Plugin) ConditionKeys() []string { return []string{"task"} }

// TaskCondition holds when a task (Task: "1/foo" or "foo") is in State.
type TaskCondition struct {
	Task  string `yaml:"task"`
	State string `yaml:"state"`
}

func (c TaskCondition) String() string { return fmt.Sprintf("task %s is %s", c.Task, c.State) }

// ParseCondition implements scenario.ConditionParser.
func (Plugin) ParseCondition(f *scenario.File, key string, v scenario.Value) (scenario.Predicate, error) {
	var c TaskCondition
	if err := v.Decode(&c); err != nil {
		return nil, err
	}
	if !taskRe.MatchString(c.Task) {
		return nil, v.Where().Key("task").Errorf("task %q: want cycle/name (1/foo) or a name", c.Task)
	}
	if !slices.Contains(States, c.State) {
		return nil, v.Where().Key("state").Errorf("task state %q: want one of %s", c.State, strings.Join(States, ", "))
	}
	return c, nil
}

// ExpectationKeys implements scenario.ExpectationParser: task and stuck.
func (Plugin) ExpectationKeys() []string { return []string{"task", "stuck"} }

// ParseExpectation implements scenario.ExpectationParser.
func (Plugin) ParseExpectation(f *scenario.File, key string, v scenario.Value) (check.Expectation, error) {
	if key == "stuck" {
		var e struct {
			Stuck Stuck `yaml:"stuck"`
		}
		if err := v.Decode(&e); err != nil {
			return nil, err
		}
		s := e.Stuck
		if len(s.States) == 0 {
			s.States = []string{"preparing", "submitted"}
		}
		if s.LongerThan == 0 {
			return nil, v.Where().Key("stuck").Errorf("stuck needs longer_than: DURATION")
		}
		return &s, nil
	}
	e := &TaskExpectation{}
	if err := v.Decode(e); err != nil {
		return nil, err
	}
	at := v.Where()
	if !taskRe.MatchString(e.Task) {
		return nil, at.Key("task").Errorf("task %q: want cycle/name (1/foo) or a name", e.Task)
	}
	if (e.Reaches == "") == (e.Never == "") {
		return nil, at.Errorf("a task expectation says reaches: STATE (with within) or never: STATE (with longer_than)")
	}
	st := e.Reaches + e.Never
	if !slices.Contains(States, st) {
		return nil, at.Errorf("task state %q: want one of %s", st, strings.Join(States, ", "))
	}
	if e.Reaches != "" && e.Within == 0 {
		return nil, at.Errorf("reaches needs within: DURATION")
	}
	if e.Never != "" && e.LongerThan == 0 {
		return nil, at.Errorf("never needs longer_than: DURATION")
	}
	return e, nil
}

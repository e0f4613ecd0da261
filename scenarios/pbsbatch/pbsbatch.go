// Package pbsbatch is the PBS batch system as a scenario plug-in: the pbs
// step (restart a host's PBS server, its jobs kept or lost) and the job
// condition (a PBS job whose name matches is in a state). It parses them
// from scenario files (scenario.StepParser, scenario.ConditionParser) and
// carries them out through the hosts' control APIs (runner.HostPlugin).
// Build a vocabulary and a runner with Plugin{}.
package pbsbatch

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/scenarios/batchplugin"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// Name is the plug-in's name, the Owner of the steps and conditions it parses.
const Name = "pbs"

// Plugin is the PBS plug-in: the pbs step (batchplugin.Steps) and its
// own condition.
type Plugin struct{ batchplugin.Steps[system] }

var (
	_ scenario.StepParser      = Plugin{}
	_ scenario.ConditionParser = Plugin{}
	_ runner.HostPlugin        = Plugin{}
)

// system names PBS for the shared plug-in code.
type system struct{}

// System implements batchplugin.Namer.
func (system) System() batchplugin.System {
	return batchplugin.System{Key: Name, Label: "PBS", Server: "a PBS server",
		Runs: func(h scenario.Host) bool { return h.PBS != nil }}
}

// Step restarts the PBS server of a topology host (Host names it; default
// the only host with PBS), as an admin or a crash does: for Down it does
// not answer (clients get "Connection refused"), then it is back with its
// jobs (Jobs "kept", the default, as with qterm -t quick) or none ("lost":
// an empty datastore). Both backends can.
type Step = batchplugin.Restart

// Actions are what a pbs step can do.
var Actions = batchplugin.Actions

// ConditionKeys implements scenario.ConditionParser: the job condition.
func (Plugin) ConditionKeys() []string { return []string{"job"} }

// Job is a condition on PBS jobs: a job whose Job_Name matches the glob
// Job is in State (one letter) on some host.
type Job struct {
	Job   string `yaml:"job"`
	State string `yaml:"state"`
}

func (j *Job) String() string { return fmt.Sprintf("PBS job %s is %s", j.Job, j.State) }

// ParseCondition implements scenario.ConditionParser.
func (Plugin) ParseCondition(f *scenario.File, key string, v scenario.Value) (scenario.Predicate, error) {
	j := &Job{}
	if err := v.Decode(j); err != nil {
		return nil, err
	}
	if len(j.State) != 1 || !strings.Contains("QRHWESF", j.State) {
		return nil, v.Where().Key("state").Errorf("PBS job state %q: want one letter of Q R H W E S F", j.State)
	}
	if j.Job == "" || !doublestar.ValidatePattern(j.Job) {
		return nil, v.Where().Key("job").Errorf("job %q is not a valid glob", j.Job)
	}
	return j, nil
}

// Holds implements runner.HostPlugin: whether a job condition holds on
// any host now.
func (Plugin) Holds(ctx context.Context, topo runner.Topology, p scenario.Predicate) (bool, error) {
	c, err := batchplugin.Condition[*Job](system{}.System(), p)
	if err != nil {
		return false, err
	}
	return batchplugin.AnyJob(ctx, topo, nil, "PBS jobs", func(ctx context.Context, cl *control.Client) ([]fakepbs.Job, error) {
		return cl.PBSJobs(ctx, true)
	}, func(j fakepbs.Job) bool {
		ok, _ := path.Match(c.Job, j.Name)
		return ok && j.State.String() == c.State
	})
}

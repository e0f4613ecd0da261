// Package slurmbatch is the Slurm batch system as a scenario plug-in, as
// scenarios/pbsbatch is PBS's: the slurm step (restart a host's
// slurmctld, its jobs kept or lost) and the slurm_job condition (a Slurm
// job whose name matches is in a state). It parses them from scenario
// files (scenario.StepParser, scenario.ConditionParser) and carries them
// out through the hosts' control APIs (runner.HostPlugin). Build a
// vocabulary and a runner with Plugin{}.
package slurmbatch

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/scenarios/batchplugin"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// Name is the plug-in's name, the Owner of the steps and conditions it parses.
const Name = "slurm"

// Plugin is the Slurm plug-in: the slurm step (batchplugin.Steps) and its
// own condition.
type Plugin struct{ batchplugin.Steps[system] }

var (
	_ scenario.StepParser      = Plugin{}
	_ scenario.ConditionParser = Plugin{}
	_ runner.HostPlugin        = Plugin{}
)

// system names Slurm for the shared plug-in code.
type system struct{}

// System implements batchplugin.Namer.
func (system) System() batchplugin.System {
	return batchplugin.System{Key: Name, Label: "Slurm", Server: "Slurm",
		Runs: func(h scenario.Host) bool { return h.Slurm != nil }}
}

// Step restarts the Slurm controller of a topology host (Host names it;
// default the only host with Slurm), as an admin or a crash does: for Down
// its clients get "Unable to contact slurm controller" after
// MessageTimeout, then it is back with its jobs (Jobs "kept", the default:
// StateSaveLocation survives) or none ("lost": running scripts killed,
// ids start again). Running jobs keep running while it is away.
type Step = batchplugin.Restart

// Actions are what a slurm step can do.
var Actions = batchplugin.Actions

// ConditionKeys implements scenario.ConditionParser: the slurm_job
// condition (PBS has job).
func (Plugin) ConditionKeys() []string { return []string{"slurm_job"} }

// Job is a condition on Slurm jobs: a job whose name (sbatch -J) matches
// the glob SlurmJob is in State on some host running Slurm. In the glob *
// crosses '/' too: Cylc names its jobs <task>.<cycle>.<workflow>/<run>. State is a
// Slurm 22.05 state, long or compact (PENDING or PD, RUNNING or R,
// COMPLETED or CD, ...), as squeue -t takes it.
type Job struct {
	SlurmJob string `yaml:"slurm_job"`
	State    string `yaml:"state"`
	state    fakeslurm.State
	// hosts are the topology hosts with a slurm: block when the condition
	// was parsed; none means every host is asked.
	hosts []string
}

func (j *Job) String() string { return fmt.Sprintf("Slurm job %s is %s", j.SlurmJob, j.state) }

// ParseCondition implements scenario.ConditionParser.
func (Plugin) ParseCondition(f *scenario.File, key string, v scenario.Value) (scenario.Predicate, error) {
	j := &Job{}
	if err := v.Decode(j); err != nil {
		return nil, err
	}
	st, ok := fakeslurm.ParseState(j.State)
	if !ok {
		return nil, v.Where().Key("state").Errorf("Slurm job state %q: want one of PENDING, RUNNING, SUSPENDED, COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE, OUT_OF_MEMORY (or PD, R, CD, ...)", j.State)
	}
	j.state = st
	j.hosts = system{}.System().Hosts(f)
	if j.SlurmJob == "" || !doublestar.ValidatePattern(j.SlurmJob) {
		return nil, v.Where().Key("slurm_job").Errorf("slurm_job %q is not a valid glob", j.SlurmJob)
	}
	return j, nil
}

// Holds implements runner.HostPlugin: whether a slurm_job condition holds
// on any host running Slurm now (the hosts with a slurm: block). A job counts once its state is reached
// (a COMPLETED job still completing does not).
func (Plugin) Holds(ctx context.Context, topo runner.Topology, p scenario.Predicate) (bool, error) {
	c, err := batchplugin.Condition[*Job](system{}.System(), p)
	if err != nil {
		return false, err
	}
	return batchplugin.AnyJob(ctx, topo, c.hosts, "slurm jobs", func(ctx context.Context, cl *control.Client) ([]fakeslurm.Job, error) {
		return cl.SlurmJobs(ctx, true)
	}, func(j fakeslurm.Job) bool {
		return nameMatches(c.SlurmJob, j.Name) && j.State == c.state && !(j.State.Finished() && j.Completing)
	})
}

// nameMatches matches a job name against a glob whose * and ? also match
// '/' (path.Match's stop at it): both sides have '/' swapped for a rune
// that is no separator.
func nameMatches(glob, name string) bool {
	const slash = "\u2215" // DIVISION SLASH
	ok, _ := path.Match(strings.ReplaceAll(glob, "/", slash), strings.ReplaceAll(name, "/", slash))
	return ok
}

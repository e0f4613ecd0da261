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
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// Name is the plug-in's name, the Owner of the steps and conditions it parses.
const Name = "slurm"

// Plugin is the Slurm plug-in.
type Plugin struct{}

var (
	_ scenario.StepParser      = Plugin{}
	_ scenario.ConditionParser = Plugin{}
	_ runner.HostPlugin        = Plugin{}
)

// Name implements scenario.Plugin.
func (Plugin) Name() string { return Name }

// StepKeys implements scenario.StepParser: the slurm step.
func (Plugin) StepKeys() []string { return []string{"slurm"} }

// DoActions implements scenario.StepParser: none (Slurm is no system under test).
func (Plugin) DoActions() []string { return nil }

// Step restarts the Slurm controller of a topology host (Host names it;
// default the only host with Slurm), as an admin or a crash does: for Down
// its clients get "Unable to contact slurm controller" after
// MessageTimeout, then it is back with its jobs (Jobs "kept", the default:
// StateSaveLocation survives) or none ("lost": running scripts killed,
// ids start again). Running jobs keep running while it is away.
type Step struct {
	Host   string            `yaml:"host"`
	Action string            `yaml:"action"`
	Down   scenario.Duration `yaml:"down"`
	Jobs   string            `yaml:"jobs"`
}

// Actions are what a slurm step can do.
var Actions = []string{"restart"}

func (s *Step) String() string {
	jobs := s.Jobs
	if jobs == "" {
		jobs = "kept"
	}
	return fmt.Sprintf("slurm %s on %s (jobs %s)", s.Action, s.Host, jobs)
}

// ParseStep implements scenario.StepParser.
func (Plugin) ParseStep(f *scenario.File, key string, v scenario.Value) (scenario.Action, error) {
	s := &Step{}
	if err := v.Decode(s); err != nil {
		return nil, err
	}
	if field, err := validateStep(f, s); err != nil {
		return nil, v.Where().Key(field).Errorf("slurm: %v", err)
	}
	return s, nil
}

// validateStep checks a slurm step and fills in its host when only one
// host runs Slurm. It names the field at fault.
func validateStep(f *scenario.File, s *Step) (string, error) {
	if !slices.Contains(Actions, s.Action) {
		return "action", fmt.Errorf("action %q: want one of %s", s.Action, strings.Join(Actions, ", "))
	}
	if s.Jobs != "" && s.Jobs != "kept" && s.Jobs != "lost" {
		return "jobs", fmt.Errorf("jobs %q: want kept or lost", s.Jobs)
	}
	var withSlurm []string
	for _, h := range f.Topology.Hosts {
		if h.Slurm != nil {
			withSlurm = append(withSlurm, h.Name)
		}
	}
	if s.Host == "" && len(withSlurm) == 1 {
		s.Host = withSlurm[0]
	}
	if !slices.Contains(withSlurm, s.Host) {
		return "host", fmt.Errorf("host %q does not run Slurm (hosts with slurm: %s)", s.Host, strings.Join(withSlurm, ", "))
	}
	return "", nil
}

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
	for _, h := range f.Topology.Hosts {
		if h.Slurm != nil {
			j.hosts = append(j.hosts, h.Name)
		}
	}
	if j.SlurmJob == "" || !doublestar.ValidatePattern(j.SlurmJob) {
		return nil, v.Where().Key("slurm_job").Errorf("slurm_job %q is not a valid glob", j.SlurmJob)
	}
	return j, nil
}

// Do implements runner.HostPlugin: a slurm step.
func (Plugin) Do(ctx context.Context, topo runner.Topology, a scenario.Action) error {
	s, ok := a.(*Step)
	if !ok {
		return fmt.Errorf("slurm: %s is not a Slurm step", a)
	}
	h, ok := topo.Host(s.Host)
	if !ok {
		return fmt.Errorf("no host %q", s.Host)
	}
	// POST /v1/pbs/restart restarts whatever batch system the host runs.
	return h.Control().RestartPBS(ctx, control.PBSRestart{Down: fault.Duration(s.Down.D()), LoseJobs: s.Jobs == "lost"})
}

// Holds implements runner.HostPlugin: whether a slurm_job condition holds
// on any host running Slurm now (the hosts with a slurm: block). A job counts once its state is reached
// (a COMPLETED job still completing does not).
func (Plugin) Holds(ctx context.Context, topo runner.Topology, p scenario.Predicate) (bool, error) {
	c, ok := p.(*Job)
	if !ok {
		return false, fmt.Errorf("slurm: %s is not a Slurm condition", p)
	}
	for _, h := range topo.Hosts() {
		if len(c.hosts) > 0 && !slices.Contains(c.hosts, h.Name()) {
			continue // a host without Slurm
		}
		jobs, err := h.Control().SlurmJobs(ctx, true)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("slurm jobs of %s: %w", h.Name(), err)
		}
		for _, j := range jobs {
			if nameMatches(c.SlurmJob, j.Name) && j.State == c.state && !(j.State.Finished() && j.Completing) {
				return true, nil
			}
		}
	}
	return false, nil
}

// nameMatches matches a job name against a glob whose * and ? also match
// '/' (path.Match's stop at it): both sides have '/' swapped for a rune
// that is no separator.
func nameMatches(glob, name string) bool {
	const slash = "\u2215" // DIVISION SLASH
	ok, _ := path.Match(strings.ReplaceAll(glob, "/", slash), strings.ReplaceAll(name, "/", slash))
	return ok
}

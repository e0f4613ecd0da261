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
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// Name is the plug-in's name, the Owner of the steps and conditions it parses.
const Name = "pbs"

// Plugin is the PBS plug-in.
type Plugin struct{}

var (
	_ scenario.StepParser      = Plugin{}
	_ scenario.ConditionParser = Plugin{}
	_ runner.HostPlugin        = Plugin{}
)

// Name implements scenario.Plugin.
func (Plugin) Name() string { return Name }

// StepKeys implements scenario.StepParser: the pbs step.
func (Plugin) StepKeys() []string { return []string{"pbs"} }

// DoActions implements scenario.StepParser: none (PBS is no system under test).
func (Plugin) DoActions() []string { return nil }

// Step restarts the PBS server of a topology host (Host names it; default
// the only host with PBS), as an admin or a crash does: for Down it does
// not answer (clients get "Connection refused"), then it is back with its
// jobs (Jobs "kept", the default, as with qterm -t quick) or none ("lost":
// an empty datastore). Both backends can.
type Step struct {
	Host   string            `yaml:"host"`
	Action string            `yaml:"action"`
	Down   scenario.Duration `yaml:"down"`
	Jobs   string            `yaml:"jobs"`
}

// Actions are what a pbs step can do.
var Actions = []string{"restart"}

func (s *Step) String() string {
	jobs := s.Jobs
	if jobs == "" {
		jobs = "kept"
	}
	return fmt.Sprintf("pbs %s on %s (jobs %s)", s.Action, s.Host, jobs)
}

// ParseStep implements scenario.StepParser.
func (Plugin) ParseStep(f *scenario.File, key string, v scenario.Value) (scenario.Action, error) {
	s := &Step{}
	if err := v.Decode(s); err != nil {
		return nil, err
	}
	if field, err := validateStep(f, s); err != nil {
		return nil, v.Where().Key(field).Errorf("pbs: %v", err)
	}
	return s, nil
}

// validateStep checks a pbs step and fills in its host when only one host
// runs PBS. It names the field at fault.
func validateStep(f *scenario.File, ps *Step) (string, error) {
	if !slices.Contains(Actions, ps.Action) {
		return "action", fmt.Errorf("action %q: want one of %s", ps.Action, strings.Join(Actions, ", "))
	}
	if ps.Jobs != "" && ps.Jobs != "kept" && ps.Jobs != "lost" {
		return "jobs", fmt.Errorf("jobs %q: want kept or lost", ps.Jobs)
	}
	var withPBS []string
	for _, h := range f.Topology.Hosts {
		if h.PBS != nil {
			withPBS = append(withPBS, h.Name)
		}
	}
	if ps.Host == "" && len(withPBS) == 1 {
		ps.Host = withPBS[0]
	}
	if !slices.Contains(withPBS, ps.Host) {
		return "host", fmt.Errorf("host %q does not run a PBS server (hosts with pbs: %s)", ps.Host, strings.Join(withPBS, ", "))
	}
	return "", nil
}

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

// Do implements runner.HostPlugin: a pbs step.
func (Plugin) Do(ctx context.Context, topo runner.Topology, a scenario.Action) error {
	s, ok := a.(*Step)
	if !ok {
		return fmt.Errorf("pbs: %s is not a PBS step", a)
	}
	h, ok := topo.Host(s.Host)
	if !ok {
		return fmt.Errorf("no host %q", s.Host)
	}
	return h.Control().RestartPBS(ctx, control.PBSRestart{Down: fault.Duration(s.Down.D()), LoseJobs: s.Jobs == "lost"})
}

// Holds implements runner.HostPlugin: whether a job condition holds on
// any host now.
func (Plugin) Holds(ctx context.Context, topo runner.Topology, p scenario.Predicate) (bool, error) {
	c, ok := p.(*Job)
	if !ok {
		return false, fmt.Errorf("pbs: %s is not a PBS condition", p)
	}
	for _, h := range topo.Hosts() {
		jobs, err := h.Control().PBSJobs(ctx, true)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("PBS jobs of %s: %w", h.Name(), err)
		}
		for _, j := range jobs {
			if ok, _ := path.Match(c.Job, j.Name); ok && j.State.String() == c.State {
				return true, nil
			}
		}
	}
	return false, nil
}

// Package batchplugin is what the batch systems' scenario plug-ins
// (scenarios/pbsbatch, scenarios/slurmbatch) share: the restart step
// (restart a host's batch server, its jobs kept or lost: parsed, checked
// and carried out through the host's control API) and the asking of the
// hosts for their jobs when a condition is judged. Each plug-in keeps its
// own keys, condition and job matching.
package batchplugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// System is a batch system as its plug-in names it.
type System struct {
	Key   string // the step's key and the prefix of its messages: "pbs"
	Label string // the system in messages: "PBS"
	// Server is what a host runs, in "host %q does not run <Server>".
	Server string
	// Runs reports whether a topology host runs the system.
	Runs func(scenario.Host) bool
}

// Actions are what a restart step can do.
var Actions = []string{"restart"}

// Restart is a batch system's step: restart the batch server of a
// topology host (Host; default the only host that runs the system) for
// Down, then it is back with its jobs (Jobs "kept", the default) or none
// ("lost").
type Restart struct {
	Host   string            `yaml:"host"`
	Action string            `yaml:"action"`
	Down   scenario.Duration `yaml:"down"`
	Jobs   string            `yaml:"jobs"`
	// key is the step's key ("pbs"), set when parsed.
	key string
}

func (s *Restart) String() string {
	jobs := s.Jobs
	if jobs == "" {
		jobs = "kept"
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s on %s (jobs %s)", s.key, s.Action, s.Host, jobs))
}

// Hosts are the names of the file's topology hosts that run the system.
func (sys System) Hosts(f *scenario.File) []string {
	var out []string
	for _, h := range f.Topology.Hosts {
		if sys.Runs(h) {
			out = append(out, h.Name)
		}
	}
	return out
}

// ParseStep parses a restart step and fills in its host when only one
// host runs the system; its errors say where and what.
func (sys System) ParseStep(f *scenario.File, v scenario.Value) (scenario.Action, error) {
	s := &Restart{key: sys.Key}
	if err := v.Decode(s); err != nil {
		return nil, err
	}
	if field, err := sys.validate(f, s); err != nil {
		return nil, v.Where().Key(field).Errorf("%s: %v", sys.Key, err)
	}
	return s, nil
}

// validate checks a restart step and names the field at fault.
func (sys System) validate(f *scenario.File, s *Restart) (string, error) {
	if !slices.Contains(Actions, s.Action) {
		return "action", fmt.Errorf("action %q: want one of %s", s.Action, strings.Join(Actions, ", "))
	}
	if s.Jobs != "" && s.Jobs != "kept" && s.Jobs != "lost" {
		return "jobs", fmt.Errorf("jobs %q: want kept or lost", s.Jobs)
	}
	with := sys.Hosts(f)
	if s.Host == "" && len(with) == 1 {
		s.Host = with[0]
	}
	if !slices.Contains(with, s.Host) {
		return "host", fmt.Errorf("host %q does not run %s (hosts with %s: %s)", s.Host, sys.Server, sys.Key, strings.Join(with, ", "))
	}
	return "", nil
}

// Do carries out a restart step through the host's control API (POST
// /v1/pbs/restart restarts whatever batch system the host runs).
func (sys System) Do(ctx context.Context, topo runner.Topology, a scenario.Action) error {
	s, ok := a.(*Restart)
	if !ok {
		return fmt.Errorf("%s: %s is not a %s step", sys.Key, a, sys.Label)
	}
	h, ok := topo.Host(s.Host)
	if !ok {
		return fmt.Errorf("no host %q", s.Host)
	}
	return h.Control().RestartPBS(ctx, control.PBSRestart{Down: fault.Duration(s.Down.D()), LoseJobs: s.Jobs == "lost"})
}

// Condition is the predicate p as the plug-in's condition type C, or an
// error naming the system.
func Condition[C scenario.Predicate](sys System, p scenario.Predicate) (C, error) {
	c, ok := p.(C)
	if !ok {
		return c, fmt.Errorf("%s: %s is not a %s condition", sys.Key, p, sys.Label)
	}
	return c, nil
}

// AnyJob reports whether some job of the hosts of topo (those named in
// only; all when only is empty) matches. jobs lists a host's jobs (what
// names them in errors: "PBS jobs"). A host that fails to answer because
// ctx ended counts as no match.
func AnyJob[J any](ctx context.Context, topo runner.Topology, only []string, what string,
	jobs func(context.Context, *control.Client) ([]J, error), match func(J) bool) (bool, error) {
	for _, h := range topo.Hosts() {
		if len(only) > 0 && !slices.Contains(only, h.Name()) {
			continue
		}
		js, err := jobs(ctx, h.Control())
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("%s of %s: %w", what, h.Name(), err)
		}
		if slices.ContainsFunc(js, match) {
			return true, nil
		}
	}
	return false, nil
}

// Namer gives the System of a plug-in; Steps asks its zero value.
type Namer interface{ System() System }

// Steps is the step half of a batch system's plug-in, for embedding in
// the plug-in's type (which stays usable as a zero value): the plug-in's
// name, its restart step under the system's key, parsed and carried out.
// S names the system.
type Steps[S Namer] struct{}

func (Steps[S]) system() System {
	var s S
	return s.System()
}

// Name implements scenario.Plugin: the system's key.
func (p Steps[S]) Name() string { return p.system().Key }

// StepKeys implements scenario.StepParser: the restart step's key.
func (p Steps[S]) StepKeys() []string { return []string{p.system().Key} }

// DoActions implements scenario.StepParser: none (a batch system is no
// system under test).
func (Steps[S]) DoActions() []string { return nil }

// ParseStep implements scenario.StepParser.
func (p Steps[S]) ParseStep(f *scenario.File, key string, v scenario.Value) (scenario.Action, error) {
	return p.system().ParseStep(f, v)
}

// Do implements runner.HostPlugin: a restart step.
func (p Steps[S]) Do(ctx context.Context, topo runner.Topology, a scenario.Action) error {
	return p.system().Do(ctx, topo, a)
}

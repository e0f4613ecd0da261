package runner

import (
	"context"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// System is a system under test as the runner drives it: started, given
// actions, asked whether conditions hold, stopped. Implementations record
// what they observe (task states, server states) into the run's history;
// the checkers judge from there.
type System interface {
	// Name is "cylc", "hub", ...
	Name() string
	// Version is the version of the system under test (it selects whether a
	// reproducer applies).
	Version(ctx context.Context) (string, error)
	// Start starts the system against the topology.
	Start(ctx context.Context) error
	// Do performs one action its plug-in parsed (reload, trigger, spawn,
	// stop, ...): the steps whose Owner is the system's name.
	Do(ctx context.Context, a scenario.Action) error
	// Holds reports whether a condition its plug-in parsed (a task's
	// state, a server's) holds now.
	Holds(ctx context.Context, p scenario.Predicate) (bool, error)
	// Settled reports that nothing more will happen on its own (every task
	// finished, the scheduler stopped), so the run need not wait longer.
	Settled(ctx context.Context) (bool, error)
	// Stop stops the system, waits for it, and releases every process it
	// started, also after a failed run.
	Stop(ctx context.Context) error
	// CollectArtifacts copies logs and generated configs into dir.
	CollectArtifacts(ctx context.Context, dir string) error
}

// SystemFactory builds the system under test of a scenario over a started topology.
type SystemFactory func(ctx context.Context, f *scenario.File, topo Topology, env Env, log *events.Log) (System, error)

// StateKinds is implemented by systems that record state changes (a Cylc
// task's, a hub server's) under kinds of their own: the transcript shows
// those events.
type StateKinds interface {
	StateKinds() []events.Kind
}

// HostPlugin is a plug-in that acts on and observes the topology's hosts
// rather than the system under test: a batch system (PBS, Slurm). It
// performs the steps and judges the conditions its scenario plug-in
// parsed (Owner is its Name), through the hosts' control APIs.
type HostPlugin interface {
	Name() string
	Do(ctx context.Context, topo Topology, a scenario.Action) error
	Holds(ctx context.Context, topo Topology, p scenario.Predicate) (bool, error)
}

package runner

import (
	"context"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// Backend brings up the hosts of a scenario's topology: in-process hosts
// (sim.NewHost) or containers (package backend/containers/container). The scenario files are the same
// for every backend.
type Backend interface {
	// Name is "inprocess", "containers", ...
	Name() string
	// Start brings the topology up and returns once every host is healthy
	// (its control API proves ssh and PBS answer).
	Start(ctx context.Context, t scenario.Topology, env Env) (Topology, error)
}

// Env is what a backend gets from the runner for one scenario run.
type Env struct {
	// Dir is the run's scratch directory; the backend may create host roots in it.
	Dir string
	// Log is the run's history. Backends make every host record into it
	// (directly, or by streaming the hosts' events).
	Log *events.Log
	// User is the default user of hosts that name none.
	User string
}

// Topology is a started set of hosts.
type Topology interface {
	Hosts() []Host
	Host(name string) (Host, bool)
	// Close stops every host and removes what the backend created.
	Close(ctx context.Context) error
}

// NodeController is a Topology whose machines (hosts, and the PBS nodes of
// a cluster) can be cut off the network, frozen, killed and restarted: the
// containers backend. Scenarios with node steps need one; on other
// backends they are skipped.
type NodeController interface {
	// NodeAction performs one of scenario.NodeActions on the named host or
	// PBS node, returning once it took effect (a restarted node is healthy
	// again).
	NodeAction(ctx context.Context, name, action string) error
}

// Host is one started fake job host.
type Host interface {
	Name() string
	// SSH is how a client reaches the host's ssh server as user.
	SSH(user string) (SSHEndpoint, error)
	// Control is the host's control API client.
	Control() *control.Client
	// Notes are what the host said at start, such as "FUSE unavailable: ...".
	Notes() []string
	// ProcessPath is where processes on the host see hostPath (in-process
	// real hosts keep their files below a root directory on the test
	// machine; containers see host paths as they are).
	ProcessPath(hostPath string) string
}

// SSHEndpoint is what an ssh config needs to reach a host.
type SSHEndpoint struct {
	Addr    string // host:port
	User    string
	KeyFile string // private key accepted for User
}

// HarnessAddresser is implemented by hosts whose processes reach the test
// machine under a name of their own (containers: the test machine's host
// name, resolved to the engine's gateway). Systems under test that tell
// jobs where to call back (a Cylc scheduler's contact host for zmq, a
// hub's API) advertise this name; without it, they advertise their own.
type HarnessAddresser interface {
	HarnessHost() string
}

// Addresser is implemented by topologies whose machines (hosts and PBS
// nodes) the test machine reaches at addresses of their own (containers:
// each container's IP on the engine's network). Systems under test that
// connect to a server a job started on a machine (a batch spawner's UI
// server on the node PBS ran it on) connect to Address(name); without it,
// such servers run on the test machine itself (127.0.0.1).
type Addresser interface {
	Address(ctx context.Context, name string) (string, error)
}

// JobsimCarrier is implemented by hosts that carry jobsim's own binary at
// a path of theirs (containers: backend/containers/image.JobsimPath), for systems under
// test that start a jobsim stand-in on the host (the hub's UI server);
// without it, processes on the host run the test machine's binary.
type JobsimCarrier interface {
	JobsimPath() string
}

// SpawnerCarrier is implemented by hosts whose machines carry a real
// spawner package of their own (containers: the batchspawner folder in the
// job-host image), for systems under test whose jobs run a spawner's
// program on the host (batchspawner-singleuser). SpawnerPackage returns
// the package's folder (for PYTHONPATH) and its scripts' folder (for PATH)
// as the host's processes see them; ok is false when the host does not
// carry it. Without the interface, the host's processes run on the test
// machine and use its copy.
type SpawnerCarrier interface {
	SpawnerPackage(name string) (dir, bin string, ok bool)
}

// FileCopier is implemented by hosts whose files the test machine cannot
// read at ProcessPath (containers). CopyOut copies the regular files below
// hostPath (a path as the host's processes see it) into dst on the test
// machine, each cut at limit bytes; a hostPath the host lacks is
// fs.ErrNotExist. Systems under test collect job-host logs (Cylc's job.out)
// into their artifacts with it; without it, they read ProcessPath directly.
type FileCopier interface {
	CopyOut(ctx context.Context, hostPath, dst string, limit int64) error
}

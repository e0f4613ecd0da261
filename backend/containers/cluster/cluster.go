// Package cluster brings up a scenario topology as containers: every host
// a job-host container (package backend/containers/container), all on one private Docker network,
// and every host whose PBS or Slurm block lists nodes the login node of a
// fake cluster: one compute container per node, /home (and, for Slurm,
// the SlurmdSpoolDir) shared between them, the login node's PBS server or
// Slurm controller running each job on the node it placed it on (package
// backend/containers/mom). The harness reaches each machine's ssh and control API
// on 127.0.0.1 (on a remote engine: its published ports, container.Reach);
// the machines reach each other by name.
//
// A Topology streams every machine's events into one history, acts on its
// machines (disconnect, pause, kill, restart: the scenario node steps), and
// removes everything it made on Close, including after a failed start.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/internal/tcenv"
	"github.com/jobsim/jobsim/backend/containers/mom"
	"github.com/jobsim/jobsim/backend/containers/node"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakeslurm"
)

// Option configures Start.
type Option func(*config)

type config struct {
	run         string
	dir         string
	user        string
	log         *events.Log
	requeue     time.Duration
	logger      *slog.Logger
	privileged  bool
	startTimout time.Duration
}

// WithRun labels every container and the network with this run id
// (default: a fresh one).
func WithRun(id string) Option { return func(c *config) { c.run = id } }

// WithDir puts the topology's files (keys, shared homes) in dir (default:
// a temporary directory removed by Close).
func WithDir(dir string) Option { return func(c *config) { c.dir = dir } }

// WithDefaultUser is the user of hosts that name none (default $USER).
func WithDefaultUser(u string) Option { return func(c *config) { c.user = u } }

// WithEventLog streams every machine's events into log.
func WithEventLog(log *events.Log) Option { return func(c *config) { c.log = log } }

// WithNodeFailRequeue sets node_fail_requeue on the login nodes (default
// OpenPBS's 310s).
func WithNodeFailRequeue(d time.Duration) Option { return func(c *config) { c.requeue = d } }

// WithPrivileged runs the containers privileged.
func WithPrivileged() Option { return func(c *config) { c.privileged = true } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Machine is one container of the topology.
type Machine struct {
	*container.Container
	// Host is the topology host this machine is, or the login node of.
	Host string
	// PBSNode is the name of a compute node in its batch system: its PBS
	// node or Slurm node name ("" for hosts).
	PBSNode string

	stream *streamer
}

// Topology is a started set of job-host containers.
type Topology struct {
	cfg      config
	net      *testcontainers.DockerNetwork
	keys     *container.Keys
	ownDir   bool
	machines []*Machine
	life     context.Context
	stop     context.CancelFunc

	closeMu sync.Mutex
	closed  bool
}

// Host is one job host of a topology: a container of its own, and, when
// its PBS configuration lists nodes, the login node of a cluster with one
// compute container per node. The runner's containers backend maps a
// scenario's topology into Hosts; this package knows no scenario format.
type Host struct {
	Name string
	// Users are the host's users (default: the harness's user).
	Users []string
	// FaultMounts are host paths under the FUSE fault layer.
	FaultMounts []string
	// Cylc is where the image's Cylc overlay is copied on the host ("": none).
	Cylc string
	// PBS runs a PBS server on the host (nil: none).
	PBS *fakepbs.Config
	// Slurm runs a Slurm controller on the host (nil: none). Its jobs run
	// on the host itself unless its nodes name others: then, as with PBS
	// nodes, the host is the login node of a cluster, with one compute
	// container per Slurm node.
	Slurm *fakeslurm.Config
}

// NodeActions are what NodeAction can do to a machine.
var NodeActions = []string{"disconnect", "reconnect", "pause", "unpause", "kill", "restart"}

// Start brings the hosts up from the image and returns once every
// machine is healthy. ctx bounds the start. On error nothing is left.
func Start(ctx context.Context, img image.Image, hosts []Host, opts ...Option) (_ *Topology, err error) {
	tcenv.DisableRyuk()
	c := config{logger: slog.Default(), user: os.Getenv("USER"), startTimout: 90 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	if c.user == "" {
		c.user = "jobsim"
	}
	if c.run == "" {
		c.run = container.NewRunID()
	}
	t := &Topology{cfg: c}
	t.life, t.stop = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = t.Close(cctx)
		}
	}()
	if c.dir == "" {
		if t.cfg.dir, err = os.MkdirTemp("", "jobsim-topology-"); err != nil {
			return nil, err
		}
		t.ownDir = true
	}
	if t.keys, err = container.NewKeys(filepath.Join(t.cfg.dir, "keys")); err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return t, nil
	}
	t.net, err = tcnetwork.New(ctx, tcnetwork.WithLabels(container.RunLabels(c.run)))
	if err != nil {
		return nil, fmt.Errorf("cluster: network: %w", err)
	}

	token := container.NewToken() // one token per topology: control, MoMs, PBS on TCP
	type plan struct {
		m    *Machine
		opts []container.Option
	}
	var plans []plan
	for _, h := range hosts {
		users := h.Users
		if len(users) == 0 {
			users = []string{c.user}
		}
		base := []container.Option{container.WithImage(img), container.WithRun(c.run), container.WithKeys(t.keys), container.WithUsers(users...), container.WithToken(token),
			container.WithNetwork(t.net.Name), container.WithLogger(c.logger), container.WithStartTimeout(c.startTimout)}
		if c.privileged {
			base = append(base, container.WithPrivileged())
		}
		if h.Cylc != "" {
			base = append(base, container.WithCylc(h.Cylc))
		}
		hostOpts := append(slices.Clone(base), container.WithName(h.Name), container.WithFaultMounts(h.FaultMounts...))
		nodes := computeNodes(h)
		if len(nodes) == 0 {
			if h.PBS != nil {
				hostOpts = append(hostOpts, container.WithPBS(*h.PBS))
			}
			if h.Slurm != nil {
				hostOpts = append(hostOpts, container.WithSlurm(*h.Slurm))
			}
			plans = append(plans, plan{m: &Machine{Host: h.Name}, opts: hostOpts})
			continue
		}
		// A cluster: the host is its login node, each PBS or Slurm node a
		// compute node.
		home := filepath.Join(t.cfg.dir, "home-"+h.Name)
		if err := os.MkdirAll(home, 0o755); err != nil {
			return nil, err
		}
		var moms []mom.Node
		for _, n := range nodes {
			if n == h.Name {
				return nil, fmt.Errorf("cluster: host %s: a compute node may not share the login node's name", h.Name)
			}
			moms = append(moms, mom.Node{Name: n, URL: fmt.Sprintf("http://%s:%d", n, node.MomPort)})
		}
		requeue := ""
		if c.requeue > 0 {
			requeue = c.requeue.String()
		}
		if h.PBS != nil && h.PBS.NodeFailRequeue > 0 {
			requeue = h.PBS.NodeFailRequeue.String() // the scenario's own wins
		}
		login := append(hostOpts, container.WithHome(home), container.WithNode(func(nc *node.Config) {
			nc.Role, nc.Nodes, nc.SharedHome, nc.NodeFailRequeue = node.RoleLogin, moms, true, requeue
		}))
		var compute []container.Option
		if h.Slurm != nil {
			spool := filepath.Join(t.cfg.dir, "slurmd-"+h.Name)
			if err := os.MkdirAll(spool, 0o755); err != nil {
				return nil, err
			}
			login = append(login, container.WithSlurm(*h.Slurm), container.WithSlurmSpool(spool))
			compute = []container.Option{container.WithSlurmSpool(spool), container.WithNode(func(nc *node.Config) {
				nc.Role, nc.SlurmServer, nc.SharedHome = node.RoleCompute, fmt.Sprintf("%s:%d", h.Name, node.SlurmPort), true
			})}
		} else {
			login = append(login, container.WithPBS(*h.PBS))
			compute = []container.Option{container.WithNode(func(nc *node.Config) {
				nc.Role, nc.PBSServer, nc.SharedHome = node.RoleCompute, fmt.Sprintf("%s:%d", h.Name, node.PBSPort), true
			})}
		}
		plans = append(plans, plan{m: &Machine{Host: h.Name}, opts: login})
		for _, n := range nodes {
			opts := append(slices.Clone(base), container.WithName(n), container.WithHome(home))
			plans = append(plans, plan{m: &Machine{Host: h.Name, PBSNode: n}, opts: append(opts, compute...)})
		}
	}
	names := map[string]bool{}
	for _, p := range plans {
		n := p.m.PBSNode
		if n == "" {
			n = p.m.Host
		}
		if names[n] {
			return nil, fmt.Errorf("cluster: machine name %q is used twice (host names and compute node names share one network)", n)
		}
		names[n] = true
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range plans {
		g.Go(func() error {
			ct, err := container.Run(gctx, p.opts...)
			if err != nil {
				return err
			}
			p.m.Container = ct
			mu.Lock()
			t.machines = append(t.machines, p.m)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Keep the order of the plans (hosts, then their nodes).
	slices.SortFunc(t.machines, func(a, b *Machine) int {
		return slices.IndexFunc(plans, func(p plan) bool { return p.m == a }) - slices.IndexFunc(plans, func(p plan) bool { return p.m == b })
	})
	if c.log != nil {
		for _, m := range t.machines {
			m.stream = newStreamer(t.life, m.Container, c.log, c.logger)
		}
	}
	return t, nil
}

// computeNodes are the names of a host's compute nodes: its PBS nodes, or
// its Slurm nodes unless the only one is the host itself (Slurm's default
// node, where jobs run on the host). None: the host is no cluster.
func computeNodes(h Host) []string {
	var names []string
	switch {
	case h.PBS != nil:
		for _, n := range h.PBS.Nodes {
			names = append(names, n.Name)
		}
	case h.Slurm != nil:
		for _, n := range h.Slurm.Nodes {
			names = append(names, n.Name)
		}
		if len(names) == 1 && names[0] == h.Name {
			return nil
		}
	}
	return names
}

// Machines lists the containers: hosts, each followed by its compute nodes.
func (t *Topology) Machines() []*Machine { return slices.Clone(t.machines) }

// Machine finds a machine by host or PBS node name.
func (t *Topology) Machine(name string) (*Machine, bool) {
	for _, m := range t.machines {
		if m.Name() == name {
			return m, true
		}
	}
	return nil, false
}

// Hosts are the machines that are topology hosts (login nodes included).
func (t *Topology) Hosts() []*Machine {
	var out []*Machine
	for _, m := range t.machines {
		if m.PBSNode == "" {
			out = append(out, m)
		}
	}
	return out
}

// Run is the run id of every container and the network.
func (t *Topology) Run() string { return t.cfg.run }

// Network is the private network's name ("" without hosts).
func (t *Topology) Network() string {
	if t.net == nil {
		return ""
	}
	return t.net.Name
}

// Dir is where the topology keeps keys and shared homes.
func (t *Topology) Dir() string { return t.cfg.dir }

// NodeAction performs a scenario node action on a machine: disconnect and
// reconnect take it off the topology's network and back (it is on no
// other, so the harness's published ports go dark too); pause and unpause freeze it; kill kills every process and leaves it
// down; restart starts it again (from killed, or stopping it first) and
// waits until it is healthy. The history gets a host.lifecycle event.
func (t *Topology) NodeAction(ctx context.Context, name, action string) error {
	m, ok := t.Machine(name)
	if !ok {
		return fmt.Errorf("cluster: no machine %q", name)
	}
	var err error
	switch action {
	case "disconnect":
		err = m.Disconnect(ctx)
	case "reconnect":
		err = m.Reconnect(ctx)
	case "pause":
		err = m.Pause(ctx)
	case "unpause":
		err = m.Unpause(ctx)
	case "kill":
		err = m.Kill(ctx)
	case "restart":
		if m.stream != nil {
			m.stream.pause()
		}
		if running, ierr := t.running(ctx, m); ierr != nil {
			err = ierr
		} else if running {
			err = m.Restart(ctx)
		} else {
			err = m.Start(ctx)
		}
		if m.stream != nil {
			m.stream.restart()
		}
	default:
		return fmt.Errorf("cluster: node action %q: want one of %v", action, NodeActions)
	}
	if err != nil {
		return err
	}
	if t.cfg.log != nil {
		t.cfg.log.Record(events.Event{Kind: events.HostLifecycle, Host: name, Msg: "node " + action,
			Fields: map[string]any{"state": action, "node": name, "run": t.cfg.run}})
	}
	return nil
}

func (t *Topology) running(ctx context.Context, m *Machine) (bool, error) {
	dc, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false, err
	}
	defer dc.Close()
	ins, err := dc.ContainerInspect(ctx, m.ID(), client.ContainerInspectOptions{})
	if err != nil {
		return false, err
	}
	return ins.Container.State.Running, nil
}

// Close stops the event streams, removes every container and the network,
// and the topology's files when it made the directory. ctx bounds it.
func (t *Topology) Close(ctx context.Context) error {
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for _, m := range t.machines {
		if m.stream != nil {
			m.stream.drain(ctx)
		}
	}
	t.stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range t.machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Close(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.net != nil {
		if err := t.net.Remove(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cluster: remove network: %w", err))
		}
	}
	// Whatever a failed start or a crash in between left behind.
	if rep, err := container.Sweep(ctx, t.cfg.run); err != nil {
		errs = append(errs, err)
	} else if n := len(rep.Containers) + len(rep.Networks); n > 0 && len(errs) == 0 {
		t.cfg.logger.Warn("cluster: swept leftovers", "run", t.cfg.run, "containers", rep.Containers, "networks", rep.Networks)
	}
	if t.keys != nil {
		errs = append(errs, t.keys.Close())
	}
	if t.ownDir {
		errs = append(errs, os.RemoveAll(t.cfg.dir))
	}
	return errors.Join(errs...)
}

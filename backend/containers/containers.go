// Package backend is the scenario runner's "containers" backend: each
// scenario's topology comes up as job-host containers (package
// backend/containers/cluster) from a job-host image built once per backend (package
// backend/containers/image), so that the same scenario files that run in-process run
// against containers, clusters of them included, and node steps
// (disconnect, pause, kill, restart a machine) work.
//
// Processes on a container see host paths as they are (ProcessPath is the
// identity), ssh is published on 127.0.0.1 (on a remote engine: on the
// engine host, container.Reach) with a key the harness holds,
// and every host's events stream into the run's history.
package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jobsim/jobsim/backend/containers/cluster"
	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
)

// Backend starts scenario topologies as containers. It is safe for
// concurrent use by the runner.
type Backend struct {
	jobsim   string
	userland image.Userland
	requeue  time.Duration
	cylc     *cylc.Install
	batch    *string // nil: LocateBatchspawner at the first Image
	logger   *slog.Logger
	buildLog io.Writer
	given    *image.Image

	mu     sync.Mutex
	img    *image.Image
	imgErr error
}

// Option configures a Backend.
type Option func(*Backend)

// WithJobsimBinary is the static jobsim binary the image carries (default
// $JOBSIM_BIN).
func WithJobsimBinary(path string) Option { return func(b *Backend) { b.jobsim = path } }

// WithUserland selects how containers get their programs (default
// image.BindMounts).
func WithUserland(u image.Userland) Option { return func(b *Backend) { b.userland = u } }

// WithImage uses an image built already (its Cylc overlay, if any, is what
// Cylc scenarios get).
func WithImage(img image.Image) Option { return func(b *Backend) { b.given = &img } }

// WithNodeFailRequeue sets node_fail_requeue on clusters (default
// OpenPBS's 310s).
func WithNodeFailRequeue(d time.Duration) Option { return func(b *Backend) { b.requeue = d } }

// WithBuildLog receives the image build's output.
func WithBuildLog(w io.Writer) Option { return func(b *Backend) { b.buildLog = w } }

// WithCylc is the Cylc under test that hosts with a `cylc:` path carry
// there: its overlay goes into the image (without one such hosts skip
// their scenario).
func WithCylc(in *cylc.Install) Option { return func(b *Backend) { b.cylc = in } }

// WithBatchspawner is the batchspawner folder (scripts/setup-hub.sh's
// spawners/batchspawner) the image carries, for the hub's batch jobs;
// "" carries none. Without the option the backend looks for it with
// LocateBatchspawner.
func WithBatchspawner(dir string) Option { return func(b *Backend) { b.batch = &dir } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(b *Backend) { b.logger = l } }

// LocateBatchspawner is the batchspawner folder scripts/setup-hub.sh
// installed ($JOBSIM_CACHE/spawners/batchspawner, checked by importing it
// in the hub's Python), or "" with the reason when there is none (then the
// image carries no batchspawner and the hub's batch scenarios on
// containers run the stand-in or skip). A batchspawner in the hub's own
// Python is not carried: the image carries setup's folder only.
func LocateBatchspawner(ctx context.Context) (dir, why string) {
	pkg, err := hub.FindPackage(ctx, hub.PackageBatchspawner, "")
	switch {
	case err != nil:
		return "", err.Error()
	case pkg.Dir == "":
		return "", "batchspawner is in the hub's Python, not in a folder of setup's the image can carry"
	}
	return pkg.Dir, ""
}

// New returns the containers backend.
func New(opts ...Option) *Backend {
	b := &Backend{userland: image.BindMounts, logger: slog.Default(), buildLog: io.Discard}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Name implements runner.Backend.
func (b *Backend) Name() string { return "containers" }

// Image returns the image the backend runs, building it on first use.
func (b *Backend) Image(ctx context.Context, in *cylc.Install) (image.Image, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.given != nil {
		return *b.given, nil
	}
	if b.img != nil || b.imgErr != nil {
		return derefImage(b.img), b.imgErr
	}
	if err := container.DockerAvailable(ctx); err != nil {
		// Not cached: an engine may come up.
		return image.Image{}, &runner.SkipError{Reason: fmt.Sprintf("the containers backend needs a Docker engine: %v", err)}
	}
	reach, err := container.ReachFromEnv()
	if err != nil {
		b.imgErr = fmt.Errorf("containers backend: %w", err)
		return image.Image{}, b.imgErr
	}
	if reach.Published {
		b.logger.Info("containers: published-port mode", "ports", reach.Bind.String(), "dialled at", reach.Host, "why", reach.Why)
	}
	opts := []image.Option{image.WithUserland(b.userland), image.WithLogger(b.logger), image.WithBuildLog(b.buildLog)}
	if b.jobsim != "" {
		opts = append(opts, image.WithJobsimBinary(b.jobsim))
	}
	if in != nil && in.Overlay != "" {
		opts = append(opts, image.WithCylcOverlay(in.Overlay))
	}
	batch := ""
	if b.batch != nil {
		batch = *b.batch
	} else {
		var why string
		if batch, why = LocateBatchspawner(ctx); batch == "" {
			b.logger.Info("containers: the job-host image carries no batchspawner", "why", why)
		}
	}
	if batch != "" {
		opts = append(opts, image.WithBatchspawner(batch))
	}
	bctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	img, err := image.Build(bctx, opts...)
	if err != nil {
		b.imgErr = fmt.Errorf("containers backend: %w", err)
		return image.Image{}, b.imgErr
	}
	b.img = &img
	b.logger.Info("job-host image ready", "image", img.Ref, "built", img.Built, "took", img.Took.Round(time.Millisecond))
	return img, nil
}

func derefImage(p *image.Image) image.Image {
	if p == nil {
		return image.Image{}
	}
	return *p
}

// Start implements runner.Backend.
func (b *Backend) Start(ctx context.Context, t scenario.Topology, env runner.Env) (runner.Topology, error) {
	img, err := b.Image(ctx, b.cylc)
	if err != nil {
		return nil, err
	}
	for _, h := range t.Hosts {
		if h.Cylc == "" {
			continue
		}
		if b.cylc == nil {
			return nil, &runner.SkipError{Reason: "the scenario needs Cylc on its job host but no Cylc was located (run make setup-cylc, or set JOBSIM_CYLC)"}
		}
		if !img.Overlay {
			return nil, &runner.SkipError{Reason: fmt.Sprintf("host %s needs Cylc, and containers carry it only as the compatibility overlay make setup-cylc builds (image %s has none)", h.Name, img.Ref)}
		}
		if h.Executor == "virtual" {
			return nil, fmt.Errorf("host %s: executor virtual cannot run Cylc", h.Name)
		}
	}
	dir := filepath.Join(env.Dir, "containers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	opts := []cluster.Option{cluster.WithDir(dir), cluster.WithEventLog(env.Log), cluster.WithLogger(b.logger)}
	if env.User != "" {
		opts = append(opts, cluster.WithDefaultUser(env.User))
	}
	if b.requeue > 0 {
		opts = append(opts, cluster.WithNodeFailRequeue(b.requeue))
	}
	hosts, err := ClusterHosts(t)
	if err != nil {
		return nil, err
	}
	tp, err := cluster.Start(ctx, img, hosts, opts...)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, fmt.Errorf("containers: the topology did not start in time: %w", err)
		}
		return nil, err
	}
	return &topology{t: tp, img: img}, nil
}

// ClusterHosts maps a scenario topology to the cluster's own host
// configuration (the container side knows no scenario format).
func ClusterHosts(t scenario.Topology) ([]cluster.Host, error) {
	out := make([]cluster.Host, 0, len(t.Hosts))
	for _, h := range t.Hosts {
		if h.Executor == "virtual" {
			return nil, fmt.Errorf("host %s: the containers backend runs real executors only (executor: virtual is for the in-process backend)", h.Name)
		}
		if h.Isolate != nil && !*h.Isolate && h.Cylc != "" {
			return nil, &runner.SkipError{Reason: fmt.Sprintf("host %s sets isolate: false, but containers, whose Cylc is the overlay, never carry the machine's copy of Cylc (run it with --backend inprocess)", h.Name)}
		}
		ch := cluster.Host{Name: h.Name, Users: h.Users, FaultMounts: h.FaultMounts, Cylc: h.Cylc}
		if h.PBS != nil {
			c := h.PBS.Config()
			ch.PBS = &c
		}
		if h.Slurm != nil {
			c := h.Slurm.Config()
			ch.Slurm = &c
		}
		out = append(out, ch)
	}
	return out, nil
}

// topology adapts a cluster.Topology to runner.Topology and
// runner.NodeController.
type topology struct {
	t   *cluster.Topology
	img image.Image
}

var (
	_ runner.Topology       = (*topology)(nil)
	_ runner.NodeController = (*topology)(nil)
)

func (t *topology) Hosts() []runner.Host {
	var out []runner.Host
	for _, m := range t.t.Hosts() {
		out = append(out, &host{m: m, img: t.img})
	}
	return out
}

func (t *topology) Host(name string) (runner.Host, bool) {
	m, ok := t.t.Machine(name)
	if !ok || m.PBSNode != "" {
		return nil, false
	}
	return &host{m: m, img: t.img}, true
}

func (t *topology) Close(ctx context.Context) error { return t.t.Close(ctx) }

func (t *topology) NodeAction(ctx context.Context, name, action string) error {
	return t.t.NodeAction(ctx, name, action)
}

// Address is the IP address of a machine (a host or a compute node) that the
// test machine reaches directly, for systems under test that connect to a
// server a job started on a node (a batch spawner's notebook on cn1).
func (t *topology) Address(ctx context.Context, name string) (string, error) {
	m, ok := t.t.Machine(name)
	if !ok {
		return "", fmt.Errorf("containers: no machine %q", name)
	}
	ip, err := m.IP(ctx)
	if errors.Is(err, container.ErrUnreachable) {
		// Only the ports the harness publishes reach a remote engine's
		// containers; a server a job starts listens on a port of its own.
		return "", &runner.SkipError{Reason: fmt.Sprintf("the scenario connects to a server on machine %s at its network address: %v", name, err)}
	}
	return ip, err
}

// Cluster is the underlying topology, for tests that reach past the runner.
func (t *topology) Cluster() *cluster.Topology { return t.t }

// host adapts a container to runner.Host.
type host struct {
	m   *cluster.Machine
	img image.Image
}

// What systems under test ask of container hosts beyond runner.Host
// (scenarios/hubsys places its UI servers with these).
var (
	_ runner.HarnessAddresser = (*host)(nil)
	_ runner.JobsimCarrier    = (*host)(nil)
	_ runner.FileCopier       = (*host)(nil)
	_ runner.SpawnerCarrier   = (*host)(nil)
	_ runner.Addresser        = (*topology)(nil)
)

func (h *host) Name() string             { return h.m.Name() }
func (h *host) Control() *control.Client { return h.m.Control() }
func (h *host) Notes() []string          { return h.m.Notes() }

// ProcessPath is the identity: processes in the container see host paths
// as they are.
func (h *host) ProcessPath(hostPath string) string { return hostPath }

// CopyOut copies files out of the host's container through the engine.
func (h *host) CopyOut(ctx context.Context, hostPath, dst string, limit int64) error {
	return h.m.CopyOut(ctx, hostPath, dst, limit)
}

// JobsimPath is where the image carries the jobsim binary (the container's
// entry point), for stand-ins started on the host (the hub's UI server).
func (h *host) JobsimPath() string { return image.JobsimPath }

// SpawnerPackage is where the image carries a spawner package
// (batchspawner, at image.BatchspawnerPath, when it was built with it).
func (h *host) SpawnerPackage(name string) (dir, bin string, ok bool) {
	if name != hub.PackageBatchspawner || !h.img.Batchspawner {
		return "", "", false
	}
	return image.BatchspawnerPath, image.BatchspawnerPath + "/bin", true
}

// HarnessHost is the name by which processes on this host reach the test
// machine (a Cylc scheduler's contact host for zmq messages, a hub's API):
// the test machine's host name, which every container resolves to the
// engine's gateway. Systems under test that advertise an address to jobs
// should advertise this one (Cylc: [scheduler][host self-identification]
// method = hardwired, host = HarnessHost()).
func (h *host) HarnessHost() string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	return name
}

func (h *host) SSH(user string) (runner.SSHEndpoint, error) {
	key, err := h.m.KeyFile(user)
	if err != nil {
		return runner.SSHEndpoint{}, err
	}
	return runner.SSHEndpoint{Addr: h.m.SSHAddr(), User: user, KeyFile: key}, nil
}

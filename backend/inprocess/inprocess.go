// Package inprocess is the scenario runner's backend that starts a
// topology's hosts inside the test process (sim.NewHost): real-executor
// hosts run real processes with their files below a root directory on the
// test machine, virtual hosts run in the embedded shell.
package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim"
	"github.com/jobsim/jobsim/sim/control"
	"github.com/jobsim/jobsim/sim/executor/real"
)

// Backend starts in-process hosts.
type Backend struct {
	jobsim string
	cylc   *cylc.Install
	logger *slog.Logger
}

// Option configures a Backend.
type Option func(*Backend)

// WithJobsimBinary names the jobsim executable real hosts put on PATH as
// the PBS commands.
func WithJobsimBinary(path string) Option { return func(b *Backend) { b.jobsim = path } }

// WithCylc is the Cylc under test that hosts with a `cylc:` path carry
// there (without it such hosts skip their scenario).
func WithCylc(in *cylc.Install) Option { return func(b *Backend) { b.cylc = in } }

// WithLogger sets the hosts' logger.
func WithLogger(l *slog.Logger) Option { return func(b *Backend) { b.logger = l } }

// New returns the in-process backend.
func New(opts ...Option) *Backend {
	b := &Backend{logger: slog.Default()}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Name implements runner.Backend.
func (b *Backend) Name() string { return "inprocess" }

// Start implements runner.Backend.
func (b *Backend) Start(ctx context.Context, t scenario.Topology, env runner.Env) (_ runner.Topology, err error) {
	topo := &topology{}
	defer func() {
		if err != nil {
			_ = topo.Close(context.WithoutCancel(ctx))
		}
	}()
	for _, spec := range t.Hosts {
		h, err := b.startHost(ctx, spec, env)
		if err != nil {
			return nil, err
		}
		topo.hosts = append(topo.hosts, &host{h: h})
	}
	return topo, nil
}

func (b *Backend) startHost(ctx context.Context, spec scenario.Host, env runner.Env) (*sim.Host, error) {
	users := spec.Users
	if len(users) == 0 {
		users = []string{env.User}
	}
	opts := []sim.Option{sim.WithName(spec.Name), sim.WithUsers(users...), sim.WithEventLog(env.Log), sim.WithLogger(b.logger)}
	if b.jobsim != "" {
		opts = append(opts, sim.WithJobsimBinary(b.jobsim))
	}
	if spec.PBS != nil {
		opts = append(opts, sim.WithPBS(spec.PBS.ServerOptions()...))
	}
	if spec.Slurm != nil {
		opts = append(opts, sim.WithSlurm(spec.Slurm.ServerOptions()...))
	}
	switch spec.Executor {
	case "virtual":
		opts = append(opts, sim.WithExecutor(sim.Virtual))
	default:
		root := filepath.Join(env.Dir, "hosts", spec.Name)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("host %s: %w", spec.Name, err)
		}
		if spec.Cylc != "" {
			if err := installCylc(root, spec.Cylc, b.cylc); err != nil {
				return nil, fmt.Errorf("host %s: %w", spec.Name, err)
			}
		}
		if isolate(spec, b.cylc) {
			dirs, err := real.PythonPackageDirs(ctx, "cylc", "")
			if err != nil {
				return nil, fmt.Errorf("host %s: the machine's copies of Cylc to hide: %w", spec.Name, err)
			}
			opts = append(opts, sim.WithHiddenPaths(dirs...))
		}
		opts = append(opts, sim.WithExecutor(sim.Real), sim.WithRoot(root), sim.WithFaultMounts(spec.FaultMounts...))
	}
	return sim.NewHost(ctx, opts...)
}

// isolate reports whether the host hides the machine's copies of Cylc:
// as the scenario says, else when the host's Cylc comes from its own
// library directory (a copy of the overlay), which the machine's copies
// must not stand in for.
func isolate(spec scenario.Host, c *cylc.Install) bool {
	if spec.Isolate != nil {
		return *spec.Isolate
	}
	return spec.Cylc != "" && c != nil && c.Overlay != ""
}

// installCylc makes the Cylc under test available at hostPath on the host
// below root: a copy of the overlay (so its library lies on the host, where
// a fault mount can cover it), or a wrapper exec'ing the executable.
func installCylc(root, hostPath string, c *cylc.Install) error {
	if c == nil {
		return &runner.SkipError{Reason: "the scenario needs Cylc on its job host but no Cylc was located (run make setup-cylc, or set JOBSIM_CYLC)"}
	}
	dir := filepath.Join(root, hostPath)
	if c.Overlay != "" {
		if err := os.CopyFS(dir, os.DirFS(c.Overlay)); err != nil {
			return fmt.Errorf("copy the Cylc overlay %s to %s: %w", c.Overlay, hostPath, err)
		}
		return nil
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	wrapper := fmt.Sprintf("#!/bin/sh\n# jobsim: the Cylc under test, as the job host runs it\nexec %s \"$@\"\n", shellQuote(c.Executable))
	return os.WriteFile(filepath.Join(bin, "cylc"), []byte(wrapper), 0o755)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

type topology struct{ hosts []*host }

// Over is a runner.Topology of in-process hosts started by the caller, for
// tests of a plug-in against a host they built; its Close closes them.
func Over(hosts ...*sim.Host) runner.Topology {
	t := &topology{}
	for _, h := range hosts {
		t.hosts = append(t.hosts, &host{h: h})
	}
	return t
}

func (t *topology) Hosts() []runner.Host {
	out := make([]runner.Host, len(t.hosts))
	for i, h := range t.hosts {
		out[i] = h
	}
	return out
}

func (t *topology) Host(name string) (runner.Host, bool) {
	for _, h := range t.hosts {
		if h.Name() == name {
			return h, true
		}
	}
	return nil, false
}

func (t *topology) Close(context.Context) error {
	var errs []error
	for i := len(t.hosts) - 1; i >= 0; i-- {
		errs = append(errs, t.hosts[i].h.Close())
	}
	return errors.Join(errs...)
}

// host adapts a *sim.Host to runner.Host.
type host struct{ h *sim.Host }

func (h *host) Name() string                       { return h.h.Name() }
func (h *host) Control() *control.Client           { return h.h.Client() }
func (h *host) Notes() []string                    { return h.h.Notes() }
func (h *host) ProcessPath(hostPath string) string { return h.h.ProcessPath(hostPath) }

// Sim is the underlying in-process host, for tests that reach past the control API.
func (h *host) Sim() *sim.Host { return h.h }

func (h *host) SSH(user string) (runner.SSHEndpoint, error) {
	key, err := h.h.KeyFile(user)
	if err != nil {
		return runner.SSHEndpoint{}, err
	}
	return runner.SSHEndpoint{Addr: h.h.SSHAddr(), User: user, KeyFile: key}, nil
}

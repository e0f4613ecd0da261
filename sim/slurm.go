package sim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jobsim/jobsim/fakeslurm"
	slurmcli "github.com/jobsim/jobsim/fakeslurm/cli"
	slurmremote "github.com/jobsim/jobsim/fakeslurm/remote"
	"github.com/jobsim/jobsim/fakeslurm/slurmhost"
	"github.com/jobsim/jobsim/fakeslurm/virtualsrun"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// WithSlurm runs a Slurm controller (fakeslurm) on the host; its jobs run
// on the host's executor and the Slurm commands (sbatch, squeue, scancel,
// sacct, sinfo, scontrol, srun) work in every shell of the host. A host
// runs one batch system: WithSlurm and WithPBS together are refused.
func WithSlurm(opts ...fakeslurm.Option) Option {
	return func(c *config) { c.slurm = true; c.slurmOpts = append(c.slurmOpts, opts...) }
}

// Slurm is the host's Slurm controller, nil without WithSlurm: for
// Slurm-specific wiring. Everything else goes through Batch.
func (h *Host) Slurm() *fakeslurm.Server { return h.slurm }

// slurmBuiltins makes the Slurm commands builtins of a virtual host: srun
// runs its command in place (inside a job), the others call the
// controller in-process.
func (h *Host) slurmBuiltins() []virtual.Option {
	var opts []virtual.Option
	for _, name := range slurmcli.Commands {
		if name == "srun" {
			opts = append(opts, virtual.WithBuiltin(name, virtualsrun.Builtin()))
			continue
		}
		opts = append(opts, virtual.WithBuiltin(name, h.pbsBuiltin))
	}
	return opts
}

// slurmCLIOptions configure the Slurm commands: the host's faults (layer
// "slurm"), events, clock and logger.
func (h *Host) slurmCLIOptions() []slurmcli.Option {
	return []slurmcli.Option{slurmcli.WithFaults(h.faults), slurmcli.WithRecorder(h.rec), slurmcli.WithClock(h.clock), slurmcli.WithLogger(h.cfg.logger)}
}

// hostIDs are the uid and gid Slurm records for a host user: a virtual
// host's users are 1000, 1001, ... in order; a real host's processes all
// run as the harness's uid.
func (h *Host) hostIDs(user string) (int, int) {
	if h.root != "" {
		return os.Getuid(), os.Getgid()
	}
	if i := slices.Index(h.cfg.users, user); i >= 0 {
		return 1000 + i, 1000 + i
	}
	return 1000, 1000
}

// startSlurm starts the Slurm controller when asked for, running jobs on
// the host's executor and writing output through the host filesystem.
func (h *Host) startSlurm(ctx context.Context) error {
	if !h.cfg.slurm {
		return nil
	}
	opts := append([]fakeslurm.Option{
		fakeslurm.WithClusterName(h.name), fakeslurm.WithControlHost(h.name), fakeslurm.WithClock(h.clock),
		fakeslurm.WithNodes(fakeslurm.NodeConfig{Name: h.name, CPUs: 2, MemMB: 1000}),
		fakeslurm.WithExecutor(h.jobExecutor()), fakeslurm.WithFS(h.pbsFS()), fakeslurm.WithFaults(h.faults),
		fakeslurm.WithRecorder(h.rec), fakeslurm.WithLogger(h.cfg.logger),
		// The script file a job runs is where the job's processes see it.
		fakeslurm.WithSpoolDir(h.ProcessPath("/var/spool/slurmd")),
	}, h.cfg.slurmOpts...)
	srv, err := fakeslurm.NewServer(ctx, opts...)
	if err != nil {
		return fmt.Errorf("Slurm controller: %w", err)
	}
	h.slurm = srv
	h.batch = slurmhost.New(srv, slurmhost.WithHost(h.name), slurmhost.WithFS(h.fs), slurmhost.WithIDs(h.hostIDs),
		slurmhost.WithCLIOptions(h.slurmCLIOptions()...))
	h.closers = append(h.closers, srv.Close)
	return nil
}

// slurmAddress is the JOBSIM_SLURM_SERVER value of the host's Slurm clients.
func (h *Host) slurmAddress() string { return "unix:" + filepath.Join(h.state, "slurm.sock") }

// slurmConf is the slurm.conf the host's Slurm clients read (SLURM_CONF):
// the cluster's name, its controller and MessageTimeout, as a real
// client's configuration gives them.
func (h *Host) slurmConf() string { return filepath.Join(h.state, "slurm.conf") }

// installSlurmClient puts jobsim under the Slurm command names on the
// host's PATH and writes the clients' slurm.conf.
func (h *Host) installSlurmClient() error {
	if err := h.linkClient("Slurm client", slurmcli.Commands); err != nil {
		return err
	}
	text := fmt.Sprintf("# jobsim host %s: the Slurm clients' configuration\nClusterName=%s\nSlurmctldHost=%s\nMessageTimeout=10\n#JobsimController=%s\n",
		h.name, h.name, h.name, h.slurmAddress())
	if err := os.WriteFile(h.slurmConf(), []byte(text), 0o644); err != nil {
		return fmt.Errorf("slurm.conf: %w", err)
	}
	return nil
}

// slurmEnv is the environment that sends a real host's Slurm clients to
// its controller.
func (h *Host) slurmEnv() []string {
	if !h.cfg.slurm {
		return nil
	}
	return []string{slurmremote.ServerEnv + "=" + h.slurmAddress(), "SLURM_CONF=" + h.slurmConf()}
}

// serveSlurm serves the Slurm front end on the host's socket for the real
// Slurm client processes.
func (h *Host) serveSlurm() error {
	ln, err := slurmremote.Listen(h.slurmAddress(), 0o666)
	if err != nil {
		return fmt.Errorf("Slurm socket: %w", err)
	}
	h.serveSocket(ln, func() {
		_ = slurmremote.Serve(h.life, ln, h.slurm, slurmremote.WithCLIOptions(h.slurmCLIOptions()...), slurmremote.WithHost(h.name),
			slurmremote.WithLogger(h.cfg.logger),
			// As for PBS: every host user runs as the harness's uid; the socket
			// lies in the host's private state directory.
			slurmremote.WithPeerAuth(false))
	})
	return nil
}

// checkSlurm proves the controller answers the way the host's clients
// reach it (through the socket on real hosts).
func (h *Host) checkSlurm(ctx context.Context) error {
	user := h.cfg.users[0]
	var res batch.Result
	if h.root != "" {
		uid, gid := h.hostIDs(user)
		r, err := slurmremote.Call(ctx, h.slurmAddress(), slurmcli.Invocation{Command: "sinfo", User: user, UID: uid, GID: gid, Host: h.name, Cwd: h.ProcessPath("/home/" + user)})
		if err != nil {
			return err
		}
		res = batch.Result{Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode}
	} else {
		res = h.batch.Run(ctx, batch.Invocation{Command: "sinfo", User: user, Cwd: "/home/" + user})
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("sinfo exited %d: %s", res.ExitCode, res.Stderr)
	}
	return nil
}

// exportLines writes KEY=value pairs as a login profile's export lines.
func exportLines(env []string) string {
	var b strings.Builder
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, v)
	}
	return b.String()
}

package sim

import (
	"context"
	"fmt"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/fakepbs/pbshost"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/virtual"
	"github.com/jobsim/jobsim/sim/fsys"
)

// startVirtual builds a host whose filesystem is in memory and whose
// commands run in the embedded shell; the PBS commands are builtins calling
// the front end in-process.
func (h *Host) startVirtual(ctx context.Context) error {
	var opts []fsys.MemHostOption
	users := map[string]virtual.User{}
	for i, u := range h.cfg.users {
		if u == "root" {
			// Every host has root (uid 0, /root): a host user named root
			// is that account, as on a real machine (and what `jobsim
			// host` run as root gets by default).
			users[u] = virtual.User{Name: u, UID: 0, GID: 0, Home: "/root", Shell: "/bin/bash"}
			continue
		}
		hu := fsys.HostUser{Name: u, UID: 1000 + i, GID: 1000 + i, Home: "/home/" + u, Shell: "/bin/bash"}
		opts = append(opts, fsys.MemUser(hu))
		users[u] = virtual.User{Name: u, UID: hu.UID, GID: hu.GID, Home: hu.Home, Shell: hu.Shell}
	}
	mem, err := fsys.NewMemHost(append(opts, fsys.MemHostname(h.name))...)
	if err != nil {
		return fmt.Errorf("filesystem: %w", err)
	}
	h.fs = fsys.WithFaults(mem, h.faults)
	vopts := []virtual.Option{
		virtual.WithFS(h.fs), virtual.WithClock(h.clock), virtual.WithHostname(h.name), virtual.WithLogger(h.cfg.logger),
		virtual.WithUsers(func(name string) (virtual.User, error) {
			u, ok := users[name]
			if !ok {
				return virtual.User{}, fmt.Errorf("no user %q on %s", name, h.name)
			}
			return u, nil
		}),
	}
	if h.cfg.pbs {
		for _, name := range cli.Commands {
			vopts = append(vopts, virtual.WithBuiltin(name, h.pbsBuiltin))
		}
	}
	if h.cfg.slurm {
		vopts = append(vopts, h.slurmBuiltins()...)
	}
	ve := virtual.New(vopts...)
	h.exec = ve
	h.closers = append(h.closers, ve.Close)
	if err := h.startPBS(ctx, func(user string) string { return users[user].Home }); err != nil {
		return err
	}
	return h.startSlurm(ctx)
}

// pbsBuiltin runs a batch command (PBS or Slurm) of a virtual host in-process.
func (h *Host) pbsBuiltin(ctx context.Context, c *virtual.Call) int {
	res := h.batch.Run(ctx, batch.Invocation{
		Command: c.Args[0], Args: c.Args[1:], Stdin: c.Stdin, Env: c.Environ(), Cwd: c.Dir, User: c.User.Name,
	})
	_, _ = c.Stdout.Write(res.Stdout)
	_, _ = c.Stderr.Write(res.Stderr)
	return res.ExitCode
}

func (h *Host) cliOptions() []cli.Option {
	return []cli.Option{cli.WithFaults(h.faults), cli.WithRecorder(h.rec), cli.WithNow(h.clock.Now), cli.WithLogger(h.cfg.logger)}
}

// startPBS starts the PBS server when asked for, running jobs on the host's
// executor and writing output through the host filesystem.
func (h *Host) startPBS(ctx context.Context, home func(string) string) error {
	if !h.cfg.pbs {
		return nil
	}
	opts := append([]fakepbs.Option{
		fakepbs.WithName(h.name), fakepbs.WithHost(h.name), fakepbs.WithClock(h.clock),
		fakepbs.WithExecutor(executor.ForBatch(h.jobExecutor())), fakepbs.WithFS(h.pbsFS()), fakepbs.WithFaults(h.faults),
		fakepbs.WithRecorder(h.rec), fakepbs.WithLogger(h.cfg.logger), fakepbs.WithHomeDirs(home),
		// Paths the server hands to jobs (PBS_NODEFILE, TMPDIR, the script
		// file) are where the job's processes see them.
		fakepbs.WithPBSHome(h.ProcessPath("/var/spool/pbs")), fakepbs.WithTmpDir(h.ProcessPath("/var/tmp")),
	}, h.cfg.pbsOpts...)
	srv, err := fakepbs.NewServer(ctx, opts...)
	if err != nil {
		return fmt.Errorf("PBS server: %w", err)
	}
	h.pbs = srv
	h.batch = pbshost.New(srv, pbshost.WithHost(h.name), pbshost.WithFS(h.fs), pbshost.WithCLIOptions(h.cliOptions()...))
	h.closers = append(h.closers, srv.Close)
	return nil
}

func (h *Host) jobExecutor() executor.Executor {
	if h.jobExec != nil {
		return h.jobExec
	}
	return h.exec
}

// RunPBS runs a PBS command as user the way the host's own shells reach the
// server (in-process on virtual hosts, through the server socket on real
// ones) and returns what it printed.
func (h *Host) RunPBS(ctx context.Context, user, command string, args ...string) (cli.Result, error) {
	if h.pbs == nil {
		return cli.Result{}, fmt.Errorf("host %s runs no PBS server", h.name)
	}
	inv := cli.Invocation{Command: command, Args: args, User: user, Host: h.name, Cwd: "/home/" + user, FS: h.fs}
	if h.root != "" {
		return h.callPBS(ctx, inv)
	}
	res := h.batch.Run(ctx, batch.Invocation{Command: inv.Command, Args: inv.Args, User: inv.User, Cwd: inv.Cwd})
	return cli.Result{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, nil
}

package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/fakepbs/remote"
	"github.com/jobsim/jobsim/sim/executor/real"
	"github.com/jobsim/jobsim/sim/fsys"
	"github.com/jobsim/jobsim/sim/fsys/fusefs"
)

// pbsBinDir is where a real host keeps the PBS client (jobsim under the PBS
// command names), first on every user's PATH.
const pbsBinDir = "/opt/jobsim/bin"

// startReal builds a host whose commands are real processes. Its files live
// below the host root on disk; users' homes are <root>/home/<user>.
func (h *Host) startReal(ctx context.Context) error {
	state, err := h.stateDir()
	if err != nil {
		return err
	}
	root := h.cfg.root
	if root == "" {
		root = filepath.Join(state, "root")
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return err
	}
	h.root = root
	for _, d := range []string{"tmp", "var/tmp", "var/spool/pbs", "var/spool/slurmd", strings.TrimPrefix(pbsBinDir, "/")} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("host root: %w", err)
		}
	}
	for _, d := range []string{"tmp", "var/tmp"} {
		if err := os.Chmod(filepath.Join(root, d), 0o1777); err != nil {
			return fmt.Errorf("host root: %w", err)
		}
	}
	rootFs, err := fsys.NewRootFs(root)
	if err != nil {
		return fmt.Errorf("host root: %w", err)
	}
	h.closers = append(h.closers, rootFs.Close)
	h.fs = fsys.WithFaults(rootFs, h.faults)

	if h.cfg.pbs {
		if err := h.installPBSClient(); err != nil {
			return err
		}
	}
	if h.cfg.slurm {
		if err := h.installSlurmClient(); err != nil {
			return err
		}
	}
	for _, u := range h.cfg.users {
		if err := h.makeHome(u); err != nil {
			return err
		}
	}
	if err := h.mountFaults(); err != nil {
		return err
	}
	if err := h.startRealExecutor(); err != nil {
		return err
	}
	if err := h.startPBS(h.life, func(user string) string { return h.ProcessPath("/home/" + user) }); err != nil {
		return err
	}
	if h.pbs != nil {
		return h.servePBS()
	}
	if err := h.startSlurm(h.life); err != nil {
		return err
	}
	if h.slurm != nil {
		return h.serveSlurm()
	}
	return nil
}

// jobsimBinary finds the executable that serves as the PBS client.
func (h *Host) jobsimBinary() (string, error) {
	if h.cfg.jobsim != "" {
		return filepath.Abs(h.cfg.jobsim)
	}
	if p := os.Getenv("JOBSIM_BIN"); p != "" {
		return filepath.Abs(p)
	}
	if self, err := os.Executable(); err == nil && filepath.Base(self) == "jobsim" {
		return self, nil
	}
	return "", errors.New("a real host with PBS needs the jobsim binary for its PBS commands: pass sim.WithJobsimBinary or set JOBSIM_BIN (make build puts it in bin/jobsim)")
}

func (h *Host) installPBSClient() error {
	if err := h.linkClient("PBS client", cli.Commands); err != nil {
		return err
	}
	return h.writePBSConf()
}

// linkClient puts the jobsim binary on the host's PATH under a batch
// system's command names (what names the client in errors).
func (h *Host) linkClient(what string, commands []string) error {
	bin, err := h.jobsimBinary()
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	dir := h.ProcessPath(pbsBinDir)
	for _, name := range commands {
		link := filepath.Join(dir, name)
		_ = os.Remove(link)
		if err := os.Symlink(bin, link); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// writePBSConf writes the host's /etc/pbs.conf, where PBS clients that do
// not get $JOBSIM_PBS_SERVER find the server, as OpenPBS clients do (a hub
// on the host running qsub with a reduced environment). A pbs.conf that
// jobsim did not write (a site's, under a host root of /) is left alone.
func (h *Host) writePBSConf() error {
	conf := h.ProcessPath("/etc/pbs.conf")
	b, err := os.ReadFile(conf)
	if err == nil && !strings.HasPrefix(string(b), remote.ConfHeader) {
		h.notes = append(h.notes, fmt.Sprintf("%s is not jobsim's: left as it is (the host's PBS clients use $JOBSIM_PBS_SERVER)", conf))
		return nil
	}
	if err != nil {
		// Written by this host: removed when it stops (a host root of /
		// keeps no pbs.conf of a host that is gone).
		h.closers = append(h.closers, func() error {
			if b, err := os.ReadFile(conf); err == nil && strings.HasPrefix(string(b), remote.ConfHeader) {
				return os.Remove(conf)
			}
			return nil
		})
	}
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return fmt.Errorf("pbs.conf: %w", err)
	}
	text := remote.FormatConf(h.name, h.pbsAddress(), filepath.Dir(pbsBinDir), "/var/spool/pbs")
	if err := os.WriteFile(conf, text, 0o644); err != nil {
		return fmt.Errorf("pbs.conf: %w", err)
	}
	return nil
}

// pbsAddress is the JOBSIM_PBS_SERVER value of the host's PBS clients.
func (h *Host) pbsAddress() string { return "unix:" + filepath.Join(h.state, "pbs.sock") }

// makeHome creates a user's home with a login profile that puts the PBS
// client on PATH (bash --login, as Cylc runs its job-host commands).
func (h *Host) makeHome(user string) error {
	home := h.ProcessPath("/home/" + user)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("home of %s: %w", user, err)
	}
	profile := filepath.Join(home, ".bash_profile")
	if _, err := os.Stat(profile); err == nil {
		return nil
	}
	text := fmt.Sprintf(`# jobsim host %s: the login environment of %s
export PATH=%s:$PATH
export JOBSIM_PBS_SERVER=%s
%s[ -f ~/.bashrc ] && . ~/.bashrc
`, h.name, user, h.ProcessPath(pbsBinDir), h.pbsAddress(), exportLines(h.slurmEnv()))
	if err := os.WriteFile(profile, []byte(text), 0o644); err != nil {
		return fmt.Errorf("home of %s: %w", user, err)
	}
	return nil
}

// mountFaults puts the FUSE fault layer over the configured host paths, in
// place. Without FUSE the host says so and runs without those faults.
func (h *Host) mountFaults() error {
	if len(h.cfg.faultMounts) == 0 {
		return nil
	}
	if err := fusefs.Available(); err != nil {
		h.notes = append(h.notes, fmt.Sprintf("FUSE unavailable (%v): fs faults on %s do not reach real processes", err, strings.Join(h.cfg.faultMounts, ", ")))
		return nil
	}
	for _, p := range h.cfg.faultMounts {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("fault mount %q: want an absolute host path", p)
		}
		dir := h.ProcessPath(p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("fault mount %s: %w", p, err)
		}
		m, err := fusefs.Mount(h.life, dir, dir, h.faults, fusefs.WithVisiblePath(p), fusefs.WithLogger(h.cfg.logger))
		if err != nil {
			return fmt.Errorf("fault mount %s: %w", p, err)
		}
		h.closers = append(h.closers, m.Unmount)
	}
	return nil
}

// startRealExecutor runs the host's commands as real processes: one
// executor for ssh sessions (whose background processes may outlive the
// command, as with sshd) and one for PBS jobs (which ends what a job left
// behind, as a batch system does).
func (h *Host) startRealExecutor() error {
	opts := []real.Option{
		real.WithBinDir(h.ProcessPath(pbsBinDir)),
		real.WithHome(func(u string) string { return h.ProcessPath("/home/" + u) }),
		real.WithEnv(append([]string{"JOBSIM_PBS_SERVER=" + h.pbsAddress()}, h.slurmEnv()...)...),
		real.WithLogger(h.cfg.logger),
	}
	if len(h.cfg.hidden) > 0 {
		opts = append(opts, real.WithHidden(h.cfg.hidden...))
	}
	rx, err := real.New(h.root, opts...)
	if err != nil {
		return err
	}
	if err := rx.Isolation(); err != nil {
		h.cfg.logger.Warn("host processes see the machine's directories they should not", "host", h.name, "hidden", h.cfg.hidden, "err", err)
		h.notes = append(h.notes, fmt.Sprintf("not isolated (%v): the host's processes see %s", err, strings.Join(h.cfg.hidden, ", ")))
	}
	h.exec = rx
	h.closers = append(h.closers, rx.Close)
	jobs, err := real.New(h.root, append(opts, real.WithKillOrphans())...)
	if err != nil {
		return err
	}
	h.jobExec = jobs
	h.closers = append(h.closers, jobs.Close)
	return nil
}

// servePBS serves the PBS front end on the host's socket for the real PBS
// client processes.
func (h *Host) servePBS() error {
	ln, err := remote.Listen(h.pbsAddress(), 0o666)
	if err != nil {
		return fmt.Errorf("PBS socket: %w", err)
	}
	h.serveSocket(ln, func() {
		_ = remote.Serve(h.life, ln, h.pbs, remote.WithCLIOptions(h.cliOptions()...), remote.WithHost(h.name), remote.WithLogger(h.cfg.logger),
			// Every host user runs as the harness's uid here; the socket lies in the
			// host's private state directory, which only that uid can enter.
			remote.WithPeerAuth(false))
	})
	return nil
}

// serveSocket runs serve (which answers on ln until ln is closed) in its
// own goroutine; the host's close closes ln and waits for serve to end.
func (h *Host) serveSocket(ln net.Listener, serve func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve()
	}()
	h.closers = append(h.closers, func() error {
		err := ln.Close()
		<-done
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	})
}

// callPBS runs a PBS command through the host's socket, as its processes do.
func (h *Host) callPBS(ctx context.Context, inv cli.Invocation) (cli.Result, error) {
	inv.Cwd = h.ProcessPath(inv.Cwd)
	inv.FS = nil
	return remote.Call(ctx, h.pbsAddress(), inv)
}

// pbsFS is the filesystem the PBS server writes job output through. A real
// host's processes name files by their path on the test machine; this view
// maps those back into the host root so fault rules see host paths.
func (h *Host) pbsFS() afero.Fs {
	if h.root == "" {
		return h.fs
	}
	return fsys.Rebase(h.fs, h.root)
}

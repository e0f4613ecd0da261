// Package node is what runs inside a job-host container: one fake host
// (sim.NewHost with the real executor, root "/") in one of three roles.
//
//   - host: a standalone job host, with or without a PBS server whose jobs
//     run on the host itself (the in-process backend's host, in a container).
//   - login: the login node of a fake cluster: ssh, the PBS server or the
//     Slurm controller, and a mom.Dispatcher that runs each job on the
//     compute node the scheduler placed it on. The server also listens on
//     TCP so that jobs on the compute nodes can call qstat, qsub, ... (or
//     squeue, sbatch, ...) as on a real cluster.
//   - compute: a compute node: ssh, and the MoM endpoint that runs jobs on
//     the node's real executor; its PBS or Slurm commands talk to the
//     login node.
//
// The configuration comes as JSON (Config), normally in the environment
// variable JOBSIM_NODE_CONFIG; `jobsim node` reads it and calls Run.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/backend/containers/mom"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/fakepbs/remote"
	"github.com/jobsim/jobsim/fakeslurm"
	slurmcli "github.com/jobsim/jobsim/fakeslurm/cli"
	slurmremote "github.com/jobsim/jobsim/fakeslurm/remote"
	"github.com/jobsim/jobsim/sim"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/real"
)

// EnvConfig is the environment variable that carries a node's Config.
const EnvConfig = "JOBSIM_NODE_CONFIG"

// BinDir is where nodes keep the PBS client (jobsim under the PBS command
// names); the same directory the sim package uses.
const BinDir = "/opt/jobsim/bin"

// OverlayPath is where the job-host image keeps the Cylc overlay (the
// same path as backend/containers/image.OverlayPath).
const OverlayPath = "/opt/jobsim/cylc"

// Role is what a node is in its topology.
type Role string

// Roles.
const (
	RoleHost    Role = "host"
	RoleLogin   Role = "login"
	RoleCompute Role = "compute"
)

// Ports a node listens on inside its container.
const (
	SSHPort     = 22
	ControlPort = 7070
	MomPort     = 7071
	PBSPort     = 15001 // pbs_server's port in OpenPBS
	SlurmPort   = 6817  // slurmctld's port in Slurm (SlurmctldPort)
)

// SlurmConf is where a compute node writes its Slurm clients'
// configuration: Slurm's default path, which every process of the node
// reads (a non-login ssh session too), naming the login node's
// controller and its token.
const SlurmConf = slurmremote.DefaultConf

// Config is one node's configuration.
type Config struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Users are the host's users; each gets an /etc/passwd entry and a home.
	Users []string `json:"users"`
	// AuthorizedKeys are public keys (authorized_keys lines) by user: the
	// harness holds the private halves.
	AuthorizedKeys map[string][]string `json:"authorized_keys,omitempty"`
	// PBS runs a PBS server (roles host and login).
	PBS *fakepbs.Config `json:"pbs,omitempty"`
	// Slurm runs a Slurm controller instead (roles host and login), its
	// commands linked in BinDir as the PBS ones are.
	Slurm       *fakeslurm.Config `json:"slurm,omitempty"`
	FaultMounts []string          `json:"fault_mounts,omitempty"`
	// Token protects the control API, the MoM and the PBS TCP endpoint.
	Token string `json:"token"`
	// Nodes are the compute nodes' MoMs (role login).
	Nodes []mom.Node `json:"nodes,omitempty"`
	// PBSServer is the login node's PBS address, host:port (role compute).
	PBSServer string `json:"pbs_server,omitempty"`
	// SlurmServer is the login node's Slurm controller, host:port (role
	// compute of a Slurm cluster, instead of PBSServer).
	SlurmServer string `json:"slurm_server,omitempty"`
	// NodeFailRequeue is node_fail_requeue (role login; default OpenPBS's 310s).
	NodeFailRequeue string `json:"node_fail_requeue,omitempty"`
	// Cylc is the host path where the Cylc overlay the image carries (at
	// OverlayPath) is copied at start, so its library lies on the host.
	Cylc string `json:"cylc,omitempty"`
	// SharedHome says /home is shared with the other nodes of a cluster.
	SharedHome bool  `json:"shared_home,omitempty"`
	Seed       int64 `json:"seed,omitempty"`
}

// Info is what a node prints (one JSON line) once it is healthy.
type Info struct {
	Name      string   `json:"name"`
	Role      Role     `json:"role"`
	SSH       string   `json:"ssh"`
	Control   string   `json:"control"`
	Mom       string   `json:"mom,omitempty"`
	PBS       string   `json:"pbs,omitempty"`
	Slurm     string   `json:"slurm,omitempty"`
	Notes     []string `json:"notes,omitempty"`
	StartedIn string   `json:"started_in"`
}

// FromEnv reads the Config in $JOBSIM_NODE_CONFIG.
func FromEnv() (Config, error) {
	raw := os.Getenv(EnvConfig)
	if raw == "" {
		return Config{}, fmt.Errorf("$%s is empty: a node needs its configuration (JSON)", EnvConfig)
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("$%s: %w", EnvConfig, err)
	}
	return c, c.Validate()
}

// Validate checks a Config.
func (c Config) Validate() error {
	if c.Name == "" {
		return errors.New("node config: name is required")
	}
	if c.Token == "" {
		return fmt.Errorf("node %s: token is required", c.Name)
	}
	if len(c.Users) == 0 {
		return fmt.Errorf("node %s: at least one user is required", c.Name)
	}
	if c.PBS != nil && c.Slurm != nil {
		return fmt.Errorf("node %s: PBS and Slurm together: a host runs one batch system", c.Name)
	}
	switch c.Role {
	case RoleHost:
	case RoleLogin:
		if c.PBS == nil && c.Slurm == nil {
			return fmt.Errorf("node %s: a login node runs the PBS server or the Slurm controller (pbs or slurm is required)", c.Name)
		}
		if len(c.Nodes) == 0 {
			return fmt.Errorf("node %s: a login node needs compute nodes", c.Name)
		}
	case RoleCompute:
		if (c.PBSServer == "") == (c.SlurmServer == "") {
			return fmt.Errorf("node %s: a compute node needs pbs_server or slurm_server (the login node's PBS or Slurm address), one of them", c.Name)
		}
		if c.PBS != nil || c.Slurm != nil {
			return fmt.Errorf("node %s: a compute node runs no PBS server or Slurm controller", c.Name)
		}
	default:
		return fmt.Errorf("node %s: role %q: want host, login or compute", c.Name, c.Role)
	}
	if c.NodeFailRequeue != "" {
		if _, err := time.ParseDuration(c.NodeFailRequeue); err != nil {
			return fmt.Errorf("node %s: node_fail_requeue: %w", c.Name, err)
		}
	}
	return nil
}

// Run starts the node, writes its Info to out once it is healthy, and
// serves until ctx ends; then it stops everything it started.
func Run(ctx context.Context, c Config, out io.Writer, logger *slog.Logger) error {
	if err := c.Validate(); err != nil {
		return err
	}
	start := time.Now()
	if err := addUsers("/etc", c.Users); err != nil {
		return fmt.Errorf("node %s: %w", c.Name, err)
	}
	if c.Cylc != "" {
		if err := installCylc(c.Cylc); err != nil {
			return fmt.Errorf("node %s: %w", c.Name, err)
		}
	}
	if c.SharedHome {
		if err := sharedProfiles(c); err != nil {
			return fmt.Errorf("node %s: profiles: %w", c.Name, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("node %s: %w", c.Name, err)
	}
	opts := []sim.Option{
		sim.WithName(c.Name), sim.WithUsers(c.Users...), sim.WithExecutor(sim.Real), sim.WithRoot("/"),
		sim.WithFaultMounts(c.FaultMounts...), sim.WithToken(c.Token), sim.WithJobsimBinary(self),
		sim.WithSSHAddr(fmt.Sprintf(":%d", SSHPort)), sim.WithControlAddr(fmt.Sprintf(":%d", ControlPort)),
		sim.WithLogger(logger),
	}
	if c.Seed != 0 {
		opts = append(opts, sim.WithSeed(c.Seed))
	}
	for user, keys := range c.AuthorizedKeys {
		for _, k := range keys {
			pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k))
			if err != nil {
				return fmt.Errorf("node %s: authorized key of %s: %w", c.Name, user, err)
			}
			opts = append(opts, sim.WithAuthorizedKeys(user, pk))
		}
	}
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}()
	info := Info{Name: c.Name, Role: c.Role, SSH: fmt.Sprintf(":%d", SSHPort), Control: fmt.Sprintf("http://:%d", ControlPort)}

	var disp *mom.Dispatcher
	switch c.Role {
	case RoleHost:
		if c.PBS != nil {
			opts = append(opts, sim.WithPBS(c.PBS.Options()...))
		}
		if c.Slurm != nil {
			opts = append(opts, sim.WithSlurm(c.Slurm.Options()...))
		}
	case RoleLogin:
		requeue := mom.DefaultNodeFailRequeue
		if c.NodeFailRequeue != "" {
			requeue, _ = time.ParseDuration(c.NodeFailRequeue)
		}
		dopts := []mom.DispatcherOption{mom.WithNodeFailRequeue(requeue), mom.WithDispatchLogger(logger)}
		if c.Slurm != nil {
			dopts = append(dopts, mom.WithoutNodeEvents()) // the controller's slurm.node events say it
		}
		disp, err = mom.NewDispatcher(c.Token, c.Nodes, dopts...)
		if err != nil {
			return fmt.Errorf("node %s: %w", c.Name, err)
		}
		closers = append(closers, disp.Close)
		if c.Slurm != nil {
			opts = append(opts, sim.WithSlurm(append(c.Slurm.Options(), fakeslurm.WithExecutor(disp.SlurmExecutor()))...))
		} else {
			opts = append(opts, sim.WithPBS(append(c.PBS.Options(), fakepbs.WithExecutor(disp))...))
		}
	case RoleCompute:
		if err := installClient(self, c); err != nil {
			return fmt.Errorf("node %s: %w", c.Name, err)
		}
	}

	h, err := sim.NewHost(ctx, opts...)
	if err != nil {
		return err
	}
	closers = append(closers, h.Close)
	info.Notes = h.Notes()
	rec := events.ForHost(h.Events(), c.Name)

	switch c.Role {
	case RoleLogin:
		if c.Slurm != nil {
			disp.Attach(mom.SlurmNodes(h.Slurm()), rec)
			if err := serveSlurmTCP(ctx, h, c, rec, logger, &closers); err != nil {
				return fmt.Errorf("node %s: %w", c.Name, err)
			}
			info.Slurm = fmt.Sprintf(":%d", SlurmPort)
			break
		}
		disp.Attach(h.PBS(), rec)
		if err := servePBSTCP(ctx, h, c, rec, logger, &closers); err != nil {
			return fmt.Errorf("node %s: %w", c.Name, err)
		}
		info.PBS = fmt.Sprintf(":%d", PBSPort)
	case RoleCompute:
		if err := startMom(c, rec, logger, &closers); err != nil {
			return fmt.Errorf("node %s: %w", c.Name, err)
		}
		info.Mom = fmt.Sprintf("http://:%d", MomPort)
	}
	info.StartedIn = time.Since(start).Round(time.Millisecond).String()
	if err := json.NewEncoder(out).Encode(info); err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("node stopping", "node", c.Name)
	return nil
}

// addUsers gives each user an /etc/passwd and /etc/group entry (uid and gid
// 1000, 1001, ... in order) unless one exists.
func addUsers(etc string, users []string) error {
	for _, f := range []string{"passwd", "group"} {
		p := filepath.Join(etc, f)
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		have := map[string]bool{}
		for _, line := range strings.Split(string(data), "\n") {
			if name, _, ok := strings.Cut(line, ":"); ok {
				have[name] = true
			}
		}
		var add strings.Builder
		for i, u := range users {
			if have[u] {
				continue
			}
			id := 1000 + i
			if f == "passwd" {
				fmt.Fprintf(&add, "%s:x:%d:%d:%s:/home/%s:/bin/bash\n", u, id, id, u, u)
			} else {
				fmt.Fprintf(&add, "%s:x:%d:\n", u, id)
			}
		}
		if add.Len() == 0 {
			continue
		}
		fh, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("users: %w", err)
		}
		_, err = fh.WriteString(add.String())
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("users: %w", err)
		}
	}
	return nil
}

// installCylc copies the image's Cylc overlay to dir (unless it is there).
func installCylc(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("cylc path %q: want an absolute host path", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "cylc")); err == nil {
		return nil
	}
	if _, err := os.Stat(OverlayPath); err != nil {
		return fmt.Errorf("cylc at %s: the image carries no Cylc overlay at %s", dir, OverlayPath)
	}
	if err := os.CopyFS(dir, os.DirFS(OverlayPath)); err != nil {
		return fmt.Errorf("cylc at %s: %w", dir, err)
	}
	return nil
}

// installClient links a compute node's batch commands (PBS's, or Slurm's
// with the clients' slurm.conf) to jobsim in BinDir.
func installClient(self string, c Config) error {
	kind, names := "PBS", cli.Commands
	if c.SlurmServer != "" {
		kind, names = "Slurm", slurmcli.Commands
		if err := writeSlurmConf(c); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(BinDir, 0o755); err != nil {
		return fmt.Errorf("%s client: %w", kind, err)
	}
	for _, name := range names {
		link := filepath.Join(BinDir, name)
		_ = os.Remove(link)
		if err := os.Symlink(self, link); err != nil {
			return fmt.Errorf("%s client: %w", kind, err)
		}
	}
	return nil
}

// writeSlurmConf writes a compute node's SlurmConf: the controller on the
// login node, as its slurm.conf names SlurmctldHost.
func writeSlurmConf(c Config) error {
	host, _, err := net.SplitHostPort(c.SlurmServer)
	if err != nil {
		return fmt.Errorf("slurm_server %q: %w", c.SlurmServer, err)
	}
	if err := os.MkdirAll(filepath.Dir(SlurmConf), 0o755); err != nil {
		return fmt.Errorf("slurm.conf: %w", err)
	}
	text := fmt.Sprintf("# jobsim compute node %s: the Slurm clients' configuration\nSlurmctldHost=%s\nMessageTimeout=10\n#JobsimController=tcp:%s\n#JobsimToken=%s\n",
		c.Name, host, c.SlurmServer, c.Token)
	if err := os.WriteFile(SlurmConf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("slurm.conf: %w", err)
	}
	return nil
}

// clientEnv is the environment that sends a compute node's batch commands
// to the login node.
func clientEnv(c Config) []string {
	if c.SlurmServer != "" {
		return []string{slurmremote.ServerEnv + "=tcp:" + c.SlurmServer, slurmremote.TokenEnv + "=" + c.Token}
	}
	return []string{"JOBSIM_PBS_SERVER=tcp:" + c.PBSServer, "JOBSIM_PBS_TOKEN=" + c.Token}
}

// servePBSTCP serves the login node's PBS server on TCP (token required)
// for the PBS commands of jobs on compute nodes.
func servePBSTCP(ctx context.Context, h *sim.Host, c Config, rec events.Recorder, logger *slog.Logger, closers *[]func() error) error {
	return serveTCP(ctx, "PBS", PBSPort, closers, func(ctx context.Context, ln net.Listener) {
		_ = remote.Serve(ctx, ln, h.PBS(), remote.WithToken(c.Token), remote.WithHost(c.Name), remote.WithLogger(logger),
			remote.WithCLIOptions(cli.WithFaults(h.Faults()), cli.WithRecorder(rec), cli.WithNow(h.Clock().Now), cli.WithLogger(logger)))
	})
}

// serveSlurmTCP serves the login node's Slurm controller on TCP (token
// required) for the Slurm commands of jobs on compute nodes; they run as
// on the node they were called on (SLURM_SUBMIT_HOST).
func serveSlurmTCP(ctx context.Context, h *sim.Host, c Config, rec events.Recorder, logger *slog.Logger, closers *[]func() error) error {
	return serveTCP(ctx, "Slurm", SlurmPort, closers, func(ctx context.Context, ln net.Listener) {
		_ = slurmremote.Serve(ctx, ln, h.Slurm(), slurmremote.WithToken(c.Token), slurmremote.WithLogger(logger),
			slurmremote.WithCLIOptions(slurmcli.WithFaults(h.Faults()), slurmcli.WithRecorder(rec), slurmcli.WithClock(h.Clock()), slurmcli.WithLogger(logger)))
	})
}

// serveTCP runs serve on a TCP listener on port until the node stops
// (the closer added to closers ends it and waits for it).
func serveTCP(ctx context.Context, what string, port int, closers *[]func() error, serve func(context.Context, net.Listener)) error {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return fmt.Errorf("%s on TCP: %w", what, err)
	}
	srvCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(srvCtx, ln)
	}()
	*closers = append(*closers, func() error {
		cancel()
		err := ln.Close()
		<-done
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	})
	return nil
}

// startMom serves the compute node's MoM on its own real executor, whose
// PBS commands reach the login node's server.
func startMom(c Config, rec events.Recorder, logger *slog.Logger, closers *[]func() error) error {
	rx, err := real.New("/",
		real.WithBinDir(BinDir),
		real.WithHome(func(u string) string { return "/home/" + u }),
		real.WithEnv(clientEnv(c)...),
		real.WithKillOrphans(),
		real.WithLogger(logger),
	)
	if err != nil {
		return err
	}
	*closers = append(*closers, rx.Close)
	srv, err := mom.NewServer(c.Name, c.Token, executor.ForBatch(rx), mom.WithRecorder(rec), mom.WithLogger(logger))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", MomPort))
	if err != nil {
		return fmt.Errorf("MoM: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	*closers = append(*closers, func() error {
		_ = srv.Close() // ends the streams, so Shutdown need not wait for them
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			return hs.Close()
		}
		return nil
	})
	return nil
}

// profileText is every user's ~/.bash_profile on a cluster whose nodes
// share /home: each node keeps its own PBS client settings in
// /etc/jobsim/pbs.env (the sim package's per-host profile would point every
// node at the first node's PBS socket).
const profileText = `# jobsim cluster: the login environment of %s on every node
export PATH=%s:$PATH
[ -r /etc/jobsim/pbs.env ] && . /etc/jobsim/pbs.env
[ -f ~/.bashrc ] && . ~/.bashrc
`

// sharedProfiles writes the users' cluster profile (once; nodes race for
// it) and this node's PBS client settings.
func sharedProfiles(c Config) error {
	if err := os.MkdirAll("/etc/jobsim", 0o755); err != nil {
		return err
	}
	env := ""
	if c.Role == RoleCompute {
		env = "export " + strings.Join(clientEnv(c), " ") + "\n"
	}
	if err := os.WriteFile("/etc/jobsim/pbs.env", []byte(env), 0o644); err != nil {
		return err
	}
	for _, u := range c.Users {
		home := filepath.Join("/home", u)
		if err := os.MkdirAll(home, 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(home, ".bash_profile"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, profileText, u, BinDir)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

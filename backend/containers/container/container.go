package container

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/node"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/internal/artifact"
	"github.com/jobsim/jobsim/sim/control"
)

// Option configures Run.
type Option func(*runConfig)

type runConfig struct {
	img          *image.Image
	node         node.Config
	run          string
	keys         *Keys
	network      string
	aliases      []string
	homeDir      string
	slurmSpool   string
	fuse         bool
	privileged   bool
	hostGateway  bool
	startTimeout time.Duration
	reach        *Reach
	logger       *slog.Logger
}

// WithImage is the job-host image to run (required; see image.Build).
func WithImage(img image.Image) Option { return func(c *runConfig) { c.img = &img } }

// WithName sets the host name: the container's hostname, the PBS server's
// name, its network alias and the host of its events (default fakehpc).
func WithName(name string) Option { return func(c *runConfig) { c.node.Name = name } }

// WithUsers sets the host's users (default: the user running the harness).
func WithUsers(users ...string) Option { return func(c *runConfig) { c.node.Users = users } }

// WithPBS runs a PBS server on the host.
func WithPBS(p fakepbs.Config) Option { return func(c *runConfig) { c.node.PBS = &p } }

// WithSlurm runs a Slurm controller on the host instead.
func WithSlurm(s fakeslurm.Config) Option { return func(c *runConfig) { c.node.Slurm = &s } }

// WithFaultMounts puts the FUSE fault layer over these host paths; the
// container gets /dev/fuse and CAP_SYS_ADMIN for it.
func WithFaultMounts(paths ...string) Option {
	return func(c *runConfig) {
		c.node.FaultMounts = append(c.node.FaultMounts, paths...)
		c.fuse = c.fuse || len(paths) > 0
	}
}

// WithPrivileged runs the container privileged (for engines that refuse
// /dev/fuse with CAP_SYS_ADMIN alone).
func WithPrivileged() Option { return func(c *runConfig) { c.privileged = true } }

// WithCylc makes the Cylc overlay the image carries available at hostPath
// (the platform's `cylc path`), copied there at start so that a fault mount
// can cover its library.
func WithCylc(hostPath string) Option { return func(c *runConfig) { c.node.Cylc = hostPath } }

// WithNetwork attaches the container to a network with these aliases (its
// name is always one), besides the default bridge.
func WithNetwork(name string, aliases ...string) Option {
	return func(c *runConfig) { c.network, c.aliases = name, aliases }
}

// WithRun labels the container with the run id Sweep removes by (default
// a fresh id per container).
func WithRun(id string) Option { return func(c *runConfig) { c.run = id } }

// WithKeys uses this key set for the users (default: a new one, removed by
// Close). The keys' public halves are authorized on the host.
func WithKeys(k *Keys) Option { return func(c *runConfig) { c.keys = k } }

// WithToken sets the token of the control API, the MoM and PBS on TCP
// (default random).
func WithToken(t string) Option { return func(c *runConfig) { c.node.Token = t } }

// WithHome bind-mounts dir (on the test machine) as the host's /home: the
// shared home of a cluster's nodes.
func WithHome(dir string) Option { return func(c *runConfig) { c.homeDir = dir } }

// WithSlurmSpool bind-mounts dir (on the test machine) as the host's
// SlurmdSpoolDir, /var/spool/slurmd: shared by a Slurm cluster's nodes,
// where the controller on the login node puts the batch script the job's
// node runs.
func WithSlurmSpool(dir string) Option { return func(c *runConfig) { c.slurmSpool = dir } }

// WithNode adjusts the node configuration directly (cluster roles).
func WithNode(f func(*node.Config)) Option { return func(c *runConfig) { f(&c.node) } }

// WithStartTimeout bounds the wait for health (default 60s).
func WithStartTimeout(d time.Duration) Option { return func(c *runConfig) { c.startTimeout = d } }

// WithoutHostGateway leaves out the /etc/hosts entry that lets jobs reach
// the test machine by its host name (Cylc's zmq comms need it).
func WithoutHostGateway() Option { return func(c *runConfig) { c.hostGateway = false } }

// WithReach sets how the harness reaches the container (default
// ReachFromEnv: the published-port mode when DOCKER_HOST is another
// machine or JOBSIM_DOCKER_PUBLISHED=1).
func WithReach(r Reach) Option { return func(c *runConfig) { c.reach = &r } }

// WithLogger sets the logger (testcontainers' own chatter goes to it at
// debug level).
func WithLogger(l *slog.Logger) Option { return func(c *runConfig) { c.logger = l } }

// Container is one running job-host container.
type Container struct {
	tc       *testcontainers.DockerContainer
	cfg      node.Config
	run      string
	keys     *Keys
	ownKeys  bool
	reach    Reach
	addrMu   sync.Mutex
	sshAddr  string
	ctlURL   string
	notes    []string
	network  string
	aliases  []string
	logger   *slog.Logger
	started  time.Duration
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

// Ports of a job-host container.
var (
	sshPort     = network.MustParsePort(strconv.Itoa(node.SSHPort) + "/tcp")
	controlPort = network.MustParsePort(strconv.Itoa(node.ControlPort) + "/tcp")
)

// Run starts a job-host container and returns once its health check (ssh
// runs a command, PBS answers) passes. ctx bounds the start; Close stops
// and removes the container. On error nothing is left behind.
func Run(ctx context.Context, opts ...Option) (_ *Container, err error) {
	start := time.Now()
	disableRyuk()
	c := runConfig{startTimeout: 60 * time.Second, logger: slog.Default(), hostGateway: true}
	c.node.Name = "fakehpc"
	c.node.Role = node.RoleHost
	for _, o := range opts {
		o(&c)
	}
	if c.img == nil {
		return nil, errors.New("e2e: no image (WithImage; build one with image.Build)")
	}
	if len(c.node.Users) == 0 {
		c.node.Users = []string{harnessUser()}
	}
	if c.node.Token == "" {
		c.node.Token = randomToken()
	}
	if c.run == "" {
		c.run = NewRunID()
	}
	if c.node.Cylc != "" && !c.img.Overlay {
		return nil, fmt.Errorf("e2e: host %s wants Cylc at %s but image %s carries no Cylc overlay (run make setup-cylc, then build with image.WithCylcOverlay)", c.node.Name, c.node.Cylc, c.img.Ref)
	}
	ownKeys := c.keys == nil
	if ownKeys {
		if c.keys, err = NewKeys(""); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil && ownKeys {
			_ = c.keys.Close()
		}
	}()
	if err := c.keys.Ensure(c.node.Users...); err != nil {
		return nil, err
	}
	c.node.AuthorizedKeys = c.keys.authorized(c.node.Users)
	if err := c.node.Validate(); err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	cfgJSON, err := json.Marshal(c.node)
	if err != nil {
		return nil, err
	}
	if c.reach == nil {
		r, err := ReachFromEnv()
		if err != nil {
			return nil, fmt.Errorf("e2e: %w", err)
		}
		c.reach = &r
	}
	reach := *c.reach
	// Local mode: fixed host ports, so that a restarted container is
	// reachable where it was. Published-port mode: the free ports are the
	// engine host's, which only the engine knows; it picks them.
	sshHost, ctlHost := "", ""
	if !reach.Published {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		sshHost = strconv.Itoa(p)
		if p, err = freePort(); err != nil {
			return nil, err
		}
		ctlHost = strconv.Itoa(p)
	}

	labels := RunLabels(c.run)
	labels[LabelHost], labels[LabelRole] = c.node.Name, string(c.node.Role)
	var mounts []mount.Mount
	for _, m := range c.img.Mounts {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: true})
	}
	for _, d := range c.img.Hidden {
		// The machine's own Cylc, which the host must not fall back to.
		mounts = append(mounts, mount.Mount{Type: mount.TypeTmpfs, Target: d, ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 4096, Mode: 0o755}})
	}
	if c.homeDir != "" {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: c.homeDir, Target: "/home"})
	}
	if c.slurmSpool != "" {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: c.slurmSpool, Target: "/var/spool/slurmd"})
	}
	var extraHosts []string
	if c.hostGateway {
		if hn, err := os.Hostname(); err == nil && hn != "" {
			gw := "host-gateway"
			if ip := os.Getenv(EnvHarnessIP); ip != "" {
				gw = ip // a remote engine's gateway is its own host, not the test machine
			}
			extraHosts = append(extraHosts, hn+":"+gw)
		}
	}
	fuse := c.fuse
	privileged := c.privileged
	customizers := []testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(tcLogger(c.logger)),
		testcontainers.WithEnv(map[string]string{node.EnvConfig: string(cfgJSON)}),
		testcontainers.WithExposedPorts(sshPort.String(), controlPort.String()),
		testcontainers.WithLabels(labels),
		testcontainers.WithConfigModifier(func(cc *container.Config) {
			cc.Hostname = c.node.Name
			cc.StopTimeout = ptr(5)
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Mounts = append(hc.Mounts, mounts...)
			hc.ExtraHosts = append(hc.ExtraHosts, extraHosts...)
			hc.PortBindings = network.PortMap{
				sshPort:     {{HostIP: reach.Bind, HostPort: sshHost}},
				controlPort: {{HostIP: reach.Bind, HostPort: ctlHost}},
			}
			if fuse {
				hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"})
				hc.CapAdd = append(hc.CapAdd, "SYS_ADMIN")
				hc.SecurityOpt = append(hc.SecurityOpt, "apparmor=unconfined")
			}
			hc.Privileged = privileged
		}),
		testcontainers.WithWaitStrategy(&healthStrategy{
			client: func(ctx context.Context, target wait.StrategyTarget) (*control.Client, error) {
				port := ctlHost
				if port == "" {
					p, err := target.MappedPort(ctx, controlPort.String())
					if err != nil {
						return nil, err
					}
					port = strconv.Itoa(int(p.Num()))
				}
				return control.NewClient("http://"+net.JoinHostPort(reach.Host, port), c.node.Token), nil
			},
			every:   20 * time.Millisecond,
			timeout: c.startTimeout,
		}),
	}
	if c.network != "" {
		aliases := append([]string{c.node.Name}, c.aliases...)
		customizers = append(customizers, tcnetwork.WithNetworkName(aliases, c.network))
	}
	tc, err := testcontainers.Run(ctx, c.img.Ref, customizers...)
	if err != nil {
		why := err
		if tc != nil {
			why = fmt.Errorf("%w%s", err, tailLogs(tc))
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_ = tc.Terminate(cctx)
			cancel()
		}
		return nil, fmt.Errorf("e2e: host %s: %w", c.node.Name, why)
	}
	ct := &Container{tc: tc, cfg: c.node, run: c.run, keys: c.keys, ownKeys: ownKeys, network: c.network, aliases: c.aliases, logger: c.logger, reach: reach}
	if reach.Published {
		err = ct.readPorts(ctx)
	} else {
		ct.setAddrs(net.JoinHostPort(reach.Host, sshHost), "http://"+net.JoinHostPort(reach.Host, ctlHost))
	}
	if err != nil {
		_ = ct.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("e2e: host %s: published ports: %w", c.node.Name, err)
	}
	h, err := ct.Control().Health(ctx)
	if err != nil {
		_ = ct.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("e2e: host %s: health: %w", c.node.Name, err)
	}
	ct.notes = h.Notes
	ct.started = time.Since(start)
	c.logger.Debug("job-host container healthy", "host", c.node.Name, "ssh", ct.SSHAddr(), "control", ct.ControlURL(), "published", reach.Published, "took", ct.started)
	return ct, nil
}

// readPorts reads the host ports the engine published ssh and the control
// API on (published-port mode) and dials them at the engine host.
func (c *Container) readPorts(ctx context.Context) error {
	ssh, err := c.tc.MappedPort(ctx, sshPort.String())
	if err != nil {
		return err
	}
	ctl, err := c.tc.MappedPort(ctx, controlPort.String())
	if err != nil {
		return err
	}
	c.setAddrs(net.JoinHostPort(c.reach.Host, strconv.Itoa(int(ssh.Num()))), "http://"+net.JoinHostPort(c.reach.Host, strconv.Itoa(int(ctl.Num()))))
	return nil
}

func (c *Container) setAddrs(ssh, ctl string) {
	c.addrMu.Lock()
	defer c.addrMu.Unlock()
	c.sshAddr, c.ctlURL = ssh, ctl
}

const netipLoopback = "127.0.0.1"

var loopbackAddr = netip.MustParseAddr(netipLoopback)

func ptr[T any](v T) *T { return &v }

// NewToken returns a random bearer token.
func NewToken() string { return randomToken() }

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func harnessUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "jobsim"
}

// freePort picks a free TCP port on the loopback interface.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", netipLoopback+":0")
	if err != nil {
		return 0, fmt.Errorf("e2e: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tailLogs is the end of a container's output, for errors.
func tailLogs(tc *testcontainers.DockerContainer) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := tc.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	if len(lines) == 0 || lines[0] == "" {
		return ""
	}
	return "\ncontainer output (last lines):\n  " + strings.Join(lines, "\n  ")
}

// Name is the host name.
func (c *Container) Name() string { return c.cfg.Name }

// ID is the container id.
func (c *Container) ID() string { return c.tc.GetContainerID() }

// Run is the run id the container is labelled with.
func (c *Container) Run() string { return c.run }

// Role is host, login or compute.
func (c *Container) Role() node.Role { return c.cfg.Role }

// SSHAddr is the ssh server's address as the test machine dials it
// (127.0.0.1:port; in the published-port mode the engine host's address
// and the port the engine picked, which a restart may change).
func (c *Container) SSHAddr() string {
	c.addrMu.Lock()
	defer c.addrMu.Unlock()
	return c.sshAddr
}

// ControlURL is the control API's base URL as the test machine dials it.
func (c *Container) ControlURL() string {
	c.addrMu.Lock()
	defer c.addrMu.Unlock()
	return c.ctlURL
}

// Reach is how the harness reaches this container.
func (c *Container) Reach() Reach { return c.reach }

// Token is the bearer token of the control API.
func (c *Container) Token() string { return c.cfg.Token }

// Control returns a client of the host's control API.
func (c *Container) Control() *control.Client { return control.NewClient(c.ControlURL(), c.cfg.Token) }

// Users lists the host's users.
func (c *Container) Users() []string { return slices.Clone(c.cfg.Users) }

// KeyFile is the private key file the harness holds for user.
func (c *Container) KeyFile(user string) (string, error) {
	if !slices.Contains(c.cfg.Users, user) {
		return "", fmt.Errorf("host %s has no user %q (users: %v)", c.cfg.Name, user, c.cfg.Users)
	}
	return c.keys.File(user)
}

// Notes are what the host said at start, such as why FUSE faults are off.
func (c *Container) Notes() []string { return slices.Clone(c.notes) }

// StartedIn is how long Run took, from the call to a passing health check.
func (c *Container) StartedIn() time.Duration { return c.started }

// SSHConfig is an OpenSSH client config block reaching the host as user
// under alias.
func (c *Container) SSHConfig(alias, user string) (string, error) {
	key, err := c.KeyFile(user)
	if err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(c.SSHAddr())
	return fmt.Sprintf(`Host %s
  HostName %s
  Port %s
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
`, alias, host, port, user, key), nil
}

// Logs returns the container's output so far (the host's log).
func (c *Container) Logs(ctx context.Context) (string, error) {
	rc, err := c.tc.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	return string(b), err
}

// Exec runs a command in the container (outside the fake host: for tests
// and diagnostics) and returns its exit code and combined output.
func (c *Container) Exec(ctx context.Context, cmd ...string) (int, string, error) {
	code, rd, err := c.tc.Exec(ctx, cmd)
	if err != nil {
		return code, "", err
	}
	b, _ := io.ReadAll(rd)
	return code, stripStreamHeaders(b), nil
}

// stripStreamHeaders removes docker's multiplexing headers from exec output.
func stripStreamHeaders(b []byte) string {
	var out strings.Builder
	for len(b) >= 8 && (b[0] == 1 || b[0] == 2) && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out.Write(b[:n])
		b = b[n:]
	}
	out.Write(b)
	return out.String()
}

// engine returns a docker client for direct container operations.
func (c *Container) engine(ctx context.Context) (*testcontainers.DockerClient, error) {
	return dockerClient(ctx)
}

// IP is the container's address on its network (the private network given
// with WithNetwork, else the default bridge). The test machine, where the
// engine runs, can reach it directly: the way to a port that is not
// published, such as a server a job started on a compute node. In the
// published-port mode it is ErrUnreachable.
func (c *Container) IP(ctx context.Context) (string, error) {
	if c.reach.Published {
		return "", fmt.Errorf("host %s: %w", c.cfg.Name, ErrUnreachable)
	}
	var ip string
	err := c.withEngine(ctx, "inspect", func(dc *testcontainers.DockerClient) error {
		ins, err := dc.ContainerInspect(ctx, c.ID(), client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		nets := ins.Container.NetworkSettings.Networks
		name := c.network
		if name == "" {
			name = "bridge"
		}
		ep, ok := nets[name]
		if !ok || !ep.IPAddress.IsValid() {
			return fmt.Errorf("not on network %s", name)
		}
		ip = ep.IPAddress.String()
		return nil
	})
	return ip, err
}

// Pause freezes every process of the host (docker pause): connections stay
// open and hang.
func (c *Container) Pause(ctx context.Context) error {
	return c.withEngine(ctx, "pause", func(dc *testcontainers.DockerClient) error {
		_, err := dc.ContainerPause(ctx, c.ID(), client.ContainerPauseOptions{})
		return err
	})
}

// Unpause resumes a paused host.
func (c *Container) Unpause(ctx context.Context) error {
	return c.withEngine(ctx, "unpause", func(dc *testcontainers.DockerClient) error {
		_, err := dc.ContainerUnpause(ctx, c.ID(), client.ContainerUnpauseOptions{})
		return err
	})
}

// Kill kills the container (SIGKILL to every process): the host is gone,
// with its running jobs and PBS state, until Start.
func (c *Container) Kill(ctx context.Context) error {
	return c.withEngine(ctx, "kill", func(dc *testcontainers.DockerClient) error {
		_, err := dc.ContainerKill(ctx, c.ID(), client.ContainerKillOptions{Signal: "KILL"})
		if err != nil {
			return err
		}
		// Wait until the engine sees it stopped, so that Start works.
		for {
			ins, err := dc.ContainerInspect(ctx, c.ID(), client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			if !ins.Container.State.Running {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// Start starts a killed or stopped host again and waits until it is
// healthy. The host starts afresh: a PBS server's jobs are gone, as after
// pbs_server restarted without its database.
func (c *Container) Start(ctx context.Context) error {
	if err := c.withEngine(ctx, "start", func(dc *testcontainers.DockerClient) error {
		_, err := dc.ContainerStart(ctx, c.ID(), client.ContainerStartOptions{})
		return err
	}); err != nil {
		return err
	}
	return c.waitRestarted(ctx)
}

// waitRestarted follows the ports the engine published a started
// container on anew (published-port mode) and waits for health.
func (c *Container) waitRestarted(ctx context.Context) error {
	if c.reach.Published {
		if err := c.readPorts(ctx); err != nil {
			return fmt.Errorf("host %s: published ports: %w", c.cfg.Name, err)
		}
	}
	return c.WaitHealthy(ctx)
}

// Restart stops the host gracefully (SIGTERM) and starts it again.
func (c *Container) Restart(ctx context.Context) error {
	if err := c.withEngine(ctx, "restart", func(dc *testcontainers.DockerClient) error {
		_, err := dc.ContainerRestart(ctx, c.ID(), client.ContainerRestartOptions{Timeout: ptr(5)})
		return err
	}); err != nil {
		return err
	}
	return c.waitRestarted(ctx)
}

// Disconnect cuts the host off its network (docker network disconnect):
// the container is on that network only, so its peers' packets and the
// harness's (through the published ports) go nowhere.
func (c *Container) Disconnect(ctx context.Context) error {
	if c.network == "" {
		return fmt.Errorf("host %s is on no private network", c.cfg.Name)
	}
	return c.withEngine(ctx, "network disconnect", func(dc *testcontainers.DockerClient) error {
		_, err := dc.NetworkDisconnect(ctx, c.network, client.NetworkDisconnectOptions{Container: c.ID(), Force: true})
		return err
	})
}

// Reconnect puts a disconnected host back on its network, with its aliases.
func (c *Container) Reconnect(ctx context.Context) error {
	if c.network == "" {
		return fmt.Errorf("host %s is on no private network", c.cfg.Name)
	}
	return c.withEngine(ctx, "network connect", func(dc *testcontainers.DockerClient) error {
		_, err := dc.NetworkConnect(ctx, c.network, client.NetworkConnectOptions{Container: c.ID(),
			EndpointConfig: &network.EndpointSettings{Aliases: append([]string{c.cfg.Name}, c.aliases...)}})
		return err
	})
}

func (c *Container) withEngine(ctx context.Context, what string, f func(*testcontainers.DockerClient) error) error {
	dc, err := c.engine(ctx)
	if err != nil {
		return err
	}
	defer dc.Close()
	if err := f(dc); err != nil {
		return fmt.Errorf("host %s: %s: %w", c.cfg.Name, what, err)
	}
	return nil
}

// WaitHealthy polls the host's health until it passes or ctx ends.
func (c *Container) WaitHealthy(ctx context.Context) error {
	cl := c.Control()
	var last error
	for {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		h, err := cl.Health(hctx)
		cancel()
		if err == nil && h.OK {
			c.notes = h.Notes
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("not healthy: %+v", h.Checks)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("host %s did not become healthy: %w", c.cfg.Name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops and removes the container and the keys it made. It is safe
// to call more than once; ctx bounds it.
func (c *Container) Close(ctx context.Context) error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return c.closeErr
	}
	c.closed = true
	var errs []error
	if err := c.tc.Terminate(ctx, testcontainers.StopTimeout(5*time.Second)); err != nil {
		errs = append(errs, fmt.Errorf("host %s: remove container: %w", c.cfg.Name, err))
	}
	if c.ownKeys {
		errs = append(errs, c.keys.Close())
	}
	c.closeErr = errors.Join(errs...)
	return c.closeErr
}

// CopyOut copies the regular files below src in the container (a directory
// or one file, as the engine's `docker cp` sees it: the container's own
// layer and its volumes) into dst on the test machine, each cut at limit
// bytes with a note. Symbolic links are left out. A src the container does
// not have is fs.ErrNotExist. It reads through the engine, not through the
// fake host, so it records no ssh command and trips no fault rule.
func (c *Container) CopyOut(ctx context.Context, src, dst string, limit int64) error {
	return c.withEngine(ctx, "copy "+src, func(dc *testcontainers.DockerClient) error {
		res, err := dc.CopyFromContainer(ctx, c.ID(), client.CopyFromContainerOptions{SourcePath: src})
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("%s: %w", src, fs.ErrNotExist)
		}
		if err != nil {
			return err
		}
		defer res.Content.Close()
		return untarFiles(res.Content, path.Base(src), dst, limit)
	})
}

// untarFiles writes the regular files of a tar stream whose entries all lie
// below top into dst (top itself becomes dst).
func untarFiles(r io.Reader, top, dst string, limit int64) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		rel, ok := strings.CutPrefix(path.Clean(h.Name), top)
		if !ok || (rel != "" && rel[0] != '/') {
			return fmt.Errorf("archive entry %q lies outside %s", h.Name, top)
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := artifact.Write(tr, target, limit); err != nil {
				return err
			}
		}
	}
}

// Package hub drives a real JupyterHub as a system under test: it starts
// Debian's `jupyterhub` with a configuration generated from Go structs
// (authenticator, spawner, users, roles and scopes, an API-only service
// for the driver) in a directory of its own, or connects to a running hub
// by URL and token, and talks to it through its REST API and its proxy.
//
// A started hub is a process tree: the hub, its configurable-http-proxy and
// every server a spawner started. Each carries the environment variable
// MarkerEnv, so Close can check that the hub cleaned up after itself and
// kill whatever it left behind.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NodePath is the NODE_PATH the hub gets so that Debian's
// configurable-http-proxy finds its modules under Node 20.
const NodePath = "/usr/share/nodejs"

// options collects what Start is given.
type options struct {
	cfg          Config
	dir          string
	logFile      string
	command      []string
	env          []string
	startTimeout time.Duration
	stopTimeout  time.Duration
	logger       *slog.Logger
}

// Option configures Start.
type Option func(*options)

// WithConfig sets the whole hub configuration (replacing what earlier
// options set).
func WithConfig(c Config) Option { return func(o *options) { o.cfg = c } }

// WithSpawner sets the spawner configuration.
func WithSpawner(s Spawner) Option { return func(o *options) { o.cfg.Spawner = s } }

// WithAuthenticator sets the authenticator.
func WithAuthenticator(a Authenticator) Option { return func(o *options) { o.cfg.Authenticator = a } }

// WithUsers adds users created at startup.
func WithUsers(names ...string) Option {
	return func(o *options) { o.cfg.Users = append(o.cfg.Users, names...) }
}

// WithAdmins adds admin users created at startup.
func WithAdmins(names ...string) Option {
	return func(o *options) { o.cfg.Admins = append(o.cfg.Admins, names...) }
}

// WithRoles adds roles (load_roles).
func WithRoles(roles ...Role) Option {
	return func(o *options) { o.cfg.Roles = append(o.cfg.Roles, roles...) }
}

// WithServices adds API-only services.
func WithServices(services ...Service) Option {
	return func(o *options) { o.cfg.Services = append(o.cfg.Services, services...) }
}

// WithTrait sets one "Class.trait" configurable to a JSON value.
func WithTrait(key string, value any) Option {
	return func(o *options) {
		if o.cfg.Traits == nil {
			o.cfg.Traits = map[string]any{}
		}
		o.cfg.Traits[key] = value
	}
}

// WithImports names Python modules the hub's configuration imports
// (Config.Imports), e.g. "batchspawner".
func WithImports(modules ...string) Option {
	return func(o *options) { o.cfg.Imports = append(o.cfg.Imports, modules...) }
}

// WithLogLevel sets the hub's log level (DEBUG, INFO, WARN, ERROR).
func WithLogLevel(level string) Option { return func(o *options) { o.cfg.LogLevel = level } }

// WithNamedServers lets users run named servers, at most limit each (0:
// no limit): Config.AllowNamedServers and Config.NamedServerLimitPerUser.
func WithNamedServers(limit int) Option {
	return func(o *options) {
		o.cfg.AllowNamedServers = true
		o.cfg.NamedServerLimitPerUser = limit
	}
}

// WithDir runs the hub in dir (database, cookie secret, pid files, log,
// generated config). The directory is kept on Close. By default the hub
// gets a temporary directory that Close removes.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithLogFile writes the hub's output (hub, proxy and spawned servers) to
// path instead of <dir>/jupyterhub.log, for example into a CI artifacts
// directory that outlives the hub.
func WithLogFile(path string) Option { return func(o *options) { o.logFile = path } }

// WithCommand sets the hub command (default: jupyterhub from PATH).
func WithCommand(argv ...string) Option { return func(o *options) { o.command = argv } }

// WithEnv adds KEY=VALUE entries to the hub's environment (which the proxy
// inherits; spawned servers get only Spawner.Environment).
func WithEnv(kv ...string) Option { return func(o *options) { o.env = append(o.env, kv...) } }

// WithStartTimeout bounds the wait for the hub API to answer (default 60 s;
// a deadline on Start's context also applies).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// WithStopTimeout bounds the hub's own shutdown in Close before it is
// killed (default 30 s).
func WithStopTimeout(d time.Duration) Option { return func(o *options) { o.stopTimeout = d } }

// WithLogger sets the driver's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Hub is a JupyterHub the driver started (Start) or reached (Connect).
type Hub struct {
	client *Client
	log    *slog.Logger

	// Only for a started hub.
	started     bool
	dir         string
	removeDir   bool
	logPath     string
	logFile     *os.File
	cmd         *exec.Cmd
	exited      chan struct{}
	exitErr     error
	marker      string
	startupTime time.Duration
	stopTimeout time.Duration

	closeOnce sync.Once
	closeErr  error
	leaked    []Process
}

// ErrNotInstalled is returned by Start when the jupyterhub command is not
// found; tests skip on it.
var ErrNotInstalled = errors.New("jupyterhub is not installed (run scripts/setup-hub.sh as root)")

// Start starts a JupyterHub configured by opts and returns once its API
// answers GET /hub/api/ with its version through the proxy. Close stops it.
func Start(ctx context.Context, opts ...Option) (*Hub, error) {
	o := options{command: []string{"jupyterhub"}, startTimeout: 60 * time.Second, stopTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if len(o.command) == 0 {
		return nil, errors.New("hub: WithCommand: empty command")
	}
	if err := o.cfg.validate(); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if _, err := exec.LookPath(o.command[0]); err != nil {
		return nil, fmt.Errorf("hub: command %q: %w: %w", o.command[0], ErrNotInstalled, err)
	}
	// Ports picked free are free only until someone else takes them: retry
	// a hub that lost the race.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		h, err := start(ctx, o)
		if err == nil {
			return h, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) || ctx.Err() != nil {
			break
		}
		o.logger.Warn("hub port taken, retrying with other ports", "attempt", attempt, "err", err)
	}
	return nil, lastErr
}

var errAddrInUse = errors.New("address already in use")

func start(ctx context.Context, o options) (h *Hub, err error) {
	began := time.Now()
	h = &Hub{started: true, log: o.logger, exited: make(chan struct{}), stopTimeout: o.stopTimeout}
	// Whatever fails from here on, nothing started may outlive Start.
	defer func() {
		if err != nil {
			if cerr := h.Close(); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
			h = nil
		}
	}()

	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o755); err != nil {
			return h, fmt.Errorf("hub: dir: %w", err)
		}
		h.dir = o.dir
	} else {
		dir, err := os.MkdirTemp("", "jobsim-hub-")
		if err != nil {
			return h, fmt.Errorf("hub: temp dir: %w", err)
		}
		h.dir, h.removeDir = dir, true
	}
	// Spawned servers may run as other Unix users (LocalProcessSpawner):
	// let them traverse the directory. Secrets inside are mode 0600.
	if err := os.Chmod(h.dir, 0o755); err != nil {
		return h, fmt.Errorf("hub: dir: %w", err)
	}

	var unplaced []int // managed services without a URL
	for i, s := range o.cfg.Services {
		if len(s.Command) > 0 && s.URL == "" {
			unplaced = append(unplaced, i)
		}
	}
	ports, err := freePorts(3 + len(unplaced))
	if err != nil {
		return h, fmt.Errorf("hub: %w", err)
	}
	o.cfg.Services = slices.Clone(o.cfg.Services)
	for j, i := range unplaced {
		o.cfg.Services[i].URL = fmt.Sprintf("http://127.0.0.1:%d", ports[3+j])
	}
	rt := runtime{
		dir:            h.dir,
		publicURL:      fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		hubURL:         fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		proxyAPIURL:    fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		proxyAuthToken: randomHex(32),
		driverToken:    randomHex(32),
		marker:         randomHex(12),
	}
	h.marker = rt.marker
	if err := os.WriteFile(filepath.Join(h.dir, "jupyterhub_cookie_secret"), []byte(randomHex(32)+"\n"), 0o600); err != nil {
		return h, fmt.Errorf("hub: cookie secret: %w", err)
	}
	sp := buildSpec(o.cfg, rt, filepath.Join)
	specJSON, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return h, fmt.Errorf("hub: config spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "jobsim-hub.json"), specJSON, 0o600); err != nil {
		return h, fmt.Errorf("hub: config spec: %w", err)
	}
	configPath := filepath.Join(h.dir, "jupyterhub_config.py")
	if err := os.WriteFile(configPath, configLoader, 0o644); err != nil {
		return h, fmt.Errorf("hub: config: %w", err)
	}

	h.logPath = o.logFile
	if h.logPath == "" {
		h.logPath = filepath.Join(h.dir, "jupyterhub.log")
	}
	h.logFile, err = os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return h, fmt.Errorf("hub: log file: %w", err)
	}

	cmd := exec.Command(o.command[0], append(o.command[1:], "-f", configPath)...)
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+NodePath, MarkerEnv+"="+rt.marker, "JOBSIM_HUB_SPEC="+filepath.Join(h.dir, "jobsim-hub.json"))
	cmd.Env = append(cmd.Env, o.env...)
	cmd.Stdout, cmd.Stderr = h.logFile, h.logFile
	// Own process group; and if the driver dies, the hub gets SIGTERM and
	// stops its proxy and servers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return h, fmt.Errorf("hub: start %s: %w", o.command[0], err)
	}
	h.cmd = cmd
	go func() {
		h.exitErr = cmd.Wait()
		close(h.exited)
	}()
	o.logger.Info("hub started", "pid", cmd.Process.Pid, "url", rt.publicURL, "dir", h.dir)

	h.client, err = NewClient(rt.publicURL, rt.driverToken)
	if err != nil {
		return h, err
	}
	if err := h.waitReady(ctx, o.startTimeout); err != nil {
		return h, err
	}
	h.startupTime = time.Since(began)
	o.logger.Info("hub ready", "url", rt.publicURL, "after", h.startupTime)
	return h, nil
}

// waitReady polls GET /hub/api/ until it answers 200 with the version.
// For about 0.1 s after the proxy starts it answers 404: an open port is
// not enough.
func (h *Hub) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := h.client.Version(reqCtx)
		reqCancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-h.exited:
			tail := h.LogTail(30)
			if strings.Contains(tail, "Address already in use") || strings.Contains(tail, "EADDRINUSE") {
				return fmt.Errorf("hub: exited at startup (%v): %w\n%s", h.exitErr, errAddrInUse, tail)
			}
			return fmt.Errorf("hub: exited at startup (%v); log %s ends:\n%s", h.exitErr, h.logPath, tail)
		case <-ctx.Done():
			return fmt.Errorf("hub: API not ready within %v (last: %v); log %s ends:\n%s", timeout, last, h.logPath, h.LogTail(30))
		case <-tick.C:
		}
	}
}

// Connect returns a Hub for a running JupyterHub at url (the public proxy
// URL, e.g. "http://127.0.0.1:8000") with an API token, after checking
// that GET /hub/api/ answers. Close on it only releases connections.
func Connect(ctx context.Context, url, token string) (*Hub, error) {
	c, err := NewClient(url, token)
	if err != nil {
		return nil, err
	}
	if _, err := c.Version(ctx); err != nil {
		return nil, fmt.Errorf("hub: connect to %s: %w", url, err)
	}
	return &Hub{client: c, log: slog.New(slog.DiscardHandler)}, nil
}

// Client is the REST client, authenticated as the driver service (or with
// the token given to Connect).
func (h *Hub) Client() *Client { return h.client }

// URL is the hub's public URL (the proxy).
func (h *Hub) URL() string { return h.client.URL() }

// Token is the driver's API token.
func (h *Hub) Token() string { return h.client.token }

// Dir is the hub's working directory ("" for a connected hub).
func (h *Hub) Dir() string { return h.dir }

// LogPath is the file holding the hub's output, including the proxy's and
// the spawned servers' ("" for a connected hub).
func (h *Hub) LogPath() string { return h.logPath }

// Marker is the MarkerEnv value carried by this hub's processes.
func (h *Hub) Marker() string { return h.marker }

// StartupTime is how long Start took from launching the hub to its API
// answering.
func (h *Hub) StartupTime() time.Duration { return h.startupTime }

// Processes lists this hub's live processes (hub, proxy, servers).
func (h *Hub) Processes() ([]Process, error) {
	if !h.started {
		return nil, nil
	}
	return FindMarked(h.marker)
}

// LogTail returns the last n lines of the hub log.
func (h *Hub) LogTail(n int) string {
	if h.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(h.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", h.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Leaked lists the processes that Close found still running after the hub
// had shut down (or been killed) and had to kill itself. Empty when the
// hub cleaned up after itself.
func (h *Hub) Leaked() []Process { return h.leaked }

// Close stops a started hub: SIGTERM, which makes JupyterHub stop every
// server and its proxy, then SIGKILL if it has not exited within the stop
// timeout. It then kills any process still carrying the hub's marker
// (listed by Leaked), and removes the temporary directory. It returns an
// error only if something could not be stopped or removed. Safe to call
// more than once.
func (h *Hub) Close() error {
	h.closeOnce.Do(func() { h.closeErr = h.close() })
	return h.closeErr
}

func (h *Hub) close() error {
	if h.client != nil {
		h.client.hc.CloseIdleConnections()
	}
	if !h.started {
		return nil
	}
	var errs []error
	if h.cmd != nil {
		pid := h.cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-h.exited:
		case <-time.After(h.stopTimeout):
			h.log.Warn("hub did not stop after SIGTERM, killing it", "pid", pid, "timeout", h.stopTimeout)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			select {
			case <-h.exited:
			case <-time.After(10 * time.Second):
				errs = append(errs, fmt.Errorf("hub: pid %d survived SIGKILL", pid))
			}
		}
	}
	if h.marker != "" {
		left, err := FindMarked(h.marker)
		if err != nil {
			errs = append(errs, fmt.Errorf("hub: look for leftover processes: %w", err))
		}
		if len(left) > 0 {
			h.leaked = left
			h.log.Warn("hub left processes behind, killing them", "processes", fmt.Sprint(left))
			if alive := killAll(left, 10*time.Second); len(alive) > 0 {
				errs = append(errs, fmt.Errorf("hub: processes survive SIGKILL: %v", alive))
			}
		}
	}
	if h.logFile != nil {
		if err := h.logFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("hub: log file: %w", err))
		}
	}
	if h.removeDir && h.dir != "" {
		if err := os.RemoveAll(h.dir); err != nil {
			errs = append(errs, fmt.Errorf("hub: remove %s: %w", h.dir, err))
		}
	}
	return errors.Join(errs...)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(nBytes int) string {
	b := make([]byte, nBytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Package sim is the simulated job host: one machine with a name, users and
// home directories, a filesystem whose every layer can be made to fail, an
// executor (virtual or real processes), an ssh server, optionally a PBS
// server, a control API and one event history. NewHost starts one in-process
// and Close stops it, like httptest.NewServer; `jobsim host` runs one as a
// daemon.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spf13/afero"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/control"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/netfault"
	"github.com/jobsim/jobsim/sim/sshd"
)

// ExecutorKind selects how a host runs commands.
type ExecutorKind string

const (
	// Virtual runs commands in an embedded shell over the host's in-memory
	// filesystem: no OS processes, deterministic, cheap.
	Virtual ExecutorKind = "virtual"
	// Real runs real processes (bash, rsync, python, cylc) with homes in the
	// host's root directory on disk.
	Real ExecutorKind = "real"
)

// Host is one running simulated job host.
type Host struct {
	cfg      config
	life     context.Context // ends at Close: mounts, servers and jobs live under it
	stop     context.CancelFunc
	name     string
	stateMu  sync.Mutex
	state    string            // private directory: key files, sockets, the root when owned; made on first use
	keyFiles map[string]string // user -> private key file, written on first use
	root     string            // real hosts: the host root on disk
	log      *events.Log
	rec      events.Recorder
	faults   *fault.Set
	clock    clock.Clock
	fs       afero.Fs
	exec     executor.Executor
	jobExec  executor.Executor // runs PBS jobs; exec when nil
	pbs      *fakepbs.Server   // PBS-specific wiring only (the socket real clients call)
	slurm    *fakeslurm.Server // Slurm-specific wiring only (the socket real clients call)
	batch    batch.System      // the host's batch system, as everything else reaches it
	ssh      *sshd.Server
	sshLn    net.Listener
	ctlLn    net.Listener
	ctlSrv   *http.Server
	token    string
	keys     map[string]userKey
	notes    []string
	closers  []func() error // run in reverse order by Close
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

type config struct {
	name        string
	users       []string
	extraKeys   map[string][]gossh.PublicKey
	kind        ExecutorKind
	root        string
	pbs         bool
	pbsOpts     []fakepbs.Option
	slurm       bool
	slurmOpts   []fakeslurm.Option
	clock       clock.Clock
	log         *events.Log
	faultMounts []string
	hidden      []string
	token       string
	sshAddr     string
	controlAddr string
	jobsim      string
	seed        int64
	logger      *slog.Logger
	sshOpts     []sshd.Option
}

// Option configures a Host.
type Option func(*config)

// WithName sets the host name (default "fakehpc"): hostname, PBS server
// name and the host field of its events.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithUsers sets the host's users (default: the user running the process).
// The harness holds a key for each (Host.KeyFile).
func WithUsers(names ...string) Option { return func(c *config) { c.users = names } }

// WithAuthorizedKeys authorizes more public keys for a user.
func WithAuthorizedKeys(user string, keys ...gossh.PublicKey) Option {
	return func(c *config) { c.extraKeys[user] = append(c.extraKeys[user], keys...) }
}

// WithExecutor selects virtual (default) or real execution.
func WithExecutor(k ExecutorKind) Option { return func(c *config) { c.kind = k } }

// WithRoot places a real host's root directory (default: a temporary
// directory removed by Close).
func WithRoot(dir string) Option { return func(c *config) { c.root = dir } }

// WithPBS runs a PBS server on the host; its jobs run on the host's
// executor and the PBS commands work in every shell of the host.
func WithPBS(opts ...fakepbs.Option) Option {
	return func(c *config) { c.pbs = true; c.pbsOpts = append(c.pbsOpts, opts...) }
}

// WithClock sets the host clock (default real). A virtual clock suits
// virtual hosts: their sleeps and PBS jobs then take no wall time.
func WithClock(cl clock.Clock) Option { return func(c *config) { c.clock = cl } }

// WithEventLog records the host's events into log (shared by a topology);
// default a log of its own.
func WithEventLog(log *events.Log) Option { return func(c *config) { c.log = log } }

// WithFaultMounts puts the FUSE fault layer over these host paths of a real
// host, so filesystem faults reach real processes there.
func WithFaultMounts(paths ...string) Option {
	return func(c *config) { c.faultMounts = append(c.faultMounts, paths...) }
}

// WithHiddenPaths hides directories of the test machine from a real host's
// processes (ssh sessions and batch jobs): to them each is an empty
// read-only directory. A host whose Cylc lives in its own library directory
// hides the machine's copies of Cylc with it, so that Python fails there as
// on a job host when that library cannot be read, instead of importing the
// machine's copy. Hiding needs a private mount namespace (root or
// CAP_SYS_ADMIN); without one the host warns at start, says so in its
// notes and runs unhidden.
func WithHiddenPaths(dirs ...string) Option {
	return func(c *config) { c.hidden = append(c.hidden, dirs...) }
}

// WithToken sets the control API token (default random).
func WithToken(tok string) Option { return func(c *config) { c.token = tok } }

// WithSSHAddr sets the ssh listen address (default 127.0.0.1:0).
func WithSSHAddr(addr string) Option { return func(c *config) { c.sshAddr = addr } }

// WithSSH passes options to the host's ssh server (sshd.WithKillOnDisconnect,
// sshd.WithTrustedUserCAKeys, sshd.WithLoginGraceTime, sshd.WithMaxStartups).
func WithSSH(opts ...sshd.Option) Option {
	return func(c *config) { c.sshOpts = append(c.sshOpts, opts...) }
}

// WithControlAddr sets the control API listen address (default 127.0.0.1:0).
func WithControlAddr(addr string) Option { return func(c *config) { c.controlAddr = addr } }

// WithJobsimBinary names the jobsim executable a real host puts on PATH
// under the PBS command names (default: this process's executable when it
// is jobsim, else $JOBSIM_BIN).
func WithJobsimBinary(path string) Option { return func(c *config) { c.jobsim = path } }

// WithSeed seeds the fault rules' probability draws.
func WithSeed(seed int64) Option { return func(c *config) { c.seed = seed } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "jobsim"
}

// NewHost starts a host. It returns once ssh, PBS and the control API answer.
// ctx bounds the start only; Close stops the host.
func NewHost(ctx context.Context, opts ...Option) (_ *Host, err error) {
	cfg := config{name: "fakehpc", kind: Virtual, clock: clock.Real{}, sshAddr: "127.0.0.1:0", controlAddr: "127.0.0.1:0", seed: 1, logger: slog.Default(), extraKeys: map[string][]gossh.PublicKey{}}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.users) == 0 {
		cfg.users = []string{currentUser()}
	}
	if cfg.kind != Virtual && cfg.kind != Real {
		return nil, fmt.Errorf("host %s: executor %q: want virtual or real", cfg.name, cfg.kind)
	}
	if cfg.pbs && cfg.slurm {
		return nil, fmt.Errorf("host %s: PBS and Slurm together: a host runs one batch system", cfg.name)
	}
	if cfg.token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		cfg.token = hex.EncodeToString(b)
	}
	h := &Host{cfg: cfg, name: cfg.name, clock: cfg.clock, token: cfg.token, keys: map[string]userKey{}, keyFiles: map[string]string{}}
	h.life, h.stop = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			_ = h.Close()
		}
	}()
	h.closers = append(h.closers, h.removeState)
	h.log = cfg.log
	if h.log == nil {
		h.log = events.NewLog(events.WithClock(cfg.clock.Now))
	}
	h.rec = events.ForHost(h.log, cfg.name)
	h.faults = fault.NewSet(fault.WithClock(cfg.clock), fault.WithRecorder(h.rec), fault.WithSeed(cfg.seed))
	for _, u := range cfg.users {
		k, err := newUserKey(u)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", cfg.name, err)
		}
		h.keys[u] = k
	}
	switch cfg.kind {
	case Virtual:
		err = h.startVirtual(h.life)
	case Real:
		err = h.startReal(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", cfg.name, err)
	}
	if err := h.startSSH(); err != nil {
		return nil, fmt.Errorf("host %s: ssh: %w", cfg.name, err)
	}
	if err := h.startControl(); err != nil {
		return nil, fmt.Errorf("host %s: control API: %w", cfg.name, err)
	}
	if err := h.waitHealthy(ctx); err != nil {
		return nil, fmt.Errorf("host %s: %w", cfg.name, err)
	}
	h.rec.Record(events.Event{Kind: events.HostLifecycle, Msg: fmt.Sprintf("started (%s executor) ssh %s control %s", cfg.kind, h.SSHAddr(), h.ControlURL()),
		Fields: map[string]any{"state": "started", "executor": string(cfg.kind), "ssh": h.SSHAddr(), "control": h.ControlURL(), "notes": h.notes}})
	return h, nil
}

func (h *Host) startSSH() error {
	opts := []sshd.Option{sshd.WithExecutor(h.exec), sshd.WithFaults(h.faults), sshd.WithRecorder(h.rec), sshd.WithLogger(h.cfg.logger)}
	for _, u := range h.cfg.users {
		keys := append([]gossh.PublicKey{h.keys[u].signer.PublicKey()}, h.cfg.extraKeys[u]...)
		opts = append(opts, sshd.WithUser(sshd.User{Name: u, Keys: keys, Home: "/home/" + u, FS: h.fs}))
	}
	srv, err := sshd.New(append(opts, h.cfg.sshOpts...)...)
	if err != nil {
		return err
	}
	tcp, err := net.Listen("tcp", h.cfg.sshAddr)
	if err != nil {
		return err
	}
	ln := netfault.Wrap(tcp, h.faults, "ssh")
	h.ssh, h.sshLn = srv, ln
	go func() { _ = srv.Serve(h.life, ln) }()
	h.closers = append(h.closers, srv.Close)
	return nil
}

func (h *Host) startControl() error {
	opts := []control.Option{control.WithName(h.name), control.WithFaults(h.faults), control.WithEvents(h.log), control.WithClock(h.clock),
		control.WithLogger(h.cfg.logger), control.WithCheck("ssh", h.checkSSH)}
	if h.batch != nil {
		check := h.checkPBS
		if h.slurm != nil {
			check = h.checkSlurm
		}
		opts = append(opts, control.WithBatch(h.batch), control.WithCheck(h.batch.Kind(), check))
	}
	for _, n := range h.notes {
		opts = append(opts, control.WithNote(n))
	}
	api, err := control.NewServer(h.token, opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", h.cfg.controlAddr)
	if err != nil {
		return err
	}
	h.ctlLn = ln
	h.ctlSrv = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.ctlSrv.Serve(ln) }()
	h.closers = append(h.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.ctlSrv.Shutdown(ctx); err != nil {
			return h.ctlSrv.Close()
		}
		return nil
	})
	return nil
}

// checkSSH proves the ssh server runs commands: a real handshake with the
// harness key of the first user and `true` through the executor.
func (h *Host) checkSSH(ctx context.Context) error {
	u := h.cfg.users[0]
	cfg := &gossh.ClientConfig{User: u, Auth: []gossh.AuthMethod{gossh.PublicKeys(h.keys[u].signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.SSHAddr())
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, chans, reqs, err := gossh.NewClientConn(conn, h.SSHAddr(), cfg)
	if err != nil {
		conn.Close()
		return fmt.Errorf("handshake: %w", err)
	}
	client := gossh.NewClient(c, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer s.Close()
	if out, err := s.CombinedOutput("true"); err != nil {
		return fmt.Errorf("exec true: %v %s", err, out)
	}
	return nil
}

// checkPBS proves the PBS server answers the way clients reach it.
func (h *Host) checkPBS(ctx context.Context) error {
	res, err := h.RunPBS(ctx, h.cfg.users[0], "qstat", "-B")
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("qstat -B exited %d: %s", res.ExitCode, res.Stderr)
	}
	return nil
}

func (h *Host) waitHealthy(ctx context.Context) error {
	c := h.Client()
	var last error
	for {
		hc, err := c.Health(ctx)
		if err == nil && hc.OK {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("not healthy: %+v", hc.Checks)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("did not become healthy: %w", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Name is the host name.
func (h *Host) Name() string { return h.name }

// SSHAddr is the ssh server's host:port.
func (h *Host) SSHAddr() string { return h.sshLn.Addr().String() }

// ControlURL is the base URL of the control API.
func (h *Host) ControlURL() string { return "http://" + h.ctlLn.Addr().String() }

// Token is the control API's bearer token.
func (h *Host) Token() string { return h.token }

// Client returns a control API client for this host.
func (h *Host) Client() *control.Client { return control.NewClient(h.ControlURL(), h.token) }

// Users lists the host's users.
func (h *Host) Users() []string { return slices.Clone(h.cfg.users) }

// KeyFile is the private key file the harness holds for user, for an
// OpenSSH client's IdentityFile. It is written on the first call.
func (h *Host) KeyFile(user string) (string, error) {
	k, ok := h.keys[user]
	if !ok {
		return "", fmt.Errorf("host %s has no user %q (users: %v)", h.name, user, h.cfg.users)
	}
	dir, err := h.stateDir()
	if err != nil {
		return "", err
	}
	h.stateMu.Lock()
	defer h.stateMu.Unlock()
	if f, ok := h.keyFiles[user]; ok {
		return f, nil
	}
	f, err := writeKey(dir, user, k)
	if err != nil {
		return "", err
	}
	h.keyFiles[user] = f
	return f, nil
}

// stateDir returns the host's private directory, making it on first use
// (a virtual host that nobody reaches with OpenSSH never touches the disk).
func (h *Host) stateDir() (string, error) {
	h.stateMu.Lock()
	defer h.stateMu.Unlock()
	if h.state == "" {
		dir, err := os.MkdirTemp("", "jobsim-host-"+h.name+"-")
		if err != nil {
			return "", fmt.Errorf("host %s: state directory: %w", h.name, err)
		}
		h.state = dir
	}
	return h.state, nil
}

func (h *Host) removeState() error {
	h.stateMu.Lock()
	defer h.stateMu.Unlock()
	if h.state == "" {
		return nil
	}
	return os.RemoveAll(h.state)
}

// Signer is the harness's key for user, for Go ssh clients.
func (h *Host) Signer(user string) (gossh.Signer, error) {
	k, ok := h.keys[user]
	if !ok {
		return nil, fmt.Errorf("host %s has no user %q", h.name, user)
	}
	return k.signer, nil
}

// HostKey is the ssh server's public host key.
func (h *Host) HostKey() gossh.PublicKey { return h.ssh.HostKey() }

// Faults is the host's live rule set.
func (h *Host) Faults() *fault.Set { return h.faults }

// Events is the host's history.
func (h *Host) Events() *events.Log { return h.log }

// Clock is the host clock.
func (h *Host) Clock() clock.Clock { return h.clock }

// FS is the host filesystem (faults applied).
func (h *Host) FS() afero.Fs { return h.fs }

// Executor is the host's command runner.
func (h *Host) Executor() executor.Executor { return h.exec }

// PBS is the host's PBS server, nil without WithPBS: for PBS-specific
// wiring (a cluster's MoM dispatcher, the PBS TCP endpoint). Everything
// else goes through Batch.
func (h *Host) PBS() *fakepbs.Server { return h.pbs }

// Batch is the host's batch system, nil when it runs none.
func (h *Host) Batch() batch.System { return h.batch }

// Root is a real host's root directory on disk ("" for virtual hosts).
func (h *Host) Root() string { return h.root }

// ProcessPath is the path at which processes on the host see hostPath: the
// same for virtual hosts, below Root for real ones (whose processes run on
// the test machine's filesystem).
func (h *Host) ProcessPath(hostPath string) string {
	if h.root == "" {
		return hostPath
	}
	return filepath.Join(h.root, hostPath)
}

// Notes are what the host said at start, such as why FUSE faults are off.
func (h *Host) Notes() []string { return slices.Clone(h.notes) }

// SSHConfig returns an OpenSSH client config block that reaches the host as
// user under the alias.
func (h *Host) SSHConfig(alias, user string) (string, error) {
	key, err := h.KeyFile(user)
	if err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(h.SSHAddr())
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

// Close stops the host: control API, ssh, PBS jobs, FUSE mounts, processes,
// and removes what it created. It is safe to call more than once.
func (h *Host) Close() error {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	if h.closed {
		return h.closeErr
	}
	h.closed = true
	if h.rec != nil {
		h.rec.Record(events.Event{Kind: events.HostLifecycle, Msg: "stopped", Fields: map[string]any{"state": "stopped"}})
	}
	var errs []error
	for i := len(h.closers) - 1; i >= 0; i-- {
		if err := h.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	h.stop()
	h.closeErr = errors.Join(errs...)
	if h.closeErr != nil {
		h.closeErr = fmt.Errorf("host %s: close: %w", h.name, h.closeErr)
	}
	return h.closeErr
}

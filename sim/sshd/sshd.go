// Package sshd is the ssh server of a simulated job host, built on
// gliderlabs/ssh. It accepts public-key logins (password only when asked),
// runs exec requests and interactive shells (with a pty) through the host's
// executor, serves the sftp subsystem (which OpenSSH 9's scp uses) over the
// host's afero filesystem, forwards local ports (ssh -L), and carries many
// channels per connection (OpenSSH ControlMaster). Every layer consults the
// host's fault set, so a test can refuse logins, slow the banner, delay or
// hang commands, end them with a chosen exit status, or cut the connection
// after some bytes; every login, command, sftp session and forward is
// recorded as an event.
//
// Like net/http/httptest, Start brings up a server on a loopback port in one
// call and Close tears it down, killing whatever it still runs.
//
// # Commands
//
// An exec request runs its command line through the executor as the
// logged-in user (Command.Script, the user's shell with -c), a shell request
// runs a login shell; either gets a pty when the client asked for one
// (ssh -t), and window-change requests resize it. Environment requests
// (ssh -o SendEnv/SetEnv) are added to the command's environment, with
// SSH_CONNECTION and SSH_CLIENT. The exit status goes back as exit-status,
// or as exit-signal when a signal killed the command (the OpenSSH client
// then exits 255, as with a real sshd).
//
// When the client goes away (its connection, or only its channel, as when a
// ControlMaster client is killed) the server does what OpenSSH's sshd does:
// it lets go of the command's streams and nothing more. A command without a
// pty runs on with standard input at EOF; standard output and error are
// pipes whose read ends the server closes, so the next write fails with
// EPIPE (a real process gets SIGPIPE: `ssh host 'sleep 21; echo done'`
// sleeps on and dies at the echo). A command on a pty is hung up: it gets
// SIGHUP (sent to its process group; the kernel sends it to the session
// leader first and to the foreground group when the leader exits) and what
// it still writes is discarded. WithKillOnDisconnect restores the old
// cleanup instead: SIGHUP at once, SIGTERM half way through the kill grace
// and SIGKILL at its end (WithKillGrace). Either way Close ends every
// command the server started, including those that outlived their client.
//
// # Logins
//
// Public keys from authorized_keys, passwords when a user has one, and
// OpenSSH user certificates signed by a CA given with
// WithTrustedUserCAKeys (sshd's TrustedUserCAKeys: the certificate must
// name the user among its principals and be within its validity window).
// As in sshd, a connection has LoginGraceTime (WithLoginGraceTime, default
// 120s) to log in, and connections not logged in yet are limited by
// MaxStartups (WithMaxStartups, default 10:30:100): one dropped gets
// "Exceeded MaxStartups" and is closed.
//
// # sftp
//
// The sftp subsystem serves the user's filesystem (User.FS or WithFS) as the
// whole world: "/" is its root, ".." there stays there, relative paths start
// at the user's home. Symbolic links are resolved by the server inside the
// filesystem: an absolute target is read from the filesystem's root (as in a
// chroot), and a relative target that climbs above the root is refused
// ("Permission denied"), also when creating links. Setstat, Rename (and
// posix-rename, which OpenSSH's rename uses and which replaces the target),
// Remove, Rmdir, Mkdir, Symlink, Readlink, Lstat and Realpath are served;
// hard links and statvfs are not. The long names of a listing (the
// client's ls -l) name owners and groups as ls -la on the host does.
//
// # Faults
//
// Each operation asks the fault set (WithFaults) with fault.Op{Layer: ssh,
// Name: connect, auth, exec, shell, sftp or forward, User, Command: the
// exec command line or the forward target "host:port"}. The user is not
// known yet at connect. What each kind does:
//
//   - slow-banner (connect): the version banner comes Effect.Latency late.
//   - refuse-auth (auth): every login attempt of the connection fails; the
//     client says "Permission denied (publickey)" and exits 255. Auth
//     faults are checked once per connection and user.
//   - latency: the operation waits Effect.Latency, then proceeds.
//   - hang: the operation waits until the rule is cleared (then proceeds)
//     or the client goes away (then the command never runs).
//   - drop: the TCP connection is closed; at connect and auth at once; for
//     a command after Effect.AfterBytes bytes of output, or right after it
//     started when 0. The command is not told (a cut network, not a client
//     that left): it runs to its end with its output discarded, so that a
//     job can be submitted while the client only sees 255.
//   - exit (exec, shell, sftp, forward): the command does not run; the
//     client gets Effect.Stderr and exit status Effect.ExitCode (default
//     255); a forward is refused with Effect.Stderr as the reason.
//
// A rule that lists ops applies at those where its kind means something; a
// rule without ops applies where its kind acts by default: slow-banner at
// connect, refuse-auth at auth, the others at exec, shell, sftp and forward
// (so "delay commands by 2s" does not delay the login too).
//
// # Events
//
// ssh.auth per login attempt (user, method, key fingerprint, ok, reason,
// conn), ssh.exec per command or shell (user, op, command, exit, signal,
// duration_ms, bytes_in, bytes_out, bytes_err, pty, conn, faults, dropped,
// error, client_gone_ms: when the client left, killed_on_disconnect), ssh.sftp per sftp session (user, home, bytes_read, bytes_written,
// files, duration_ms, exit) and ssh.forward per forwarded connection
// (user, dest, origin, bytes_up, bytes_down, ok, error), ssh.conn per
// connection dropped before login (remote, reason: max-startups or
// login-grace-time). ssh.auth of a certificate adds cert_id, cert_serial
// and ca. "conn" names the
// TCP connection, so commands sharing a ControlMaster connection show it.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close.
var ErrServerClosed = errors.New("sshd: server closed")

// Server is one ssh server. Create it with New or Start; it is safe for
// concurrent use.
type Server struct {
	cfg config
	srv *ssh.Server

	base   context.Context // ends at Close: kills commands, releases hangs
	cancel context.CancelFunc

	mu     sync.Mutex
	users  map[string]User
	lns    map[net.Listener]struct{}
	conns  map[*trackedConn]struct{}
	addr   net.Addr
	closed bool
	wg     sync.WaitGroup // accept loops, connections, channel handlers

	connSeq  atomic.Int64
	startups atomic.Int64 // connections not logged in yet (MaxStartups)
}

// New builds a server from opts. It does not listen: use Serve,
// ListenAndServe, or Start.
func New(opts ...Option) (*Server, error) {
	cfg := config{
		users:     map[string]*User{},
		rec:       events.Discard{},
		log:       slog.New(slog.DiscardHandler),
		killGrace: 2 * time.Second,
		// OpenSSH's defaults: LoginGraceTime 120, MaxStartups 10:30:100.
		loginGrace:  120 * time.Second,
		maxStartups: maxStartups{start: 10, rate: 30, full: 100},
		version:     "OpenSSH_9.2p1 jobsim",
		addr:        "127.0.0.1:0",
	}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("sshd.New: option %d is nil", i)
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("sshd.New: %w", err)
		}
	}
	if cfg.hostKey == nil {
		k, err := NewHostKey()
		if err != nil {
			return nil, fmt.Errorf("sshd.New: %w", err)
		}
		cfg.hostKey = k
	}
	s := &Server{
		cfg:   cfg,
		users: map[string]User{},
		lns:   map[net.Listener]struct{}{},
		conns: map[*trackedConn]struct{}{},
	}
	for _, n := range cfg.order {
		s.users[n] = *cfg.users[n]
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.srv = &ssh.Server{
		HostSigners:          []ssh.Signer{cfg.hostKey},
		Version:              cfg.version,
		PublicKeyHandler:     s.publicKeyAuth,
		ConnCallback:         s.connCallback,
		ServerConfigCallback: s.serverConfig,
		ChannelHandlers: map[string]ssh.ChannelHandler{
			"session":      s.handleSession,
			"direct-tcpip": s.handleDirectTCPIP,
		},
		// Remote port forwarding (ssh -R); any other global request
		// (keepalive@openssh.com) gets the failure reply OpenSSH expects.
		RequestHandlers: map[string]ssh.RequestHandler{
			"tcpip-forward":        s.handleGlobalForward,
			"cancel-tcpip-forward": s.handleGlobalForward,
		},
		SubsystemHandlers: map[string]ssh.SubsystemHandler{},
		ConnectionFailedCallback: func(c net.Conn, err error) {
			cfg.log.Debug("ssh handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		},
	}
	return s, nil
}

// Start is New plus listening on the WithAddr address (default
// 127.0.0.1:0) and serving in the background until ctx ends or Close.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	s, err := New(opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("sshd.Start: listen on %s: %w", s.cfg.addr, err)
	}
	if err := s.addListener(ln); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		defer s.wg.Done()
		_ = s.serve(ctx, ln)
	}()
	return s, nil
}

// ListenAndServe listens on the WithAddr address and serves until ctx ends
// or Close, returning ErrServerClosed then.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.addr)
	if err != nil {
		return fmt.Errorf("sshd: listen on %s: %w", s.cfg.addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx ends or Close (then it closes
// the whole server and returns ErrServerClosed). It closes ln when done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.addListener(ln); err != nil {
		ln.Close()
		return err
	}
	defer s.wg.Done()
	return s.serve(ctx, ln)
}

// addListener registers ln and counts its accept loop in s.wg.
func (s *Server) addListener(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	s.wg.Add(1)
	return nil
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { go s.Close() })
	defer stop()
	defer ln.Close()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("sshd: accept on %s: %w", ln.Addr(), err)
		}
		delay = 0
		pc, ok := s.admit(c)
		if !ok {
			continue
		}
		if !s.enter() {
			pc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			s.srv.HandleConn(pc)
		}()
	}
}

// enter counts one more goroutine in s.wg unless the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops listening, closes every connection, kills every command still
// running (SIGKILL through the executor) and waits until all of the
// server's goroutines have ended. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	var lnErr error
	for ln := range s.lns {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) && lnErr == nil {
			lnErr = err
		}
	}
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	_ = s.srv.Close()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	if lnErr != nil {
		return fmt.Errorf("sshd: close listener: %w", lnErr)
	}
	return nil
}

// Addr is the address of the first listener ("127.0.0.1:34567"), or ""
// before the server listens.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		return ""
	}
	return s.addr.String()
}

// Host and Port split Addr, for writing ssh_config (HostName, Port).
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr())
	return h
}

// Port is the TCP port of Addr, or 0 before the server listens.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// HostKey is the server's public host key.
func (s *Server) HostKey() gossh.PublicKey { return s.cfg.hostKey.PublicKey() }

// Fingerprint is the host key's SHA256 fingerprint as ssh prints it
// ("SHA256:...").
func (s *Server) Fingerprint() string { return gossh.FingerprintSHA256(s.HostKey()) }

// KnownHostsLine is a known_hosts line for the server under the given
// host names (default: its [host]:port address).
func (s *Server) KnownHostsLine(names ...string) string {
	if len(names) == 0 {
		names = []string{s.Addr()}
	}
	hosts := make([]string, len(names))
	for i, n := range names {
		hosts[i] = knownHostsName(n)
	}
	key := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.HostKey())))
	return strings.Join(hosts, ",") + " " + key
}

func knownHostsName(n string) string {
	h, p, err := net.SplitHostPort(n)
	if err != nil || p == "22" {
		if err == nil {
			return h
		}
		return n
	}
	return "[" + h + "]:" + p
}

// AddUser adds or replaces a user at run time.
func (s *Server) AddUser(u User) error {
	if err := validUserName(u.Name); err != nil {
		return fmt.Errorf("sshd.AddUser: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Name] = u
	return nil
}

// RemoveUser removes a user; existing connections stay up.
func (s *Server) RemoveUser(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, name)
}

func (s *Server) lookupUser(name string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	return u, ok
}

func (s *Server) anyPassword() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Password != "" {
			return true
		}
	}
	return false
}

func (s *Server) record(kind events.Kind, msg string, fields map[string]any) {
	s.cfg.rec.Record(events.Event{Kind: kind, Msg: msg, Fields: fields})
}

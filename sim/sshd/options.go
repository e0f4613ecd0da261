package sshd

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/afero"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/sim/executor"
)

// User is an account the server accepts. Public-key authentication is the
// only method unless Password is set.
type User struct {
	Name string
	// Keys are the user's authorized public keys (authorized_keys).
	Keys []gossh.PublicKey
	// Password, when not empty, also lets the user in by password; the
	// server offers password authentication only when some user has one.
	Password string
	// Home is where relative sftp paths start; empty means /home/<name>
	// when that directory exists in the user's filesystem, else "/".
	// Commands get their working directory from the executor.
	Home string
	// FS is the filesystem the sftp subsystem serves to this user; nil
	// means the server's (WithFS). It is the host's whole filesystem: sftp
	// never reaches outside it.
	FS afero.Fs
}

// ForwardPolicy says which local port forwarding (ssh -L, direct-tcpip)
// targets the server accepts, and whether remote forwarding (ssh -R) is
// served at all: remote forwards always listen on loopback (OpenSSH's
// GatewayPorts no), and only ForwardNone refuses them.
type ForwardPolicy int

// Forwarding policies.
const (
	// ForwardAny allows every target, as OpenSSH's AllowTcpForwarding yes.
	ForwardAny ForwardPolicy = iota
	// ForwardLoopback allows only loopback targets (localhost, 127.0.0.0/8, ::1).
	ForwardLoopback
	// ForwardNone refuses every forwarding request.
	ForwardNone
)

// Option configures a Server. Options that read files or parse keys report
// their errors from New.
type Option func(*config) error

type config struct {
	hostKey   gossh.Signer
	users     map[string]*User
	order     []string
	exec      executor.Executor
	fs        afero.Fs
	faults    *fault.Set
	rec       events.Recorder
	log       *slog.Logger
	forward   ForwardPolicy
	killGrace time.Duration
	// killOnDisconnect: a command whose client went away is hung up,
	// terminated and killed (WithKillOnDisconnect) instead of left running.
	killOnDisconnect bool
	userCAs          []gossh.PublicKey // TrustedUserCAKeys
	loginGrace       time.Duration     // LoginGraceTime; 0: none
	maxStartups      maxStartups
	version          string
	addr             string
	acceptEnv        func(string) bool
}

func (c *config) user(name string) *User {
	u, ok := c.users[name]
	if !ok {
		u = &User{Name: name}
		c.users[name] = u
		c.order = append(c.order, name)
	}
	return u
}

// WithHostKey sets the host key; without it each server generates an
// ed25519 key.
func WithHostKey(s gossh.Signer) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("WithHostKey: nil signer")
		}
		c.hostKey = s
		return nil
	}
}

// WithHostKeyPEM sets the host key from a PEM or OpenSSH private key.
func WithHostKeyPEM(pem []byte) Option {
	return func(c *config) error {
		s, err := gossh.ParsePrivateKey(pem)
		if err != nil {
			return fmt.Errorf("WithHostKeyPEM: %w", err)
		}
		c.hostKey = s
		return nil
	}
}

// WithUser adds (or replaces) a user account.
func WithUser(u User) Option {
	return func(c *config) error {
		if err := validUserName(u.Name); err != nil {
			return fmt.Errorf("WithUser: %w", err)
		}
		nu := c.user(u.Name)
		*nu = u
		return nil
	}
}

// WithAuthorizedKey authorizes keys for user, creating the user when new.
func WithAuthorizedKey(user string, keys ...gossh.PublicKey) Option {
	return func(c *config) error {
		if err := validUserName(user); err != nil {
			return fmt.Errorf("WithAuthorizedKey: %w", err)
		}
		for i, k := range keys {
			if k == nil {
				return fmt.Errorf("WithAuthorizedKey %s: key %d is nil", user, i)
			}
		}
		u := c.user(user)
		u.Keys = append(u.Keys, keys...)
		return nil
	}
}

// WithAuthorizedKeys authorizes every key of an authorized_keys text for
// user. Options in front of a key (from=, command=, ...) are not honoured.
func WithAuthorizedKeys(user string, authorizedKeys []byte) Option {
	return func(c *config) error {
		keys, err := ParseAuthorizedKeys(authorizedKeys)
		if err != nil {
			return fmt.Errorf("WithAuthorizedKeys %s: %w", user, err)
		}
		return WithAuthorizedKey(user, keys...)(c)
	}
}

// WithAuthorizedKeysFile authorizes the keys of an authorized_keys file.
func WithAuthorizedKeysFile(user, path string) Option {
	return func(c *config) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("WithAuthorizedKeysFile %s: %w", user, err)
		}
		keys, err := ParseAuthorizedKeys(b)
		if err != nil {
			return fmt.Errorf("WithAuthorizedKeysFile %s: %s: %w", user, path, err)
		}
		return WithAuthorizedKey(user, keys...)(c)
	}
}

// WithPassword lets user log in with password as well; password
// authentication is off unless some user has one.
func WithPassword(user, password string) Option {
	return func(c *config) error {
		if err := validUserName(user); err != nil {
			return fmt.Errorf("WithPassword: %w", err)
		}
		if password == "" {
			return fmt.Errorf("WithPassword %s: empty password", user)
		}
		c.user(user).Password = password
		return nil
	}
}

// WithExecutor sets what runs exec requests and shells. Without one the
// server still serves sftp and forwarding, and answers commands with an
// error on stderr and exit status 127.
func WithExecutor(e executor.Executor) Option {
	return func(c *config) error { c.exec = e; return nil }
}

// WithFS sets the filesystem the sftp subsystem serves to users without
// their own (User.FS). Without any, sftp requests are refused.
func WithFS(fs afero.Fs) Option {
	return func(c *config) error { c.fs = fs; return nil }
}

// WithFaults makes the server consult set, per operation, for ssh-layer
// fault rules.
func WithFaults(set *fault.Set) Option {
	return func(c *config) error { c.faults = set; return nil }
}

// WithRecorder records auth attempts, commands, sftp sessions and forwards.
func WithRecorder(r events.Recorder) Option {
	return func(c *config) error {
		if r == nil {
			r = events.Discard{}
		}
		c.rec = r
		return nil
	}
}

// WithLogger logs connection-level problems to l.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.log = l
		}
		return nil
	}
}

// WithForwarding sets the port forwarding policy (default ForwardAny).
func WithForwarding(p ForwardPolicy) Option {
	return func(c *config) error {
		if p < ForwardAny || p > ForwardNone {
			return fmt.Errorf("WithForwarding: unknown policy %d", p)
		}
		c.forward = p
		return nil
	}
}

// WithTrustedUserCAKeys makes the server accept OpenSSH user certificates
// signed by any of cas, as sshd's TrustedUserCAKeys: a certificate is
// accepted when it is a user certificate signed by one of them, lists the
// user among its principals and is within its validity window; an expired,
// not yet valid or otherwise signed one is refused (ssh.auth says why).
// Authorized plain keys keep working.
func WithTrustedUserCAKeys(cas ...gossh.PublicKey) Option {
	return func(c *config) error {
		for i, k := range cas {
			if k == nil {
				return fmt.Errorf("WithTrustedUserCAKeys: key %d is nil", i)
			}
			if _, isCert := k.(*gossh.Certificate); isCert {
				return fmt.Errorf("WithTrustedUserCAKeys: key %d is a certificate, not a CA key", i)
			}
		}
		c.userCAs = append(c.userCAs, cas...)
		return nil
	}
}

// WithTrustedUserCAKeysFile reads the CA keys from a file in sshd's
// TrustedUserCAKeys format (one public key per line, # comments).
func WithTrustedUserCAKeysFile(path string) Option {
	return func(c *config) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("WithTrustedUserCAKeysFile: %w", err)
		}
		keys, err := ParseAuthorizedKeys(b)
		if err != nil {
			return fmt.Errorf("WithTrustedUserCAKeysFile: %s: %w", path, err)
		}
		if len(keys) == 0 {
			return fmt.Errorf("WithTrustedUserCAKeysFile: %s holds no key", path)
		}
		return WithTrustedUserCAKeys(keys...)(c)
	}
}

// WithLoginGraceTime sets how long a connection has to log in before the
// server closes it, as sshd's LoginGraceTime (default 120s, OpenSSH's; 0
// means no limit). The time counts from the TCP accept, so a banner held
// by a fault counts too, as in sshd.
func WithLoginGraceTime(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithLoginGraceTime: negative duration %v", d)
		}
		c.loginGrace = d
		return nil
	}
}

// WithMaxStartups limits connections that have not logged in yet, as
// sshd's MaxStartups start:rate:full (default 10:30:100, OpenSSH's): with
// start or more such connections a new one is dropped with probability
// rate/100, rising linearly to certain at full. A dropped connection gets
// "Exceeded MaxStartups\r\n" instead of the version banner and is closed,
// as sshd does. sshd's single number N is WithMaxStartups(N, 100, N), a
// hard limit; WithMaxStartups(0, 0, 0) turns the limit off.
func WithMaxStartups(start, rate, full int) Option {
	return func(c *config) error {
		if start == 0 && rate == 0 && full == 0 {
			c.maxStartups = maxStartups{}
			return nil
		}
		if start < 1 || rate < 1 || rate > 100 || full < start {
			return fmt.Errorf("WithMaxStartups: %d:%d:%d: want start >= 1, rate 1..100 and full >= start (as sshd)", start, rate, full)
		}
		c.maxStartups = maxStartups{start: start, rate: rate, full: full}
		return nil
	}
}

// WithKillOnDisconnect makes the server end a command whose client went
// away: SIGHUP at once, SIGTERM half way through the kill grace
// (WithKillGrace) and SIGKILL at its end. OpenSSH's sshd does not do this
// (a command without a pty runs on, one on a pty only gets its hangup), and
// neither does the server by default; the option is for tests that want a
// host which cleans up after vanished clients.
func WithKillOnDisconnect() Option {
	return func(c *config) error { c.killOnDisconnect = true; return nil }
}

// WithKillGrace sets how long a command whose client went away has before
// SIGKILL under WithKillOnDisconnect (default 2s): it gets SIGHUP at once
// and SIGTERM half way.
func WithKillGrace(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithKillGrace: negative duration %v", d)
		}
		c.killGrace = d
		return nil
	}
}

// WithVersion sets the software version in the banner (SSH-2.0-<v>).
func WithVersion(v string) Option {
	return func(c *config) error {
		if v == "" || bytes.ContainsAny([]byte(v), " \r\n") {
			return fmt.Errorf("WithVersion: %q must be non-empty without spaces or newlines", v)
		}
		c.version = v
		return nil
	}
}

// WithAddr sets the address ListenAndServe listens on (default 127.0.0.1:0).
func WithAddr(addr string) Option {
	return func(c *config) error { c.addr = addr; return nil }
}

// WithAcceptEnv restricts which variables clients may pass (env requests,
// ssh -o SendEnv), like sshd's AcceptEnv; by default all are accepted.
func WithAcceptEnv(accept func(name string) bool) Option {
	return func(c *config) error { c.acceptEnv = accept; return nil }
}

func validUserName(n string) error {
	if n == "" {
		return errors.New("empty user name")
	}
	for _, r := range n {
		if r == '/' || r == ':' || r < ' ' || r == 0x7f {
			return fmt.Errorf("user name %q contains %q", n, r)
		}
	}
	return nil
}

// ParseAuthorizedKeys parses an authorized_keys text: one key per line,
// blank lines and # comments ignored. A bad line is reported by number.
func ParseAuthorizedKeys(b []byte) ([]gossh.PublicKey, error) {
	var keys []gossh.PublicKey
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// NewHostKey generates an ed25519 host key.
func NewHostKey() (gossh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 host key: %w", err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("ed25519 host key signer: %w", err)
	}
	return s, nil
}

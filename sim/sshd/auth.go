package sshd

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// connState is what the server keeps per TCP connection.
type connState struct {
	id   string
	conn *trackedConn
	pre  *preauthConn // nil when the connection did not come through serve

	mu   sync.Mutex
	auth map[string]authDecision // per user: the auth faults, checked once per connection

	forwards remoteForwards // ssh -R listeners of this connection
}

type authDecision struct {
	refused string // the refusing rule's id, or ""
	dropped bool
}

type connStateKey struct{}

func stateOf(ctx context.Context) *connState {
	cs, _ := ctx.Value(connStateKey{}).(*connState)
	return cs
}

// trackedConn is an accepted TCP connection, tracked so Close reaches
// connections still in their handshake (gliderlabs only tracks those past it).
type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

// Read re-arms TCP quick ACKs after each read (see quickAck).
func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	quickAck(c.Conn)
	return n, err
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return err
}

// prefixConn replays bytes read from the client while the banner was held.
type prefixConn struct {
	*trackedConn
	buf []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.trackedConn.Read(p)
}

// connCallback registers each new connection and applies the connect
// faults: slow-banner and latency hold the version banner, hang holds it
// until the rule is cleared or the client leaves, drop closes at once.
func (s *Server) connCallback(ctx ssh.Context, c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	cs := &connState{id: fmt.Sprintf("c%d", s.connSeq.Add(1)), conn: tc, auth: map[string]authDecision{}}
	cs.pre, _ = c.(*preauthConn)
	ctx.SetValue(connStateKey{}, cs)

	fired := s.faultsFor(fault.Op{Layer: fault.SSH, Name: opConnect})
	if len(fired) == 0 {
		return tc
	}
	if _, ok := fault.First(fired, fault.Drop); ok {
		tc.Close()
		return nil
	}
	// Hold the banner. The client speaks first (its own version line), so
	// a read tells whether it is still there; what it sent is replayed.
	wctx, cancel := context.WithCancel(s.base)
	defer cancel()
	type readResult struct {
		n   int
		err error
	}
	buf := make([]byte, 256)
	res := make(chan readResult, 1)
	go func() {
		n, err := tc.Conn.Read(buf)
		if err != nil {
			cancel()
		}
		res <- readResult{n, err}
	}()
	werr := s.wait(wctx, fired)
	_ = tc.Conn.SetReadDeadline(time.Now())
	r := <-res
	_ = tc.Conn.SetReadDeadline(time.Time{})
	var ne net.Error
	if werr != nil || (r.err != nil && !(errors.As(r.err, &ne) && ne.Timeout())) {
		tc.Close()
		return nil
	}
	if r.n == 0 {
		return tc
	}
	return &prefixConn{trackedConn: tc, buf: buf[:r.n]}
}

func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	cfg := &gossh.ServerConfig{
		// A login ends the connection's pre-authentication phase
		// (LoginGraceTime, MaxStartups).
		AuthLogCallback: func(_ gossh.ConnMetadata, _ string, err error) {
			if cs := stateOf(ctx); err == nil && cs != nil && cs.pre != nil {
				cs.pre.loggedIn()
			}
		},
	}
	if s.anyPassword() {
		cfg.PasswordCallback = func(meta gossh.ConnMetadata, password []byte) (*gossh.Permissions, error) {
			if s.checkPassword(ctx, meta.User(), password) {
				return ctx.Permissions().Permissions, nil
			}
			return nil, errors.New("permission denied")
		}
	}
	return cfg
}

// authFaults applies the auth-time faults for user once per connection and
// reports the rule that refuses the login, if any.
func (s *Server) authFaults(ctx ssh.Context, user string) authDecision {
	cs := stateOf(ctx)
	if cs == nil {
		return authDecision{}
	}
	cs.mu.Lock()
	d, seen := cs.auth[user]
	cs.mu.Unlock()
	if seen {
		return d
	}
	fired := s.faultsFor(fault.Op{Layer: fault.SSH, Name: opAuth, User: user})
	wctx, stop := s.connContext(ctx)
	defer stop()
	if cs.pre != nil { // the login grace time ends a held login too
		stopPre := context.AfterFunc(cs.pre.ctx, stop)
		defer stopPre()
	}
	if err := s.wait(wctx, fired); err != nil {
		d.dropped = true
	}
	if r, ok := fault.First(fired, fault.RefuseAuth); ok {
		d.refused = r.ID
	}
	if _, ok := fault.First(fired, fault.Drop); ok {
		d.dropped = true
	}
	if d.dropped {
		cs.conn.Close()
	}
	cs.mu.Lock()
	cs.auth[user] = d
	cs.mu.Unlock()
	return d
}

// admitLogin is what every login attempt goes through before its credential
// is checked: the auth faults, then the user database. reason says why the
// attempt is refused ("": the user may try).
func (s *Server) admitLogin(ctx ssh.Context, user string) (u User, reason string) {
	if d := s.authFaults(ctx, user); d.dropped {
		return User{}, "connection dropped by fault"
	} else if d.refused != "" {
		return User{}, "refused by fault " + d.refused
	}
	u, found := s.lookupUser(user)
	if !found {
		return User{}, "unknown user"
	}
	return u, ""
}

func (s *Server) publicKeyAuth(ctx ssh.Context, key ssh.PublicKey) bool {
	user := ctx.User()
	u, reason := s.admitLogin(ctx, user)
	ok := false
	if reason == "" {
		if cert, isCert := key.(*gossh.Certificate); isCert {
			ok, reason = s.checkUserCert(ctx, user, cert)
		} else {
			reason = "key not authorized"
			want := key.Marshal()
			for _, k := range u.Keys {
				if bytes.Equal(k.Marshal(), want) {
					ok, reason = true, ""
					break
				}
			}
		}
	}
	extra := map[string]any{"key": gossh.FingerprintSHA256(key), "key_type": key.Type()}
	if cert, isCert := key.(*gossh.Certificate); isCert {
		// As sshd logs it: the certificate's own key, its id, serial and CA.
		extra["key"] = gossh.FingerprintSHA256(cert.Key)
		extra["cert_id"] = cert.KeyId
		extra["cert_serial"] = cert.Serial
		extra["ca"] = gossh.FingerprintSHA256(cert.SignatureKey)
	}
	s.recordAuth(ctx, user, "publickey", ok, reason, extra)
	return ok
}

// checkUserCert judges a user certificate as sshd does with
// TrustedUserCAKeys (and no AuthorizedPrincipalsFile): it must be a user
// certificate signed by a trusted CA, name user among its principals, be
// within its validity window and carry no critical option sshd would not
// honour. Its plain key being in authorized_keys does not make it valid
// (the OpenSSH client offers the plain key next). A source-address option
// is enforced by the ssh library after the callback.
func (s *Server) checkUserCert(ctx ssh.Context, user string, cert *gossh.Certificate) (bool, string) {
	if len(s.cfg.userCAs) == 0 {
		return false, "certificate given but no TrustedUserCAKeys"
	}
	checker := gossh.CertChecker{
		IsUserAuthority: func(auth gossh.PublicKey) bool {
			want := auth.Marshal()
			for _, ca := range s.cfg.userCAs {
				if bytes.Equal(ca.Marshal(), want) {
					return true
				}
			}
			return false
		},
		SupportedCriticalOptions: []string{"force-command", "verify-required"},
	}
	if cert.CertType != gossh.UserCert {
		return false, "certificate invalid: not a user certificate"
	}
	if !checker.IsUserAuthority(cert.SignatureKey) {
		return false, "certificate signed by an untrusted CA " + gossh.FingerprintSHA256(cert.SignatureKey)
	}
	if err := checker.CheckCert(user, cert); err != nil {
		return false, "certificate invalid: " + certReason(err)
	}
	if _, forced := cert.CriticalOptions["force-command"]; forced {
		// sshd would run the forced command instead of the one asked for;
		// this server does not, so it refuses rather than run the wrong one.
		return false, "certificate invalid: force-command is not supported by jobsim's sshd"
	}
	if sa, ok := cert.CriticalOptions["source-address"]; ok {
		perms := ctx.Permissions()
		if perms.CriticalOptions == nil {
			perms.CriticalOptions = map[string]string{}
		}
		perms.CriticalOptions["source-address"] = sa
	}
	return true, ""
}

// certReason words CertChecker's errors as sshd's log does.
func certReason(err error) string {
	msg := strings.TrimPrefix(err.Error(), "ssh: ")
	switch {
	case strings.Contains(msg, "expired"):
		return "expired"
	case strings.Contains(msg, "not yet valid"):
		return "not yet valid"
	case strings.Contains(msg, "principal"):
		return "name is not a listed principal"
	case strings.Contains(msg, "signature"):
		return "signature does not verify"
	}
	return msg
}

func (s *Server) checkPassword(ctx ssh.Context, user string, password []byte) bool {
	u, reason := s.admitLogin(ctx, user)
	ok := false
	if reason == "" {
		if u.Password == "" || subtle.ConstantTimeCompare([]byte(u.Password), password) != 1 {
			reason = "wrong password"
		} else {
			ok = true
		}
	}
	s.recordAuth(ctx, user, "password", ok, reason, nil)
	return ok
}

func (s *Server) recordAuth(ctx ssh.Context, user, method string, ok bool, reason string, extra map[string]any) {
	f := map[string]any{"user": user, "method": method, "ok": ok, "remote": remoteOf(ctx)}
	if cs := stateOf(ctx); cs != nil {
		f["conn"] = cs.id
	}
	if reason != "" {
		f["reason"] = reason
	}
	for k, v := range extra {
		f[k] = v
	}
	verdict := "accepted"
	if !ok {
		verdict = "refused (" + reason + ")"
	}
	msg := fmt.Sprintf("%s %s for %s", method, verdict, user)
	if fp, ok := f["key"].(string); ok {
		msg += " key " + fp
	}
	s.record(events.SSHAuth, msg, f)
}

func remoteOf(ctx ssh.Context) string {
	if a := ctx.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// connContext is a context that ends when the connection or the server does.
func (s *Server) connContext(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.base, cancel)
	return c, func() { stop(); cancel() }
}

package sshd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

// maxStartups is sshd's MaxStartups start:rate:full; the zero value is no
// limit.
type maxStartups struct{ start, rate, full int }

// shouldDrop is sshd's should_drop_connection: with n connections not
// logged in yet, a new one is dropped never below start, always from full
// on, and in between with a probability rising linearly from rate% to
// 100%. draw returns a number in [0, 100).
func (m maxStartups) shouldDrop(n int, draw func() int) bool {
	if m.full == 0 || n < m.start {
		return false
	}
	if n >= m.full || m.rate == 100 {
		return true
	}
	p := 100 - m.rate
	p *= n - m.start
	p /= m.full - m.start
	p += m.rate
	return draw() < p
}

// preauthConn is an accepted connection until it logs in: it counts
// against MaxStartups and is closed when the login grace time runs out.
// Login (loggedIn) or closing it ends both.
type preauthConn struct {
	net.Conn
	s *Server

	// ctx ends when the connection is closed or its grace time ran out,
	// releasing a login held by a fault.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	done  bool
	timer *time.Timer
}

// admit applies MaxStartups to a freshly accepted connection and starts
// its login grace timer. A dropped connection is told so and closed, as
// sshd does, and admit returns false.
func (s *Server) admit(c net.Conn) (*preauthConn, bool) {
	n := int(s.startups.Add(1)) - 1
	if s.cfg.maxStartups.shouldDrop(n, func() int { return rand.IntN(100) }) {
		s.startups.Add(-1)
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte("Exceeded MaxStartups\r\n"))
		c.Close()
		m := s.cfg.maxStartups
		s.record(events.SSHConn, fmt.Sprintf("drop connection #%d from %s past MaxStartups %d:%d:%d", n, c.RemoteAddr(), m.start, m.rate, m.full),
			map[string]any{"remote": c.RemoteAddr().String(), "reason": "max-startups", "startups": n, "max_startups": fmt.Sprintf("%d:%d:%d", m.start, m.rate, m.full)})
		return nil, false
	}
	pc := &preauthConn{Conn: c, s: s}
	pc.ctx, pc.cancel = context.WithCancel(context.Background())
	if g := s.cfg.loginGrace; g > 0 {
		pc.mu.Lock()
		pc.timer = time.AfterFunc(g, pc.graceOver)
		pc.mu.Unlock()
	}
	return pc, true
}

// graceOver closes a connection that has not logged in within the grace
// time ("Timeout before authentication" in sshd's log).
func (pc *preauthConn) graceOver() {
	if !pc.finish() {
		return
	}
	g := pc.s.cfg.loginGrace
	pc.s.record(events.SSHConn, fmt.Sprintf("timeout before authentication for %s (LoginGraceTime %v)", pc.RemoteAddr(), g),
		map[string]any{"remote": pc.RemoteAddr().String(), "reason": "login-grace-time", "login_grace_ms": g.Milliseconds()})
	pc.cancel()
	_ = pc.Conn.Close()
}

// loggedIn ends the pre-authentication phase: the connection no longer
// counts against MaxStartups and the grace timer stops.
func (pc *preauthConn) loggedIn() { pc.finish() }

// finish ends the phase once; it reports whether this call did.
func (pc *preauthConn) finish() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.done {
		return false
	}
	pc.done = true
	if pc.timer != nil {
		pc.timer.Stop()
	}
	pc.s.startups.Add(-1)
	return true
}

// tcpOf finds the TCP connection under c, unwrapping through NetConn (as
// crypto/tls.Conn offers it), or returns nil.
func tcpOf(c net.Conn) *net.TCPConn {
	for c != nil {
		if tc, ok := c.(*net.TCPConn); ok {
			return tc
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = w.NetConn()
	}
	return nil
}

// NetConn is the accepted connection (for TCP options, see quickAck).
func (pc *preauthConn) NetConn() net.Conn { return pc.Conn }

func (pc *preauthConn) Close() error {
	pc.finish()
	pc.cancel()
	return pc.Conn.Close()
}

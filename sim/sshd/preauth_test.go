package sshd

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/testutil"
)

// rawConn opens a TCP connection that never logs in and returns it with
// the first line the server sent.
func rawConn(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return c, line
}

// closedByServer waits until the server closes c (a read sees EOF).
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF, not the deadline
}

// TestLoginGraceTime: a connection that has not logged in within the grace
// time is closed, as sshd's LoginGraceTime does, also when a fault holds
// its login; one that logged in keeps its connection for longer.
func TestLoginGraceTime(t *testing.T) {
	h := newTestHost(t, WithLoginGraceTime(300*time.Millisecond))
	ctx := testCtx(t, 30*time.Second)

	c, banner := rawConn(t, h.srv.Addr())
	if !strings.HasPrefix(banner, "SSH-2.0-") {
		t.Fatalf("banner %q", banner)
	}
	if !closedByServer(t, c) {
		t.Errorf("a silent connection was not closed after the grace time")
	}
	ev := h.waitEvent(ctx, events.SSHConn, nil)
	if ev.Fields["reason"] != "login-grace-time" || ev.Fields["login_grace_ms"] != int64(300) {
		t.Errorf("ssh.conn: %+v", ev.Fields)
	}

	// The real client, its login held by a fault, is cut off.
	rule := addRule(t, h, fault.Rule{Ops: []string{"auth"}, Effect: fault.Effect{Kind: fault.Hang}})
	if r := h.ssh(ctx, "true"); r.code != 255 {
		t.Errorf("held login past the grace time: %v", r)
	}
	h.faults.Remove(rule.ID)

	// Logged in: a command longer than the grace time runs to its end.
	if r := h.ssh(ctx, "sleep 1; echo ok"); r.stdout != "ok\n" {
		t.Errorf("command longer than the grace time: %v", r)
	}
	if n := h.srv.startups.Load(); n != 0 {
		t.Errorf("%d connections still counted as not logged in", n)
	}
}

// TestMaxStartups: with MaxStartups 2 (a hard limit, sshd's 2:100:2) a
// third connection that has not logged in is dropped with sshd's message;
// logged-in connections do not count.
func TestMaxStartups(t *testing.T) {
	h := newTestHost(t, WithMaxStartups(2, 100, 2))
	ctx := testCtx(t, 30*time.Second)
	a, _ := rawConn(t, h.srv.Addr())
	b, _ := rawConn(t, h.srv.Addr())
	c, line := rawConn(t, h.srv.Addr())
	if line != "Exceeded MaxStartups\r\n" {
		t.Errorf("third connection got %q, want sshd's Exceeded MaxStartups", line)
	}
	if !closedByServer(t, c) {
		t.Errorf("the dropped connection stays open")
	}
	if r := h.ssh(ctx, "echo in"); r.code != 255 {
		t.Errorf("the real client past MaxStartups: %v", r)
	}
	ev := h.waitEvent(ctx, events.SSHConn, nil)
	if ev.Fields["reason"] != "max-startups" || ev.Fields["startups"] != 2 || ev.Fields["max_startups"] != "2:100:2" {
		t.Errorf("ssh.conn: %+v", ev.Fields)
	}
	a.Close()
	b.Close()
	testutil.WaitFor(t, "the closed connections to stop counting", 30*time.Second, func() bool { return h.srv.startups.Load() == 0 })
	// Logged-in connections are not counted.
	for range 3 {
		_ = h.goClient(t)
	}
	if r := h.ssh(ctx, "echo in"); r.stdout != "in\n" {
		t.Errorf("login with three logged-in connections open: %v", r)
	}
}

// TestMaxStartupsDropProbability is sshd's should_drop_connection for
// 10:30:100: never below 10, 30% at 10, rising linearly, always from 100.
func TestMaxStartupsDropProbability(t *testing.T) {
	m := maxStartups{start: 10, rate: 30, full: 100}
	pct := func(n int) int { // how many of the draws 0..99 drop
		k := 0
		for d := range 100 {
			if m.shouldDrop(n, func() int { return d }) {
				k++
			}
		}
		return k
	}
	for n, want := range map[int]int{0: 0, 9: 0, 10: 30, 55: 65, 99: 99, 100: 100, 500: 100} {
		if got := pct(n); got != want {
			t.Errorf("%d connections not logged in: %d%% dropped, want %d%%", n, got, want)
		}
	}
	if (maxStartups{}).shouldDrop(1000, func() int { return 0 }) {
		t.Errorf("the zero value limits")
	}
	for _, bad := range [][3]int{{0, 30, 100}, {10, 0, 100}, {10, 101, 100}, {10, 30, 5}} {
		if _, err := New(WithMaxStartups(bad[0], bad[1], bad[2])); err == nil {
			t.Errorf("WithMaxStartups%v accepted", bad)
		}
	}
}

// TestTCPOfUnwraps: the TCP options the server sets per read (quickAck)
// reach the socket under the connection wrappers of admit.
func TestTCPOfUnwraps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := tcpOf(&preauthConn{Conn: c}); got != c {
		t.Errorf("tcpOf(preauthConn) = %v, want the TCP connection", got)
	}
	if got := tcpOf(struct{ net.Conn }{c}); got != nil {
		t.Errorf("tcpOf of an opaque wrapper = %v, want nil", got)
	}
}

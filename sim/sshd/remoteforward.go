package sshd

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// remoteForwards are one connection's remote port forwards (ssh -R), by
// the address the client named and the port the server bound.
type remoteForwards struct {
	mu sync.Mutex
	ln map[string]net.Listener
}

// handleGlobalForward serves the tcpip-forward and cancel-tcpip-forward
// global requests of remote port forwarding (ssh -R): the server listens
// on the host and opens a forwarded-tcpip channel back to the client for
// every connection it accepts there. As OpenSSH's sshd with its default
// GatewayPorts no, the listener is bound to the loopback address whatever
// address the client names. A forward ends when the client cancels it, its
// connection ends or the server closes. The fault op is "forward" with
// Command "-R PORT" (the port asked for), so a rule can refuse or delay it.
func (s *Server) handleGlobalForward(ctx ssh.Context, _ *ssh.Server, req *gossh.Request) (bool, []byte) {
	var r struct {
		BindAddr string
		BindPort uint32
	}
	if err := gossh.Unmarshal(req.Payload, &r); err != nil || r.BindPort > 65535 {
		return false, nil
	}
	cs := stateOf(ctx)
	if cs == nil {
		return false, nil
	}
	key := func(port int) string { return net.JoinHostPort(r.BindAddr, strconv.Itoa(port)) }
	if req.Type == "cancel-tcpip-forward" {
		cs.forwards.mu.Lock()
		ln, ok := cs.forwards.ln[key(int(r.BindPort))]
		cs.forwards.mu.Unlock()
		if ok {
			ln.Close()
		}
		return ok, nil
	}

	user := ctx.User()
	asked := key(int(r.BindPort))
	f := map[string]any{"user": user, "conn": cs.id, "direction": "remote", "bind": asked}
	refuse := func(why string) (bool, []byte) {
		f["ok"], f["error"] = false, why
		s.record(events.SSHForward, fmt.Sprintf("remote forward %s by %s: %s", asked, user, why), f)
		return false, nil
	}
	if s.cfg.forward == ForwardNone {
		return refuse("port forwarding is not allowed")
	}
	fired := s.faultsFor(fault.Op{Layer: fault.SSH, Name: opForward, Command: "-R " + strconv.Itoa(int(r.BindPort)), User: user})
	if len(fired) > 0 {
		f["faults"] = ruleIDs(fired)
	}
	wctx, stop := s.connContext(ctx)
	err := s.wait(wctx, fired)
	stop()
	if err != nil {
		return refuse("client went away while a fault held the forward")
	}
	if rule, ok := fault.First(fired, fault.Exit); ok {
		return refuse("forwarding refused by fault " + rule.ID)
	}
	if !s.enter() {
		return false, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(r.BindPort))))
	if err != nil {
		s.wg.Done()
		return refuse(err.Error())
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cs.forwards.mu.Lock()
	if cs.forwards.ln == nil {
		cs.forwards.ln = map[string]net.Listener{}
	}
	cs.forwards.ln[key(port)] = ln
	cs.forwards.mu.Unlock()
	f["ok"], f["listen"] = true, ln.Addr().String()
	s.record(events.SSHForward, fmt.Sprintf("remote forward %s by %s: listening on %s", asked, user, ln.Addr()), f)

	conn := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
	end := context.AfterFunc(ctx, func() { ln.Close() })
	endBase := context.AfterFunc(s.base, func() { ln.Close() })
	go func() {
		defer s.wg.Done()
		defer endBase()
		defer end()
		var copies sync.WaitGroup
		defer copies.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			copies.Add(1)
			go func() {
				defer copies.Done()
				s.forwardBack(ctx, conn, c, r.BindAddr, port)
			}()
		}
		cs.forwards.mu.Lock()
		delete(cs.forwards.ln, key(port))
		cs.forwards.mu.Unlock()
	}()
	if r.BindPort == 0 {
		return true, gossh.Marshal(struct{ Port uint32 }{uint32(port)})
	}
	return true, nil
}

// forwardBack carries one connection accepted for a remote forward over a
// forwarded-tcpip channel to the client, until either side closes, the
// client's connection ends or the server closes.
func (s *Server) forwardBack(ctx context.Context, conn *gossh.ServerConn, c net.Conn, bindAddr string, port int) {
	defer c.Close()
	origin := c.RemoteAddr().(*net.TCPAddr)
	ch, reqs, err := conn.OpenChannel("forwarded-tcpip", gossh.Marshal(struct {
		DestAddr   string
		DestPort   uint32
		OriginAddr string
		OriginPort uint32
	}{bindAddr, uint32(port), origin.IP.String(), uint32(origin.Port)}))
	if err != nil {
		return
	}
	go gossh.DiscardRequests(reqs)
	stop := context.AfterFunc(s.base, func() { ch.Close(); c.Close() })
	defer stop()
	stopConn := context.AfterFunc(ctx, func() { ch.Close(); c.Close() })
	defer stopConn()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(ch, c)
		_ = ch.CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, ch)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
	ch.Close()
}

package sshd

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// handleDirectTCPIP serves local port forwarding (ssh -L): one channel per
// forwarded TCP connection. The fault op is "forward" with Command set to
// the target "host:port".
func (s *Server) handleDirectTCPIP(_ *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	if !s.enter() {
		_ = nc.Reject(gossh.ResourceShortage, "server is shutting down")
		return
	}
	defer s.wg.Done()
	var d struct {
		DestAddr   string
		DestPort   uint32
		OriginAddr string
		OriginPort uint32
	}
	if err := gossh.Unmarshal(nc.ExtraData(), &d); err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, "bad direct-tcpip request: "+err.Error())
		return
	}
	start := time.Now()
	dest := net.JoinHostPort(d.DestAddr, strconv.FormatUint(uint64(d.DestPort), 10))
	user := conn.User()
	cs := stateOf(ctx)
	f := map[string]any{"user": user, "dest": dest, "origin": net.JoinHostPort(d.OriginAddr, strconv.FormatUint(uint64(d.OriginPort), 10))}
	if cs != nil {
		f["conn"] = cs.id
	}
	done := func(ok bool, errText string) {
		f["ok"] = ok
		f["duration_ms"] = float64(time.Since(start).Microseconds()) / 1000
		msg := fmt.Sprintf("forward %s by %s", dest, user)
		if errText != "" {
			f["error"] = errText
			msg += ": " + errText
		}
		s.record(events.SSHForward, msg, f)
	}
	reject := func(reason gossh.RejectionReason, text string) {
		_ = nc.Reject(reason, text)
		done(false, text)
	}

	if !s.forwardAllowed(d.DestAddr) {
		reject(gossh.Prohibited, "port forwarding to "+dest+" is not allowed")
		return
	}
	fired := s.faultsFor(fault.Op{Layer: fault.SSH, Name: opForward, Command: dest, User: user})
	if len(fired) > 0 {
		f["faults"] = ruleIDs(fired)
	}
	wctx, stop := s.connContext(ctx)
	defer stop()
	if err := s.wait(wctx, fired); err != nil {
		reject(gossh.ConnectionFailed, "client went away while a fault held the forward")
		return
	}
	if r, ok := fault.First(fired, fault.Exit); ok {
		text := r.Effect.Stderr
		if text == "" {
			text = "forwarding refused by fault " + r.ID
		}
		reject(gossh.ConnectionFailed, text)
		return
	}
	var drop *dropper
	if r, ok := fault.First(fired, fault.Drop); ok {
		drop = &dropper{limit: r.Effect.AfterBytes, closer: conn}
		if drop.limit == 0 {
			drop.drop()
			f["dropped"] = true
			done(false, "connection dropped by fault")
			return
		}
	}

	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(wctx, 10*time.Second)
	dconn, err := dialer.DialContext(dctx, "tcp", dest)
	cancel()
	if err != nil {
		reject(gossh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		dconn.Close()
		done(false, "accept channel: "+err.Error())
		return
	}

	// Copy both ways with half-close; when the channel or the connection
	// goes, close everything.
	up := &countWriter{w: dconn}
	down := &countWriter{w: ch, drop: drop}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(up, ch)
		if tc, ok := dconn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(down, dconn)
		_ = ch.CloseWrite()
	}()
	copied := make(chan struct{})
	go func() { wg.Wait(); close(copied) }()
	reqsDone := make(chan struct{})
	go func() {
		for req := range reqs {
			_ = req.Reply(false, nil)
		}
		close(reqsDone)
	}()
	select {
	case <-copied:
	case <-reqsDone: // the client closed the channel or the connection ended
	case <-s.base.Done():
	}
	ch.Close()
	dconn.Close()
	<-copied
	<-reqsDone
	f["bytes_up"] = up.n.Load()
	f["bytes_down"] = down.n.Load()
	if drop.dropped() {
		f["dropped"] = true
	}
	done(true, "")
}

func (s *Server) forwardAllowed(host string) bool {
	switch s.cfg.forward {
	case ForwardNone:
		return false
	case ForwardLoopback:
		if host == "localhost" {
			return true
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return true
}

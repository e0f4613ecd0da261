// Package netfault applies the network layer of the fault rules ("net":
// latency, drop, hang on connections) to the TCP listeners of a host, after
// Toxiproxy: every accepted connection asks the rule set once, and the rules
// that fire shape that connection for its whole life. In containers the
// same faults are made with the engine (disconnect, pause); this is the
// in-process equivalent.
package netfault

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/fault"
)

// Listener wraps a listener so that net rules apply to its connections.
type Listener struct {
	net.Listener
	set     *fault.Set
	service string
	ctx     context.Context
	cancel  context.CancelFunc
}

// Wrap applies set's net rules to ln's connections. service names what
// listens ("ssh", "control") and is matched by a rule's Command regexp.
func Wrap(ln net.Listener, set *fault.Set, service string) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &Listener{Listener: ln, set: set, service: service, ctx: ctx, cancel: cancel}
}

// Close closes the listener and releases connections held by a hang.
func (l *Listener) Close() error {
	l.cancel()
	return l.Listener.Close()
}

// Accept returns the next connection, shaped by the rules that fire for it.
// A connection that must hang is held (its bytes never served) until the
// rule is cleared, then closed; Accept goes on with the next one.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		fired := l.set.Check(fault.Op{Layer: fault.Net, Name: "connect", Command: l.service})
		if len(fired) == 0 {
			return c, nil
		}
		if _, hang := fault.First(fired, fault.Hang); hang {
			go func() {
				_ = l.set.Wait(l.ctx, fired)
				c.Close()
			}()
			continue
		}
		fc := &conn{Conn: c, limit: -1}
		if r, ok := fault.First(fired, fault.Drop); ok {
			if r.Effect.AfterBytes <= 0 {
				c.Close()
				continue
			}
			fc.limit = r.Effect.AfterBytes
		}
		if r, ok := fault.First(fired, fault.Latency); ok {
			fc.latency = r.Effect.Latency.D()
		}
		return fc, nil
	}
}

// conn delays each write by latency and closes after limit bytes written.
type conn struct {
	net.Conn
	latency time.Duration
	mu      sync.Mutex
	limit   int64 // bytes the server may still send; -1: no limit
}

func (c *conn) Write(p []byte) (int, error) {
	if c.latency > 0 {
		time.Sleep(c.latency)
	}
	c.mu.Lock()
	if c.limit < 0 {
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	if int64(len(p)) <= c.limit {
		c.limit -= int64(len(p))
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	n := c.limit
	c.limit = 0
	c.mu.Unlock()
	w, _ := c.Conn.Write(p[:n])
	c.Conn.Close()
	return w, net.ErrClosed
}

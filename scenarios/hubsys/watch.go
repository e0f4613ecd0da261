package hubsys

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jobsim/jobsim/scenarios/hub"
)

// watch records every user's server state until ctx ends.
func (s *System) watch(ctx context.Context) {
	defer close(s.watchDone)
	t := time.NewTicker(s.o.watchEvery)
	defer t.Stop()
	for {
		s.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads the hub's user list once and records state changes of every
// tracked server, and of named servers first seen now.
func (s *System) poll(ctx context.Context) {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	asked := time.Now()
	list, err := c.Users(rctx)
	if err != nil {
		if ctx.Err() == nil {
			s.o.logger.Debug("hub users", "err", err)
		}
		return
	}
	byName := map[string]hub.User{}
	for _, u := range list {
		if !slices.Contains(s.spec.Users, u.Name) {
			continue
		}
		byName[u.Name] = u
		// A named server started outside the timeline (a request step)
		// is tracked from now on.
		for name := range u.Servers {
			if name != "" {
				s.track(ServerRef{User: u.Name, Name: name})
			}
		}
	}
	for _, st := range s.tracked() {
		u, ok := byName[st.ref.User]
		if !ok {
			continue
		}
		s.observe(ctx, c, st, u, asked)
	}
}

// observe turns one user model, asked for at asked, into a state
// transition of one server. A model older than the server's last recorded
// state says nothing new: the answer to a spawn or stop request (201 ready,
// 204 stopped) that came while the list was on its way is newer.
func (s *System) observe(ctx context.Context, c *hub.Client, st *serverState, u hub.User, asked time.Time) {
	s.mu.Lock()
	stale := st.since.After(asked)
	s.mu.Unlock()
	if stale {
		return
	}
	r := st.ref
	srv, active := u.Servers[r.Name]
	prev := s.state(st)
	switch {
	case active && srv.Ready:
		s.transition(st, StateReady, "ready at "+srv.URL, nil)
	case active && srv.Pending != nil && *srv.Pending == "spawn":
		s.transition(st, StatePending, "the hub reports the spawn pending", nil)
	case active:
		// Stopping, or between states: nothing new to say.
	case prev == StatePending && s.spawning(st):
		// The hub may not have registered the spawn yet.
	case prev == StatePending:
		// The hub dropped a pending server: the spawn failed. The progress
		// stream keeps the reason.
		msg := "the hub dropped the pending server"
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		evs, err := c.NamedProgressEvents(pctx, r.User, r.Name)
		cancel()
		if err == nil && len(evs) > 0 && evs[len(evs)-1].Failed {
			msg = strings.TrimPrefix(evs[len(evs)-1].Message, "Spawn failed: ")
		}
		s.transition(st, StateFailed, msg, map[string]any{"phase": "spawn"})
	case prev == StateReady:
		s.mu.Lock()
		requested := st.stopRequested
		s.mu.Unlock()
		if requested {
			s.transition(st, StateStopped, "stopped", nil)
			return
		}
		msg := "the server stopped without a stop request (the hub found it gone)"
		// The hub's log line names the user only, not which of their
		// servers stopped: it is read for the default server alone.
		if code, ok := s.exitCode(r.User); ok && !r.Named() {
			msg = fmt.Sprintf("the server stopped without a stop request: the hub reports exit code %s", code)
		}
		s.transition(st, StateFailed, msg, map[string]any{"phase": "running"})
	}
}

func (s *System) spawning(st *serverState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return st.spawning
}

// exitCode finds the last "User NAME server stopped, with exit code: N"
// line of the hub log (JupyterHub 3 writes it when its poll finds a
// server gone).
func (s *System) exitCode(user string) (string, bool) {
	s.mu.Lock()
	h := s.hub
	s.mu.Unlock()
	if h == nil {
		return "", false
	}
	b, err := os.ReadFile(h.LogPath())
	if err != nil {
		return "", false
	}
	re := regexp.MustCompile(`User ` + regexp.QuoteMeta(user) + ` server stopped,? with exit code: (\S+)`)
	m := re.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return "", false
	}
	return string(m[len(m)-1][1]), true
}

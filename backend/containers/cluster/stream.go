package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/base/events"
)

// streamer copies one machine's events into the topology's history as they
// happen (the control API's event stream), resuming after broken streams
// and starting over when the machine restarts with a fresh history.
type streamer struct {
	c      *container.Container
	log    *events.Log
	logger *slog.Logger

	mu      sync.Mutex
	since   int64
	paused  bool
	cancel  context.CancelFunc // of the stream in progress
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

func newStreamer(life context.Context, c *container.Container, log *events.Log, logger *slog.Logger) *streamer {
	s := &streamer{c: c, log: log, logger: logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.loop(life)
	return s
}

func (s *streamer) loop(life context.Context) {
	defer close(s.done)
	for {
		s.mu.Lock()
		if s.stopped || life.Err() != nil {
			s.mu.Unlock()
			return
		}
		paused := s.paused
		var ctx context.Context
		if !paused {
			ctx, s.cancel = context.WithCancel(life)
		}
		since := s.since
		s.mu.Unlock()
		if !paused {
			// Asked anew each time: a restarted machine's control port may
			// have moved (published-port mode).
			err := s.c.Control().StreamEvents(ctx, since, s.record)
			s.mu.Lock()
			s.cancel()
			s.cancel = nil
			s.mu.Unlock()
			if err != nil {
				s.logger.Debug("cluster: event stream broken; resuming", "host", s.c.Name(), "err", err)
			}
		}
		select {
		case <-life.Done():
			return
		case <-s.wake:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// record takes one event of the machine into the history, once.
func (s *streamer) record(e events.Event) error {
	s.mu.Lock()
	if e.Seq <= s.since {
		s.mu.Unlock()
		return nil
	}
	s.since = e.Seq
	s.mu.Unlock()
	if e.Host == "" {
		e.Host = s.c.Name()
	}
	e.Seq = 0
	s.log.Record(e)
	return nil
}

// pause ends the current stream (the machine is about to restart).
func (s *streamer) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = true
	if s.cancel != nil {
		s.cancel()
	}
}

// restart streams the restarted machine's new history from its start.
func (s *streamer) restart() {
	s.mu.Lock()
	s.paused, s.since = false, 0
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drain stops streaming and copies what the machine recorded since the
// last event streamed (a machine that is down has nothing more to say).
func (s *streamer) drain(ctx context.Context) {
	s.mu.Lock()
	s.stopped = true
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return
	}
	s.mu.Lock()
	since := s.since
	s.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	evs, err := s.c.Control().Events(dctx, since)
	if err != nil {
		return
	}
	for _, e := range evs {
		_ = s.record(e)
	}
}

package fakepbs

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

// DefaultRestartDown is how long a restarting server is down when
// RestartOptions.Down is zero: about what `qterm` followed by `pbs_server`
// takes on a real login node.
const DefaultRestartDown = 2 * time.Second

// RestartOptions says how a server restart goes.
type RestartOptions struct {
	// Down is how long the server does not answer; zero means
	// DefaultRestartDown.
	Down time.Duration `json:"down,omitempty"`
	// LoseJobs brings the server back with an empty datastore, as after a
	// lost or reinitialised PBS_HOME: every job, queued or running, and the
	// history are gone (running scripts are killed). Without it the restart
	// is OpenPBS's usual `qterm -t quick`: jobs are kept, running ones keep
	// running, and ends that came while the server was down are there when
	// it is back.
	LoseJobs bool `json:"lose_jobs,omitempty"`
}

// Restart stops the server and starts it again after o.Down. While it is
// down every client command gets the answer of a server that is not
// running ("Connection refused", see cli.Unreachable) and no job is
// started; what happens to the jobs is o.LoseJobs. Restarting a server that
// is already down is an error. Both ends are recorded as host events.
func (s *Server) Restart(_ context.Context, o RestartOptions) error {
	if o.Down < 0 {
		return fmt.Errorf("restart: down %v is negative", o.Down)
	}
	if o.Down == 0 {
		o.Down = DefaultRestartDown
	}
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	if s.closed {
		s.unlock()
		return ErrServerClosed
	}
	if s.down {
		s.unlock()
		return fmt.Errorf("restart: the PBS server %s is already down", s.name)
	}
	s.down = true
	how := "jobs kept (qterm -t quick)"
	if o.LoseJobs {
		how = "datastore lost"
	}
	s.recordServer("down", fmt.Sprintf("pbs_server %s stopped for %v; %s", s.name, o.Down, how), o)
	lost := 0
	if o.LoseJobs {
		for _, j := range slices.Clone(s.order) { // drop compacts s.order
			if !j.gone {
				s.drop(j, "lost with the PBS server's datastore")
				lost++
			}
		}
	}
	s.stopComeUp = s.after(o.Down, s.comeUp)
	s.unlock()
	if lost > 0 {
		s.log.Info("PBS server restart lost its jobs", "server", s.name, "jobs", lost)
	}
	return nil
}

// Down reports whether the server is down (restarting).
func (s *Server) Down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// comeUp ends a restart: the server answers again and schedules.
func (s *Server) comeUp() {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	if s.closed || !s.down {
		s.unlock()
		return
	}
	s.down = false
	s.recordServer("up", fmt.Sprintf("pbs_server %s started; %d jobs recovered", s.name, len(s.jobs)), RestartOptions{})
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
}

// recordServer records a server lifecycle event.
func (s *Server) recordServer(state, msg string, o RestartOptions) {
	f := map[string]any{"pbs_server": s.name, "state": state}
	if state == "down" {
		f["down"] = o.Down.String()
		f["lose_jobs"] = strconv.FormatBool(o.LoseJobs)
	}
	s.rec.Record(events.Event{Time: s.clock.Now(), Kind: events.HostLifecycle, Msg: msg, Fields: f})
}

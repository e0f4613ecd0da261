package fakepbs

import (
	"context"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// PBSFault is the event kind of a PBS fault taking hold of a job (kept in a
// state by a stuck rule, released when the rule is cleared). State changes
// themselves are events.PBSJobState.
const PBSFault events.Kind = "pbs.fault"

// ApplyFaults checks every job the server holds (queued, held, waiting,
// running, exiting) against the fault set's "pbs" rules for op "run", so
// that a vanish or stuck rule added after a job started takes hold of it.
// The scheduler does this by itself at its next cycle when it sees a new
// rule; call ApplyFaults to have it happen at once. It returns how many
// jobs a rule took hold of.
func (s *Server) ApplyFaults() int {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	n := s.applyFaultsLocked()
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
	return n
}

func (s *Server) applyFaultsLocked() int {
	if s.faults == nil || s.closed {
		return 0
	}
	for _, r := range s.faults.List() {
		s.seenRules[r.ID] = true
	}
	live := make([]*job, 0, len(s.jobs))
	for _, j := range s.order {
		if !j.gone && j.State != Finished && j.pin == 0 {
			live = append(live, j)
		}
	}
	n := 0
	for _, j := range live {
		if !j.gone && s.checkJobFaults(j) {
			n++
		}
	}
	return n
}

// checkJobFaults checks j against the rules for op "run" and applies the
// vanish and stuck ones that fire, reporting whether one did.
func (s *Server) checkJobFaults(j *job) bool {
	fired := s.faults.Check(fault.Op{Layer: fault.PBS, Name: "run", User: j.User, Job: j.ID, Command: j.Name})
	var held []fault.Rule
	for _, r := range fired {
		if r.Effect.Kind == fault.Vanish || r.Effect.Kind == fault.Stuck {
			held = append(held, r)
		}
	}
	if len(held) == 0 {
		return false
	}
	s.applyRules(j, held)
	return true
}

// hasJobRules reports whether the fault set has a vanish or stuck rule.
func (s *Server) hasJobRules() bool {
	for _, r := range s.faults.List() {
		if r.Layer == fault.PBS && (r.Effect.Kind == fault.Vanish || r.Effect.Kind == fault.Stuck) {
			return true
		}
	}
	return false
}

// syncFaults notices rules added or cleared since the last cycle: new
// vanish and stuck rules are applied to the jobs already there, and jobs
// kept in a state by a rule that is gone are let go. Called with s.mu held.
func (s *Server) syncFaults() {
	rules := s.faults.List()
	if len(rules) == 0 && len(s.seenRules) == 0 && len(s.pinned) == 0 {
		return
	}
	present := make(map[string]bool, len(rules))
	fresh := false
	for _, r := range rules {
		present[r.ID] = true
		if !s.seenRules[r.ID] {
			s.seenRules[r.ID] = true
			if r.Layer == fault.PBS && (r.Effect.Kind == fault.Vanish || r.Effect.Kind == fault.Stuck) {
				fresh = true
			}
		}
	}
	for id := range s.seenRules {
		if !present[id] {
			delete(s.seenRules, id)
		}
	}
	for j := range s.pinned {
		if !present[j.pinRule] {
			s.unpin(j)
		}
	}
	if fresh {
		s.applyFaultsLocked()
	}
}

// applyRules applies the vanish and stuck rules that fired for j. It
// reports whether j must not be started now (gone, or kept queued).
func (s *Server) applyRules(j *job, fired []fault.Rule) bool {
	for _, r := range fired {
		switch r.Effect.Kind {
		case fault.Vanish:
			s.vanish(j, r.ID)
			return true
		case fault.Stuck:
			if j.pin == 0 && len(r.Effect.State) == 1 {
				j.pin, j.pinRule = State(r.Effect.State[0]), r.ID
				s.pinned[j] = struct{}{}
				s.rec.Record(pinEvent(j, s.clock.Now(), "kept in "+r.Effect.State+" by fault rule "+r.ID))
			}
		}
	}
	return j.pin == Queued && j.State == Queued
}

// vanish removes j from the server as if it had never been.
func (s *Server) vanish(j *job, rule string) { s.drop(j, "vanished (fault rule "+rule+")") }

// drop removes j without a trace: the script is killed, nothing is staged,
// no history is kept, its dependants wait on.
func (s *Server) drop(j *job, reason string) {
	s.recordGone(j, reason)
	j.stopTimers()
	if j.run != nil {
		s.kill(j.run)
		j.run = nil
	}
	s.releaseNodes(j)
	for _, e := range j.deps {
		e.done = true
	}
	s.removeJob(j)
}

// unpin lets a job go on from the state a cleared stuck rule kept it in.
func (s *Server) unpin(j *job) {
	pin := j.pin
	j.pin, j.pinRule = 0, ""
	delete(s.pinned, j)
	s.rec.Record(pinEvent(j, s.clock.Now(), "fault cleared; leaving "+pin.String()))
	switch {
	case (j.State == Running && j.run != nil && j.run.scriptEnded) || j.State == Exiting:
		r := j.run
		if r == nil {
			return
		}
		reason := "fault cleared; script had ended"
		s.wg.Add(1)
		s.clock.Go(s.ctx, func(context.Context) {
			defer s.wg.Done()
			s.exitJob(j, r, reason)
		})
	case j.State == Held || j.State == Waiting:
		s.reevaluate(j, "fault cleared")
	}
}

func pinEvent(j *job, now time.Time, msg string) events.Event {
	return events.Event{Time: now, Kind: PBSFault, Msg: j.ID + " " + msg,
		Fields: map[string]any{"job": j.ID, "state": stateName(j.State), "reason": msg}}
}

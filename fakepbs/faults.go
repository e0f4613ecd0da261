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
// that a vanish or stuck rule takes hold of it. The server does this by
// itself, at once, whenever a rule is added, and lets a job go as soon as
// the stuck rule that keeps it is removed or cleared (it subscribes to the
// set's changes); call ApplyFaults for a rule whose start window opened
// after it was added. A job kept in a state by a stuck rule is still taken
// by a vanish rule. It returns how many jobs a rule took hold of.
func (s *Server) ApplyFaults() int {
	n := 0
	s.actOnJobs(func() { n = s.applyFaultsLocked(nil) })
	return n
}

// actOnJobs runs f with the server locked and its clock held, then lets
// the scheduler start what f made startable. Nothing runs after Close.
func (s *Server) actOnJobs(f func()) {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	if s.closed {
		s.unlock()
		return
	}
	f()
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
}

// faultsChanged is told of every change to the fault rules: vanish and
// stuck rules added take hold of the jobs already there, and jobs kept in
// a state by a stuck rule that was removed go on from it, before the call
// that changed the rules returns.
func (s *Server) faultsChanged(c fault.Change) {
	var added []fault.Rule
	for _, r := range c.Added {
		if isJobRule(r) {
			added = append(added, r)
		}
	}
	removed := map[string]bool{}
	for _, r := range c.Removed {
		if isJobRule(r) {
			removed[r.ID] = true
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return
	}
	s.actOnJobs(func() {
		for id := range removed {
			s.stopRuleTimers(id)
		}
		for j := range s.pinned {
			if removed[j.pinRule] {
				s.unpin(j)
			}
		}
		for _, r := range added {
			s.timeRule(r)
		}
		if len(added) > 0 {
			ids := make(map[string]bool, len(added))
			for _, r := range added {
				ids[r.ID] = true
			}
			s.applyFaultsLocked(ids)
		}
	})
}

// timeRule arms timers for a vanish or stuck rule whose window opens later
// (it then takes hold of the jobs already there, as when it is added) or
// closes (the jobs it keeps then go on, as when it is cleared). Called with
// s.mu held.
func (s *Server) timeRule(r fault.Rule) {
	from, until, ok := s.faults.Window(r.ID)
	if !ok {
		return
	}
	now := s.clock.Now()
	id := r.ID
	if from.After(now) {
		s.ruleTimers[id] = append(s.ruleTimers[id], s.after(from.Sub(now), func() { s.ruleWindow(id, true) }))
	}
	if !until.IsZero() {
		s.ruleTimers[id] = append(s.ruleTimers[id], s.after(until.Sub(now), func() { s.ruleWindow(id, false) }))
	}
}

// ruleWindow acts on the window of rule id opening (the rule takes hold of
// the jobs there) or closing (the jobs it keeps go on).
func (s *Server) ruleWindow(id string, opens bool) {
	s.actOnJobs(func() {
		if opens {
			s.applyFaultsLocked(map[string]bool{id: true})
			return
		}
		for j := range s.pinned {
			if j.pinRule == id {
				s.unpin(j)
			}
		}
	})
}

// stopRuleTimers stops the window timers of rule id. Called with s.mu held.
func (s *Server) stopRuleTimers(id string) {
	for _, stop := range s.ruleTimers[id] {
		stop()
	}
	delete(s.ruleTimers, id)
}

// isJobRule reports whether r is a PBS rule that holds a job: vanish or stuck.
func isJobRule(r fault.Rule) bool {
	return r.Layer == fault.PBS && (r.Effect.Kind == fault.Vanish || r.Effect.Kind == fault.Stuck)
}

// applyFaultsLocked checks the live jobs against the rules with the given
// ids (all rules when nil) and applies the vanish and stuck ones that
// fire. Called with s.mu held.
func (s *Server) applyFaultsLocked(ids map[string]bool) int {
	if s.faults == nil || s.closed {
		return 0
	}
	live := make([]*job, 0, len(s.jobs))
	for _, j := range s.order {
		if !j.gone && j.State != Finished {
			live = append(live, j)
		}
	}
	n := 0
	for _, j := range live {
		if !j.gone && s.checkJobFaults(j, ids) {
			n++
		}
	}
	return n
}

// checkJobFaults checks j against the rules (with the given ids; all when
// nil) for op "run" and applies the vanish and stuck ones that fire,
// reporting whether one did. A job kept in a state already is only checked
// against vanish rules: a second stuck rule has nothing to hold.
func (s *Server) checkJobFaults(j *job, ids map[string]bool) bool {
	pinned := j.pin != 0
	fired := s.faults.CheckWhere(fault.Op{Layer: fault.PBS, Name: "run", User: j.User, Job: j.ID, Command: j.Name}, func(r fault.Rule) bool {
		if ids != nil && !ids[r.ID] {
			return false
		}
		return r.Effect.Kind == fault.Vanish || r.Effect.Kind == fault.Stuck && !pinned
	})
	if len(fired) == 0 {
		return false
	}
	s.applyRules(j, fired)
	return true
}

// hasJobRules reports whether the fault set has a vanish or stuck rule.
func (s *Server) hasJobRules() bool {
	for _, r := range s.faults.List() {
		if isJobRule(r) {
			return true
		}
	}
	return false
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

package fakepbs

import (
	"context"
	"syscall"
)

// Requeue puts a running job back in its queue, as OpenPBS's force_reque
// does when the job's primary execution host stayed down for
// node_fail_requeue (node_down_requeue in src/server/node_manager.c) and
// the job is rerunnable: what is left of the script is killed, the job's
// nodes are released, exec_host is cleared, Exit_status is set to
// exitStatus when given (OpenPBS sets JOB_EXEC_RERUN_MS_FAIL, -20, for a
// node that went down under a running job, and nothing for a job the MoM
// never started), and the job waits to run again (run_count counts the
// runs). reason becomes the job's comment
// and the state change's reason, e.g. "Job requeued, execution node cn1
// down". A job that is not running cannot be requeued (ErrBadState); a job
// submitted with -r n may be requeued by the caller's choice (OpenPBS
// deletes those instead, which the caller does by ending the script).
func (s *Server) Requeue(_ context.Context, id string, exitStatus *int, reason string) error {
	j, release, err := s.lockJob(id)
	if err != nil {
		return err
	}
	defer release()
	if j.State != Running && j.State != Suspended {
		s.unlock()
		return pbsErr(ErrBadState, s.fullID(id))
	}
	j.stopTimers()
	if r := j.run; r != nil {
		if j.State == Suspended {
			s.signal(r, syscall.SIGCONT)
		}
		// The run's end, when the executor reports it, no longer concerns
		// the job: scriptEnded ignores a run that is not j.run.
		s.kill(r)
		j.run = nil
	}
	s.releaseNodes(j)
	if exitStatus != nil {
		ec := *exitStatus
		j.ExitStatus = &ec
	}
	j.ExecHost, j.ExecVnode, j.SessionID = "", "", 0
	j.Comment = reason
	delete(s.pinned, j)
	j.pin = 0
	// Back among the waiting jobs, in submission order.
	e := j.q.pending.Front()
	for e != nil && e.Value.(*job).Seq < j.Seq {
		e = e.Next()
	}
	if e == nil {
		j.elem = j.q.pending.PushBack(j)
	} else {
		j.elem = j.q.pending.InsertBefore(j, e)
	}
	st, sub := s.evalState(j)
	if st == Queued {
		j.Etime = s.clock.Now()
	}
	s.setState(j, st, sub, reason)
	if st == Waiting {
		s.armStartTimer(j)
	}
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
	return nil
}

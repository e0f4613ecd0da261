package fakepbs

import (
	"context"
	"fmt"
	"github.com/jobsim/jobsim/base/clock"
)

// maxBlocked bounds the ended qsub -W block=true jobs the server keeps for
// a WaitJob that never came (its qsub died between submitting and
// waiting); OpenPBS gives up on such a qsub too.
const maxBlocked = 1024

// registerBlock keeps j for the WaitJob of the qsub -W block=true that
// submitted it, so that its end is known even once the server has forgotten
// the job (no history). Called with s.mu held.
func (s *Server) registerBlock(j *job) {
	if s.blocked == nil {
		s.blocked = map[int]*job{}
	}
	if len(s.blocked) >= maxBlocked {
		for seq, b := range s.blocked {
			if b.over {
				delete(s.blocked, seq)
			}
		}
	}
	s.blocked[j.Seq] = j
}

// ended marks j's end as final and wakes its waiters. Called with s.mu held,
// by finish and removeJob; a job requeued or still running is not over.
func (s *Server) ended(j *job) {
	if j.over {
		return
	}
	j.over = true
	if j.done != nil {
		close(j.done)
	}
}

// WaitJob blocks until the job has ended or ctx ends, and returns the job as
// it was when it ended. It is what qsub -W block=true waits with
// (cli.Waiter), and it works whether or not the server keeps job history:
// a job submitted with SubmitRequest.Block is kept for its waiter after the
// server has forgotten it.
//
// The outcomes follow what OpenPBS's server sends a blocking qsub
// (check_block):
//   - the job finished: the job in state F, its Exit_status set, and a nil
//     error (qsub exits with Exit_status & 0xff: 271 for a script killed
//     by SIGTERM, 227 for -29, a walltime kill);
//   - the job was deleted (qdel, queued or running): the job as it ended
//     and an *AbortedError carrying "Job deleted at request of
//     <user>@<host>" (qsub prints "qsub: <jobid> <message>", exits 3);
//   - the job vanished (fault rule) or was aborted before it ran because a
//     dependency failed: ErrNoReply, as OpenPBS sends no word (its qsub
//     waits on until it is interrupted).
//
// A finished job still in history is returned at once; an id the server
// does not know gives ErrUnknownJob. Closing the server ends the wait with
// an error.
//
// Waiting costs nothing on jobs nobody waits for, and nothing per job
// while waiting but one channel. The waiter is not a clock actor: under a
// virtual clock the simulation runs on while it blocks, and the job's end
// wakes it. It must therefore not be called from inside a clock actor
// (Clock.Go), which the clock would count busy for the whole wait.
func (s *Server) WaitJob(ctx context.Context, id string) (Job, error) {
	s.mu.Lock()
	var j *job
	if seq, ok := s.parseJobID(id); ok {
		j = s.blocked[seq]
	}
	if j == nil {
		var err error
		if j, err = s.lookup(id); err != nil {
			s.unlock()
			return Job{}, err
		}
	}
	if !j.over {
		if j.done == nil {
			j.done = make(chan struct{})
		}
		done := j.done
		s.unlock()
		// A waiter inside the simulation (a virtual host's qsub -W block=true)
		// must let the clock run on to the job's end.
		resume := clock.Idle(ctx, s.clock)
		defer resume()
		select {
		case <-done:
		case <-ctx.Done():
			s.mu.Lock()
			snap := j.Job
			s.forgetBlock(j)
			s.unlock()
			return snap, fmt.Errorf("waiting for job %s: %w", j.ID, ctx.Err())
		case <-s.ctx.Done():
			s.mu.Lock()
			snap := j.Job
			s.unlock()
			return snap, fmt.Errorf("waiting for job %s: %w", j.ID, ErrServerClosed)
		}
		s.mu.Lock()
	}
	snap, err := s.waitResult(j)
	s.forgetBlock(j)
	s.unlock()
	return snap, err
}

// forgetBlock drops j's qsub -W block=true registration once its waiter has
// its answer or has gone. Called with s.mu held.
func (s *Server) forgetBlock(j *job) {
	if s.blocked[j.Seq] == j {
		delete(s.blocked, j.Seq)
	}
}

// waitResult is what a waiter learns of a job that is over. Called with
// s.mu held.
func (s *Server) waitResult(j *job) (Job, error) {
	switch {
	case j.deletedBy != "":
		return j.Job, &AbortedError{JobID: j.ID, Message: "Job deleted at request of " + j.deletedBy}
	case j.State == Finished && j.ExitStatus != nil:
		return j.Job, nil
	default:
		// Vanished, or aborted before it ran (job_abt sends no word).
		return j.Job, fmt.Errorf("job %s: %w", j.ID, ErrNoReply)
	}
}

// PurgeHistory implements qdel -x (cli.HistoryPurger). A finished job still
// in history is removed from it: qstat -x then answers "Unknown Job Id". A
// job not yet finished is deleted as by Delete and purged once it has
// finished, instead of being kept in history (OpenPBS's
// ji_deletehistory). Only the owner or a manager may do this
// (ErrPermission); an id the server does not know (or no longer keeps)
// gives ErrUnknownJob, and an exiting job ErrBadState as with qdel.
func (s *Server) PurgeHistory(_ context.Context, user, id string) error {
	j, release, err := s.lockJob(id)
	if err != nil {
		return err
	}
	defer release()
	if err := s.checkOwner(user, j); err != nil {
		s.unlock()
		return err
	}
	if j.State == Finished {
		s.recordGone(j, "history purged by "+user)
		s.removeJob(j)
		s.unlock()
		return nil
	}
	return s.deleteLocked(j, user, id, false, true)
}

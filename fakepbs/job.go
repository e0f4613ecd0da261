package fakepbs

import (
	"container/list"
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/internal/syncio"
)

// OpenPBS job substates (src/include/job.h).
const (
	subQueued     = 10
	subHeld       = 20
	subDepHold    = 22
	subWaiting    = 30
	subRunning    = 42
	subSuspended  = 43
	subExiting    = 50
	subStageOut   = 51
	subTerminated = 91
	subFinished   = 92
	subFailed     = 93
)

// Hold bits (HOLD_u, HOLD_o, HOLD_s, HOLD_bad_password).
const (
	holdU uint8 = 1 << iota
	holdO
	holdS
	holdP
)

// job is the server's record of a job. Its embedded Job is the snapshot the
// commands see: the maps and slices in it are never changed in place, only
// replaced, so a copy of Job can be handed out without copying them.
type job struct {
	Job

	q       *queue
	elem    *list.Element // in q.pending while the job waits to run
	spec    jobSpec
	script  []byte
	shell   string
	umask   fs.FileMode
	home    string
	workdir string // PBS_O_WORKDIR

	hold        uint8
	depHold     bool       // holdS was set by a dependency
	pendingDeps int        // dependencies not yet released
	deps        []*depEdge // this job's dependencies on others
	children    []*depEdge // other jobs depending on this one

	alloc      []allocation
	run        *runState
	terminated bool          // deleted (qdel, dependency abort)
	deletedBy  string        // user@host of the qdel that deleted it, for a waiting qsub
	purge      bool          // qdel -x: forgotten when it finishes, history or not
	gone       bool          // no longer known to the server
	over       bool          // finished or gone: its end is final
	done       chan struct{} // made by the first WaitJob, closed when over
	pin        State
	pinRule    string
	startStop  func()
}

// allocation is one chunk placed on a node.
type allocation struct {
	n        *node
	cpus     []int
	mem      int64
	mpiprocs int // lines in the node file
	threads  int // ompthreads; 0 means ncpus
}

// runState is a running (or exiting) job's MOM-side state.
type runState struct {
	ctx          context.Context
	cancel       context.CancelFunc
	proc         Process
	pending      []syscall.Signal // delivered as soon as the process exists
	killReason   string           // "walltime" or "delete" once the server is killing the job
	wallStop     func()
	killStop     func()
	wallLeft     time.Duration // walltime left when the limit timer was (re)armed
	wallArmed    time.Time     // when it was armed
	suspendedAt  time.Time
	suspendedFor time.Duration
	stdout       *syncio.Buffer
	stderr       *syncio.Buffer
	scriptEnded  bool
	execFailed   bool // the executor could not start the script
	exit         int  // Exit_status once the script ended
}

// kill stops the script for good: SIGKILL and its context cancelled.
// Called with s.mu held.
func (s *Server) kill(r *runState) {
	s.signal(r, syscall.SIGKILL)
	r.cancel()
}

// signal queues sig for the script, delivered when s.mu is released (or,
// before the script has started, as soon as it has). Called with s.mu held.
func (s *Server) signal(r *runState, sig syscall.Signal) {
	if r.proc == nil {
		r.pending = append(r.pending, sig)
		return
	}
	s.outbox = append(s.outbox, queuedSignal{r.proc, sig})
}

type queuedSignal struct {
	p   Process
	sig syscall.Signal
}

// unlock releases s.mu, then delivers the signals queued meanwhile: no
// executor is ever called with the server's lock held, so a script may
// talk to the server while it is being signalled.
func (s *Server) unlock() {
	out := s.outbox
	s.outbox = nil
	s.mu.Unlock()
	for _, q := range out {
		_ = q.p.Signal(q.sig)
	}
}

func (j *job) stopTimers() {
	if j.startStop != nil {
		j.startStop()
		j.startStop = nil
	}
	if r := j.run; r != nil {
		if r.wallStop != nil {
			r.wallStop()
			r.wallStop = nil
		}
		if r.killStop != nil {
			r.killStop()
			r.killStop = nil
		}
	}
}

func stateName(s State) string {
	if s == 0 {
		return ""
	}
	return s.String()
}

// setState moves j to st and records the change.
func (s *Server) setState(j *job, st State, sub int, reason string) {
	from := j.State
	now := s.clock.Now()
	j.State, j.Substate, j.Mtime = st, sub, now
	s.rec.Record(events.Event{Time: now, Kind: events.PBSJobState,
		Msg:    j.ID + " " + stateName(from) + " -> " + stateName(st) + ": " + reason,
		Fields: map[string]any{"job": j.ID, "name": j.Name, "queue": j.Queue, "from": stateName(from), "to": stateName(st), "reason": reason}})
}

// recordGone records that j left the server without a state to go to.
func (s *Server) recordGone(j *job, reason string) {
	s.rec.Record(events.Event{Time: s.clock.Now(), Kind: events.PBSJobState,
		Msg:    j.ID + " " + stateName(j.State) + " -> gone: " + reason,
		Fields: map[string]any{"job": j.ID, "name": j.Name, "queue": j.Queue, "from": stateName(j.State), "to": "", "reason": reason}})
}

// holdString is Hold_Types as OpenPBS writes it.
func holdString(h uint8) string {
	if h == 0 {
		return "n"
	}
	var b strings.Builder
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{holdU, 'u'}, {holdO, 'o'}, {holdS, 's'}, {holdP, 'p'}} {
		if h&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

func parseHoldTypes(types string) (uint8, bool) {
	if types == "" {
		return holdU, true
	}
	var h uint8
	for _, c := range types {
		switch c {
		case 'u':
			h |= holdU
		case 'o':
			h |= holdO
		case 's':
			h |= holdS
		case 'p':
			h |= holdP
		case 'n':
		default:
			return 0, false
		}
	}
	return h, true
}

func (j *job) setHold(h uint8) {
	j.hold = h
	j.HoldTypes = holdString(h)
}

// evalState is OpenPBS's svr_evaljobstate for a job that is not running:
// held when any hold is set, waiting while its start time is ahead, else
// queued.
func (s *Server) evalState(j *job) (State, int) {
	switch {
	case j.hold != 0:
		if j.hold == holdS && j.depHold {
			return Held, subDepHold
		}
		return Held, subHeld
	case !j.StartAt.IsZero() && j.StartAt.After(s.clock.Now()):
		return Waiting, subWaiting
	default:
		return Queued, subQueued
	}
}

// reevaluate moves a job that waits to run to the state its holds and start
// time call for, arming the start-time timer when it waits.
func (s *Server) reevaluate(j *job, reason string) {
	if j.pin == j.State {
		return
	}
	st, sub := s.evalState(j)
	if st == j.State && sub == j.Substate {
		return
	}
	if st == Queued {
		j.Etime = s.clock.Now()
	}
	s.setState(j, st, sub, reason)
	if st == Waiting && j.startStop == nil {
		s.armStartTimer(j)
	}
}

func (s *Server) armStartTimer(j *job) {
	d := j.StartAt.Sub(s.clock.Now())
	j.startStop = s.after(d, func() {
		release := s.clock.Hold()
		defer release()
		s.mu.Lock()
		j.startStop = nil
		if s.closed || j.gone || j.State != Waiting {
			s.unlock()
			return
		}
		s.reevaluate(j, "start time reached")
		starts := s.schedule()
		s.unlock()
		s.launch(starts)
	})
}

// parseJobID splits "123", "123.server[.domain]" or "123.server@host" into
// the sequence number, reporting whether the id names this server.
func (s *Server) parseJobID(id string) (int, bool) {
	id, _, _ = strings.Cut(id, "@")
	seqText, suffix, hasSuffix := strings.Cut(id, ".")
	seq, err := strconv.Atoi(seqText)
	if err != nil || seq < 0 || seqText == "" || seqText[0] == '+' || seqText[0] == '-' {
		return 0, false
	}
	if !hasSuffix {
		return seq, true
	}
	for _, n := range []string{s.name, s.host, s.shortHost} {
		if suffix == n || strings.HasPrefix(suffix, n+".") || strings.HasPrefix(n, suffix+".") {
			return seq, true
		}
	}
	return 0, false
}

// fullID is the id as an error reports it: a bare sequence number gets the
// server's name, as the OpenPBS commands expand it.
func (s *Server) fullID(id string) string {
	if _, err := strconv.Atoi(id); err == nil {
		return id + "." + s.name
	}
	return id
}

// lookup finds a job known to the server (history included, expired
// history dropped).
func (s *Server) lookup(id string) (*job, error) {
	seq, ok := s.parseJobID(id)
	if !ok {
		return nil, pbsErr(ErrUnknownJob, s.fullID(id))
	}
	j := s.jobs[seq]
	if j == nil {
		return nil, pbsErr(ErrUnknownJob, s.fullID(id))
	}
	if j.State == Finished && s.expired(j) {
		s.removeJob(j)
		return nil, pbsErr(ErrUnknownJob, s.fullID(id))
	}
	return j, nil
}

func (s *Server) expired(j *job) bool {
	return !j.Obittime.IsZero() && s.clock.Now().Sub(j.Obittime) >= s.historyFor ||
		j.Obittime.IsZero() && s.clock.Now().Sub(j.Mtime) >= s.historyFor
}

// removeJob forgets j.
func (s *Server) removeJob(j *job) {
	if j.gone {
		return
	}
	j.gone = true
	s.ended(j)
	if j.elem != nil {
		j.q.pending.Remove(j.elem)
		j.elem = nil
	}
	delete(s.jobs, j.Seq)
	delete(s.pinned, j)
	s.removed++
	if s.removed > 256 && s.removed > len(s.order)/2 {
		kept := s.order[:0]
		for _, x := range s.order {
			if !x.gone {
				kept = append(kept, x)
			}
		}
		clear(s.order[len(kept):])
		s.order = kept
		s.removed = 0
	}
}

// Job implements Backend.
func (s *Server) Job(_ context.Context, id string, history bool) (Job, error) {
	s.mu.Lock()
	defer s.unlock()
	j, err := s.lookup(id)
	if err != nil {
		return Job{}, err
	}
	if j.State == Finished && !history {
		return Job{}, pbsErr(ErrJobFinished, s.fullID(id))
	}
	return j.Job, nil
}

// Jobs implements Backend.
func (s *Server) Jobs(_ context.Context, history bool) []Job {
	s.mu.Lock()
	defer s.unlock()
	out := make([]Job, 0, len(s.jobs))
	var expired []*job
	for _, j := range s.order {
		if j.gone {
			continue
		}
		if j.State == Finished {
			if s.expired(j) {
				expired = append(expired, j)
				continue
			}
			if !history {
				continue
			}
		}
		out = append(out, j.Job)
	}
	for _, j := range expired {
		s.removeJob(j)
	}
	return out
}

// checkOwner reports whether user may act on j.
func (s *Server) checkOwner(user string, j *job) error {
	if user == j.User || s.managers[user] {
		return nil
	}
	return pbsErr(ErrPermission, j.ID)
}

func jobRunComment(t time.Time, vnode string) string {
	return fmt.Sprintf("Job run at %s on %s", t.Format("Mon Jan 02 at 15:04"), vnode)
}

package fakeslurm

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// requeueDelay is how long a requeued job waits before it is eligible again.
const requeueDelay = 2 * time.Minute

// More Slurm errno values for job operations.
const (
	ErrJobPending  = 2024 // ESLURM_JOB_PENDING
	ErrJobFinished = 2084 // ESLURM_JOB_FINISHED
)

// lookup finds a live job for an operation by user; root may act on any
// job, others on their own. Called with s.mu held.
func (s *Server) lookup(user string, id int) (*job, error) {
	if s.closed {
		return nil, ErrServerClosed
	}
	if s.down {
		return nil, Errno(ErrCtldConnect)
	}
	s.purgeOld()
	j := s.jobs[id]
	if j == nil || j.purged {
		return nil, Errno(ErrInvalidJobID)
	}
	if user != "root" && user != "" && user != j.User {
		return nil, Errno(ErrAccessDenied)
	}
	return j, nil
}

// onJob runs act on job id as user may see it (see lookup), with the
// clock held and s.mu locked: the frame of every operation on one job.
func (s *Server) onJob(user string, id int, act func(*job) error) error {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.lookup(user, id)
	if err != nil {
		return err
	}
	return act(j)
}

// Cancel cancels a job as `scancel ID` does: a pending job ends CANCELLED at
// once; a running one is CANCELLED and COMPLETING while its script gets
// SIGCONT, SIGTERM and, after KillWait, SIGKILL. A job already done gives
// ErrAlreadyDone. uid is the canceller's (sacct's "CANCELLED by UID").
func (s *Server) Cancel(_ context.Context, user string, uid, id int) error {
	return s.onJob(user, id, func(j *job) error {
		return s.cancelJob(j, uid)
	})
}

// cancelJob is Cancel on a job found. Called with s.mu held.
func (s *Server) cancelJob(j *job, uid int) error {
	if j.State.Finished() {
		return Errno(ErrAlreadyDone)
	}
	now := s.clock.Now()
	j.CancelledBy = uid
	if j.State == Pending {
		j.State = Cancelled
		j.End = now
		if j.Start.IsZero() {
			j.Start = now
		}
		s.notePurge(j)
		s.record(j, fmt.Sprintf("cancelled by uid %d", uid))
		s.kick()
		return nil
	}
	msg := fmt.Sprintf("slurmstepd-%s: error: *** JOB %d ON %s CANCELLED AT %s ***\n", j.BatchHost, j.ID, j.BatchHost, now.Format(stampLayout))
	s.endRunning(j, Cancelled, "", msg)
	s.record(j, fmt.Sprintf("cancelled by uid %d", uid))
	return nil
}

// Signal sends sig to a job as `scancel -s SIG` does. Slurm sends a signal
// other than SIGKILL to the job's steps only, not to its batch script,
// unless batch (-b) or full (-f) is set; the fake has no steps besides the
// script, so without them nothing is delivered, as on a real job without
// srun steps. SIGKILL cancels the job. A pending job gives ErrJobPending.
func (s *Server) Signal(ctx context.Context, user string, uid, id int, sig syscall.Signal, batch bool) error {
	if sig == syscall.SIGKILL {
		return s.Cancel(ctx, user, uid, id)
	}
	return s.onJob(user, id, func(j *job) error {
		switch {
		case j.State.Finished():
			return Errno(ErrAlreadyDone)
		case j.State == Pending:
			return Errno(ErrJobPending)
		}
		if !batch || j.run == nil {
			return nil
		}
		if sig == syscall.SIGTERM && j.run.err != nil {
			// slurmstepd announces a TERM to the batch step as a cancel.
			fmt.Fprintf(j.run.err, "slurmstepd-%s: error: *** JOB %d ON %s CANCELLED AT %s ***\n",
				j.BatchHost, j.ID, j.BatchHost, s.clock.Now().Format(stampLayout))
		}
		s.signal(j.run, sig)
		return nil
	})
}

// Hold holds a job as `scontrol hold` does (priority 0): an admin hold
// when user is root (Reason=JobHeldAdmin), else a user hold
// (JobHeldUser). A running job keeps running and shows the reason, as in
// slurmctld. A finished job gives ErrJobFinished.
func (s *Server) Hold(_ context.Context, user string, id int) error {
	return s.onJob(user, id, func(j *job) error { return s.hold(j, user) })
}

func (s *Server) hold(j *job, user string) error {
	if j.State.Finished() {
		return Errno(ErrJobFinished)
	}
	j.Priority = 0
	if user == "root" {
		j.adminHold = true
		j.Reason = "JobHeldAdmin"
	} else {
		j.userHold = true
		j.Reason = "JobHeldUser"
	}
	s.record(j, "held by "+user)
	return partConfigErr(j)
}

// partConfigErr is what slurmctld answers a hold or release of a job its
// partition cannot run (the update is made all the same).
func partConfigErr(j *job) error {
	if j.State == Pending && partitionReason(j) == "PartitionConfig" {
		return Errno(ErrPartConfig)
	}
	return nil
}

// Release releases a held job (`scontrol release`). Only root releases an
// admin hold.
func (s *Server) Release(_ context.Context, user string, id int) error {
	return s.onJob(user, id, func(j *job) error { return s.release(j, user) })
}

func (s *Server) release(j *job, user string) error {
	if j.State.Finished() {
		return Errno(ErrJobFinished)
	}
	if j.adminHold && user != "root" {
		return Errno(ErrAccessDenied)
	}
	j.adminHold, j.userHold = false, false
	if !j.hasSeq {
		// Submitted held: it takes its priority now.
		j.seq, j.hasSeq = s.prioSeq, true
		s.prioSeq++
	}
	j.Priority = basePriority - 1 - int64(j.seq)
	if j.Reason == "JobHeldAdmin" || j.Reason == "JobHeldUser" {
		j.Reason = "None"
		if j.State == Pending {
			if r := partitionReason(j); r != "" {
				j.Reason = r
			}
		}
	}
	s.record(j, "released by "+user)
	s.kick()
	return partConfigErr(j)
}

// Partitions returns the partitions in slurm.conf order.
func (s *Server) Partitions(context.Context) ([]Partition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, Errno(ErrCtldConnect)
	}
	out := make([]Partition, len(s.parts))
	for i, p := range s.parts {
		out[i] = p.Partition
		out[i].Nodes = append([]string(nil), p.Nodes...)
	}
	return out, nil
}

// Nodes returns the nodes in slurm.conf order.
func (s *Server) Nodes(context.Context) ([]Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, Errno(ErrCtldConnect)
	}
	out := make([]Node, len(s.nodes))
	for i, n := range s.nodes {
		out[i] = Node{Name: n.name, Addr: n.addr, CPUs: n.cpus, AllocCPUs: n.alloc, Sockets: n.sockets, Cores: n.cores,
			Threads: 1, MemMB: n.mem, AllocMemMB: n.allocMem, State: n.stateName(), Reason: n.reason,
			Partitions: append([]string(nil), n.parts...), Boot: n.boot, SlurmdUp: n.slurmUp, LastBusy: n.lastBusy, ReasonTime: n.reasonAt}
	}
	return out, nil
}

// stateName is the node state as scontrol prints it.
func (n *node) stateName() string {
	base := "IDLE"
	switch {
	case n.down:
		base = "DOWN"
	case n.alloc >= n.cpus:
		base = "ALLOCATED"
	case n.alloc > 0:
		base = "MIXED"
	}
	if n.drain {
		return base + "+DRAIN"
	}
	return base
}

// FailNode takes a node down under its jobs, as when slurmd stops
// answering: each batch job on it is requeued (PENDING again, Restarts+1)
// when it may be (--requeue or JobRequeue=1) and ends NODE_FAIL otherwise;
// its processes are killed. The node stays DOWN until ResumeNode.
func (s *Server) FailNode(_ context.Context, name, reason string) error {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodeByName[name]
	if n == nil {
		return Errno(ErrInvalidNodeName)
	}
	s.failNode(n, reason)
	return nil
}

func (s *Server) failNode(n *node, reason string) {
	if reason == "" {
		reason = "Not responding"
	}
	now := s.clock.Now()
	n.down, n.reason, n.reasonAt = true, reason, now
	for j := range n.jobs {
		s.stopRun(j, "")
		if j.Requeue {
			s.requeue(j, now, "requeued: node "+n.name+" failed")
			continue
		}
		j.State = NodeFail
		j.Reason = "NodeDown"
		j.Completing = false
		j.End = now
		j.ExitCode, j.ExitSignal = 0, 0
		s.notePurge(j)
		s.record(j, "node "+n.name+" failed")
	}
	s.rec.Record(events.Event{Time: now, Kind: SlurmNode, Msg: "node " + n.name + " DOWN: " + reason,
		Fields: map[string]any{"node": n.name, "state": "DOWN", "reason": reason}})
	s.kick()
}

// ResumeNode brings a DOWN or drained node back (scontrol update
// state=resume).
func (s *Server) ResumeNode(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodeByName[name]
	if n == nil {
		return Errno(ErrInvalidNodeName)
	}
	n.down, n.drain, n.reason = false, false, ""
	n.slurmUp = s.clock.Now()
	s.rec.Record(events.Event{Time: n.slurmUp, Kind: SlurmNode, Msg: "node " + n.name + " resumed",
		Fields: map[string]any{"node": n.name, "state": n.stateName()}})
	s.kick()
	return nil
}

// DrainNode drains a node: its jobs finish, no new ones start there.
func (s *Server) DrainNode(_ context.Context, name, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodeByName[name]
	if n == nil {
		return Errno(ErrInvalidNodeName)
	}
	n.drain, n.reason = true, reason
	n.reasonAt = s.clock.Now()
	s.rec.Record(events.Event{Time: n.reasonAt, Kind: SlurmNode, Msg: "node " + n.name + " drained: " + reason,
		Fields: map[string]any{"node": n.name, "state": n.stateName(), "reason": reason}})
	return nil
}

// RestartOptions says how a controller restart goes.
type RestartOptions struct {
	// Down is how long slurmctld does not answer (default 2s).
	Down time.Duration `json:"down,omitempty"`
	// LoseJobs brings it back with an empty StateSaveLocation: every job
	// is gone (running scripts killed) and ids start again at FirstJobId.
	LoseJobs bool `json:"lose_jobs,omitempty"`
}

// Restart stops slurmctld and starts it again after o.Down. While it is
// away every command gets the answer of an absent controller and nothing
// is scheduled; running jobs keep running (slurmd has them) and their ends
// are taken when it is back.
func (s *Server) Restart(_ context.Context, o RestartOptions) error {
	if o.Down < 0 {
		return fmt.Errorf("restart: down %v is negative", o.Down)
	}
	if o.Down == 0 {
		o.Down = 2 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.down {
		return fmt.Errorf("restart: slurmctld is already down")
	}
	s.down = true
	now := s.clock.Now()
	s.rec.Record(events.Event{Time: now, Kind: SlurmNode, Msg: fmt.Sprintf("slurmctld stopped for %v", o.Down),
		Fields: map[string]any{"down": o.Down.String(), "lose_jobs": o.LoseJobs}})
	if o.LoseJobs {
		for _, j := range s.order {
			j.stopTimers()
			if j.run != nil {
				j.run.ended = true
				if j.run.cancel != nil {
					j.run.cancel()
				}
				j.run = nil
			}
			s.releaseNodes(j)
			j.purged, j.lost = true, true
		}
		s.jobs = map[int]*job{}
		s.order = nil
		s.purged = 0
		s.nextID = s.c.firstID
	}
	s.upStop = s.after(o.Down, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.upStop = nil
		s.down = false
		s.rec.Record(events.Event{Time: s.clock.Now(), Kind: SlurmNode, Msg: "slurmctld back"})
		s.kick()
	})
	return nil
}

// ApplyFaults checks every pending and running job against the "slurm"
// rules of op "run" with job effects (vanish: the job is lost; node-fail:
// its node fails under it) and applies the ones that fire. It runs by
// itself when such a rule is added; it returns how many jobs were hit.
func (s *Server) ApplyFaults() int {
	if s.faults == nil {
		return 0
	}
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	live := make([]*job, 0, len(s.order))
	for _, j := range s.order {
		if !j.purged && !j.State.Finished() {
			live = append(live, j)
		}
	}
	for _, j := range live {
		fired := s.faults.CheckWhere(s.runOp(j), func(r fault.Rule) bool {
			return r.Effect.Kind == fault.Vanish || (r.Effect.Kind == fault.NodeFail && j.State == Running)
		})
		if s.applyJobRules(j, fired) {
			n++
		}
	}
	return n
}

func (s *Server) runOp(j *job) fault.Op {
	return fault.Op{Layer: fault.Slurm, Name: "run", User: j.User, Job: fmt.Sprint(j.ID), Command: j.Name}
}

// checkRunFaults checks a starting job against the "run" rules.
func (s *Server) checkRunFaults(j *job) []fault.Rule {
	if s.faults == nil {
		return nil
	}
	s.mu.Lock()
	op := s.runOp(j)
	s.mu.Unlock()
	return s.faults.Check(op)
}

// applyJobRules applies the vanish and node-fail rules among fired to j,
// reporting whether one did. Called with s.mu held.
func (s *Server) applyJobRules(j *job, fired []fault.Rule) bool {
	for _, r := range fired {
		switch r.Effect.Kind {
		case fault.Vanish:
			s.stopRun(j, "")
			j.purged, j.lost = true, true
			delete(s.jobs, j.ID)
			s.purged++
			s.record(j, "lost by fault rule "+r.ID)
			s.kick()
			return true
		case fault.NodeFail:
			if j.State != Running || len(j.alloc) == 0 {
				continue
			}
			s.failNode(j.alloc[0], "Not responding (fault rule "+r.ID+")")
			return true
		}
	}
	return false
}

// stopRun ends j's run without an end state of its own (the caller gives
// one): timers stopped, nodes given back, the script killed after msg (if
// any) went to its stderr. Called with s.mu held.
func (s *Server) stopRun(j *job, msg string) {
	r := j.run
	j.run = nil
	j.stopTimers()
	s.releaseNodes(j)
	if r == nil {
		return
	}
	if msg != "" && r.err != nil {
		_, _ = r.err.Write([]byte(msg))
	}
	r.ended = true
	if r.cancel != nil {
		r.cancel()
	}
}

// requeue makes j pending again, as slurmctld requeues a batch job: it
// waits requeueDelay (Reason=BeginTime) and counts a restart. Called with
// s.mu held, the run already stopped.
func (s *Server) requeue(j *job, now time.Time, why string) {
	j.State = Pending
	j.Reason = "BeginTime"
	j.Completing = false
	j.Restarts++
	j.Start, j.End = time.Time{}, time.Time{}
	j.NodeList, j.BatchHost = "", ""
	j.ExitCode, j.ExitSignal = 0, 0
	j.begin = now.Add(requeueDelay)
	j.Eligible, j.Accrue = j.begin, j.begin
	s.record(j, why)
}

// Requeue puts a job back in the queue, as `scontrol requeue` does: a
// running job's script is killed (slurmstepd writes "CANCELLED AT ... DUE
// TO JOB REQUEUE" to its stderr) and a finished one is queued again; both
// wait requeueDelay. A pending job gives ErrJobPending, a job submitted
// with --no-requeue (or JobRequeue=0) ErrDisabled.
func (s *Server) Requeue(_ context.Context, user string, id int) error {
	return s.onJob(user, id, func(j *job) error {
		switch {
		case j.State == Pending:
			return Errno(ErrJobPending)
		case !j.Requeue:
			return Errno(ErrDisabled)
		}
		now := s.clock.Now()
		finished := j.State.Finished()
		msg := ""
		if j.State == Running {
			msg = fmt.Sprintf("slurmstepd-%s: error: *** JOB %d ON %s CANCELLED AT %s DUE TO JOB REQUEUE ***\n",
				j.BatchHost, j.ID, j.BatchHost, now.Format(stampLayout))
		}
		// A job still completing (its script not yet gone) is stopped too.
		s.stopRun(j, msg)
		s.requeue(j, now, "requeued by "+user)
		if finished {
			// Queued again at once: no reason until the next pass.
			j.Reason = "None"
		}
		s.kick()
		return nil
	})
}

// JobUpdate is what `scontrol update JobId=...` changes; nil fields stay.
type JobUpdate struct {
	TimeLimit  *time.Duration // Unlimited or a limit
	Name       *string
	Partition  *string // pending jobs only
	Dependency *string // pending jobs only; "" clears
	Comment    *string
}

// UpdateJob changes a job as `scontrol update JobId=...` does. A finished
// job gives ErrJobFinished; Partition and Dependency of a job that is no
// longer pending ErrJobNotPending; an unknown partition
// ErrInvalidPartition; a user other than root raising a time limit
// ErrAccessDenied. A running job's new limit counts from its start.
func (s *Server) UpdateJob(_ context.Context, user string, id int, u JobUpdate) error {
	return s.onJob(user, id, func(j *job) error {
		if j.State.Finished() {
			return Errno(ErrJobFinished)
		}
		if u.Partition != nil && *u.Partition == j.Partition {
			u.Partition = nil // no change: allowed whatever the state
		}
		if (u.Partition != nil || u.Dependency != nil) && j.State != Pending {
			return Errno(ErrJobNotPending)
		}
		var part *partition
		if u.Partition != nil {
			if part = s.partByName[*u.Partition]; part == nil {
				return Errno(ErrInvalidPartition)
			}
		}
		var deps []dep
		var anyDep bool
		if u.Dependency != nil {
			var err error
			if deps, anyDep, err = parseDependency(*u.Dependency); err != nil {
				return err
			}
		}
		if u.TimeLimit != nil && user != "root" && (j.TimeLimit != Unlimited && (*u.TimeLimit == Unlimited || *u.TimeLimit > j.TimeLimit)) {
			return Errno(ErrAccessDenied)
		}
		if part != nil {
			j.part, j.Partition = part, part.Name
		}
		if u.Dependency != nil {
			j.deps, j.depAny = deps, anyDep
			j.Dependency = "(null)"
			if *u.Dependency != "" {
				j.Dependency = *u.Dependency
			}
		}
		if u.Name != nil {
			j.Name = *u.Name
		}
		if u.Comment != nil {
			j.Comment = *u.Comment
		}
		if u.TimeLimit != nil {
			j.TimeLimit, j.LimitGiven = *u.TimeLimit, true
			if j.run != nil && j.State == Running {
				s.rearmLimit(j)
			}
		}
		if j.State == Pending && !j.userHold && !j.adminHold {
			// slurmctld clears the reason of an updated pending job; its
			// next pass finds the reason again.
			j.Reason = "None"
		}
		s.record(j, "updated by "+user)
		s.kick()
		return nil
	})
}

// rearmLimit restarts a running job's time-limit timer after its limit
// changed. Called with s.mu held.
func (s *Server) rearmLimit(j *job) {
	if j.limitStop != nil {
		j.limitStop()
		j.limitStop = nil
	}
	if j.TimeLimit == Unlimited {
		return
	}
	r := j.run
	left := max(0, j.Start.Add(j.TimeLimit+s.c.limitSlack).Sub(s.clock.Now()))
	j.limitStop = s.after(left, func() { s.timeLimit(j, r) })
}

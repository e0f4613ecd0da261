package fakepbs

import (
	"context"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// Submit implements Backend: qsub's request to queue a job. The job is
// queued (or held, or waiting for its start time) and the scheduler runs
// at once, so the returned snapshot may already show it running.
func (s *Server) Submit(_ context.Context, req SubmitRequest) (Job, error) {
	if req.Owner == "" {
		return Job{}, pbsErr(ErrPermission, "")
	}
	if req.Array != "" {
		return Job{}, pbsErr(ErrNotSupported, "") // job arrays are not modelled
	}
	res, spec, err := s.normalizeResources(req.Resources)
	if err != nil {
		return Job{}, err
	}
	join := req.Join
	switch join {
	case "", "n":
		join = "n"
	case "oe", "eo":
	default:
		return Job{}, attrErr(ErrBadAttrValue, "Join_Path")
	}
	umask := fs.FileMode(0o077)
	if req.Umask != "" {
		v, err := strconv.ParseUint(req.Umask, 8, 32)
		if err != nil || v > 0o777 {
			return Job{}, attrErr(ErrBadAttrValue, "umask")
		}
		umask = fs.FileMode(v)
	}
	var deps []depReq
	if req.DependOn != "" {
		if deps, err = parseDepend(req.DependOn); err != nil {
			return Job{}, err
		}
	}

	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	if s.closed {
		s.unlock()
		return Job{}, pbsErr(ErrInternal, "")
	}
	qname, _, _ := strings.Cut(req.Queue, "@")
	if qname == "" {
		qname = s.defaultQueue
	}
	q := s.queueByName[qname]
	if q == nil {
		s.unlock()
		return Job{}, pbsErr(ErrUnknownQueue, "")
	}
	if !q.Enabled {
		s.unlock()
		return Job{}, pbsErr(ErrQueueDisabled, "")
	}

	seq := s.nextSeq
	s.nextSeq++
	now := s.clock.Now()
	id := strconv.Itoa(seq) + "." + s.name
	home := s.home(req.Owner)
	submitHost := req.SubmitHost
	if submitHost == "" {
		submitHost = s.host
	}
	workdir := req.WorkDir
	if workdir == "" {
		workdir = home
	}
	name := req.Name
	if name == "" {
		name = "STDIN"
	}
	j := &job{
		Job: Job{
			ID: id, Seq: seq, Name: name, Owner: req.Owner + "@" + submitHost, User: req.Owner,
			Queue: q.Name, Resources: res, Join: join,
			OutputPath: resolvePath(req.OutputPath, submitHost, workdir, name+".o"+strconv.Itoa(seq)),
			ErrorPath:  resolvePath(req.ErrorPath, submitHost, workdir, name+".e"+strconv.Itoa(seq)),
			Variables:  append([]string(nil), req.Variables...),
			Ctime:      now, Mtime: now, Qtime: now, StartAt: req.StartAt,
			SubmitArgs: strings.Join(req.Args, " "), SubmitHost: submitHost, Interactive: req.Interactive,
			Account: req.Account, Project: req.Project, MailPoints: req.MailPoints, MailUsers: req.MailUsers,
			Rerunable: req.Rerunable, Priority: req.Priority, Checkpoint: req.Checkpoint,
			KeepFiles: req.KeepFiles, Shell: req.Shell, Umask: req.Umask, Array: req.Array,
		},
		q: q, spec: spec, script: req.Script, shell: req.Shell, umask: umask, home: home, workdir: workdir,
	}
	j.setHold(0)
	if req.Hold {
		j.setHold(holdU)
	}
	s.jobs[seq] = j
	s.order = append(s.order, j)
	if req.Block {
		s.registerBlock(j)
	}
	abort, why := false, ""
	if len(deps) > 0 {
		abort, why = s.registerDeps(j, deps)
	}
	st, sub := s.evalState(j)
	if st == Queued {
		j.Etime = now
	}
	j.elem = q.pending.PushBack(j)
	s.setState(j, st, sub, "submitted by "+req.Owner)
	if st == Waiting {
		s.armStartTimer(j)
	}
	if (st == Held || st == Waiting) && s.faults != nil && s.hasJobRules() {
		// It will not reach the scheduler's check soon: apply vanish and
		// stuck rules now.
		s.checkJobFaults(j, nil)
	}
	if abort && !j.gone {
		s.abortDependant(j, why)
	}
	starts := s.schedule()
	snap := j.Job
	s.unlock()
	s.launch(starts)
	return snap, nil
}

// resolvePath makes an -o/-e value the Output_Path/Error_Path OpenPBS
// shows: host:/absolute/path, relative paths taken from qsub's working
// directory, the default <workdir>/<Job_Name>.o<seq> when not given. A
// trailing slash (a directory) is kept.
func resolvePath(given, host, workdir, def string) string {
	if given == "" {
		return host + ":" + path.Join(workdir, def)
	}
	p := given
	if i := strings.IndexByte(given, ':'); i > 0 && !strings.HasPrefix(given, "/") {
		host, p = given[:i], given[i+1:]
	}
	dir := strings.HasSuffix(p, "/")
	if !path.IsAbs(p) {
		p = path.Join(workdir, p)
	} else {
		p = path.Clean(p)
	}
	if dir && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return host + ":" + p
}

// lockJob holds the clock and locks the server for a change to job id:
// the caller unlocks the server and, once done, calls release to let the
// clock go. When the server does not know the job both are let go and the
// error is returned.
func (s *Server) lockJob(id string) (j *job, release func(), err error) {
	release = s.clock.Hold()
	s.mu.Lock()
	if j, err = s.lookup(id); err != nil {
		s.unlock()
		release()
		return nil, nil, err
	}
	return j, release, nil
}

// Delete implements Backend (qdel). A job waiting to run is removed; a
// running one gets SIGTERM, then SIGKILL after kill_delay, and ends as
// usual with its output staged. force removes it at once (qdel -W force).
func (s *Server) Delete(_ context.Context, user, id string, force bool) error {
	j, release, err := s.lockJob(id)
	if err != nil {
		return err
	}
	defer release()
	if j.State == Finished {
		s.unlock()
		return pbsErr(ErrJobFinished, s.fullID(id))
	}
	if err := s.checkOwner(user, j); err != nil {
		s.unlock()
		return err
	}
	return s.deleteLocked(j, user, id, force, false)
}

// deleteLocked deletes j, which is not finished and which user may delete,
// and releases s.mu. purge (qdel -x) makes the server forget the job once
// it has finished, even with history.
func (s *Server) deleteLocked(j *job, user, id string, force, purge bool) error {
	if j.State == Exiting && !force {
		s.unlock()
		return pbsErr(ErrBadState, s.fullID(id))
	}
	reason := "deleted by " + user
	// OpenPBS's acct_del_write tells a waiting qsub -W block=true
	// "Job deleted at request of <user>@<host>" (msg_deletejob, msg_manager).
	j.deletedBy = user + "@" + s.host
	j.purge = j.purge || purge
	switch j.State {
	case Queued, Held, Waiting:
		j.terminated = true
		s.finish(j, reason)
	case Running, Suspended:
		r := j.run
		j.terminated = true
		switch {
		case force:
			s.kill(r)
			s.finish(j, reason+" (force)")
		case r.scriptEnded:
			// kept in R by a stuck fault: the MOM never answers
		default:
			if r.killReason == "" {
				r.killReason = "delete"
			}
			s.terminate(j, r)
		}
	case Exiting:
		j.terminated = true
		s.finish(j, reason+" (force)")
	}
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
	return nil
}

// signals are the names qsig accepts, with or without SIG.
var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "ILL": syscall.SIGILL,
	"TRAP": syscall.SIGTRAP, "ABRT": syscall.SIGABRT, "BUS": syscall.SIGBUS, "FPE": syscall.SIGFPE,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "SEGV": syscall.SIGSEGV, "USR2": syscall.SIGUSR2,
	"PIPE": syscall.SIGPIPE, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN,
	"TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
	"VTALRM": syscall.SIGVTALRM, "PROF": syscall.SIGPROF, "WINCH": syscall.SIGWINCH, "IO": syscall.SIGIO,
	"PWR": syscall.SIGPWR, "SYS": syscall.SIGSYS,
}

func parseSignal(name string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(name); err == nil {
		if n > 0 && n < 65 {
			return syscall.Signal(n), true
		}
		return 0, false
	}
	sig, ok := signals[strings.TrimPrefix(name, "SIG")]
	return sig, ok
}

// Signal implements Backend (qsig): the named signal (default SIGTERM) to
// a running job's script, or suspend/resume (SIGSTOP/SIGCONT, state S).
func (s *Server) Signal(_ context.Context, user, id, sig string) error {
	if sig == "" {
		sig = "SIGTERM"
	}
	var num syscall.Signal
	switch sig {
	case "suspend", "admin-suspend", "resume", "admin-resume":
	default:
		n, ok := parseSignal(sig)
		if !ok {
			return pbsErr(ErrUnknownSignal, s.fullID(id))
		}
		num = n
	}
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	defer s.unlock()
	j, err := s.lookup(id)
	if err != nil {
		return err
	}
	if j.State == Finished {
		return pbsErr(ErrJobFinished, s.fullID(id))
	}
	if err := s.checkOwner(user, j); err != nil {
		return err
	}
	if strings.HasPrefix(sig, "admin-") && !s.managers[user] {
		return pbsErr(ErrPermission, j.ID)
	}
	r := j.run
	now := s.clock.Now()
	switch sig {
	case "suspend", "admin-suspend":
		if j.State != Running || r == nil {
			return pbsErr(ErrBadState, s.fullID(id))
		}
		s.signal(r, syscall.SIGSTOP)
		if r.wallStop != nil {
			r.wallStop()
			r.wallStop = nil
			r.wallLeft -= now.Sub(r.wallArmed)
		}
		r.suspendedAt = now
		s.setState(j, Suspended, subSuspended, "suspended by "+user)
	case "resume", "admin-resume":
		if j.State != Suspended || r == nil {
			return pbsErr(ErrBadState, s.fullID(id))
		}
		if j.pin == Suspended {
			return nil // kept suspended by a stuck fault
		}
		s.signal(r, syscall.SIGCONT)
		r.suspendedFor += now.Sub(r.suspendedAt)
		if j.spec.walltime > 0 && r.killReason == "" && !r.scriptEnded && r.wallStop == nil {
			r.wallArmed = now
			r.wallStop = s.after(r.wallLeft, func() { s.walltimeExceeded(j, r) })
		}
		s.setState(j, Running, subRunning, "resumed by "+user)
	default:
		if (j.State != Running && j.State != Suspended) || r == nil {
			return pbsErr(ErrBadState, s.fullID(id))
		}
		if !r.scriptEnded {
			s.signal(r, num)
		}
	}
	return nil
}

// Hold implements Backend (qhold): Hold_Types u by default; o needs an
// operator and s a manager. A job waiting to run goes to H; on a running
// job only the hold flag changes.
func (s *Server) Hold(_ context.Context, user, id, types string) error {
	j, h, release, err := s.lockHoldRequest(user, id, types)
	if err != nil {
		return err
	}
	defer release()
	defer s.unlock()
	switch j.State {
	case Queued, Waiting, Held:
		j.setHold(j.hold | h)
		j.Mtime = s.clock.Now()
		if j.startStop != nil {
			j.startStop()
			j.startStop = nil
		}
		s.reevaluate(j, "held by "+user)
	case Running, Suspended:
		j.setHold(j.hold | h)
		j.Mtime = s.clock.Now()
	default:
		return pbsErr(ErrBadState, s.fullID(id))
	}
	return nil
}

// Release implements Backend (qrls): the given holds (u by default) are
// lifted; a held job without holds left goes back to Q (or W).
func (s *Server) Release(_ context.Context, user, id, types string) error {
	j, h, release, err := s.lockHoldRequest(user, id, types)
	if err != nil {
		return err
	}
	defer release()
	if j.State == Exiting {
		s.unlock()
		return pbsErr(ErrBadState, s.fullID(id))
	}
	j.setHold(j.hold &^ h)
	if h&holdS != 0 {
		j.depHold = false
	}
	j.Mtime = s.clock.Now()
	if j.State == Held {
		s.reevaluate(j, "released by "+user)
	}
	starts := s.schedule()
	s.unlock()
	s.launch(starts)
	return nil
}

// lockHoldRequest parses the hold types of qhold or qrls and, holding the
// clock and the server's lock as lockJob does, checks that user may
// change those holds of job id. On an error both are let go.
func (s *Server) lockHoldRequest(user, id, types string) (j *job, h uint8, release func(), err error) {
	h, ok := parseHoldTypes(types)
	if !ok {
		return nil, 0, nil, attrErr(ErrBadAttrValue, "Hold_Types")
	}
	release = s.clock.Hold()
	s.mu.Lock()
	if j, err = s.checkHoldRequest(user, id, h); err != nil {
		s.unlock()
		release()
		return nil, 0, nil, err
	}
	return j, h, release, nil
}

func (s *Server) checkHoldRequest(user, id string, h uint8) (*job, error) {
	j, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if j.State == Finished {
		return nil, pbsErr(ErrJobFinished, s.fullID(id))
	}
	if err := s.checkOwner(user, j); err != nil {
		return nil, err
	}
	if h&^holdU != 0 && !s.managers[user] {
		return nil, pbsErr(ErrPermission, j.ID)
	}
	return j, nil
}

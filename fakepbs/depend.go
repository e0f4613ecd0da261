package fakepbs

import (
	"strings"
)

// depKind is a dependency type of -W depend (the "after" family).
type depKind int

const (
	depAfter depKind = iota // after: the parent started
	depAfterOK
	depAfterNotOK
	depAfterAny
)

var depNames = [...]string{"after", "afterok", "afternotok", "afterany"}
var beforeNames = [...]string{"before", "beforeok", "beforenotok", "beforeany"}

// depEdge is one dependency of child on parent.
type depEdge struct {
	kind          depKind
	parent, child *job
	done          bool
}

type depReq struct {
	kind depKind
	ids  []string
}

// parseDepend reads "type:id[:id...][,type:id...]". Only the after family
// is modelled; before*, on and runone are refused.
func parseDepend(v string) ([]depReq, error) {
	var out []depReq
	for _, part := range strings.Split(v, ",") {
		fields := strings.Split(part, ":")
		kind := -1
		for i, n := range depNames {
			if fields[0] == n {
				kind = i
			}
		}
		if kind < 0 || len(fields) < 2 {
			return nil, pbsErr(ErrBadDepend, "")
		}
		r := depReq{kind: depKind(kind)}
		for _, id := range fields[1:] {
			if id == "" {
				return nil, pbsErr(ErrBadDepend, "")
			}
			r.ids = append(r.ids, id)
		}
		out = append(out, r)
	}
	return out, nil
}

// registerDeps ties a new job to its parents, as OpenPBS's depend_on_que
// and req_register do: a dependency on a running or waiting job holds the
// child (Hold_Types s) until the parent releases it; one on a finished job
// in history is satisfied or fails at once by its exit status; one on a job
// the server does not know fails. It reports whether the child must be
// aborted. Called with s.mu held.
func (s *Server) registerDeps(child *job, reqs []depReq) (abort bool, why string) {
	for _, r := range reqs {
		for _, id := range r.ids {
			seq, ok := s.parseJobID(id)
			var parent *job
			if ok {
				parent = s.jobs[seq]
			}
			if parent == nil || parent.State == Finished && s.expired(parent) {
				abort, why = true, "dependency on unknown job "+s.fullID(id)
				continue
			}
			if parent.State == Finished {
				if !depSatisfied(r.kind, parent) {
					abort, why = true, "Finished job did not satisfy dependency: "+parent.ID
				}
				continue
			}
			if r.kind == depAfter && (parent.State == Running || parent.State == Suspended || parent.State == Exiting) {
				continue
			}
			e := &depEdge{kind: r.kind, parent: parent, child: child}
			parent.children = append(parent.children, e)
			child.deps = append(child.deps, e)
			child.pendingDeps++
			parent.DependOn = s.dependString(parent)
		}
	}
	if child.pendingDeps > 0 {
		child.depHold = child.hold&holdS == 0
		child.setHold(child.hold | holdS)
	}
	child.DependOn = s.dependString(child)
	return abort, why
}

// depSatisfied says whether a finished parent satisfies a dependency.
func depSatisfied(k depKind, parent *job) bool {
	exit := 0
	if parent.ExitStatus != nil {
		exit = *parent.ExitStatus
	}
	switch k {
	case depAfterOK:
		return exit == 0 && !parent.terminated
	case depAfterNotOK:
		return exit != 0 || parent.terminated
	default:
		return true
	}
}

// dependString is the job's depend attribute as qstat -f shows it: the
// dependencies still pending, then the jobs waiting on this one.
func (s *Server) dependString(j *job) string {
	var b strings.Builder
	write := func(name string, ids []string) {
		if len(ids) == 0 {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
		for _, id := range ids {
			b.WriteByte(':')
			b.WriteString(id)
		}
	}
	for k := depAfter; k <= depAfterAny; k++ {
		var ids []string
		for _, e := range j.deps {
			if e.kind == k && !e.done {
				ids = append(ids, e.parent.ID+"@"+s.host)
			}
		}
		write(depNames[k], ids)
	}
	for k := depAfter; k <= depAfterAny; k++ {
		var ids []string
		for _, e := range j.children {
			if e.kind == k && !e.done {
				ids = append(ids, e.child.ID+"@"+s.host)
			}
		}
		write(beforeNames[k], ids)
	}
	return b.String()
}

// releaseChildren releases the dependants of parent of kind k (used when
// the parent starts: "after").
func (s *Server) releaseChildren(parent *job, k depKind, reason string) {
	changed := false
	for _, e := range parent.children {
		if e.kind == k && !e.done {
			e.done = true
			changed = true
			s.releaseDep(e, reason)
		}
	}
	if changed {
		parent.DependOn = s.dependString(parent)
	}
}

// dependOnTerm is OpenPBS's depend_on_term: a finished (or deleted) parent
// releases or deletes each dependant by the dependency type, its exit
// status, and whether it was deleted (and held when deleted).
func (s *Server) dependOnTerm(parent *job, exit int, heldWhenDeleted bool) {
	for _, e := range parent.children {
		if e.done {
			continue
		}
		e.done = true
		release := false
		switch e.kind {
		case depAfterOK:
			release = exit == 0 && !parent.terminated
		case depAfterNotOK:
			release = exit != 0 || parent.terminated
		case depAfterAny:
			release = true
		case depAfter:
			release = false // the parent never started
		}
		if parent.terminated && heldWhenDeleted {
			release = false
		}
		if release {
			s.releaseDep(e, "dependency on "+parent.ID+" satisfied")
		} else {
			s.abortDependant(e.child, "Job deleted as result of dependency on job "+parent.ID)
		}
	}
	parent.DependOn = s.dependString(parent)
}

// releaseDep removes one satisfied dependency; the last one lifts the
// dependency hold.
func (s *Server) releaseDep(e *depEdge, reason string) {
	c := e.child
	if c.gone || c.State == Finished {
		return
	}
	c.pendingDeps--
	c.DependOn = s.dependString(c)
	if c.pendingDeps > 0 || !c.depHold {
		return
	}
	c.depHold = false
	c.setHold(c.hold &^ holdS)
	if c.State == Held {
		s.reevaluate(c, reason)
	}
}

// abortDependant deletes a job whose dependency can no longer be
// satisfied (job_abt).
func (s *Server) abortDependant(c *job, reason string) {
	if c.gone || c.State == Finished {
		return
	}
	for _, e := range c.deps {
		e.done = true
	}
	c.terminated = true
	if c.run != nil && (c.State == Running || c.State == Suspended) {
		c.run.killReason = "delete"
		s.terminate(c, c.run)
		return
	}
	c.Comment = reason
	s.finish(c, reason)
}

package fakepbs

import (
	"container/list"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs/pbsunit"
	"github.com/jobsim/jobsim/internal/syncio"
)

// launch is a job placed by the scheduler, to be started once the server
// lock is released.
type launch struct {
	j     *job
	r     *runState
	fired []fault.Rule
}

// schedule is one scheduling cycle: FIFO per queue (queues in order), each
// queued job placed on the first nodes with room, jobs that do not fit
// skipped (OpenPBS's default strict_ordering false). It stops as soon as no
// cpu is left. Called with s.mu held; the returned jobs are already in state
// R and must be handed to launch after unlocking.
func (s *Server) schedule() []launch {
	if s.closed || s.down {
		return nil
	}
	if s.exec == nil {
		return nil
	}
	var starts []launch
	// The smallest single-chunk request that did not fit in this cycle: a
	// request at least as large cannot fit either, so it is not tried.
	failCPUs, failMem := -1, int64(0)
	for _, q := range s.queues {
		if !q.Started {
			continue
		}
		e := q.pending.Front()
		for e != nil && s.freeCPUs > 0 {
			next := e.Next()
			j := e.Value.(*job)
			e = next
			if j.State != Queued || j.pin == Queued {
				continue
			}
			simple := len(j.spec.chunks) == 1 && j.spec.chunks[0].count == 1 && !j.spec.place.excl
			if simple && failCPUs >= 0 && j.spec.ncpus >= failCPUs && j.spec.mem >= failMem {
				s.setComment(j, s.insufficient(j))
				continue
			}
			if l, ok := s.tryStart(j); ok {
				starts = append(starts, l)
			} else if simple && !j.gone && j.State == Queued && j.pin != Queued && (failCPUs < 0 || j.spec.ncpus <= failCPUs && j.spec.mem <= failMem) {
				failCPUs, failMem = j.spec.ncpus, j.spec.mem
			}
		}
		if s.freeCPUs == 0 {
			s.commentNext(e)
			// Jobs that asked for no cpu could still fit; they are rare
			// enough that the early exit wins.
			break
		}
	}
	return starts
}

// commentNext gives the next queued job after a cycle ran out of cpus the
// scheduler's comment, as OpenPBS comments every job it could not run (only
// the next one here, to keep a cycle cheap).
func (s *Server) commentNext(e *list.Element) {
	for i := 0; e != nil && i < 64; i, e = i+1, e.Next() {
		if j := e.Value.(*job); j.State == Queued && j.pin != Queued {
			s.setComment(j, s.insufficient(j))
			return
		}
	}
}

// tryStart places j and, when it fits and no fault stops it, moves it to R.
func (s *Server) tryStart(j *job) (launch, bool) {
	alloc := s.place(j)
	if alloc == nil {
		s.setComment(j, s.insufficient(j))
		return launch{}, false
	}
	var fired []fault.Rule
	if s.faults != nil {
		fired = s.faults.Check(fault.Op{Layer: fault.PBS, Name: "run", User: j.User, Job: j.ID, Command: j.Name})
		if s.applyRules(j, fired) {
			return launch{}, false // vanished or kept queued
		}
	}
	s.commit(j, alloc)
	s.startJob(j)
	return launch{j: j, r: j.run, fired: fired}, true
}

// place finds room for every chunk of j, or returns nil.
func (s *Server) place(j *job) []allocation {
	free := make(map[*node]int, 4)
	freeMem := make(map[*node]int64, 4)
	used := make(map[*node]bool, 4)
	avail := func(n *node) (int, int64) {
		c, ok := free[n]
		if !ok {
			c = n.ncpus - n.used
			free[n] = c
			freeMem[n] = n.mem - n.memUsed
		}
		return c, freeMem[n]
	}
	usable := func(n *node) bool {
		if n.state != "" || n.excl {
			return false
		}
		return !j.spec.place.excl || n.used == 0
	}
	var out []allocation
	arr := j.spec.place.arrangement
	if arr == "pack" {
		// every chunk on one node
		for _, n := range s.nodes {
			if !usable(n) {
				continue
			}
			c, m := avail(n)
			if c >= j.spec.ncpus && m >= j.spec.mem {
				for _, ch := range j.spec.chunks {
					for i := 0; i < ch.count; i++ {
						out = append(out, allocation{n: n, mem: ch.mem, cpus: make([]int, ch.ncpus), mpiprocs: ch.mpiprocs, threads: ch.threads})
					}
				}
				return out
			}
		}
		return nil
	}
	for _, ch := range j.spec.chunks {
		for i := 0; i < ch.count; i++ {
			placed := false
			for _, n := range s.nodes {
				if !usable(n) || (arr == "scatter" || arr == "vscatter") && used[n] {
					continue
				}
				c, m := avail(n)
				if c >= ch.ncpus && m >= ch.mem {
					free[n] -= ch.ncpus
					freeMem[n] -= ch.mem
					used[n] = true
					out = append(out, allocation{n: n, mem: ch.mem, cpus: make([]int, ch.ncpus), mpiprocs: ch.mpiprocs, threads: ch.threads})
					placed = true
					break
				}
			}
			if !placed {
				return nil
			}
		}
	}
	return out
}

// insufficient is the scheduler's comment on a job that does not fit.
func (s *Server) insufficient(j *job) string {
	total := s.totalCPUs
	prefix := "Not Running"
	if j.spec.ncpus > total {
		prefix = "Can Never Run"
	}
	if j.spec.ncpus <= s.freeCPUs {
		return prefix + ": Insufficient amount of resource: mem"
	}
	return prefix + ": Insufficient amount of resource: ncpus (R: " + strconv.Itoa(j.spec.ncpus) +
		" A: " + strconv.Itoa(s.freeCPUs) + " T: " + strconv.Itoa(total) + ")"
}

func (s *Server) setComment(j *job, c string) {
	if j.Comment != c {
		j.Comment = c
	}
}

// commit takes the cpus and memory of alloc for j and sets exec_host and
// exec_vnode.
func (s *Server) commit(j *job, alloc []allocation) {
	now := s.clock.Now()
	var host, vnode strings.Builder
	type hostUse struct {
		n     *node
		first int
		ncpus int
	}
	var hosts []*hostUse
	byNode := map[*node]*hostUse{}
	for i := range alloc {
		a := &alloc[i]
		n := a.n
		k := 0
		for idx := 0; idx < n.ncpus && k < len(a.cpus); idx++ {
			if n.cpus[idx] == nil {
				n.cpus[idx] = j
				a.cpus[k] = idx
				k++
			}
		}
		n.used += len(a.cpus)
		n.memUsed += a.mem
		n.lastUsed = now
		if j.spec.place.excl {
			n.excl = true
		}
		if n.state == "" {
			s.freeCPUs -= len(a.cpus)
		}
		hu := byNode[n]
		if hu == nil {
			first := 0
			if len(a.cpus) > 0 {
				first = a.cpus[0]
			}
			hu = &hostUse{n: n, first: first}
			byNode[n] = hu
			hosts = append(hosts, hu)
		}
		hu.ncpus += len(a.cpus)
		if i > 0 {
			vnode.WriteByte('+')
		}
		vnode.WriteString("(" + n.name + ":ncpus=" + strconv.Itoa(len(a.cpus)))
		if a.mem > 0 {
			vnode.WriteString(":mem=" + pbsunit.KBString(a.mem))
		}
		vnode.WriteByte(')')
	}
	for i, hu := range hosts {
		if i > 0 {
			host.WriteByte('+')
		}
		host.WriteString(hu.n.name + "/" + strconv.Itoa(hu.first))
		if hu.ncpus > 1 {
			host.WriteString("*" + strconv.Itoa(hu.ncpus))
		}
	}
	j.alloc = alloc
	j.ExecHost = host.String()
	j.ExecVnode = vnode.String()
}

// release gives j's cpus and memory back.
func (s *Server) releaseNodes(j *job) {
	now := s.clock.Now()
	for _, a := range j.alloc {
		n := a.n
		for _, idx := range a.cpus {
			if n.cpus[idx] == j {
				n.cpus[idx] = nil
				n.used--
				if n.state == "" {
					s.freeCPUs++
				}
			}
		}
		n.memUsed -= a.mem
		n.lastUsed = now
		if j.spec.place.excl {
			n.excl = false
		}
	}
	j.alloc = nil
}

// startJob moves a placed job to R and arms its walltime limit.
func (s *Server) startJob(j *job) {
	now := s.clock.Now()
	if j.elem != nil {
		j.q.pending.Remove(j.elem)
		j.elem = nil
	}
	j.Stime = now
	j.RunCount++
	j.SessionID = 10000 + j.Seq
	j.Comment = jobRunComment(now, j.ExecVnode)
	j.ResourcesUsed = usedResources(j, 0, Usage{})
	ctx, cancel := context.WithCancel(s.ctx)
	j.run = &runState{ctx: ctx, cancel: cancel, stdout: &syncio.Buffer{}, stderr: &syncio.Buffer{}}
	if j.Join == "oe" {
		j.run.stderr = j.run.stdout
	} else if j.Join == "eo" {
		j.run.stdout = j.run.stderr
	}
	s.setState(j, Running, subRunning, "run on "+j.ExecHost)
	if w := j.spec.walltime; w > 0 {
		s.armWalltime(j, w+s.walltimeGrace)
	}
	s.releaseChildren(j, depAfter, "parent started")
}

func usedResources(j *job, wall time.Duration, u Usage) map[string]string {
	pct := 0
	if wall > 0 {
		pct = int(100 * u.CPU / wall)
	}
	mem := strconv.FormatInt(u.MaxRSS/1024, 10) + "kb"
	return map[string]string{
		"cpupercent": strconv.Itoa(pct),
		"cput":       pbsunit.FormatDuration(u.CPU),
		"mem":        mem,
		"ncpus":      strconv.Itoa(j.spec.ncpus),
		// The peak resident set is the only size an ended process leaves
		// behind; a MoM's vmem (address space) is at least that.
		"vmem":     mem,
		"walltime": pbsunit.FormatDuration(wall),
	}
}

// launch starts the scripts of jobs the scheduler moved to R. Each runs as
// an actor of the server's clock.
func (s *Server) launch(starts []launch) {
	for _, l := range starts {
		s.wg.Add(1)
		s.clock.Go(l.r.ctx, func(ctx context.Context) {
			defer s.wg.Done()
			s.runJob(ctx, l.j, l.r, l.fired)
		})
	}
}

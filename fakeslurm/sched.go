package fakeslurm

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// launch is a job the scheduler started, to hand to the executor once
// s.mu is released.
type launch struct {
	j *job
	r *runState
}

// kick arms one scheduler pass SchedulerDelay from now, unless one is
// armed already. Called with s.mu held.
func (s *Server) kick() {
	if s.schedStop != nil || s.closed {
		return
	}
	s.schedStop = s.after(s.c.schedDelay, s.pass)
}

// pass is one scheduler pass.
func (s *Server) pass() {
	release := s.clock.Hold()
	defer release()
	s.mu.Lock()
	s.schedStop = nil
	if s.closed || s.down {
		s.mu.Unlock()
		return
	}
	starts := s.schedule()
	s.mu.Unlock()
	s.launch(starts)
}

// schedule is slurmctld's main scheduler: pending jobs by priority, strict
// FIFO within a partition (the first job that does not fit blocks the ones
// behind it, Reason=Priority), with the reasons squeue shows. Called with
// s.mu held.
func (s *Server) schedule() []launch {
	now := s.clock.Now()
	var pend []*job
	for _, j := range s.order {
		if !j.purged && j.State == Pending {
			pend = append(pend, j)
		}
	}
	sort.SliceStable(pend, func(a, b int) bool { return pend[a].Priority > pend[b].Priority })
	blocked := map[*partition]bool{}
	var starts []launch
	var wake time.Time
	for _, j := range pend {
		j.LastSched = now
		switch {
		case j.adminHold:
			j.Reason = "JobHeldAdmin"
			continue
		case j.userHold:
			j.Reason = "JobHeldUser"
			continue
		}
		if !j.begin.IsZero() && now.Before(j.begin) {
			j.Reason = "BeginTime"
			if wake.IsZero() || j.begin.Before(wake) {
				wake = j.begin
			}
			continue
		}
		if ok, never := s.depState(j); !ok {
			j.Reason = "Dependency"
			if never {
				j.Reason = "DependencyNeverSatisfied"
			}
			continue
		}
		if j.Eligible.IsZero() {
			j.Eligible, j.Accrue = now, now
		}
		p := j.part
		if r := partitionReason(j); r != "" {
			j.Reason = r
			continue
		}
		switch {
		case blocked[p]:
			j.Reason = "Priority"
			continue
		}
		nodes := s.place(j)
		if nodes == nil {
			blocked[p] = true
			j.Reason = "Resources"
			continue
		}
		starts = append(starts, s.commit(j, nodes, now))
	}
	if s.wakeStop != nil {
		s.wakeStop()
		s.wakeStop = nil
	}
	if !wake.IsZero() {
		s.wakeStop = s.after(wake.Sub(now), func() {
			s.mu.Lock()
			s.wakeStop = nil
			s.kick()
			s.mu.Unlock()
		})
	}
	return starts
}

// partitionReason is why j cannot run in its partition as configured
// (PartitionDown, PartitionConfig, PartitionTimeLimit), or "".
func partitionReason(j *job) string {
	p := j.part
	switch {
	case !p.Up:
		return "PartitionDown"
	case j.nodesReq > len(p.nodes):
		return "PartitionConfig"
	case p.MaxTime != Unlimited && (j.TimeLimit == Unlimited || j.TimeLimit > p.MaxTime):
		return "PartitionTimeLimit"
	}
	return ""
}

// place picks nodes for j in its partition, or nil: the nodes -w named
// first, never those -x excluded, whole idle nodes for --exclusive.
func (s *Server) place(j *job) []*node {
	fits := func(n *node) bool {
		if n.down || n.drain || j.exclude[n.name] {
			return false
		}
		if j.exclusive && n.alloc > 0 {
			return false
		}
		return n.cpus-n.alloc >= j.cpusNode && (j.memNode == 0 || n.mem-n.allocMem >= j.memNode)
	}
	var got []*node
	taken := map[*node]bool{}
	for _, name := range j.include {
		n := s.nodeByName[name]
		if n == nil || !fits(n) || !slices.Contains(j.part.nodes, n) {
			return nil
		}
		got = append(got, n)
		taken[n] = true
	}
	for _, n := range j.part.nodes {
		if len(got) >= j.nodesReq {
			break
		}
		if !taken[n] && fits(n) {
			got = append(got, n)
		}
	}
	if len(got) < j.nodesReq {
		return nil
	}
	return got
}

// commit gives j its nodes and makes it RUNNING. Called with s.mu held.
func (s *Server) commit(j *job, nodes []*node, now time.Time) launch {
	j.alloc = nodes
	names := make([]string, len(nodes))
	total := 0
	j.Cores = map[string][]int{}
	for i, n := range nodes {
		c := j.cpusNode
		if j.exclusive {
			c = n.cpus
		}
		j.Cores[n.name] = freeCores(n, c)
		total += c
		n.alloc += c
		n.allocMem += j.memNode
		n.jobs[j] = c
		n.lastBusy = now
		names[i] = n.name
	}
	j.State = Running
	j.Reason = "None"
	j.Start = now
	j.End = time.Time{}
	j.NodeList = Hostlist(names)
	j.BatchHost = nodes[0].name
	j.Nodes = len(nodes)
	j.NumCPUs = total
	j.Ran = true
	j.Completing = false
	j.StdOut = s.expandPath(j, j.outPat)
	j.StdErr = s.expandPath(j, j.errPat)
	r := &runState{}
	j.run = r
	if j.TimeLimit != Unlimited {
		j.limitStop = s.after(j.TimeLimit+s.c.limitSlack, func() { s.timeLimit(j, r) })
		if j.sig != 0 && j.sigBatch {
			// --signal=B:SIG@T: the batch shell gets SIG T before the
			// limit. Without B: it goes to the job's steps, which the
			// fake does not have apart from the script.
			j.sigStop = s.after(max(0, j.TimeLimit-j.sigBefore), func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				j.sigStop = nil
				if j.run == r && !r.ended {
					s.signal(r, j.sig)
				}
			})
		}
	}
	s.record(j, "started on "+j.NodeList)
	return launch{j: j, r: r}
}

// freeCores picks the c lowest-numbered cores of n that no job on it
// holds, as select/cons_tres picks them. Called with s.mu held.
func freeCores(n *node, c int) []int {
	used := map[int]bool{}
	for jb := range n.jobs {
		for _, k := range jb.Cores[n.name] {
			used[k] = true
		}
	}
	var out []int
	for k := 0; len(out) < c && k < n.cpus; k++ {
		if !used[k] {
			out = append(out, k)
		}
	}
	return out
}

// releaseNodes gives back j's nodes. Called with s.mu held.
func (s *Server) releaseNodes(j *job) {
	now := s.clock.Now()
	for _, n := range j.alloc {
		if c, ok := n.jobs[j]; ok {
			n.alloc -= c
			n.allocMem -= j.memNode
			delete(n.jobs, j)
			n.lastBusy = now
		}
	}
	j.alloc = nil
}

// launch starts the scripts of the jobs the scheduler placed, each as an
// actor of the server's clock.
func (s *Server) launch(starts []launch) {
	for _, l := range starts {
		s.wg.Add(1)
		l := l
		s.clock.Go(s.ctx, func(ctx context.Context) {
			defer s.wg.Done()
			s.runJob(ctx, l.j, l.r)
		})
	}
}

// Hostlist compresses node names as Slurm prints them: node1,node2,node5
// becomes node[1-2,5].
func Hostlist(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, ",")
	}
	type part struct {
		prefix, digits string
	}
	split := func(n string) part {
		i := len(n)
		for i > 0 && n[i-1] >= '0' && n[i-1] <= '9' {
			i--
		}
		return part{n[:i], n[i:]}
	}
	var out []string
	for i := 0; i < len(names); {
		p := split(names[i])
		if p.digits == "" {
			out = append(out, names[i])
			i++
			continue
		}
		k := i + 1
		for k < len(names) {
			q := split(names[k])
			if q.prefix != p.prefix || q.digits == "" || len(q.digits) != len(p.digits) {
				break
			}
			k++
		}
		if k == i+1 {
			out = append(out, names[i])
			i++
			continue
		}
		var ranges []string
		w := len(p.digits)
		start, _ := strconv.Atoi(p.digits)
		prev := start
		flush := func(a, b int) {
			f := func(n int) string {
				s := strconv.Itoa(n)
				for len(s) < w {
					s = "0" + s
				}
				return s
			}
			if a == b {
				ranges = append(ranges, f(a))
			} else {
				ranges = append(ranges, f(a)+"-"+f(b))
			}
		}
		for m := i + 1; m < k; m++ {
			v, _ := strconv.Atoi(split(names[m]).digits)
			if v == prev+1 {
				prev = v
				continue
			}
			flush(start, prev)
			start, prev = v, v
		}
		flush(start, prev)
		out = append(out, p.prefix+"["+strings.Join(ranges, ",")+"]")
		i = k
	}
	return strings.Join(out, ",")
}

// ExpandHostlist expands a Slurm host list ("node[1-3,5],login") into
// names, the inverse of Hostlist.
func ExpandHostlist(s string) ([]string, error) {
	var out []string
	for len(s) > 0 {
		i := strings.IndexAny(s, ",[")
		if i < 0 {
			out = append(out, s)
			break
		}
		if s[i] == ',' {
			if i > 0 {
				out = append(out, s[:i])
			}
			s = s[i+1:]
			continue
		}
		prefix := s[:i]
		end := strings.IndexByte(s[i:], ']')
		if end < 0 {
			return nil, fmt.Errorf("host list %q: unclosed '['", s)
		}
		inner := s[i+1 : i+end]
		s = strings.TrimPrefix(s[i+end+1:], ",")
		for _, r := range strings.Split(inner, ",") {
			lo, hi, isRange := strings.Cut(r, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || b < a {
				return nil, fmt.Errorf("host list: bad range %q", r)
			}
			for n := a; n <= b; n++ {
				v := strconv.Itoa(n)
				for len(v) < len(lo) {
					v = "0" + v
				}
				out = append(out, prefix+v)
			}
		}
	}
	return out, nil
}

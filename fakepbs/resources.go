package fakepbs

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakepbs/pbsunit"
)

// chunk is one chunk of a select statement, already multiplied out by the
// scheduler (count is how many of it the job asked for).
type chunk struct {
	count    int
	ncpus    int
	mem      int64        // bytes; 0 when the chunk does not ask for memory
	memSize  pbsunit.Size // mem as written, which the job's total keeps
	mpiprocs int
	threads  int // ompthreads; 0 means ncpus
}

// jobSpec is what the scheduler and the MOM side need from a job's
// resource list.
type jobSpec struct {
	chunks   []chunk
	place    placement
	walltime time.Duration // 0: no limit
	ncpus    int           // total
	mem      int64         // total bytes, 0 when not requested
	memSum   pbsunit.Size  // the total as OpenPBS adds the chunks' sizes
}

type placement struct {
	arrangement string // free, pack, scatter, vscatter
	excl        bool
}

// knownResources are the job-wide resources OpenPBS defines by default
// (src/server/master_resc_def_all.xml) that clients use; others are
// rejected with "Unknown resource" unless configured with WithResources.
var knownResources = map[string]bool{
	"select": true, "place": true, "walltime": true, "ncpus": true, "mem": true, "vmem": true,
	"nodes": true, "nodect": true, "cput": true, "pcput": true, "pmem": true, "pvmem": true,
	"file": true, "nice": true, "host": true, "vnode": true, "arch": true, "mpiprocs": true,
	"ompthreads": true, "software": true, "naccelerators": true, "ngpus": true, "accelerator": true,
	"soft_walltime": true, "min_walltime": true, "max_walltime": true, "preempt_targets": true,
	"site": true, "mpparch": true, "mppwidth": true, "mppnppn": true, "mppdepth": true,
}

// normalizeResources turns qsub's -l list into the job's Resource_List as
// OpenPBS shows it, and the spec the scheduler uses. Errors name the
// offending attribute in Error.JobID, as qsub prints it.
func (s *Server) normalizeResources(in map[string]string) (map[string]string, jobSpec, error) {
	out := make(map[string]string, len(in)+4)
	var spec jobSpec
	for k, v := range in {
		if !knownResources[k] && !s.extraResources[k] {
			return nil, spec, attrErr(ErrUnknownResource, "Resource_List."+k)
		}
		out[k] = v
	}
	bad := func(name string) error { return attrErr(ErrBadAttrValue, "Resource_List."+name) }

	if w, ok := in["walltime"]; ok {
		d, err := pbsunit.ParseDuration(w)
		if err != nil {
			return nil, spec, bad("walltime")
		}
		spec.walltime = d
		out["walltime"] = pbsunit.FormatDuration(d)
	}
	for _, name := range []string{"cput", "pcput", "soft_walltime", "min_walltime", "max_walltime"} {
		if v, ok := in[name]; ok {
			sec, err := pbsunit.ParseTime(v)
			if err != nil {
				return nil, spec, bad(name)
			}
			out[name] = pbsunit.FormatTime(sec)
		}
	}

	sel, hasSelect := in["select"]
	place, hasPlace := in["place"]
	switch {
	case hasSelect:
		// Host-level resources cannot also be asked for job-wide (PBSE_INVALJOBRESC).
		for _, name := range []string{"ncpus", "nodes", "mem", "vmem"} {
			if _, ok := in[name]; ok {
				return nil, spec, attrErr(ErrBadAttrValue, "Resource_List."+name)
			}
		}
		chunks, err := parseSelect(sel)
		if err != nil {
			return nil, spec, bad("select")
		}
		spec.chunks = chunks
		if !hasPlace {
			place = "free"
		}
	case in["nodes"] != "":
		// Torque-style nodes=N[:ppn=M] becomes select=N:ncpus=M:mpiprocs=M, place=scatter.
		chunks, err := parseNodes(in["nodes"])
		if err != nil {
			return nil, spec, bad("nodes")
		}
		spec.chunks = chunks
		c := chunks[0]
		out["select"] = fmt.Sprintf("%d:ncpus=%d:mpiprocs=%d", c.count, c.ncpus, c.mpiprocs)
		if !hasPlace {
			place = "scatter"
		}
	default:
		if hasPlace {
			return nil, spec, pbsErr(ErrPlaceNoSelect, "")
		}
		n := 1
		if v, ok := in["ncpus"]; ok {
			x, err := strconv.Atoi(v)
			if err != nil || x < 0 {
				return nil, spec, bad("ncpus")
			}
			n = x
		}
		c := chunk{count: 1, ncpus: n, mpiprocs: 1}
		sel := fmt.Sprintf("1:ncpus=%d", n)
		if v, ok := in["mem"]; ok {
			m, err := pbsunit.ParseSize(v)
			if err != nil {
				return nil, spec, bad("mem")
			}
			c.mem, c.memSize = m.Bytes(), m
			sel += ":mem=" + m.String()
		}
		spec.chunks = []chunk{c}
		out["select"] = sel
		place = "pack"
	}
	p, err := parsePlace(place)
	if err != nil {
		return nil, spec, bad("place")
	}
	spec.place = p
	out["place"] = place

	nodect := 0
	for _, c := range spec.chunks {
		nodect += c.count
		spec.ncpus += c.count * c.ncpus
		spec.memSum = spec.memSum.Plus(c.memSize.Times(c.count))
	}
	spec.mem = spec.memSum.Bytes()
	out["ncpus"] = strconv.Itoa(spec.ncpus)
	out["nodect"] = strconv.Itoa(nodect)
	if spec.memSum.Num > 0 {
		out["mem"] = spec.memSum.String()
	}
	return out, spec, nil
}

// parseSelect parses "N:res=val:res=val+N:..." chunk statements.
func parseSelect(sel string) ([]chunk, error) {
	if strings.TrimSpace(sel) == "" {
		return nil, fmt.Errorf("empty select")
	}
	var out []chunk
	for _, part := range strings.Split(sel, "+") {
		fields := strings.Split(part, ":")
		c := chunk{count: 1, ncpus: 1}
		start := 0
		if n, err := strconv.Atoi(fields[0]); err == nil {
			if n < 1 {
				return nil, fmt.Errorf("chunk count %d", n)
			}
			c.count = n
			start = 1
		}
		mpiSet := false
		for _, f := range fields[start:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok || k == "" || v == "" {
				return nil, fmt.Errorf("chunk resource %q", f)
			}
			switch k {
			case "ncpus":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("ncpus %q", v)
				}
				c.ncpus = n
			case "mem":
				m, err := pbsunit.ParseSize(v)
				if err != nil {
					return nil, err
				}
				c.mem, c.memSize = m.Bytes(), m
			case "mpiprocs":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("mpiprocs %q", v)
				}
				c.mpiprocs, mpiSet = n, true
			case "ompthreads":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("ompthreads %q", v)
				}
				c.threads = n
			}
		}
		if !mpiSet {
			c.mpiprocs = 1
			if c.ncpus == 0 {
				c.mpiprocs = 0
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// parseNodes parses Torque's nodes=N[:ppn=M].
func parseNodes(v string) ([]chunk, error) {
	fields := strings.Split(v, ":")
	n, err := strconv.Atoi(fields[0])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("nodes %q", v)
	}
	c := chunk{count: n, ncpus: 1, mpiprocs: 1}
	for _, f := range fields[1:] {
		if k, val, ok := strings.Cut(f, "="); ok && k == "ppn" {
			p, err := strconv.Atoi(val)
			if err != nil || p < 1 {
				return nil, fmt.Errorf("ppn %q", val)
			}
			c.ncpus, c.mpiprocs = p, p
		}
	}
	return []chunk{c}, nil
}

func parsePlace(v string) (placement, error) {
	p := placement{arrangement: "free"}
	for _, f := range strings.Split(v, ":") {
		switch f {
		case "free", "pack", "scatter", "vscatter":
			p.arrangement = f
		case "excl", "exclhost":
			p.excl = true
		case "shared":
		default:
			if !strings.HasPrefix(f, "group=") {
				return p, fmt.Errorf("place %q", f)
			}
		}
	}
	return p, nil
}

package cli

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakepbs"

	"github.com/jobsim/jobsim/internal/getopt"
)

func pbsnodesUsage(p string) string {
	return fmt.Sprintf("usage:\t%s [-{o|r}][-C comment][-s server] host host ...\n"+
		"\t%s -l [-s server]\n"+
		"\t%s [-s server] -v vnode vnode ...\n"+
		"\t%s -a[v][S[j][L]][-F format][-D delim][-s server]\n"+
		"\t%s -[H][S[j][L]][-F format][-D delim] host host ...\n"+
		"\t%s --version\n\n", p, p, p, p, p, p)
}

// nodeAttrs lists a node's attributes as pbs_stathost reports them, in the
// order OpenPBS prints them; the state-change times are epoch seconds, as
// the server sends them (the default display converts them).
func nodeAttrs(n fakepbs.Node, version string) []attr {
	a := make([]attr, 0, 24)
	add := func(name, res, v string) { a = append(a, attr{Name: name, Resource: res, Value: v}) }
	host := n.Host
	if host == "" {
		host = n.Name
	}
	short := host
	if i := strings.IndexByte(short, '.'); i > 0 && !isIPv4(short) {
		short = short[:i]
	}
	state := n.State
	if state == "" {
		state = "free"
	}
	add("Mom", "", host)
	add("Port", "", "15002")
	add("pbs_version", "", version)
	add("ntype", "", "PBS")
	add("state", "", state)
	add("pcpus", "", strconv.Itoa(n.NCPUs))
	if len(n.Jobs) > 0 {
		add("jobs", "", strings.Join(n.Jobs, ", "))
	}
	add("resources_available", "arch", "linux")
	add("resources_available", "host", short)
	if n.Mem != "" {
		add("resources_available", "mem", sizeKB(n.Mem))
	}
	add("resources_available", "ncpus", strconv.Itoa(n.NCPUs))
	add("resources_available", "vnode", n.Name)
	add("resources_assigned", "accelerator_memory", "0kb")
	add("resources_assigned", "hbmem", "0kb")
	mem := "0kb"
	if n.AssignedMem != "" {
		mem = sizeKB(n.AssignedMem)
	}
	add("resources_assigned", "mem", mem)
	add("resources_assigned", "naccelerators", "0")
	add("resources_assigned", "ncpus", strconv.Itoa(n.AssignedCPUs))
	add("resources_assigned", "vmem", "0kb")
	if n.Comment != "" {
		add("comment", "", n.Comment)
	}
	add("resv_enable", "", "True")
	add("sharing", "", "default_shared")
	add("license", "", "l")
	if !n.LastStateChange.IsZero() {
		add("last_state_change_time", "", strconv.FormatInt(n.LastStateChange.Unix(), 10))
	}
	if !n.LastUsed.IsZero() {
		add("last_used_time", "", strconv.FormatInt(n.LastUsed.Unix(), 10))
	}
	return a
}

// pbsnodes lists nodes as OpenPBS's pbsnodes does: -a, named hosts, -l,
// -S[j] summaries, -F json|dsv. Changing nodes (-o, -r, -c, -d, -C) is not
// supported by the Backend and says so.
func (r *run) pbsnodes() error {
	if r.printVersion() {
		return nil
	}
	g := getopt.Parse(r.prog, r.inv.Args, getopt.Spec{Short: "acC:dD:F:HjlLoqrs:Sv"})
	const (
		listSP = iota
		all
		listMarked
		change
	)
	oper := listSP
	errflg := len(r.inv.Args) == 0
	format := fmtDefault
	delim := "|"
	quiet, summary, jobSummary, longSummary := false, false, false, false
	var nodeOp byte
	comment, hasComment := "", false
	for _, o := range g.Options {
		switch o.Key {
		case 'a':
			if oper == listSP {
				oper = all
			} else {
				errflg = true
			}
		case 'c', 'o', 'r':
			if oper == listSP || oper == change {
				oper = change
				nodeOp = byte(o.Key)
			} else {
				errflg = true
			}
		case 'C':
			if oper == listSP || oper == change {
				oper = change
				comment, hasComment = o.Arg, true
			} else {
				errflg = true
			}
		case 'd':
			oper = change
			nodeOp = 'd'
		case 'D':
			delim = o.Arg
		case 'F':
			switch strings.ToLower(o.Arg) {
			case "default":
				format = fmtDefault
			case "dsv":
				format = fmtDSV
			case "json":
				format = fmtJSON
			default:
				errflg = true
			}
		case 'H', 'v', 's':
		case 'j':
			jobSummary = true
		case 'l':
			if oper == listSP {
				oper = listMarked
			} else {
				errflg = true
			}
		case 'L':
			longSummary = true
		case 'q':
			quiet = true
		case 'S':
			summary = true
		case '?':
			r.stderr.WriteString(o.Err)
			errflg = true
		default:
			errflg = true
		}
	}
	if errflg || (oper == listMarked && len(g.Operands) != 0) || (oper == listSP && len(g.Operands) == 0) ||
		(oper == change && len(g.Operands) == 0) {
		if !quiet {
			r.stderr.WriteString(pbsnodesUsage(r.prog))
		}
		return exit(1)
	}
	if oper == change {
		return r.changeNodes(g.Operands, nodeOp, comment, hasComment, quiet)
	}
	nodes := r.b.Nodes(r.ctx)
	if (oper == all || oper == listMarked) && len(nodes) == 0 {
		if !quiet {
			fmt.Fprintf(&r.stderr, "%s: Server has no node list\n", r.prog)
		}
		return exit(1)
	}
	var js *jsonList
	if format == fmtJSON {
		js = &jsonList{}
		js.integer("timestamp", r.cfg.now().Unix())
		js.str(jsonValue, "pbs_version", r.pbsVersion(), escFull)
		js.str(jsonValue, "pbs_server", r.serverName(), escFull)
		js.object("nodes")
	}
	sum := &nodeSummary{out: &r.stdout, server: r.serverName(), jobs: jobSummary, long: longSummary, format: format, delim: delim, js: js}
	show := func(n fakepbs.Node) {
		if summary {
			sum.write(n)
			return
		}
		r.prtNode(n, format, delim, js)
	}
	rc := 0
	switch oper {
	case all:
		for _, n := range nodes {
			show(n)
		}
	case listMarked:
		for _, n := range nodes {
			if strings.Contains(n.State, "down") || strings.Contains(n.State, "offline") {
				fmt.Fprintf(&r.stdout, "%-20s %s %s\n", n.Name, n.State, n.Comment)
			}
		}
	case listSP:
		for _, name := range g.Operands {
			var found *fakepbs.Node
			for i := range nodes {
				if nodes[i].Name == name || cmpNodeName(name, nodes[i].Name) {
					found = &nodes[i]
					break
				}
			}
			if found == nil {
				if js != nil {
					js.object(name)
					js.str(jsonObjectEnd, "Error", "Unknown node", escFull)
				} else {
					fmt.Fprintf(&r.stderr, "Node: %s,  Error: Unknown node\n", name)
					rc = 1
				}
				continue
			}
			show(*found)
		}
	}
	if js != nil {
		js.objectEnd()
		js.generate(&r.stdout)
	}
	if rc != 0 {
		return exit(rc)
	}
	return nil
}

// cmpNodeName is pbsnodes' cmp_node_name: "foo" matches "foo.bar".
func cmpNodeName(n1, n2 string) bool {
	return strings.HasPrefix(n2, n1) && len(n2) > len(n1) && n2[len(n1)] == '.'
}

// prtNode writes one node (prt_node).
func (r *run) prtNode(n fakepbs.Node, format int, delim string, js *jsonList) {
	attrs := nodeAttrs(n, r.pbsVersion())
	out := &r.stdout
	switch format {
	case fmtJSON:
		nodeJSON(js, n.Name, attrs)
	case fmtDSV:
		fmt.Fprintf(out, "Name=%s%s", n.Name, delim)
		for i, a := range attrs {
			v := a.Value
			if a.Name == "jobs" {
				v = strings.ReplaceAll(v, " ", "")
			}
			if a.Resource != "" {
				fmt.Fprintf(out, "%s.%s=%s", a.Name, a.Resource, v)
			} else {
				fmt.Fprintf(out, "%s=%s", a.Name, v)
			}
			if i+1 < len(attrs) {
				out.WriteString(delim)
			}
		}
		out.WriteByte('\n')
	default:
		out.WriteString(n.Name + "\n")
		for _, a := range attrs {
			out.WriteString("     " + a.Name)
			if a.Resource != "" {
				out.WriteString("." + a.Resource)
			}
			v := a.Value
			if a.Name == "last_state_change_time" || a.Name == "last_used_time" {
				sec, _ := strconv.ParseInt(v, 10, 64)
				v = ctime(time.Unix(sec, 0), r.cfg.loc)
			}
			out.WriteString(" = " + v + "\n")
		}
		out.WriteByte('\n')
	}
}

// nodeJSON is pbsnodes' encode_to_json: resources grouped in objects (only
// non-zero assigned resources), jobs as an array of distinct job ids.
func nodeJSON(js *jsonList, name string, attrs []attr) {
	js.object(name)
	for i := 0; i < len(attrs); i++ {
		a := attrs[i]
		switch a.Name {
		case "resources_available", "resources_assigned":
			js.object(a.Name)
			for ; i < len(attrs) && attrs[i].Name == a.Name; i++ {
				v := attrs[i].Value
				if a.Name == "resources_assigned" {
					if f := strtodPrefix(v); f > 0 {
						if n, err := strconv.ParseFloat(v[:f], 64); err == nil && n == 0 {
							continue
						}
					} else if strings.HasPrefix(v, "0") {
						continue
					}
				}
				js.auto(jsonValue, attrs[i].Resource, v, escFull)
			}
			i--
			js.objectEnd()
		case "jobs":
			js.array(a.Name)
			prev := ""
			for _, id := range strtok(strings.ReplaceAll(a.Value, " ", ""), ',') {
				if k := strings.IndexByte(id, '/'); k >= 0 {
					id = id[:k]
				}
				if id != prev {
					js.str(jsonValue, "", id, escFull)
				}
				prev = id
			}
			js.arrayEnd()
		default:
			js.auto(jsonValue, a.Name, a.Value, escFull)
		}
	}
	js.objectEnd()
}

// nodeSummary writes pbsnodes -S and -Sj lines (prt_node_summary).
type nodeSummary struct {
	out        *bytes.Buffer
	server     string
	jobs, long bool
	format     int
	delim      string
	js         *jsonList
	header     bool
}

func memSummary(v string, kb bool) (int64, int) {
	n, err := strconv.ParseInt(strings.TrimRight(v, "kmgtbw"), 10, 64)
	if err != nil {
		return 0, 1
	}
	prefix := 0
	rest := strings.TrimLeft(v, "0123456789")
	if rest != "" {
		prefix = strings.IndexByte(" kmgt", rest[0])
		if prefix < 0 {
			prefix = 0
		}
	}
	_ = kb
	return n, prefix
}

func (s *nodeSummary) write(n fakepbs.Node) {
	attrs := nodeAttrs(n, "")
	get := func(name, res string) string {
		for _, a := range attrs {
			if a.Name == name && a.Resource == res {
				return a.Value
			}
		}
		return ""
	}
	suffix := " kmgtp?"
	totalMem, pt := memSummary(get("resources_available", "mem"), true)
	assigned, pa := memSummary(get("resources_assigned", "mem"), true)
	for pa != pt {
		if pa < pt {
			assigned = ((assigned % 1024) + assigned) >> 10
			pa++
		} else {
			assigned <<= 10
			pa--
		}
	}
	avail, pv := totalMem-assigned, pt
	for avail > 999 {
		avail = ((avail % 1024) + avail) >> 10
		pv++
	}
	for totalMem > 999 {
		totalMem = ((totalMem % 1024) + totalMem) >> 10
		pt++
	}
	state := strings.SplitN(n.State, ",", 2)[0]
	if state == "" {
		state = "free"
	}
	if s.long {
		state = n.State
	}
	comment := n.Comment
	if comment == "" {
		comment = "--"
	}
	host := get("resources_available", "host")
	if s.format == fmtDefault && !s.header {
		if s.jobs {
			s.out.WriteString("                                                        mem       ncpus   nmics   ngpus\n")
			s.out.WriteString("vnode           state           njobs   run   susp      f/t        f/t     f/t     f/t   jobs\n")
			s.out.WriteString("--------------- --------------- ------ ----- ------ ------------ ------- ------- ------- -------\n")
		} else {
			s.out.WriteString("vnode           state           OS       hardware host            queue        mem     ncpus   nmics   ngpus  comment\n")
			s.out.WriteString("--------------- --------------- -------- -------- --------------- ---------- -------- ------- ------- ------- ---------\n")
		}
		s.header = true
	}
	if s.jobs {
		jobs := "--"
		var ids []string
		prev := ""
		for _, j := range n.Jobs {
			id := j
			if k := strings.IndexByte(id, '/'); k >= 0 {
				id = id[:k]
			}
			if k := strings.IndexByte(id, '.'); k >= 0 && id[k+1:] == s.server {
				id = id[:k]
			}
			if id != prev {
				ids = append(ids, id)
			}
			prev = id
		}
		if len(ids) > 0 {
			jobs = strings.Join(ids, ",")
		}
		memInfo := fmt.Sprintf("%d%cb/%d%cb", avail, suffix[pv], totalMem, suffix[pt])
		ncpus := fmt.Sprintf("%d/%d", n.NCPUs-n.AssignedCPUs, n.NCPUs)
		fmt.Fprintf(s.out, "%-15.15s %-15.15s %6d %5d %6d %12.12s %7.7s %7.7s %7.7s %s\n",
			n.Name, state, len(ids), len(ids), 0, memInfo, ncpus, "0/0", "0/0", jobs)
		return
	}
	memInfo := fmt.Sprintf("%d%cb", totalMem, suffix[pt])
	fmt.Fprintf(s.out, "%-15.15s %-15.15s %-8.8s %-8.8s %-15.15s %-10.10s %8.8s %7.7s %7.7s %7.7s %s\n",
		n.Name, state, "--", "--", host, "--", memInfo, strconv.Itoa(n.NCPUs), "0", "0", comment)
}

// NodeStater is implemented by backends whose nodes can be taken offline
// and back (pbsnodes -o, -r, -c, -C).
type NodeStater interface {
	SetNodeState(name, state, comment string) error
}

// changeNodes marks nodes as pbsnodes -o/-r/-c/-C does (marknode): each
// failure prints "Error marking node <name> - <text>" and makes the exit 1.
func (r *run) changeNodes(names []string, op byte, comment string, hasComment, quiet bool) error {
	ns, ok := r.b.(NodeStater)
	if !ok || op == 'd' {
		fmt.Fprintf(&r.stderr, "%s: changing node state is not supported by this PBS server\n", r.prog)
		return exit(1)
	}
	current := map[string]fakepbs.Node{}
	for _, n := range r.b.Nodes(r.ctx) {
		current[n.Name] = n
	}
	rc := 0
	for _, name := range names {
		if name == "" {
			continue
		}
		n := current[name]
		state, note := "", n.Comment
		switch op {
		case 'o':
			state = "offline"
		case 'r', 'c':
			state = ""
		default: // comment only: keep the state
			if strings.Contains(n.State, "offline") {
				state = "offline"
			} else if strings.Contains(n.State, "down") {
				state = "down"
			}
		}
		if hasComment {
			note = comment
		}
		if err := ns.SetNodeState(name, state, note); err != nil {
			if !quiet {
				_, text := pbsErr(err)
				fmt.Fprintf(&r.stderr, "Error marking node %s - %s\n", name, text)
			}
			rc = 1
		}
	}
	if rc != 0 {
		return exit(rc)
	}
	return nil
}

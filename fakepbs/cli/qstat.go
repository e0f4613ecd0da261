package cli

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/jobsim/jobsim/fakepbs"

	"github.com/jobsim/jobsim/internal/getopt"
)

const qstatOptstring = "ainpqrstwxu:fGHJMQEBW:T1F:D:"

const qstatUsage = "usage: \n" +
	"qstat [-f] [-J] [-p] [-t] [-x] [-E] [-F format | -w] [-D delim] [ job_identifier... | destination... ]\n" +
	"qstat [-a|-i|-r|-H|-T] [-J] [-t] [-u user] [-n] [-s] [-G|-M] [-1] [-w]\n" +
	"\t[ job_identifier... | destination... ]\n" +
	"qstat -Q [-f] [-F format] [-D delim] [ destination... ]\n" +
	"qstat -q [-G|-M] [ destination... ]\n" +
	"qstat -B [-f] [-F format] [-D delim] [ server_name... ]\n" +
	"qstat --version\n"

const qstatConflict = "qstat: conflicting options.\n"

// Alternative display flags (qstat.c's ALT_DISPLAY_*).
const (
	altA  = 1
	altI  = 2
	altR  = 4
	altU  = 8
	altN  = 0x10
	altS  = 0x20
	altH  = 0x40
	altQ  = 0x80
	altMb = 0x100
	altMw = 0x200
	altG  = 0x400
	alt1l = 0x800
	altW  = 0x1000
	altT  = 0x2000
	howP  = 0x4000
)

const (
	fmtDefault = iota
	fmtDSV
	fmtJSON
)

type qstatMode int

const (
	modeJobs qstatMode = iota
	modeQueues
	modeServers
)

// qstatOpts is what qstat's option loop collects.
type qstatOpts struct {
	alt, how         int
	full, wide       bool
	format           int
	delim            string
	history, subjobs bool
	mode             qstatMode
	states           string // selection by state letters (-i, -r, -H)
	users            string // -u
	arrays           bool   // -J
	express          bool   // -E
}

// qstat shows jobs, queues or the server as OpenPBS's qstat does.
func (r *run) qstat() error {
	if r.printVersion() {
		return nil
	}
	o, ok := r.qstatOptions()
	if !ok {
		r.stderr.WriteString(qstatUsage)
		return exit(2)
	}
	st := &qstatRun{run: r, o: o, header: true, pHeader: true}
	if o.format == fmtJSON {
		st.json = &jsonList{}
		st.json.integer("timestamp", r.cfg.now().Unix())
		st.json.str(jsonValue, "pbs_version", r.pbsVersion(), escFull)
		st.json.str(jsonValue, "pbs_server", r.serverName(), escFull)
	}
	operands := getopt.Parse(r.prog, r.inv.Args, getopt.Spec{Short: qstatOptstring}).Operands
	if len(operands) == 0 {
		switch o.mode {
		case modeJobs:
			st.jobs("", "", false)
		case modeQueues:
			st.queues("")
		case modeServers:
			st.servers()
		}
	}
	for _, op := range operands {
		switch o.mode {
		case modeJobs:
			if isJobID(op) {
				id, ok := parseJobID(op)
				if !ok {
					fmt.Fprintf(&r.stderr, "qstat: illegally formed job identifier: %s\n", op)
					st.failed = 1
					st.header = false
					continue
				}
				st.jobs(fullJobID(id, r.serverName()), "", true)
				continue
			}
			q, _, ok := parseDestination(op)
			if !ok {
				fmt.Fprintf(&r.stderr, "qstat: illegally formed destination: %s\n", op)
				st.failed = 1
				st.header = false
				continue
			}
			st.jobs("", q, false)
		case modeQueues:
			q, _, ok := parseDestination(op)
			if !ok {
				r.stderr.WriteString("qstat: illegal 'destination' value\n")
				st.failed = 1
				continue
			}
			st.queues(q)
		case modeServers:
			st.servers()
		}
	}
	if st.json != nil {
		st.json.objectEnd()
		r.stdout.Grow(len(st.json.nodes) * 40)
		st.json.generate(&r.stdout)
	}
	if st.failed != 0 {
		return exit(st.failed)
	}
	return nil
}

// qstatOptions runs qstat's option loop and its conflict checks, writing the
// messages qstat writes; false means usage and exit 2.
func (r *run) qstatOptions() (qstatOpts, bool) {
	o := qstatOpts{delim: "|"}
	g := getopt.Parse(r.prog, r.inv.Args, getopt.Spec{Short: qstatOptstring})
	errflg := 0
	fail := func(msg string) {
		r.stderr.WriteString(msg)
		errflg++
	}
	bOpt, qOpt := false, false
	for _, p := range g.Options {
		switch p.Key {
		case '?':
			fail(p.Err)
		case 'a', 'i', 'r', 'q', 'G', 'M', '1':
			o.letter(byte(p.Key))
		case 'T':
			o.alt |= altT
		case 'H':
			o.alt |= altH
			o.history = true
			o.states = "MFX"
		case 't':
			o.subjobs = true
		case 'x':
			o.history = true
		case 'u':
			o.alt |= altU
			o.users = p.Arg
		case 'n':
			o.alt |= altN
			o.full = false
		case 'p':
			o.how |= howP
		case 's':
			o.alt |= altS
			o.full = false
		case 'J':
			o.arrays = true
		case 'w':
			o.alt |= altW
			o.wide = true
		case 'f':
			o.full = true
		case 'B':
			bOpt = true
			o.mode = modeServers
			if qOpt || (o.alt != 0 && !o.wide) {
				fail(qstatConflict)
			}
		case 'Q':
			qOpt = true
			o.mode = modeQueues
			if bOpt || (o.alt != 0 && !o.wide) {
				fail(qstatConflict)
			}
		case 'E':
			o.express = true
		case 'D':
			if o.format == fmtDSV {
				o.delim = p.Arg
			} else {
				errflg++
			}
		case 'F':
			switch strings.ToLower(p.Arg) {
			case "default":
				o.format = fmtDefault
			case "dsv":
				o.format = fmtDSV
			case "json":
				o.format = fmtJSON
			default:
				errflg++
			}
		case 'W':
			for i := 0; i < len(p.Arg); i++ {
				switch p.Arg[i] {
				case 'a', 'i', 'r', 'q', 'G', 'M', '1':
					o.letter(p.Arg[i])
				case 'H':
					o.alt |= altH
					o.history = true
					o.states = "MF"
				case 'u':
					o.alt |= altU
					o.users = strings.TrimLeft(p.Arg[i+1:], " ")
					i = len(p.Arg)
				case 'n':
					o.alt |= altN
				case 's':
					o.alt |= altS
				case ' ':
				default:
					errflg++
				}
			}
		default:
			errflg++
		}
	}
	c := o.alt & (altA | altI | altR | altQ | altH)
	if c != 0 && c != altA && c != altI && c != altR && c != altQ && c != altH {
		fail(qstatConflict)
	}
	if o.alt&(altMw|altG) == altMw|altG {
		fail(qstatConflict)
	}
	if !(o.format == fmtDefault || o.full) {
		fail(qstatConflict)
	}
	if o.alt&altQ != 0 && o.full {
		fail(qstatConflict)
	}
	if o.alt&alt1l != 0 && o.alt&(altN|altS) == 0 {
		fail(qstatConflict)
	}
	if o.wide && o.format != fmtDefault {
		fail("qstat: option w cannot be used with -F\n")
	}
	return o, errflg == 0
}

// letter applies an option letter that means the same alone and in -W's
// list: a, i, r, q, G, M and 1.
func (o *qstatOpts) letter(c byte) {
	switch c {
	case 'a':
		o.alt |= altA
	case 'i':
		o.alt |= altI
		o.states = "EHQTW"
	case 'r':
		o.alt |= altR
		o.states = "RS"
	case 'q':
		o.alt |= altQ
		o.mode = modeQueues
	case 'G':
		o.alt |= altG
	case 'M':
		o.alt |= altMw
	case '1':
		o.alt |= alt1l
	}
}

// qstatRun is the state qstat carries across its operands.
type qstatRun struct {
	*run
	o        qstatOpts
	header   bool // the server header is still to be printed (first operand only)
	pHeader  bool // the queue/server table header is still to be printed
	failed   int
	json     *jsonList
	jsonOpen bool // the "Jobs"/"Queue"/"Server" object was opened
}

// delimiter is what separates attributes in -f output.
func (q *qstatRun) delimiter() string {
	switch q.o.format {
	case fmtDSV:
		return q.o.delim
	case fmtJSON:
		return ""
	}
	return "\n"
}

// jobs handles one job operand (id set), destination (queue set) or the
// no-operand case.
func (q *qstatRun) jobs(id, queue string, single bool) {
	header := q.header
	q.header = false // only the first connection to the server prints it
	var list []fakepbs.Job
	filtered := q.o.states != "" || q.o.users != "" || q.o.arrays || queue != ""
	if single {
		j, err := q.b.Job(q.ctx, id, q.o.history)
		if err != nil {
			q.jobError(err, id)
			return
		}
		list = []fakepbs.Job{j}
	} else {
		if queue != "" && !q.queueExists(queue) {
			q.failed = q.jobErr(&fakepbs.Error{Code: fakepbs.ErrUnknownQueue, Text: "Unknown queue"}, queue) & 0xff
			return
		}
		all := q.b.Jobs(q.ctx, q.o.history)
		if filtered {
			for _, j := range all {
				if q.selected(j, queue) {
					list = append(list, j)
				}
			}
		} else {
			list = all
		}
	}
	if len(list) == 0 {
		return
	}
	if q.o.alt&^altW != 0 && !(q.o.wide && q.o.full) {
		q.altJobs(list, header)
		return
	}
	q.displayJobs(list, header)
}

// jobError prints a failed status request: "Job has finished" gets qstat's
// hint about -x, everything else prt_job_err's "<text> <id>".
func (q *qstatRun) jobError(err error, id string) {
	code, text := pbsErr(err)
	if code == fakepbs.ErrJobFinished {
		fmt.Fprintf(&q.stderr, "qstat: %s %s, use -x or -H to obtain historical job information\n", id, text)
	} else {
		q.jobErr(err, id)
	}
	q.failed = code & 0xff
}

func (q *qstatRun) queueExists(name string) bool {
	for _, qu := range q.b.Queues(q.ctx) {
		if qu.Name == name {
			return true
		}
	}
	return false
}

// selected applies pbs_selstat's criteria: states, users, arrays, queue.
func (q *qstatRun) selected(j fakepbs.Job, queue string) bool {
	if q.o.states != "" && !strings.ContainsRune(q.o.states, rune(j.State)) {
		return false
	}
	if queue != "" && j.Queue != queue {
		return false
	}
	if q.o.arrays && j.Array == "" {
		return false
	}
	if q.o.users != "" {
		ok := false
		for _, u := range strings.Split(q.o.users, ",") {
			u, _, _ = strings.Cut(strings.TrimSpace(u), "@")
			if u == ownerUser(j) || u == j.User {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// displayJobs is display_statjob: the default table, or -f in the default,
// DSV or JSON format.
func (q *qstatRun) displayJobs(list []fakepbs.Job, header bool) {
	out := &q.stdout
	if !q.o.full && header && q.o.format == fmtDefault {
		switch {
		case q.o.how&howP != 0 && q.o.wide:
			out.WriteString("Job id                         Name            User              % done  S Queue\n")
			out.WriteString("-----------------------------  --------------- ---------------  -------- - ---------------\n")
		case q.o.how&howP != 0:
			out.WriteString("Job id            Name             User               % done  S Queue\n")
			out.WriteString("----------------  ---------------- ----------------  -------- - -----\n")
		case q.o.wide:
			out.WriteString("Job id                         Name            User             Time Use S Queue\n")
			out.WriteString("-----------------------------  --------------- ---------------  -------- - ---------------\n")
		default:
			out.WriteString("Job id            Name             User              Time Use S Queue\n")
			out.WriteString("----------------  ---------------- ----------------  -------- - -----\n")
		}
	}
	if q.json != nil && !q.jsonOpen {
		q.json.nodes = append(make([]jsonNode, 0, len(q.json.nodes)+len(list)*60), q.json.nodes...)
		q.json.object("Jobs")
		q.jsonOpen = true
	}
	info := q.server()
	if q.o.full {
		out.Grow(len(list) * 1200)
	} else {
		out.Grow(len(list) * 82)
	}
	var attrs []attr
	keys := new([]string)
	for _, j := range list {
		if q.o.full {
			attrs = appendJobAttrs(attrs[:0], j, info, q.cfg.loc, keys)
			q.fullObject("Job Id: ", j.ID, attrs)
			continue
		}
		q.tableRow(j)
	}
}

// fullObject writes one job, queue or server in -f form.
func (q *qstatRun) fullObject(label, name string, attrs []attr) {
	out := &q.stdout
	delim := q.delimiter()
	oneLine := q.o.alt&altW != 0
	switch q.o.format {
	case fmtJSON:
		q.json.object(name)
		prev := ""
		for _, a := range attrs {
			jsonAttr(q.json, a, &prev)
		}
		if prev != "" {
			q.json.objectEnd()
		}
		q.json.objectEnd()
		return
	case fmtDSV:
		out.WriteString(label + name + delim)
		for i, a := range attrs {
			dsvAttr(out, a, q.o.delim)
			if i+1 < len(attrs) {
				out.WriteString(delim)
			}
		}
		out.WriteByte('\n')
	default:
		out.WriteString(label + name + delim)
		for i, a := range attrs {
			prtAttr(out, a, oneLine)
			if i+1 < len(attrs) {
				out.WriteString(delim)
			}
		}
		out.WriteString(delim)
		out.WriteByte('\n')
	}
}

// tableRow writes one row of the default table with qstat's truncations:
// the id cut at its second dot, then every column to its width with a '*'.
func (q *qstatRun) tableRow(j fakepbs.Job) {
	id := j.ID
	if q.truncID {
		id = truncateIDFault(id)
	}
	id = cutAtSecondDot(id)
	wide := q.o.wide
	idw, namew, userw, queuew := 17, 16, 16, 16
	if wide {
		idw, namew, userw, queuew = 30, 15, 15, 15
	}
	id = truncStar(id, idw)
	name := j.Name
	if len(name) >= namew {
		name = name[:namew-1] + "*"
	}
	owner := truncStar(ownerUser(j), userw)
	timeu := j.ResourcesUsed["cput"]
	if timeu != "" {
		timeu = truncStar(displayResource("cput", timeu), 8)
	} else {
		timeu = "0"
	}
	if q.o.how&howP != 0 {
		timeu = percent(j)
	}
	queue := j.Queue
	if i := strings.IndexByte(queue, '@'); i >= 0 {
		queue = queue[:i]
	}
	queue = truncStar(queue, queuew)
	fmt.Fprintf(&q.stdout, "%-*s %-*s %-*s  %8s %1s %-*s\n", idw, id, namew, name, userw, owner, timeu, j.State.String(), queuew, queue)
}

// percent is percent_cal for -p: walltime used against requested.
func percent(j fakepbs.Job) string {
	switch j.State {
	case fakepbs.Queued, fakepbs.Waiting, 'T':
		return "-- "
	case 'X':
		return "100"
	}
	pc, pw := int64(-1), int64(-1)
	if u, ok := parseTime(j.ResourcesUsed["cput"]); ok {
		if r, ok := parseTime(j.Resources["cput"]); ok && r != 0 {
			pc = u * 100 / r
		}
	}
	if u, ok := parseTime(j.ResourcesUsed["walltime"]); ok {
		if r, ok := parseTime(j.Resources["walltime"]); ok && r != 0 {
			pw = u * 100 / r
		}
	}
	if pc != -1 || pw != -1 {
		return fmt.Sprintf("%3d ", max(pc, pw))
	}
	return "-- "
}

// cutAtSecondDot keeps the sequence number and the first label of the
// server name, as qstat's table does ("38438.master" for
// "38438.master.domain").
func cutAtSecondDot(id string) string {
	i := strings.IndexByte(id, '.')
	if i < 0 {
		return id
	}
	j := strings.IndexByte(id[i+1:], '.')
	if j < 0 {
		return id
	}
	return id[:i+1+j]
}

// truncateIDFault is the TruncateIDs fault: the id loses its last label.
func truncateIDFault(id string) string {
	if i := strings.LastIndexByte(id, '.'); i > 0 {
		return id[:i]
	}
	return id
}

// truncStar cuts s to n characters, the last one replaced by '*', when it
// is longer than n (qstat's DISPLAY_TRUNC_CHAR).
func truncStar(s string, n int) string {
	if len(s) > n && n > 0 {
		return s[:n-1] + "*"
	}
	return s
}

// altJobs is altdsp_statjob: the alternative table of -a, -u, -s, -n, -i,
// -r, -H, -T.
func (q *qstatRun) altJobs(list []fakepbs.Job, header bool) {
	out := &q.stdout
	alt, wide := q.o.alt, q.o.wide
	if header {
		fmt.Fprintf(out, "\n%s: ", q.serverName())
		if wide {
			out.WriteByte('\n')
			sp := func(ws ...int) {
				for _, w := range ws {
					fmt.Fprintf(out, "%s ", strings.Repeat(" ", w))
				}
			}
			if alt&altT != 0 {
				sp(30, 15, 15, 15, 8, 4, 5)
				out.WriteString("               Est\n")
			}
			sp(30, 15, 15, 15, 8, 4, 5)
			if alt&altT != 0 {
				out.WriteString("Req'd  Req'd   Start\n")
			} else {
				out.WriteString("Req'd  Req'd   Elap\n")
			}
			fmt.Fprintf(out, "%-30s %-15s %-15s %-15s %-8s %-4s %-5s ", "Job ID", "Username", "Queue", "Jobname", "SessID", "NDS", "TSK")
			out.WriteString("Memory Time  S Time\n")
			fmt.Fprintf(out, "%s %s %s %s %s %s %s ", strings.Repeat("-", 30), strings.Repeat("-", 15), strings.Repeat("-", 15),
				strings.Repeat("-", 15), strings.Repeat("-", 8), strings.Repeat("-", 4), strings.Repeat("-", 5))
			out.WriteString("------ ----- - -----\n")
		} else {
			if alt&altT != 0 {
				fmt.Fprintf(out, "\n%75s%s\n%60s%-7s%-8s%s\n", " ", "Est", " ", "Req'd", "Req'd", "Start")
			} else {
				fmt.Fprintf(out, "\n%60s%-7s%-8s%s\n", " ", "Req'd", "Req'd", "Elap")
			}
			out.WriteString("Job ID          Username Queue    Jobname    SessID NDS TSK Memory Time  S Time\n")
			out.WriteString("--------------- -------- -------- ---------- ------ --- --- ------ ----- - -----\n")
		}
	}
	const blank = " -- "
	for _, j := range list {
		tr := func(v string, n, nw int) string {
			if wide {
				n = nw
			}
			return truncStar(v, n)
		}
		jobn := tr(j.Name, 10, 15)
		usern := tr(ownerUser(j), 8, 15)
		queuen := tr(j.Queue, 8, 15)
		sess := blank
		if j.SessionID != 0 {
			sess = tr(fmt.Sprint(j.SessionID), 6, 8)
		}
		nodect, tasks, rqmem := blank, blank, blank
		if v, ok := j.Resources["nodect"]; ok {
			nodect = tr(v, 3, 4)
		}
		if v, ok := j.Resources["ncpus"]; ok && v != "0" {
			tasks = tr(v, 3, 5)
		}
		if v, ok := j.Resources["mem"]; ok {
			rqmem = cnvSize(v, alt)
		}
		rqtime, eltime := blank, blank
		if v, ok := j.Resources["walltime"]; ok {
			rqtime = displayResource("walltime", v)
		}
		if v, ok := j.ResourcesUsed["walltime"]; ok {
			eltime = displayResource("walltime", v)
		}
		if v, ok := j.Resources["cput"]; ok {
			rqtime = displayResource("cput", v)
			eltime = blank
			if u, ok := j.ResourcesUsed["cput"]; ok {
				eltime = displayResource("cput", u)
			}
		}
		if alt&altT != 0 {
			eltime = "--"
		}
		id := j.ID
		if q.truncID {
			id = truncateIDFault(id)
		}
		id = tr(id, 15, 30)
		if wide {
			fmt.Fprintf(out, "%-30.30s %-15.15s %-15.15s %-15.15s %8.8s %4.4s %5.5s ", id, usern, queuen, jobn, sess, nodect, tasks)
			fmt.Fprintf(out, "%6.6s %5.5s %1s %5.5s", rqmem, rqtime, j.State.String(), eltime)
		} else {
			fmt.Fprintf(out, "%-15.15s %-8.8s %-8.8s ", id, usern, queuen)
			fmt.Fprintf(out, "%-10.10s %6.6s %3.3s %3.3s ", jobn, sess, nodect, tasks)
			fmt.Fprintf(out, "%6.6s %5.5s %1.1s %5.5s", rqmem, rqtime, j.State.String(), eltime)
		}
		if alt&alt1l == 0 {
			out.WriteByte('\n')
		} else {
			out.WriteByte(' ')
		}
		if alt&altN != 0 {
			exechost := j.ExecHost
			if exechost == "" {
				exechost = blank
			}
			prtNodes(out, exechost, alt&alt1l != 0)
		}
		if alt&altS != 0 {
			comment := j.Comment
			if comment == "" {
				comment = blank
			}
			if wide {
				if len(comment) > 114 {
					comment = comment[:111] + "..."
				}
			} else if len(comment) > 74 {
				comment = comment[:71] + "..."
			}
			fmt.Fprintf(out, "   %s\n", comment)
		}
	}
}

// prtNodes is qstat's prt_nodes: exec_host with domain names stripped,
// broken into lines of at most 77 characters at '+'.
func prtNodes(out *bytes.Buffer, nodes string, noNewline bool) {
	if nodes == "" {
		return
	}
	var line []byte
	flush := func() {
		if noNewline {
			out.Write(line)
		} else {
			out.WriteString("   ")
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	for _, tok := range strtok(nodes, '+') {
		host, chunk := tok, ""
		if k := strings.IndexByte(tok, '/'); k >= 0 {
			host, chunk = tok[:k], tok[k:]
		}
		if !isIPv4(host) {
			if k := strings.IndexByte(host, '.'); k >= 0 {
				host = host[:k]
			}
		}
		name := host + chunk
		if len(line)+len(name) < charLineLimit-1 {
			line = append(line, name...)
			line = append(line, '+')
		} else {
			flush()
			line = append(line[:0], name...)
			line = append(line, '+')
		}
	}
	if len(line) > 0 {
		line = line[:len(line)-1]
		if noNewline {
			out.Write(line)
			out.WriteByte('\n')
		} else {
			flush()
		}
	} else if noNewline {
		out.WriteByte('\n')
	}
}

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if !allDigits(p) || len(p) > 3 {
			return false
		}
	}
	return true
}

// queueCounts counts a queue's (or the server's, for queue "") jobs by
// state, as state_count reports them.
type queueCounts struct{ transit, queued, held, waiting, running, exiting, begun, total int }

func (q *qstatRun) counts(queue string) queueCounts {
	var c queueCounts
	for _, j := range q.b.Jobs(q.ctx, false) {
		if queue != "" && j.Queue != queue {
			continue
		}
		c.total++
		switch j.State {
		case fakepbs.Queued:
			c.queued++
		case fakepbs.Held:
			c.held++
		case fakepbs.Waiting:
			c.waiting++
		case fakepbs.Running, fakepbs.Suspended:
			c.running++
		case fakepbs.Exiting:
			c.exiting++
		case 'T':
			c.transit++
		case 'B':
			c.begun++
		}
	}
	return c
}

func (c queueCounts) String() string {
	return fmt.Sprintf("Transit:%d Queued:%d Held:%d Waiting:%d Running:%d Exiting:%d Begun:%d ",
		c.transit, c.queued, c.held, c.waiting, c.running, c.exiting, c.begun)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func trueFalse(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// queues shows one queue, or all of them (-Q, -Qf, -q).
func (q *qstatRun) queues(name string) {
	var list []fakepbs.Queue
	for _, qu := range q.b.Queues(q.ctx) {
		if name == "" || qu.Name == name {
			list = append(list, qu)
		}
	}
	if len(list) == 0 {
		if name != "" {
			fmt.Fprintf(&q.stderr, "qstat: Unknown queue %s\n", name)
			q.failed = fakepbs.ErrUnknownQueue & 0xff
		}
		return
	}
	out := &q.stdout
	if q.o.alt&altQ != 0 {
		fmt.Fprintf(out, "\nserver: %s\n\n", q.serverName())
		out.WriteString("Queue            Memory CPU Time Walltime Node   Run   Que   Lm  State\n")
		out.WriteString("---------------- ------ -------- -------- ---- ----- ----- ----  -----\n")
		totRun, totQue := 0, 0
		for _, qu := range list {
			c := q.counts(qu.Name)
			que := c.queued + c.held + c.waiting
			totRun += c.running
			totQue += que
			ena, str := 'D', 'S'
			if qu.Enabled {
				ena = 'E'
			}
			if qu.Started {
				str = 'R'
			}
			fmt.Fprintf(out, "%-16.16s %6.6s %8.8s %8.8s %4.4s ", qu.Name, "--  ", "  --   ", "  --   ", "-- ")
			fmt.Fprintf(out, "%5d %5d %4.4s   %c %c\n", c.running, que, "  --   ", ena, str)
		}
		out.WriteString("                                               ----- -----\n")
		fmt.Fprintf(out, "                                               %5d %5d\n", totRun, totQue)
		q.pHeader = false
		return
	}
	if !q.o.full && q.pHeader && q.o.format == fmtDefault {
		out.WriteString("Queue              Max   Tot Ena Str   Que   Run   Hld   Wat   Trn   Ext Type\n")
		out.WriteString("---------------- ----- ----- --- --- ----- ----- ----- ----- ----- ----- ----\n")
	}
	if q.json != nil && !q.jsonOpen {
		q.json.object("Queue")
		q.jsonOpen = true
	}
	for _, qu := range list {
		c := q.counts(qu.Name)
		if q.o.full {
			attrs := []attr{
				{Name: "queue_type", Value: "Execution"},
				{Name: "total_jobs", Value: fmt.Sprint(c.total)},
				{Name: "state_count", Value: c.String()},
				{Name: "resources_assigned", Resource: "mem", Value: "0kb"},
				{Name: "resources_assigned", Resource: "ncpus", Value: "0"},
				{Name: "resources_assigned", Resource: "nodect", Value: "0"},
				{Name: "hasnodes", Value: "True"},
				{Name: "enabled", Value: trueFalse(qu.Enabled)},
				{Name: "started", Value: trueFalse(qu.Started)},
			}
			q.fullObject("Queue: ", qu.Name, attrs)
			continue
		}
		n5 := func(v int) string { return truncStar(fmt.Sprint(v), 5) }
		fmt.Fprintf(out, "%-16s %5s %5s %3s %3s %5s %5s %5s %5s %5s %5s %-4s\n",
			truncStar(qu.Name, 16), "0", n5(c.total), yesNo(qu.Enabled), yesNo(qu.Started),
			n5(c.queued), n5(c.running), n5(c.held), n5(c.waiting), n5(c.transit), n5(c.exiting), truncStar("Execution", 4))
	}
	q.pHeader = false
}

// servers shows the server (-B, -Bf).
func (q *qstatRun) servers() {
	info := q.server()
	out := &q.stdout
	c := q.counts("")
	if !q.o.full && q.pHeader && q.o.format == fmtDefault {
		out.WriteString("Server             Max   Tot   Que   Run   Hld   Wat   Trn   Ext Status\n")
		out.WriteString("---------------- ----- ----- ----- ----- ----- ----- ----- ----- -----------\n")
	}
	if q.json != nil && !q.jsonOpen {
		q.json.object("Server")
		q.jsonOpen = true
	}
	name := q.serverName()
	if q.o.full {
		host := info.Host
		if host == "" {
			host = name
		}
		attrs := []attr{
			{Name: "server_state", Value: "Active"},
			{Name: "server_host", Value: host},
			{Name: "scheduling", Value: "True"},
			{Name: "total_jobs", Value: fmt.Sprint(c.total)},
			{Name: "state_count", Value: c.String()},
		}
		if info.DefaultQueue != "" {
			attrs = append(attrs, attr{Name: "default_queue", Value: info.DefaultQueue})
		}
		attrs = append(attrs,
			attr{Name: "log_events", Value: "511"},
			attr{Name: "mail_from", Value: "adm"},
			attr{Name: "query_other_jobs", Value: "True"},
			attr{Name: "resources_default", Resource: "ncpus", Value: "1"},
			attr{Name: "default_chunk", Resource: "ncpus", Value: "1"},
			attr{Name: "resources_assigned", Resource: "ncpus", Value: "0"},
			attr{Name: "resources_assigned", Resource: "nodect", Value: "0"},
			attr{Name: "scheduler_iteration", Value: "600"},
			attr{Name: "flatuid", Value: "True"},
			attr{Name: "resv_enable", Value: "True"},
			attr{Name: "node_fail_requeue", Value: "310"},
			attr{Name: "max_array_size", Value: "10000"},
			attr{Name: "pbs_license_min", Value: "0"},
			attr{Name: "pbs_license_max", Value: "2147483647"},
			attr{Name: "pbs_license_linger_time", Value: "31536000"},
			attr{Name: "license_count", Value: "Avail_Global:1000000 Avail_Local:1000000 Used:0 High_Use:0"},
			attr{Name: "pbs_version", Value: q.pbsVersion()},
		)
		if info.HistoryEnable {
			attrs = append(attrs, attr{Name: "job_history_enable", Value: "True"})
		}
		attrs = append(attrs,
			attr{Name: "eligible_time_enable", Value: "False"},
			attr{Name: "max_concurrent_provision", Value: "5"},
			attr{Name: "power_provisioning", Value: "False"},
			attr{Name: "max_job_sequence_id", Value: "9999999"},
		)
		q.fullObject("Server: ", name, attrs)
		q.pHeader = false
		return
	}
	n5 := func(v int) string { return truncStar(fmt.Sprint(v), 5) }
	fmt.Fprintf(out, "%-16s %5s %5s %5s %5s %5s %5s %5s %5s %-10s\n", truncStar(name, 16), "0", n5(c.total),
		n5(c.queued), n5(c.running), n5(c.held), n5(c.waiting), n5(c.transit), n5(c.exiting), "Active")
	q.pHeader = false
}

package cli

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
)

var sacctOpts = optSpec(`
	j,jobs= n,noheader X,allocations P,parsable2 p,parsable o,format= u,user= a,allusers s,state=
	b,brief name= S,starttime= E,endtime=>ignore D,duplicates>ignore L,allclusters>ignore
	M,clusters=>ignore r,partition= json help usage>help`)

// sacctField is one column of sacct: its name as the header shows it and
// its width (negative: left-justified).
type sacctField struct {
	name  string
	width int
}

// sacctWidths are sacct's column widths (sacct.c fields[]).
var sacctWidths = map[string]int{
	"jobid": -12, "jobidraw": -12, "jobname": 10, "partition": 10, "account": 10, "alloccpus": 10,
	"state": 10, "exitcode": 8, "elapsed": 10, "start": 19, "end": 19, "submit": 19, "eligible": 19,
	"nodelist": 15, "user": 9, "uid": 6, "group": 9, "gid": 6, "nnodes": 8, "ncpus": 10, "timelimit": 10,
	"derivedexitcode": 15, "reason": 25, "workdir": 20, "comment": 15, "reqmem": 10, "reqcpus": 8,
	"reqnodes": 8, "priority": 10, "cputime": 10, "elapsedraw": 10, "cputimeraw": 10,
}

var sacctNames = map[string]string{
	"jobid": "JobID", "jobidraw": "JobIDRaw", "jobname": "JobName", "partition": "Partition", "account": "Account",
	"alloccpus": "AllocCPUS", "state": "State", "exitcode": "ExitCode", "elapsed": "Elapsed", "start": "Start",
	"end": "End", "submit": "Submit", "eligible": "Eligible", "nodelist": "NodeList", "user": "User", "uid": "UID",
	"group": "Group", "gid": "GID", "nnodes": "NNodes", "ncpus": "NCPUS", "timelimit": "Timelimit",
	"derivedexitcode": "DerivedExitCode", "reason": "Reason", "workdir": "WorkDir", "comment": "Comment",
	"reqmem": "ReqMem", "reqcpus": "ReqCPUS", "reqnodes": "ReqNodes", "priority": "Priority", "cputime": "CPUTime",
	"elapsedraw": "ElapsedRaw", "cputimeraw": "CPUTimeRAW",
}

const sacctDefault = "jobid,jobname,partition,account,alloccpus,state,exitcode"

func (r *run) sacct() error {
	ps, _, err := getopt("sacct", sacctOpts, r.inv.Args, false)
	if err != nil {
		fmt.Fprintf(&r.stderr, "%v\nTry \"sacct --help\" for more information\n", err)
		return exit(1)
	}
	header, allocOnly := true, false
	sep := ""
	trailingSep := false
	format := sacctDefault
	var ids map[int]bool
	var users, names, parts []string
	var states map[fakeslurm.State]bool
	all := r.inv.User == "root"
	var since time.Time
	sinceGiven := false
	asJSON := false
	for _, p := range ps {
		switch p.key {
		case "j":
			ids = map[int]bool{}
			for _, s := range splitList(p.val) {
				base, _, _ := strings.Cut(s, ".")
				id, err := parseJobID(base)
				if err != nil {
					fmt.Fprintf(&r.stderr, "sacct: fatal: Bad job/step specified: %s\n", s)
					return exit(1)
				}
				ids[id] = true
			}
		case "n":
			header = false
		case "X":
			allocOnly = true
		case "P":
			sep, trailingSep = "|", false
		case "p":
			sep, trailingSep = "|", true
		case "o":
			format = p.val
		case "b":
			format = "jobid,state,exitcode"
		case "u":
			users = append(users, splitList(p.val)...)
		case "a":
			all = true
		case "name":
			names = append(names, splitList(p.val)...)
		case "r":
			parts = append(parts, splitList(p.val)...)
		case "s":
			states = map[fakeslurm.State]bool{}
			for _, s := range splitList(p.val) {
				if st, ok := fakeslurm.ParseState(s); ok {
					states[st] = true
				}
			}
		case "S":
			t, err := parseBegin(p.val)
			if err != nil {
				fmt.Fprintf(&r.stderr, "sacct: error: Invalid time specification %s\n", p.val)
				return exit(1)
			}
			since, sinceGiven = t, true
		case "help":
			r.stdout.WriteString("Usage: sacct [OPTIONS]\n")
			return nil
		case "json":
			asJSON = true
		}
	}
	if !r.info0().Accounting {
		r.stderr.WriteString("Slurm accounting storage is disabled\n")
		return exit(1)
	}
	var fields []sacctField
	for _, f := range strings.Split(format, ",") {
		name, w, hasW := strings.Cut(f, "%")
		key := strings.ToLower(name)
		width, ok := sacctWidths[key]
		if !ok {
			fmt.Fprintf(&r.stderr, "sacct: error: Invalid field requested: \"%s\"\n", name)
			return exit(1)
		}
		if hasW {
			if n, err := strconv.Atoi(w); err == nil {
				if width < 0 {
					width = -n
				} else {
					width = n
				}
			}
		}
		fields = append(fields, sacctField{name: key, width: width})
	}
	hist, err := r.b.History(r.ctx)
	if err != nil {
		r.stderr.WriteString("Slurm accounting storage is disabled\n")
		return exit(1)
	}
	if len(users) == 0 && !all {
		users = []string{r.inv.User}
	}
	if ids == nil && !sinceGiven {
		since = sinceMidnight(r.now())
	}
	// line writes one line: parsable (-p, -P) with its separators, else
	// in fixed columns.
	line := func(vals []string) {
		if sep == "" {
			r.sacctFixed(fields, vals)
			return
		}
		r.stdout.WriteString(strings.Join(vals, sep))
		if trailingSep {
			r.stdout.WriteString(sep)
		}
		r.stdout.WriteString("\n")
	}
	if header && !asJSON {
		var hdr, rule []string
		for _, f := range fields {
			hdr = append(hdr, sacctNames[f.name])
			w := f.width
			if w < 0 {
				w = -w
			}
			rule = append(rule, strings.Repeat("-", w))
		}
		line(hdr)
		if sep == "" {
			line(rule)
		}
	}
	now := r.now()
	if nodes, err := r.b.Nodes(r.ctx); err == nil && len(nodes) > 0 {
		r.nodeMem = nodes[0].MemMB
	}
	var dump []any
	for _, j := range hist {
		if ids != nil && !ids[j.ID] {
			continue
		}
		if ids == nil && j.Submit.Before(since) && (j.End.IsZero() || j.End.Before(since)) && j.State.Finished() {
			continue
		}
		if (len(users) > 0 && !contains(users, j.User)) || (len(names) > 0 && !contains(names, j.Name)) ||
			(len(parts) > 0 && !contains(parts, j.Partition)) || (states != nil && !states[j.State]) {
			continue
		}
		if asJSON {
			dump = append(dump, r.sacctJobJSON(j, now))
			continue
		}
		rows := [][]string{r.sacctValues(fields, j, false, now, sep != "")}
		if !allocOnly && j.Ran && j.State != fakeslurm.Pending {
			rows = append(rows, r.sacctValues(fields, j, true, now, sep != ""))
		}
		for _, vals := range rows {
			line(vals)
		}
	}
	if asJSON {
		r.writeDump(openAPIDB, "jobs", dump)
	}
	return nil
}

// sacctFixed prints one fixed-width line: every column followed by a space,
// values longer than the column cut with a '+'.
func (r *run) sacctFixed(fields []sacctField, vals []string) {
	var b []byte
	for i, f := range fields {
		w, left := f.width, false
		if w < 0 {
			w, left = -w, true
		}
		v := vals[i]
		if len(v) > w {
			v = v[:w-1] + "+"
		}
		b = pad(b, v, w, !left)
		b = append(b, ' ')
	}
	r.stdout.Write(append(b, '\n'))
}

// sacctValues is one row: the job's allocation, or its batch step.
func (r *run) sacctValues(fields []sacctField, j fakeslurm.Job, step bool, now time.Time, parsable bool) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = r.sacctValue(f.name, j, step, now, parsable)
	}
	return out
}

func (r *run) sacctValue(name string, j fakeslurm.Job, step bool, now time.Time, parsable bool) string {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "Unknown"
		}
		return r.stamp(t)
	}
	switch name {
	case "jobid", "jobidraw":
		if step {
			return strconv.Itoa(j.ID) + ".batch"
		}
		return strconv.Itoa(j.ID)
	case "jobname":
		if step {
			return "batch"
		}
		return j.Name
	case "partition":
		if step {
			return ""
		}
		return j.Partition
	case "account":
		if j.Account != "" {
			return j.Account
		}
		if j.User == "root" {
			return "root"
		}
		return ""
	case "alloccpus", "ncpus", "reqcpus":
		if j.State == fakeslurm.Pending && name == "alloccpus" {
			return "0"
		}
		return strconv.Itoa(j.NumCPUs)
	case "state":
		return sacctState(j, step, parsable)
	case "exitcode":
		return sacctExit(j, step)
	case "derivedexitcode":
		return "0:0"
	case "elapsed":
		return clockTime(j.RunTime(now))
	case "elapsedraw":
		return strconv.FormatInt(int64(j.RunTime(now)/time.Second), 10)
	case "cputime":
		return clockTime(j.RunTime(now) * time.Duration(max(1, j.NumCPUs)))
	case "cputimeraw":
		return strconv.FormatInt(int64(j.RunTime(now)/time.Second)*int64(max(1, j.NumCPUs)), 10)
	case "start":
		switch {
		case j.State == fakeslurm.Pending:
			return "Unknown"
		case !j.Ran:
			return "None"
		}
		return stamp(j.Start)
	case "end":
		if !j.State.Finished() {
			return "Unknown"
		}
		return stamp(j.End)
	case "submit":
		return stamp(j.Submit)
	case "eligible":
		return stamp(j.Eligible)
	case "nodelist":
		if j.NodeList == "" {
			return "None assigned"
		}
		return j.NodeList
	case "user":
		if step {
			return ""
		}
		return j.User
	case "uid":
		return strconv.Itoa(j.UID)
	case "group":
		return j.Group
	case "gid":
		return strconv.Itoa(j.GID)
	case "nnodes", "reqnodes":
		return strconv.Itoa(j.Nodes)
	case "timelimit":
		switch {
		case step:
			return ""
		case !j.Ran && !j.LimitGiven:
			// Never started, no -t: the limit was never resolved.
			return "Partition_Limit"
		}
		return clockLimit(j.TimeLimit)
	case "reason":
		return j.Reason
	case "workdir":
		return j.WorkDir
	case "comment":
		return j.Comment
	case "reqmem":
		m := j.MemMB
		if m == 0 {
			// No --mem: the whole node's memory (DefMemPerNode=UNLIMITED).
			m = r.nodeMem * int64(max(1, j.Nodes))
		}
		return strconv.FormatInt(m, 10) + "M"
	case "priority":
		return strconv.FormatInt(j.Priority, 10)
	}
	return ""
}

// sacctState is the State column: "CANCELLED by UID" for a cancelled job
// (cut to "CANCELLED+" in fixed width); a batch step killed by the
// controller's SIGTERM is CANCELLED.
func sacctState(j fakeslurm.Job, step, parsable bool) string {
	if step {
		switch {
		case !j.State.Finished() || j.Completing:
			return "RUNNING"
		case j.State == fakeslurm.Cancelled || j.State == fakeslurm.Timeout:
			return "CANCELLED"
		case j.State == fakeslurm.NodeFail:
			return "FAILED"
		case j.ExitCode == 0 && j.ExitSignal == 0:
			return "COMPLETED"
		}
		return "FAILED"
	}
	st := j.State.String()
	if j.State == fakeslurm.Cancelled && j.CancelledBy >= 0 {
		return "CANCELLED by " + strconv.Itoa(j.CancelledBy)
	}
	return st
}

// sacctExit is the ExitCode column: the script's for a job that ended by
// itself, 0:0 for one ended by the controller (its batch step has the
// signal).
func sacctExit(j fakeslurm.Job, step bool) string {
	if j.Reason == "BadConstraints" {
		return "1:0"
	}
	if !step {
		switch j.State {
		case fakeslurm.Cancelled, fakeslurm.Timeout, fakeslurm.NodeFail, fakeslurm.Pending, fakeslurm.Running:
			return "0:0"
		}
	}
	if step && j.State.Finished() && j.ExitSignal == 0 && (j.State == fakeslurm.Cancelled || j.State == fakeslurm.Timeout) {
		return fmt.Sprintf("0:%d", int(syscall.SIGTERM))
	}
	return fmt.Sprintf("%d:%d", j.ExitCode, j.ExitSignal)
}

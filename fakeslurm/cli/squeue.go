package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
)

var squeueOpts = optSpec(`
	h,noheader o,format= O,Format= j,jobs= u,user= me t,states= p,partition= n,name= l,long
	a,all>ignore r,array>ignore S,sort=>ignore v,verbose>ignore M,clusters=>ignore json help
	usage>help`)

const (
	squeueDefault = "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R"
	squeueLong    = "%.18i %.9P %.8j %.8u %.8T %.10M %.9l %.6D %R"
)

// validStates is squeue's list in its "Valid job states" message.
const validStates = "PENDING,RUNNING,SUSPENDED,COMPLETED,CANCELLED,FAILED,TIMEOUT,NODE_FAIL,PREEMPTED,BOOT_FAIL,DEADLINE,OUT_OF_MEMORY,COMPLETING,CONFIGURING,RESIZING,RESV_DEL_HOLD,REQUEUED,REQUEUE_FED,REQUEUE_HOLD,REVOKED,SIGNALING,SPECIAL_EXIT,STAGE_OUT,STOPPED"

func (r *run) squeue() error {
	ps, operands, err := getopt("squeue", squeueOpts, r.inv.Args, false)
	if err != nil {
		fmt.Fprintf(&r.stderr, "%v\nTry \"squeue --help\" for more information\n", err)
		return exit(1)
	}
	if len(operands) > 0 {
		fmt.Fprintf(&r.stderr, "squeue: error: Unrecognized option: %s\nUsage: squeue [-A account] [--clusters names] [-i seconds] [--job jobid]\n", operands[0])
		return exit(1)
	}
	header := true
	format := squeueDefault
	var fields []field
	var ids []int
	idsGiven := false
	var users, parts, names []string
	var states map[string]bool
	allStates := false
	json := false
	for _, p := range ps {
		switch p.key {
		case "h":
			header = false
		case "o":
			format = p.val
		case "O":
			fields, err = parseFormatLong(p.val)
			if err != nil {
				fmt.Fprintf(&r.stderr, "squeue: error: %v\n", err)
				return exit(1)
			}
		case "l":
			format = squeueLong
		case "j":
			idsGiven = true
			for _, s := range splitList(p.val) {
				id, err := parseJobID(s)
				if err != nil {
					fmt.Fprintf(&r.stderr, "squeue: error: Invalid job id: %s\n", s)
					return exit(1)
				}
				ids = append(ids, id)
			}
		case "u":
			users = append(users, splitList(p.val)...)
		case "me":
			users = append(users, r.inv.User)
		case "p":
			parts = append(parts, splitList(p.val)...)
		case "n":
			names = append(names, splitList(p.val)...)
		case "t":
			states = map[string]bool{}
			for _, s := range splitList(p.val) {
				if strings.EqualFold(s, "all") {
					allStates = true
					continue
				}
				st, ok := fakeslurm.ParseState(s)
				if !ok && !strings.EqualFold(s, "COMPLETING") && !strings.EqualFold(s, "CG") {
					fmt.Fprintf(&r.stderr, "squeue: error: Invalid job state specified: %s\nsqueue: error: Valid job states include: %s\n\n", s, validStates)
					return exit(1)
				}
				if ok {
					states[st.String()] = true
				} else {
					states["COMPLETING"] = true
				}
			}
		case "json":
			json = true
		case "help":
			r.stdout.WriteString("Usage: squeue [OPTIONS]\n")
			return nil
		}
	}
	if json {
		return r.squeueJSON()
	}
	if fields == nil {
		fields = parseFormat(format)
	}
	if code, done := r.controllerDown(); done {
		return exit(code)
	}
	var jobs []fakeslurm.Job
	if idsGiven && len(ids) == 1 {
		j, err := r.b.Job(r.ctx, ids[0])
		if err != nil {
			fmt.Fprintf(&r.stderr, "slurm_load_jobs error: %s\n", errText(err))
			return exit(1)
		}
		jobs = []fakeslurm.Job{j}
	} else {
		jobs, err = r.b.Jobs(r.ctx)
		if err != nil {
			fmt.Fprintf(&r.stderr, "slurm_load_jobs error: %s\n", errText(err))
			return exit(1)
		}
	}
	want := map[int]bool{}
	for _, id := range ids {
		want[id] = true
	}
	shown := make([]*fakeslurm.Job, 0, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		if idsGiven && !want[j.ID] {
			continue
		}
		if len(users) > 0 && !contains(users, j.User) {
			continue
		}
		if len(parts) > 0 && !contains(parts, j.Partition) {
			continue
		}
		if len(names) > 0 && !contains(names, j.Name) {
			continue
		}
		switch {
		case allStates:
		case states != nil:
			if !states[stateName(*j)] && !(j.Completing && states[j.State.String()]) {
				continue
			}
		default:
			if !j.Active() {
				continue
			}
		}
		shown = append(shown, j)
	}
	slices.SortStableFunc(shown, func(a, b *fakeslurm.Job) int {
		if sa, sb := stateName(*a), stateName(*b); sa != sb {
			return strings.Compare(sa, sb)
		}
		if a.Priority != b.Priority {
			return cmp.Compare(b.Priority, a.Priority)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	now := r.now()
	var line []byte
	if header {
		line = r.row(line[:0], fields, nil, now)
		r.stdout.Write(line)
	}
	r.stdout.Grow(len(shown) * (len(line) + 8))
	for _, j := range shown {
		line = r.row(line[:0], fields, j, now)
		r.stdout.Write(line)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// stateName is the state squeue prints in long form: COMPLETING while the
// job completes.
func stateName(j fakeslurm.Job) string {
	if j.Completing {
		return "COMPLETING"
	}
	return j.State.String()
}

func stateShort(j fakeslurm.Job) string {
	if j.Completing {
		return "CG"
	}
	return j.State.Short()
}

// field is one item of a squeue format: literal text, or a specifier with
// its width and justification.
type field struct {
	lit   string
	spec  byte
	width int
	right bool
	long  bool // from -O: padded to width with no separator
}

// parseFormat parses a squeue -o format ("%.18i %-9P text %j").
func parseFormat(f string) []field {
	var out []field
	var lit strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' || i+1 == len(f) {
			lit.WriteByte(c)
			continue
		}
		k := i + 1
		fd := field{}
		if f[k] == '%' {
			lit.WriteByte('%')
			i = k
			continue
		}
		if f[k] == '.' {
			fd.right = true
			k++
		}
		for k < len(f) && f[k] == '-' {
			k++
		}
		start := k
		for k < len(f) && f[k] >= '0' && f[k] <= '9' {
			k++
		}
		fd.width, _ = strconv.Atoi(f[start:k])
		if k == len(f) {
			lit.WriteString(f[i:])
			break
		}
		if lit.Len() > 0 {
			out = append(out, field{lit: lit.String()})
			lit.Reset()
		}
		fd.spec = f[k]
		out = append(out, fd)
		i = k
	}
	if lit.Len() > 0 {
		out = append(out, field{lit: lit.String()})
	}
	return out
}

// longFields maps squeue -O names to format letters.
var longFields = map[string]byte{
	"jobid": 'i', "arrayjobid": 'A', "jobarrayid": 'i', "name": 'j', "state": 'T', "statecompact": 't',
	"reason": 'r', "nodelist": 'N', "username": 'u', "partition": 'P', "timeused": 'M', "timelimit": 'l',
	"timeleft": 'L', "numnodes": 'D', "numcpus": 'C', "minmemory": 'm', "submittime": 'V', "starttime": 'S',
	"endtime": 'e', "workdir": 'Z', "command": 'o', "priority": 'Q', "account": 'a', "dependency": 'E',
	"batchhost": 'B', "reasonlist": 'R', "comment": 'k', "userid": 'U', "groupname": 'g', "groupid": 'G',
	"stdout": '1', "stderr": '2',
}

// parseFormatLong parses squeue -O: names with optional ":[.]width".
func parseFormatLong(f string) ([]field, error) {
	var out []field
	for _, item := range strings.Split(f, ",") {
		if item == "" {
			continue
		}
		name, w, hasW := strings.Cut(item, ":")
		spec, ok := longFields[strings.ToLower(name)]
		if !ok {
			//lint:ignore ST1005 squeue's own message, byte for byte
			return nil, fmt.Errorf("Invalid job format specification: %s", name)
		}
		fd := field{spec: spec, width: 20, long: true}
		if hasW {
			if strings.HasPrefix(w, ".") {
				fd.right = true
				w = w[1:]
			}
			if n, err := strconv.Atoi(w); err == nil {
				fd.width = n
			}
		}
		out = append(out, fd)
	}
	return out, nil
}

var headers = map[byte]string{
	'i': "JOBID", 'A': "JOBID", 'P': "PARTITION", 'j': "NAME", 'u': "USER", 't': "ST", 'T': "STATE",
	'M': "TIME", 'l': "TIME_LIMIT", 'L': "TIME_LEFT", 'D': "NODES", 'C': "CPUS", 'R': "NODELIST(REASON)",
	'r': "REASON", 'B': "EXEC_HOST", 'N': "NODELIST", 'm': "MIN_MEMORY", 'Z': "WORK_DIR", 'o': "COMMAND",
	'S': "START_TIME", 'V': "SUBMIT_TIME", 'e': "END_TIME", 'Q': "PRIORITY", 'a': "ACCOUNT",
	'E': "DEPENDENCY", 'k': "COMMENT", 'x': "EXC_NODES", 'y': "NICE", 'U': "UID", 'g': "GROUP", 'G': "GID",
	'1': "STDOUT", '2': "STDERR", 'n': "REQ_NODES", 'q': "QOS",
}

// row renders one line of squeue output: the header when j is nil.
func (r *run) row(buf []byte, fields []field, j *fakeslurm.Job, now time.Time) []byte {
	for _, f := range fields {
		if f.spec == 0 {
			buf = append(buf, f.lit...)
			continue
		}
		var v string
		if j == nil {
			v = headers[f.spec]
		} else {
			v = r.value(f.spec, j, now)
		}
		buf = pad(buf, v, f.width, f.right)
	}
	return append(buf, '\n')
}

// pad writes v cut to width and padded to it (left or right justified);
// width 0 writes v as it is.
func pad(buf []byte, v string, width int, right bool) []byte {
	if width <= 0 {
		return append(buf, v...)
	}
	if len(v) > width {
		v = v[:width]
	}
	n := width - len(v)
	if right {
		for ; n > 0; n-- {
			buf = append(buf, ' ')
		}
		return append(buf, v...)
	}
	buf = append(buf, v...)
	for ; n > 0; n-- {
		buf = append(buf, ' ')
	}
	return buf
}

// value is one job's value for a format letter.
func (r *run) value(spec byte, j *fakeslurm.Job, now time.Time) string {
	switch spec {
	case 'i', 'A':
		return strconv.Itoa(j.ID)
	case 'P':
		return j.Partition
	case 'j':
		return j.Name
	case 'u':
		return j.User
	case 'U':
		return strconv.Itoa(j.UID)
	case 'g':
		return j.Group
	case 'G':
		return strconv.Itoa(j.GID)
	case 't':
		return stateShort(*j)
	case 'T':
		return stateName(*j)
	case 'M':
		return elapsed(j.RunTime(now))
	case 'l':
		return limitText(j.TimeLimit)
	case 'L':
		if j.TimeLimit == fakeslurm.Unlimited {
			return "UNLIMITED"
		}
		left := j.TimeLimit - j.RunTime(now)
		if left < 0 {
			left = 0
		}
		return elapsed(left)
	case 'D':
		return strconv.Itoa(j.Nodes)
	case 'C':
		return strconv.Itoa(j.NumCPUs)
	case 'R':
		if showsReason(*j) {
			return "(" + j.Reason + ")"
		}
		return j.NodeList
	case 'r':
		return j.Reason
	case 'B':
		if j.BatchHost == "" || j.State == fakeslurm.Pending {
			return "n/a"
		}
		return j.BatchHost
	case 'N':
		return j.NodeList
	case 'm':
		if j.MemMB == 0 {
			return "0"
		}
		return strconv.FormatInt(j.MemMB, 10) + "M"
	case 'Z':
		return j.WorkDir
	case 'o':
		if j.Command == "" {
			return "(null)"
		}
		return j.Command
	case 'S':
		if j.State == fakeslurm.Pending || j.Start.IsZero() {
			return "N/A"
		}
		return r.stamp(j.Start)
	case 'V':
		return r.stamp(j.Submit)
	case 'e':
		if j.State == fakeslurm.Pending || j.End.IsZero() {
			return "N/A"
		}
		return r.stamp(j.End)
	case 'Q':
		return strconv.FormatInt(j.Priority, 10)
	case 'a':
		if j.Account == "" {
			return "(null)"
		}
		return j.Account
	case 'E':
		return j.Dependency
	case 'k':
		if j.Comment == "" {
			return "(null)"
		}
		return j.Comment
	case 'x', 'n':
		return ""
	case 'y':
		return "0"
	case 'q':
		return "(null)"
	case '1':
		return j.StdOut
	case '2':
		return j.StdErr
	}
	return ""
}

// showsReason says whether %R shows "(reason)" rather than the node list:
// for jobs not running that ended without running normally.
func showsReason(j fakeslurm.Job) bool {
	if j.Completing {
		return false
	}
	switch j.State {
	case fakeslurm.Pending, fakeslurm.Failed, fakeslurm.Timeout, fakeslurm.OutOfMemory, fakeslurm.Deadline,
		fakeslurm.NodeFail, fakeslurm.BootFail:
		return true
	case fakeslurm.Cancelled:
		return j.NodeList == ""
	}
	return false
}

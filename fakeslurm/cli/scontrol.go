package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
)

var scontrolOpts = optSpec(`
	o,oneliner d,details>ignore Q,quiet>ignore a,all>ignore v,verbose>ignore M,clusters=>ignore
	h,help>help usage>help`)

// keyword matches an abbreviated scontrol keyword (at least min letters).
func keyword(s, full string, min int) bool {
	s = strings.ToLower(s)
	return len(s) >= min && strings.HasPrefix(full, s)
}

func (r *run) scontrol() error {
	ps, ops, err := getopt("scontrol", scontrolOpts, r.inv.Args, false)
	if err != nil {
		fmt.Fprintf(&r.stderr, "%v\nTry \"scontrol --help\" for more information\n", err)
		return exit(1)
	}
	oneLine := false
	for _, p := range ps {
		switch p.key {
		case "o":
			oneLine = true
		case "help":
			r.stdout.WriteString("scontrol [<OPTION>] [<COMMAND>]\n")
			return nil
		}
	}
	if len(ops) == 0 {
		r.stderr.WriteString("scontrol: error: interactive mode is not supported by fakeslurm; give a command\n")
		return exit(1)
	}
	cmd := ops[0]
	switch {
	case keyword(cmd, "ping", 2):
		if code, done := r.controllerDown(); done {
			return exit(code)
		}
		fmt.Fprintf(&r.stdout, "Slurmctld(primary) at %s is UP\n", r.info0().ControlHost)
		return nil
	case keyword(cmd, "version", 4):
		fmt.Fprintf(&r.stdout, "slurm-wlm %s\n", r.info0().Version)
		return nil
	case keyword(cmd, "show", 3):
		if code, done := r.controllerDown(); done {
			return exit(code)
		}
		if len(ops) < 2 {
			r.stderr.WriteString("too few arguments for keyword:show\n")
			return exit(1)
		}
		what, name := ops[1], ""
		if len(ops) > 2 {
			name = ops[2]
		}
		switch {
		case keyword(what, "jobs", 1):
			return r.showJobs(name, oneLine)
		case keyword(what, "nodes", 1):
			return r.showNodes(name, oneLine)
		case keyword(what, "partitions", 1):
			return r.showPartitions(name, oneLine)
		}
		fmt.Fprintf(&r.stderr, "invalid entity: %s for keyword: show\n", what)
		return exit(1)
	case keyword(cmd, "hold", 2), keyword(cmd, "uhold", 2), keyword(cmd, "release", 3):
		if code, done := r.controllerDown(); done {
			return exit(code)
		}
		if len(ops) < 2 {
			fmt.Fprintf(&r.stderr, "too few arguments for keyword:%s\n", cmd)
			return exit(1)
		}
		hold := !keyword(cmd, "release", 3)
		last := r.eachJobID(ops[1:], func(id int) error {
			if hold {
				return r.hold(id, keyword(cmd, "uhold", 2))
			}
			return r.b.Release(r.ctx, r.inv.User, id)
		})
		if last != nil {
			fmt.Fprintf(&r.stderr, "slurm_suspend error: %s\n", errText(last))
			return exit(1)
		}
		return nil
	case keyword(cmd, "requeue", 3):
		if code, done := r.controllerDown(); done {
			return exit(code)
		}
		if len(ops) < 2 {
			fmt.Fprintf(&r.stderr, "too few arguments for keyword:%s\n", cmd)
			return exit(1)
		}
		return r.requeue(ops[1:])
	case keyword(cmd, "update", 1):
		if code, done := r.controllerDown(); done {
			return exit(code)
		}
		for _, a := range ops[1:] {
			k, _, _ := strings.Cut(a, "=")
			switch strings.ToLower(k) {
			case "jobid":
				return r.updateJob(ops[1:])
			case "nodename", "node":
				return r.updateNode(ops[1:])
			}
		}
		r.stderr.WriteString("No valid entity in update command\nInput line must include \"NodeName\", \"PartitionName\", \"Reservation\", \"JobId\", or \"SlurmctldDebug\"\n")
		return exit(1)
	}
	fmt.Fprintf(&r.stderr, "invalid keyword: %s\n", cmd)
	return exit(1)
}

// updateNode is `scontrol update NodeName=N State=S [Reason=R]`, the node
// part of scontrol update that the fake implements.
func (r *run) updateNode(args []string) error {
	var node, state, reason string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(&r.stderr, "Invalid input: %s\nRequest aborted\n", a)
			return exit(1)
		}
		switch strings.ToLower(k) {
		case "nodename", "node":
			node = v
		case "state":
			state = strings.ToUpper(v)
		case "reason":
			reason = v
		default:
			fmt.Fprintf(&r.stderr, "scontrol: error: fakeslurm's scontrol update changes node states only (NodeName=... State=... Reason=...), not %s\n", k)
			return exit(1)
		}
	}
	admin, ok := r.b.(NodeAdmin)
	if node == "" || !ok {
		r.stderr.WriteString("scontrol: error: fakeslurm's scontrol update needs NodeName= and State=\n")
		return exit(1)
	}
	switch state {
	case "DOWN", "DRAIN", "RESUME", "UNDRAIN", "IDLE":
	default:
		fmt.Fprintf(&r.stderr, "Invalid input: State=%s\nRequest aborted\nValid states are: NoResp DRAIN FAIL FUTURE RESUME POWER_DOWN POWER_UP UNDRAIN\nNot all states are valid given a node's prior state\n", state)
		return exit(1)
	}
	if (state == "DOWN" || state == "DRAIN") && reason == "" {
		r.stderr.WriteString("You must specify a reason when DOWNING or DRAINING a node. Request denied\n")
		return exit(1)
	}
	if r.inv.User != "root" {
		fmt.Fprintf(&r.stderr, "slurm_update error: %s\n", fakeslurm.Errno(fakeslurm.ErrAccessDenied).Text)
		return exit(1)
	}
	var err error
	switch state {
	case "DOWN":
		err = admin.FailNode(r.ctx, node, reason)
	case "DRAIN":
		err = admin.DrainNode(r.ctx, node, reason)
	default:
		err = admin.ResumeNode(r.ctx, node)
	}
	if err != nil {
		// What Debian's 22.05 says for an unknown node name.
		r.stderr.WriteString("slurm_update error: Invalid node state specified\n")
		return exit(1)
	}
	return nil
}

// hold holds a job: an admin hold when root asks, a user hold otherwise
// and for uhold (asked, then, in the owner's name).
func (r *run) hold(id int, userHold bool) error {
	user := r.inv.User
	if userHold && user == "root" {
		if j, err := r.b.Job(r.ctx, id); err == nil {
			user = j.User
		}
	}
	return r.b.Hold(r.ctx, user, id)
}

func (r *run) showJobs(name string, oneLine bool) error {
	var jobs []fakeslurm.Job
	if name != "" {
		id, err := parseJobID(name)
		if err != nil {
			r.stderr.WriteString("scontrol_print_job error: Invalid job id specified\n")
			return exit(1)
		}
		j, err := r.b.Job(r.ctx, id)
		if err != nil {
			fmt.Fprintf(&r.stderr, "slurm_load_jobs error: %s\n", errText(err))
			return exit(1)
		}
		jobs = []fakeslurm.Job{j}
	} else {
		var err error
		jobs, err = r.b.Jobs(r.ctx)
		if err != nil {
			fmt.Fprintf(&r.stderr, "slurm_load_jobs error: %s\n", errText(err))
			return exit(1)
		}
		if len(jobs) == 0 {
			r.stdout.WriteString("No jobs in the system\n")
			return nil
		}
	}
	now := r.now()
	var nodeMem int64
	if nodes, err := r.b.Nodes(r.ctx); err == nil && len(nodes) > 0 {
		nodeMem = nodes[0].MemMB
	}
	for _, j := range jobs {
		r.writeRecord(jobRecord(r, j, now, nodeMem), oneLine, "   \n\n")
	}
	return nil
}

// writeRecord prints scontrol's lines: each indented by three spaces after
// the first, then end (a job's record ends with a line of three spaces and
// an empty line, a node's or partition's with an empty line); or all on
// one line with -o.
func (r *run) writeRecord(lines []string, oneLine bool, end string) {
	if oneLine {
		r.stdout.WriteString(strings.Join(lines, " ") + "\n")
		return
	}
	for i, l := range lines {
		if i > 0 {
			r.stdout.WriteString("   ")
		}
		r.stdout.WriteString(l + "\n")
	}
	r.stdout.WriteString(end)
}

func jobRecord(r *run, j fakeslurm.Job, now time.Time, nodeMem int64) []string {
	pending := j.State == fakeslurm.Pending
	state := stateName(j)
	exit := fmt.Sprintf("%d:%d", j.ExitCode, j.ExitSignal)
	accrue, start, end := r.stamp(j.Accrue), r.stamp(j.Start), r.stamp(j.End)
	if pending {
		start, end = "Unknown", "Unknown"
	}
	tasks := strconv.Itoa(j.NumTasks)
	if j.NumTasks == 0 {
		tasks = "N/A"
	}
	nodes := strconv.Itoa(j.Nodes)
	if pending && j.NodesGiven {
		nodes += "-" + nodes
	}
	if j.State == fakeslurm.Running && j.TimeLimit == fakeslurm.Unlimited {
		end = "Unknown"
	}
	sched := "None"
	if !j.LastSched.IsZero() {
		sched = r.stamp(j.LastSched)
	}
	tres := fmt.Sprintf("cpu=%d,node=%d,billing=%d", j.NumCPUs, j.Nodes, j.NumCPUs)
	mem := "0"
	if j.MemMB > 0 {
		mem = strconv.FormatInt(j.MemMB, 10) + "M"
	}
	if pending {
		tres = reqTRES(j, nodeMem)
	} else if j.MemMB > 0 {
		tres = fmt.Sprintf("cpu=%d,mem=%dM,node=%d,billing=%d", j.NumCPUs, j.MemMB, j.Nodes, j.NumCPUs)
	}
	account, qos := "(null)", "(null)"
	if r.info0().Accounting {
		// slurmdbd gives the job its association: root's default account
		// is root, and every job gets the normal QOS.
		qos = "normal"
		if j.User == "root" {
			account = "root"
		}
	}
	if j.Account != "" {
		account = j.Account
	}
	requeue := 0
	if j.Requeue {
		requeue = 1
	}
	command := j.Command
	if command == "" {
		command = "(null)"
	}
	lines := []string{
		fmt.Sprintf("JobId=%d JobName=%s", j.ID, j.Name),
		fmt.Sprintf("UserId=%s(%d) GroupId=%s(%d) MCS_label=N/A", j.User, j.UID, j.Group, j.GID),
		fmt.Sprintf("Priority=%d Nice=0 Account=%s QOS=%s", j.Priority, account, qos),
		fmt.Sprintf("JobState=%s Reason=%s Dependency=%s", state, j.Reason, j.Dependency),
		fmt.Sprintf("Requeue=%d Restarts=%d BatchFlag=1 Reboot=0 ExitCode=%s", requeue, j.Restarts, exit),
		fmt.Sprintf("RunTime=%s TimeLimit=%s TimeMin=N/A", clockTime(j.RunTime(now)), clockLimit(j.TimeLimit)),
		fmt.Sprintf("SubmitTime=%s EligibleTime=%s", r.stamp(j.Submit), r.stamp(j.Eligible)),
		fmt.Sprintf("AccrueTime=%s", accrue),
		fmt.Sprintf("StartTime=%s EndTime=%s Deadline=N/A", start, end),
		fmt.Sprintf("SuspendTime=None SecsPreSuspend=0 LastSchedEval=%s Scheduler=%s", sched, j.Scheduler),
		fmt.Sprintf("Partition=%s AllocNode:Sid=%s:%d", j.Partition, j.SubmitHost, j.AllocSID),
		"ReqNodeList=(null) ExcNodeList=(null)",
		"NodeList=" + j.NodeList,
	}
	if !pending && j.BatchHost != "" {
		lines = append(lines, "BatchHost="+j.BatchHost)
	}
	lines = append(lines,
		fmt.Sprintf("NumNodes=%s NumCPUs=%d NumTasks=%s CPUs/Task=%d ReqB:S:C:T=0:0:*:*", nodes, j.NumCPUs, tasks, j.CPUsPerTask),
		"TRES="+tres,
		"Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*",
		fmt.Sprintf("MinCPUsNode=%d MinMemoryNode=%s MinTmpDiskNode=0", j.CPUsPerTask, mem),
		"Features=(null) DelayBoot=00:00:00",
		"OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)",
		"Command="+command,
		"WorkDir="+j.WorkDir,
		"StdErr="+j.StdErr,
		"StdIn="+j.StdIn,
		"StdOut="+j.StdOut,
		"Power=",
	)
	return lines
}

func (r *run) showNodes(name string, oneLine bool) error {
	nodes, err := r.b.Nodes(r.ctx)
	if err != nil {
		fmt.Fprintf(&r.stderr, "slurm_load_node error: %s\n", errText(err))
		return exit(1)
	}
	found := false
	info := r.info0()
	for _, n := range nodes {
		if name != "" && n.Name != name {
			continue
		}
		found = true
		reason := ""
		if n.Reason != "" {
			reason = fmt.Sprintf("Reason=%s [root@%s]", n.Reason, r.stamp(n.ReasonTime))
		}
		alloc := "AllocTRES="
		if n.AllocCPUs > 0 {
			alloc = fmt.Sprintf("AllocTRES=cpu=%d", n.AllocCPUs)
			if n.AllocMemMB > 0 {
				alloc += fmt.Sprintf(",mem=%dM", n.AllocMemMB)
			}
		}
		lines := []string{
			fmt.Sprintf("NodeName=%s Arch=x86_64 CoresPerSocket=%d ", n.Name, n.Cores),
			fmt.Sprintf("CPUAlloc=%d CPUEfctv=%d CPUTot=%d CPULoad=0.00", n.AllocCPUs, n.CPUs, n.CPUs),
			"AvailableFeatures=(null)",
			"ActiveFeatures=(null)",
			"Gres=(null)",
			fmt.Sprintf("NodeAddr=%s NodeHostName=%s Version=%s", n.Addr, n.Addr, info.Version),
			"OS=Linux ",
			fmt.Sprintf("RealMemory=%d AllocMem=%d FreeMem=%d Sockets=%d Boards=1", n.MemMB, n.AllocMemMB, n.MemMB-n.AllocMemMB, n.Sockets),
			fmt.Sprintf("State=%s ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A", n.State),
			"Partitions=" + strings.Join(n.Partitions, ",") + " ",
			fmt.Sprintf("BootTime=%s SlurmdStartTime=%s", r.stamp(n.Boot), r.stamp(n.SlurmdUp)),
			"LastBusyTime=" + r.stamp(n.LastBusy),
			fmt.Sprintf("CfgTRES=cpu=%d,mem=%dM,billing=%d", n.CPUs, n.MemMB, n.CPUs),
			alloc,
			"CapWatts=n/a",
			"CurrentWatts=0 AveWatts=0",
			"ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s",
		}
		if reason != "" {
			lines = append(lines, reason)
		}
		r.writeRecord(lines, oneLine, "\n")
	}
	if !found {
		if name != "" {
			fmt.Fprintf(&r.stdout, "Node %s not found\n", name)
			return exit(1)
		}
		r.stdout.WriteString("No nodes in the system\n")
	}
	return nil
}

func (r *run) showPartitions(name string, oneLine bool) error {
	parts, err := r.b.Partitions(r.ctx)
	if err != nil {
		fmt.Fprintf(&r.stderr, "slurm_load_partitions error: %s\n", errText(err))
		return exit(1)
	}
	nodes, _ := r.b.Nodes(r.ctx)
	mem := map[string]int64{}
	for _, n := range nodes {
		mem[n.Name] = n.MemMB
	}
	found := false
	for _, p := range parts {
		if name != "" && p.Name != name {
			continue
		}
		found = true
		var m int64
		for _, n := range p.Nodes {
			m += mem[n]
		}
		yes := func(b bool) string {
			if b {
				return "YES"
			}
			return "NO"
		}
		state := "UP"
		if !p.Up {
			state = "DOWN"
		}
		def := "NONE"
		if p.DefTime != 0 && p.DefTime != fakeslurm.Unlimited {
			def = clockTime(p.DefTime)
		}
		lines := []string{
			"PartitionName=" + p.Name,
			"AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL",
			"AllocNodes=ALL Default=" + yes(p.Default) + " QoS=N/A",
			"DefaultTime=" + def + " DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO",
			"MaxNodes=UNLIMITED MaxTime=" + clockLimit(p.MaxTime) + " MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED",
			"Nodes=" + fakeslurm.Hostlist(p.Nodes),
			"PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO",
			"OverTimeLimit=NONE PreemptMode=OFF",
			fmt.Sprintf("State=%s TotalCPUs=%d TotalNodes=%d SelectTypeParameters=NONE", state, p.TotalCPUs, len(p.Nodes)),
			"JobDefaults=(null)",
			"DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED",
			fmt.Sprintf("TRES=cpu=%d,mem=%dM,node=%d,billing=%d", p.TotalCPUs, m, len(p.Nodes), p.TotalCPUs),
		}
		r.writeRecord(lines, oneLine, "\n")
	}
	if !found && name != "" {
		fmt.Fprintf(&r.stdout, "Partition %s not found\n", name)
		return exit(1)
	}
	return nil
}

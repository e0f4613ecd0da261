package cli

// The --json dumps of squeue, sinfo and sacct (jsonOut writes them).

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
)

// squeueJSON is `squeue --json` as Slurm 22.05.8 prints it: every job
// slurmctld holds, finished ones too, in job id order. Like the real one
// it ignores -j, -t, -u and the other filters (squeue.c hands the whole
// job list to the openapi/v0.0.38 dumper).
func (r *run) squeueJSON() error {
	if code, done := r.controllerDown(); done {
		return exit(code)
	}
	jobs, err := r.b.Jobs(r.ctx)
	if err != nil {
		fmt.Fprintf(&r.stderr, "slurm_load_jobs error: %s\n", errText(err))
		return exit(1)
	}
	nodes, err := r.b.Nodes(r.ctx)
	if err != nil {
		fmt.Fprintf(&r.stderr, "slurm_load_jobs error: %s\n", errText(err))
		return exit(1)
	}
	slices.SortFunc(jobs, func(a, b fakeslurm.Job) int { return a.ID - b.ID })
	info := r.info0()
	list := make([]any, len(jobs))
	for i, j := range jobs {
		list[i] = jobJSON(j, info, nodes)
	}
	r.writeDump(openAPI, "jobs", list)
	return nil
}

// The plugins that write the dumps: slurmctld's and slurmdbd's.
const (
	openAPI   = "openapi/v0.0.38"
	openAPIDB = "openapi/dbv0.0.38"
)

// writeDump writes a dump of plugin (openAPI or openAPIDB): meta, no
// errors, and list under key.
func (r *run) writeDump(plugin, key string, list []any) {
	name := map[string]string{openAPI: "Slurm OpenAPI v0.0.38", openAPIDB: "Slurm OpenAPI DB v0.0.38"}[plugin]
	var b bytes.Buffer
	jsonOut(&b, []member{
		slurmMeta(plugin, name, r.info0().Version),
		{"errors", []any{}},
		{key, list},
	}, 0)
	r.stdout.Write(b.Bytes())
}

// unix is a time as the dumps give it: seconds, 0 for unset.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// reqTRES is the TRES a job asks for (scontrol's TRES= of a pending job,
// --json's tres_req_str): without --mem, the whole memory of its nodes.
func reqTRES(j fakeslurm.Job, nodeMem int64) string {
	m := j.MemMB
	if m == 0 {
		m = nodeMem * int64(j.Nodes)
	}
	return fmt.Sprintf("cpu=%d,mem=%dM,node=%d,billing=%d", j.NumCPUs, m, j.Nodes, j.NumCPUs)
}

// jobJSON is one job of squeue --json, member for member as 22.05.8's
// openapi/v0.0.38 writes it.
func jobJSON(j fakeslurm.Job, info fakeslurm.Info, nodes []fakeslurm.Node) []member {
	var nodeMem int64
	if len(nodes) > 0 {
		nodeMem = nodes[0].MemMB
	}
	started := j.Ran && j.NodeList != ""
	neverRan := j.State.Finished() && !j.Ran
	account, qos, assoc := "", "", 0
	if info.Accounting {
		// The association slurmdbd gives root's jobs on the test
		// cluster: account root (id 2), QOS normal.
		qos, assoc = "normal", 2
		if j.User == "root" {
			account = "root"
		}
	}
	if j.Account != "" {
		account = j.Account
	}
	var flags []string
	if j.CPUsGiven {
		flags = append(flags, "JOB_CPUS_SET")
	}
	if j.State == fakeslurm.Running && !j.Completing {
		flags = append(flags, "JOB_WAS_RUNNING")
	}
	if j.MemMB > 0 {
		flags = append(flags, "JOB_MEM_SET")
	}
	var billable, cpus, tasks any = nil, j.NumCPUs, j.NumTasks
	if started {
		billable = jfloat(j.NumCPUs)
	}
	if neverRan {
		cpus, tasks = nil, nil
	}
	command := j.Command
	if command != "" && len(j.Argv) > 0 {
		command += " " + strings.Join(j.Argv, " ")
	}
	dependency := j.Dependency
	if dependency == "(null)" {
		dependency = ""
	}
	maxNodes := 0
	if j.NodesGiven && j.Nodes > 1 {
		maxNodes = j.Nodes
	}
	var memPerNode any
	if j.MemMB > 0 {
		memPerNode = j.MemMB
	}
	var timeLimit any
	if j.LimitGiven && j.TimeLimit != fakeslurm.Unlimited {
		timeLimit = int64(j.TimeLimit / time.Minute)
	}
	end := j.End
	if j.State == fakeslurm.Pending {
		end = time.Time{}
	}
	tresAlloc := ""
	if started {
		tresAlloc = fmt.Sprintf("cpu=%d,node=%d,billing=%d", j.NumCPUs, j.Nodes, j.NumCPUs)
	}
	exitCode := j.ExitCode<<8 | j.ExitSignal
	if j.State == fakeslurm.Failed && j.Reason == "BadConstraints" {
		exitCode = 1 << 8
	}
	batchHost := ""
	if started {
		batchHost = j.BatchHost
	}
	out := []member{
		{"account", account},
		{"accrue_time", unix(j.Accrue)},
		{"admin_comment", ""},
		{"array_job_id", 0},
		{"array_task_id", nil},
		{"array_max_tasks", 0},
		{"array_task_string", ""},
		{"association_id", assoc},
		{"batch_features", ""},
		{"batch_flag", true},
		{"batch_host", batchHost},
		{"flags", strings2any(flags)},
		{"burst_buffer", ""},
		{"burst_buffer_state", ""},
		{"cluster", info.ClusterName},
		{"cluster_features", ""},
		{"command", command},
		{"comment", j.Comment},
		{"container", ""},
		{"contiguous", false},
		{"core_spec", nil},
		{"thread_spec", nil},
		{"cores_per_socket", nil},
		{"billable_tres", billable},
		{"cpus_per_task", nil},
		{"cpu_frequency_minimum", nil},
		{"cpu_frequency_maximum", nil},
		{"cpu_frequency_governor", nil},
		{"cpus_per_tres", ""},
		{"deadline", 0},
		{"delay_boot", 0},
		{"dependency", dependency},
		{"derived_exit_code", 0},
		{"eligible_time", unix(j.Eligible)},
		{"end_time", unix(end)},
		{"excluded_nodes", ""},
		{"exit_code", exitCode},
		{"features", ""},
		{"federation_origin", ""},
		{"federation_siblings_active", ""},
		{"federation_siblings_viable", ""},
		{"gres_detail", []any{}},
		{"group_id", j.GID},
		{"group_name", j.Group},
		{"job_id", j.ID},
	}
	if started {
		out = append(out, member{"job_resources", jobResources(j, nodes)})
	}
	out = append(out,
		member{"job_state", stateName(j)},
		member{"last_sched_evaluation", unix(j.LastSched)},
		member{"licenses", ""},
		member{"max_cpus", 0},
		member{"max_nodes", maxNodes},
		member{"mcs_label", ""},
		member{"memory_per_tres", ""},
		member{"name", j.Name},
		member{"nodes", j.NodeList},
		member{"nice", nil},
		member{"tasks_per_core", nil},
		member{"tasks_per_node", 0},
		member{"tasks_per_socket", nil},
		member{"tasks_per_board", 0},
		member{"cpus", cpus},
		member{"node_count", j.Nodes},
		member{"tasks", tasks},
		member{"het_job_id", 0},
		member{"het_job_id_set", ""},
		member{"het_job_offset", 0},
		member{"partition", j.Partition},
		member{"prefer", ""},
		member{"memory_per_node", memPerNode},
		member{"memory_per_cpu", nil},
		member{"minimum_cpus_per_node", j.CPUsPerTask},
		member{"minimum_tmp_disk_per_node", 0},
		member{"preempt_time", 0},
		member{"pre_sus_time", 0},
		member{"priority", j.Priority},
		member{"profile", nil},
		member{"qos", qos},
		member{"reboot", false},
		member{"required_nodes", strings.Join(j.ReqNodeList, ",")},
		member{"requeue", j.Requeue},
		member{"resize_time", 0},
		member{"restart_cnt", j.Restarts},
		member{"resv_name", ""},
		member{"shared", nil},
		member{"show_flags", []any{"SHOW_ALL", "SHOW_DETAIL", "SHOW_LOCAL"}},
		member{"sockets_per_board", 0},
		member{"sockets_per_node", nil},
		member{"start_time", unix(j.Start)},
		member{"state_description", ""},
		member{"state_reason", j.Reason},
		member{"standard_error", j.ErrPattern},
		member{"standard_input", j.StdIn},
		member{"standard_output", j.OutPattern},
		member{"submit_time", unix(j.Submit)},
		member{"suspend_time", 0},
		member{"system_comment", ""},
		member{"time_limit", timeLimit},
		member{"time_minimum", 0},
		member{"threads_per_core", nil},
		member{"tres_bind", ""},
		member{"tres_freq", ""},
		member{"tres_per_job", ""},
		member{"tres_per_node", ""},
		member{"tres_per_socket", ""},
		member{"tres_per_task", ""},
		member{"tres_req_str", reqTRES(j, nodeMem)},
		member{"tres_alloc_str", tresAlloc},
		member{"user_id", j.UID},
		member{"user_name", j.User},
		member{"wckey", ""},
		member{"current_working_directory", j.WorkDir},
	)
	return out
}

// jobResources is the job_resources member: the job's nodes and, per
// node, the cores it holds by socket.
func jobResources(j fakeslurm.Job, nodes []fakeslurm.Node) []member {
	var alloc []any
	total := 0
	for _, n := range nodes {
		cores, ok := j.Cores[n.Name]
		if !ok {
			continue
		}
		perSocket := max(1, n.Cores)
		var sockets []member
		for _, c := range cores {
			total++
			sk, ck := strconv.Itoa(c/perSocket), strconv.Itoa(c%perSocket)
			if len(sockets) == 0 || sockets[len(sockets)-1].k != sk {
				sockets = append(sockets, member{sk, []member{{"cores", []member{}}}})
			}
			last := &sockets[len(sockets)-1]
			cm := last.v.([]member)
			cm[0].v = append(cm[0].v.([]member), member{ck, "allocated"})
		}
		alloc = append(alloc, []member{
			{"sockets", sockets},
			{"nodename", n.Name},
			{"cpus_used", 0},
			{"memory_used", 0},
			{"memory_allocated", 0},
		})
	}
	return []member{
		{"nodes", j.NodeList},
		{"allocated_cores", total},
		{"allocated_hosts", len(alloc)},
		{"allocated_nodes", alloc},
	}
}

// sinfoJSON is `sinfo --json` as Slurm 22.05.8 prints it: the nodes (not
// the partitions), member for member as openapi/v0.0.38 writes them.
// slurmd's load, free memory, kernel and port are the fake's: CPU load 0,
// free memory the node's unallocated memory, "Linux ", port 6818.
func (r *run) sinfoJSON() error {
	if code, done := r.controllerDown(); done {
		return exit(code)
	}
	nodes, err := r.b.Nodes(r.ctx)
	if err != nil {
		fmt.Fprintf(&r.stderr, "slurm_load_node: %s\n", errText(err))
		return exit(1)
	}
	list := make([]any, len(nodes))
	for i, n := range nodes {
		list[i] = nodeJSON(n, r.info0())
	}
	r.writeDump(openAPI, "nodes", list)
	return nil
}

// nodeJSON is one node of sinfo --json.
func nodeJSON(n fakeslurm.Node, info fakeslurm.Info) []member {
	base, drain := strings.CutSuffix(n.State, "+DRAIN")
	var flags []string
	if drain {
		flags = append(flags, "DRAIN")
	}
	var setBy, tresUsed any
	if n.Reason != "" {
		setBy = "root"
	}
	if n.AllocCPUs > 0 {
		tresUsed = fmt.Sprintf("cpu=%d", n.AllocCPUs)
	}
	reasonAt := time.Time{}
	if n.Reason != "" {
		reasonAt = n.ReasonTime
	}
	return []member{
		{"architecture", "x86_64"},
		{"burstbuffer_network_address", ""},
		{"boards", 1},
		{"boot_time", unix(n.Boot)},
		{"comment", ""},
		{"cores", n.Cores},
		{"cpu_binding", 0},
		{"cpu_load", 0},
		{"extra", ""},
		{"free_memory", n.MemMB - n.AllocMemMB},
		{"cpus", n.CPUs},
		{"last_busy", unix(n.LastBusy)},
		{"features", ""},
		{"active_features", ""},
		{"gres", ""},
		{"gres_drained", "N/A"},
		{"gres_used", ""},
		{"mcs_label", ""},
		{"name", n.Name},
		{"next_state_after_reboot", "invalid"},
		{"address", n.Addr},
		{"hostname", n.Addr},
		{"state", strings.ToLower(base)},
		{"state_flags", strings2any(flags)},
		{"next_state_after_reboot_flags", []any{}},
		{"operating_system", "Linux "},
		{"owner", nil},
		{"partitions", strings2any(n.Partitions)},
		{"port", 6818},
		{"real_memory", n.MemMB},
		{"reason", n.Reason},
		{"reason_changed_at", unix(reasonAt)},
		{"reason_set_by_user", setBy},
		{"slurmd_start_time", unix(n.SlurmdUp)},
		{"sockets", n.Sockets},
		{"threads", max(1, n.Threads)},
		{"temporary_disk", 0},
		{"weight", 1},
		{"tres", fmt.Sprintf("cpu=%d,mem=%dM,billing=%d", n.CPUs, n.MemMB, n.CPUs)},
		{"slurmd_version", info.Version},
		// 0 even under a job with --mem, as 22.05.8 printed it.
		{"alloc_memory", 0},
		{"alloc_cpus", n.AllocCPUs},
		{"idle_cpus", n.CPUs - n.AllocCPUs},
		{"tres_used", tresUsed},
		{"tres_weighted", jfloat(n.AllocCPUs)},
	}
}

// tres is one TRES of sacct --json: cpu 1, mem 2, energy 3, node 4,
// billing 5 (the ids slurmdbd gives them).
func tres(kind string, count any) []member {
	id := map[string]int{"cpu": 1, "mem": 2, "energy": 3, "node": 4, "billing": 5}[kind]
	return []member{{"type", kind}, {"name", nil}, {"id", id}, {"count", count}}
}

// cpuTime is a zero CPU time of sacct --json (the fake measures none).
func cpuTime() []member { return []member{{"seconds", 0}, {"microseconds", 0}} }

// sacctJobJSON is one job of `sacct --json` (openapi/dbv0.0.38) as
// 22.05.8 writes it, with its batch step once it ran. Quirks kept: the
// job's exit_code is SUCCESS 0 whatever the script returned, a step's is
// SUCCESS 0 unless a signal ended it, and reservation's name is 0.
func (r *run) sacctJobJSON(j fakeslurm.Job, now time.Time) []member {
	ran := j.Ran && j.State != fakeslurm.Pending
	account := j.Account
	if account == "" && j.User == "root" {
		account = "root"
	}
	var flags []string
	if ran {
		flags = []string{"CLEAR_SCHEDULING", "STARTED_ON_SCHEDULE"}
		if j.Scheduler == "Backfill" {
			flags[1] = "STARTED_ON_BACKFILL"
		}
	}
	var killer any
	switch {
	case j.CancelledBy == 0:
		killer = "root"
	case j.CancelledBy > 0 && j.CancelledBy == j.UID:
		killer = j.User
	}
	nodes, allocNodes := "None assigned", 0
	var start any
	if ran {
		nodes, allocNodes, start = j.NodeList, j.Nodes, unix(j.Start)
	}
	end := int64(0)
	if j.State.Finished() {
		end = unix(j.End)
	}
	var limit any
	if j.LimitGiven && j.TimeLimit != fakeslurm.Unlimited {
		limit = int64(j.TimeLimit / time.Minute)
	}
	elapsed := int64(j.RunTime(now) / time.Second)
	success := []member{{"status", "SUCCESS"}, {"return_code", 0}}
	var steps []any
	if ran {
		exit := success
		if _, sig, _ := strings.Cut(sacctExit(j, true), ":"); sig != "0" {
			n, _ := strconv.Atoi(sig)
			exit = []member{{"status", "SIGNALED"}, {"return_code", nil},
				{"signal", []member{{"signal_id", n}, {"name", signalText(n)}}}}
		}
		energy := []any{tres("energy", 0)}
		usage := []member{{"max", []any{}}, {"min", []any{}}, {"average", energy}, {"total", energy}}
		steps = append(steps, []member{
			{"nodes", []member{{"list", []any{j.NodeList}}, {"count", j.Nodes}, {"range", j.NodeList}}},
			{"tres", []member{
				{"requested", usage},
				{"consumed", usage},
				{"allocated", []any{tres("cpu", j.NumCPUs), tres("mem", j.MemMB), tres("node", j.Nodes)}},
			}},
			{"time", []member{{"elapsed", elapsed}, {"end", end}, {"start", unix(j.Start)}, {"suspended", 0},
				{"system", cpuTime()}, {"total", cpuTime()}, {"user", cpuTime()}}},
			{"exit_code", exit},
			{"tasks", []member{{"count", 1}}},
			{"pid", nil},
			{"CPU", []member{{"requested_frequency", []member{{"min", 0}, {"max", 0}}}, {"governor", []any{}}}},
			{"kill_request_user", nil},
			{"state", sacctState(j, true, true)},
			{"statistics", []member{{"CPU", []member{{"actual_frequency", 0}}}, {"energy", []member{{"consumed", 0}}}}},
			{"step", []member{{"job_id", j.ID}, {"het", []member{{"component", nil}}}, {"id", "batch"}, {"name", "batch"}}},
			{"task", []member{{"distribution", "Unknown"}}},
		})
	}
	var allocated []any
	if ran {
		allocated = []any{tres("cpu", j.NumCPUs), tres("energy", nil), tres("node", j.Nodes), tres("billing", j.NumCPUs)}
	}
	reason := j.Reason
	if ran {
		// slurmdbd keeps the reason of the job's start (None), not the
		// one its end gave (NonZeroExitCode ...).
		reason = "None"
	}
	reqMem := j.MemMB
	if reqMem == 0 {
		reqMem = r.nodeMem * int64(j.Nodes)
	}
	return []member{
		{"account", account},
		{"comment", []member{{"administrator", nil}, {"job", nilIfEmpty(j.Comment)}, {"system", nil}}},
		{"allocation_nodes", allocNodes},
		{"array", []member{{"job_id", 0}, {"limits", []member{{"max", []member{{"running", []member{{"tasks", 0}}}}}}},
			{"task", nil}, {"task_id", nil}}},
		{"association", []member{{"account", account}, {"cluster", r.info0().ClusterName}, {"partition", nil}, {"user", j.User}}},
		{"cluster", r.info0().ClusterName},
		{"constraints", ""},
		{"container", nil},
		{"derived_exit_code", success},
		{"time", []member{{"elapsed", elapsed}, {"eligible", unix(j.Eligible)}, {"end", end}, {"start", start},
			{"submission", unix(j.Submit)}, {"suspended", 0}, {"system", cpuTime()}, {"limit", limit},
			{"total", cpuTime()}, {"user", cpuTime()}}},
		{"exit_code", success},
		{"flags", strings2any(flags)},
		{"group", j.Group},
		{"het", []member{{"job_id", 0}, {"job_offset", nil}}},
		{"job_id", j.ID},
		{"name", j.Name},
		{"mcs", []member{{"label", ""}}},
		{"nodes", nodes},
		{"partition", j.Partition},
		{"priority", j.Priority},
		{"qos", "normal"},
		{"required", []member{{"CPUs", j.NumCPUs}, {"memory", j.MemMB}}},
		{"kill_request_user", killer},
		{"reservation", []member{{"id", 0}, {"name", 0}}},
		{"state", []member{{"current", j.State.String()}, {"reason", reason}}},
		{"steps", steps},
		{"tres", []member{
			{"allocated", allocated},
			{"requested", []any{tres("cpu", j.NumCPUs), tres("mem", reqMem), tres("node", j.Nodes), tres("billing", j.NumCPUs)}},
		}},
		{"user", j.User},
		{"wckey", []member{{"wckey", ""}, {"flags", []any{}}}},
		{"working_directory", j.WorkDir},
	}
}

// nilIfEmpty is null for "", as the dumps write unset strings.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// signalText is strsignal's name of a signal, as sacct --json gives it.
func signalText(n int) string {
	return map[int]string{1: "Hangup", 2: "Interrupt", 6: "Aborted", 9: "Killed", 10: "User defined signal 1",
		12: "User defined signal 2", 15: "Terminated"}[n]
}

package cli

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
	r.writeDump("jobs", list)
	return nil
}

// writeDump writes an openapi/v0.0.38 dump: meta, no errors, and list
// under key.
func (r *run) writeDump(key string, list []any) {
	var b bytes.Buffer
	jsonOut(&b, []member{
		slurmMeta("openapi/v0.0.38", "Slurm OpenAPI v0.0.38", r.info0().Version),
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
	r.writeDump("nodes", list)
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

package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
)

// appendJobAttrs appends a job's attributes as the server reports them to
// qstat -f: in the order of OpenPBS's job attribute table
// (master_job_attr_def.xml), resources sorted by name, times already
// converted as qstat converts them (ctime), and the defaults OpenPBS fills
// in for a job submitted without the option (Checkpoint = u, Keep_Files =
// n, ...). scratch is space for sorting resource names (a and scratch are
// reused across jobs by qstat -f).
func appendJobAttrs(a []attr, j fakepbs.Job, info fakepbs.ServerInfo, loc *time.Location, scratch *[]string) []attr {
	add := func(name, value string) { a = append(a, attr{Name: name, Value: value}) }
	addTime := func(name string, t time.Time) {
		if !t.IsZero() {
			add(name, ctime(t, loc))
		}
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	add("Job_Name", j.Name)
	add("Job_Owner", j.Owner)
	keys := sortedKeysInto(*scratch, j.ResourcesUsed)
	for _, k := range keys {
		a = append(a, attr{Name: "resources_used", Resource: k, Value: displayResource(k, j.ResourcesUsed[k])})
	}
	add("job_state", j.State.String())
	add("queue", j.Queue)
	// "server" is the server's host name; the job id suffix is its name.
	server := info.Host
	if server == "" {
		server = info.Name
	}
	add("server", server)
	if j.Account != "" {
		add("Account_Name", j.Account)
	}
	add("Checkpoint", def(j.Checkpoint, "u"))
	addTime("ctime", j.Ctime)
	if j.DependOn != "" {
		add("depend", j.DependOn)
	}
	if j.ErrorPath != "" {
		add("Error_Path", j.ErrorPath)
	}
	if j.ExecHost != "" {
		add("exec_host", j.ExecHost)
	}
	if j.ExecVnode != "" {
		add("exec_vnode", j.ExecVnode)
	}
	addTime("Execution_Time", j.StartAt)
	if v := j.Attributes["group_list"]; v != "" {
		add("group_list", v)
	}
	add("Hold_Types", def(j.HoldTypes, "n"))
	if j.Interactive {
		add("interactive", "True")
	}
	add("Join_Path", def(j.Join, "n"))
	add("Keep_Files", def(j.KeepFiles, "n"))
	add("Mail_Points", def(j.MailPoints, "a"))
	if j.MailUsers != "" {
		add("Mail_Users", j.MailUsers)
	}
	addTime("mtime", j.Mtime)
	if j.OutputPath != "" {
		add("Output_Path", j.OutputPath)
	}
	add("Priority", strconv.Itoa(j.Priority))
	addTime("qtime", j.Qtime)
	if j.Rerunable == "n" || strings.EqualFold(j.Rerunable, "false") {
		add("Rerunable", "False")
	} else {
		add("Rerunable", "True")
	}
	keys = sortedKeysInto(keys, j.Resources)
	*scratch = keys
	for _, k := range keys {
		a = append(a, attr{Name: "Resource_List", Resource: k, Value: displayResource(k, j.Resources[k])})
	}
	addTime("stime", j.Stime)
	addTime("obittime", j.Obittime)
	if j.SessionID != 0 {
		add("session_id", strconv.Itoa(j.SessionID))
	}
	if j.Shell != "" {
		add("Shell_Path_List", j.Shell)
	}
	if v := j.Attributes["sandbox"]; v != "" {
		add("sandbox", v)
	}
	if !j.Stime.IsZero() {
		add("jobdir", variable(j.Variables, "PBS_O_HOME"))
	}
	for _, k := range []string{"stagein", "stageout"} {
		if v := j.Attributes[k]; v != "" {
			add(k, v)
		}
	}
	add("substate", strconv.Itoa(substate(j)))
	if len(j.Variables) > 0 {
		add("Variable_List", encodeVariables(j.Variables))
	}
	if j.Comment != "" {
		add("comment", j.Comment)
	}
	addTime("etime", j.Etime)
	if j.Umask != "" {
		add("umask", j.Umask)
	}
	if j.RunCount > 0 {
		add("run_count", strconv.Itoa(j.RunCount))
	}
	if j.State == fakepbs.Finished && !j.Stime.IsZero() {
		add("Stageout_status", "1")
	}
	if j.ExitStatus != nil {
		add("Exit_status", strconv.Itoa(*j.ExitStatus))
	}
	if j.SubmitArgs != "" {
		add("Submit_arguments", j.SubmitArgs)
	}
	if j.Array != "" {
		add("array", "True")
		add("array_indices_submitted", j.Array)
	}
	if j.State == fakepbs.Finished {
		t := j.Obittime
		if t.IsZero() {
			t = j.Mtime
		}
		if !t.IsZero() {
			add("history_timestamp", strconv.FormatInt(t.Unix(), 10))
		}
	}
	add("project", def(j.Project, "_pbs_project_default"))
	if j.SubmitHost != "" {
		add("Submit_Host", j.SubmitHost)
	}
	return a
}

// substate is the job's substate, or the usual one for its state when the
// server left it unset.
func substate(j fakepbs.Job) int {
	if j.Substate != 0 {
		return j.Substate
	}
	switch j.State {
	case fakepbs.Queued:
		return 10
	case fakepbs.Held:
		return 20
	case fakepbs.Waiting:
		return 30
	case fakepbs.Running:
		return 42
	case fakepbs.Suspended:
		return 43
	case fakepbs.Exiting:
		return 51
	case fakepbs.Finished:
		if j.ExitStatus != nil && (*j.ExitStatus < 0 || *j.ExitStatus >= 256) {
			return 93
		}
		return 92
	}
	return 0
}

// encodeVariables joins Variable_List as the server encodes it: commas
// inside values escaped with a backslash.
func encodeVariables(vars []string) string {
	var b strings.Builder
	n := len(vars)
	for _, v := range vars {
		n += len(v) + strings.Count(v, ",")
	}
	b.Grow(n)
	for i, v := range vars {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.ReplaceAll(v, ",", `\,`))
	}
	return b.String()
}

// variable returns the value of KEY in a KEY=value list.
func variable(vars []string, key string) string {
	for _, kv := range vars {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// ownerUser is the user part of Job_Owner (user@host).
func ownerUser(j fakepbs.Job) string {
	o := j.Owner
	if o == "" {
		o = j.User
	}
	if i := strings.IndexByte(o, '@'); i >= 0 {
		o = o[:i]
	}
	return o
}

package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
)

// JobAdmin is implemented by backends that requeue and update jobs
// (`scontrol requeue`, `scontrol update JobId=...`); *fakeslurm.Server
// implements it.
type JobAdmin interface {
	Requeue(ctx context.Context, user string, id int) error
	UpdateJob(ctx context.Context, user string, id int, u fakeslurm.JobUpdate) error
}

var _ JobAdmin = (*fakeslurm.Server)(nil)

// eachJobID runs act on every job id in args (comma lists allowed) and
// prints "<error> for job <id>" for each that fails, as scontrol's job
// commands do. It returns the last error.
func (r *run) eachJobID(args []string, act func(id int) error) error {
	var last error
	for _, arg := range args {
		for _, s := range strings.Split(arg, ",") {
			id, err := parseJobID(s)
			if err != nil {
				err = fakeslurm.Errno(fakeslurm.ErrInvalidJobID)
			} else {
				err = act(id)
			}
			if err != nil {
				last = err
				fmt.Fprintf(&r.stderr, "%s for job %s\n", errText(err), s)
			}
		}
	}
	return last
}

// requeue is `scontrol requeue ID[,ID...]`.
func (r *run) requeue(ids []string) error {
	admin, ok := r.b.(JobAdmin)
	if !ok {
		r.stderr.WriteString("scontrol: error: this controller does not requeue jobs\n")
		return exit(1)
	}
	if r.eachJobID(ids, func(id int) error { return admin.Requeue(r.ctx, r.inv.User, id) }) != nil {
		return exit(1)
	}
	return nil
}

// unmodelledJobFields are fields Slurm 22.05's `scontrol update JobId=`
// changes that the fake does not: refused with a message that says so
// rather than Slurm's "not supported", which would be untrue.
var unmodelledJobFields = []string{
	"account", "arraytaskthrottle", "begintime", "burstbuffer", "clusters", "contiguous", "corespec",
	"cpuspertask", "deadline", "delayboot", "eligibletime", "excnodelist", "features", "gres", "licenses",
	"mailtype", "mailuser", "mincpusnode", "minmemorycpu", "minmemorynode", "mintmpdisknode", "nice",
	"numcpus", "numnodes", "numtasks", "oversubscribe", "priority", "qos", "reboot", "reqnodelist",
	"requeue", "reservation", "shared", "starttime", "stderr", "stdin", "stdout", "timemin", "userid",
	"wckey", "workdir",
}

// updateJob is `scontrol update JobId=ID Field=Value...` for the fields a
// site changes: TimeLimit (also +N / -N), JobName (Name), Partition and
// Dependency (pending jobs only) and Comment. Messages and exit codes are
// Debian's 22.05.8 ones.
func (r *run) updateJob(args []string) error {
	var idText string
	var u fakeslurm.JobUpdate
	var limitText string
	changes := 0
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(&r.stderr, "Invalid input: %s\nRequest aborted\n", a)
			return exit(1)
		}
		key := strings.ToLower(k)
		switch key {
		case "jobid":
			idText = v
			continue
		case "timelimit":
			limitText = v
		case "jobname", "name":
			u.Name = &v
		case "partition":
			u.Partition = &v
		case "dependency":
			u.Dependency = &v
		case "comment":
			u.Comment = &v
		default:
			for _, f := range unmodelledJobFields {
				if key == f {
					fmt.Fprintf(&r.stderr, "scontrol: error: fakeslurm does not model updating a job's %s\n", k)
					return exit(1)
				}
			}
			fmt.Fprintf(&r.stderr, "Update of this parameter is not supported: %s\nRequest aborted\n", a)
			return exit(1)
		}
		changes++
	}
	if changes == 0 {
		r.stderr.WriteString("No changes specified\n")
		return exit(1)
	}
	admin, ok := r.b.(JobAdmin)
	if !ok {
		r.stderr.WriteString("scontrol: error: this controller does not update jobs\n")
		return exit(1)
	}
	if limitText != "" {
		sign := limitText[0]
		if sign == '+' || sign == '-' {
			limitText = limitText[1:]
		}
		d, err := ParseTimeLimit(limitText)
		if err != nil || ((sign == '+' || sign == '-') && d == fakeslurm.Unlimited) {
			r.stderr.WriteString("scontrol: error: Invalid TimeLimit value\n")
			return exit(1)
		}
		if sign == '+' || sign == '-' {
			// Relative to the job's current limit (slurmctld applies it
			// to the limit it holds).
			if id, err := parseJobID(idText); err == nil {
				if j, err := r.b.Job(r.ctx, id); err == nil && j.TimeLimit != fakeslurm.Unlimited {
					if sign == '-' {
						d = -d
					}
					d = max(time.Minute, j.TimeLimit+d)
				}
			}
		}
		u.TimeLimit = &d
	}
	if r.eachJobID([]string{idText}, func(id int) error { return admin.UpdateJob(r.ctx, r.inv.User, id, u) }) != nil {
		return exit(1)
	}
	return nil
}

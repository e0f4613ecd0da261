package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakeslurm"
)

// state waits until job id is in state st (virtual clock moved by the
// caller), failing after 10 s of wall time.
func (l *local) state(t *testing.T, id int, st fakeslurm.State) fakeslurm.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := l.srv.Job(context.Background(), id)
		if err == nil && j.State == st && !j.Completing {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d never %v: %+v %v", id, st, j, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// squeue --json: Slurm's layout (2-space indent, "\/", empty arrays on two
// lines, no final newline), every job whatever -j says, and the members a
// client reads.
func TestSqueueJSON(t *testing.T) {
	l := newLocalOn(t, clock.NewVirtual(epoch))
	l.run(t, "", "sbatch", "-t", "10", "-c", "2", "--mem=100", "--wrap", "sleep 100")
	l.run(t, "", "sbatch", "--wrap", "true")
	l.clk.Advance(time.Second)
	l.state(t, 1, fakeslurm.Running)
	r := l.run(t, "", "squeue", "--json", "-j", "999")
	out := string(r.Stdout)
	if r.ExitCode != 0 || strings.HasSuffix(out, "\n") || !strings.Contains(out, "\n  \"errors\": [\n  ],\n") ||
		!strings.Contains(out, `"current_working_directory": "\/home\/alice"`) {
		t.Fatalf("squeue --json layout (exit %d):\n%s", r.ExitCode, out)
	}
	var doc struct {
		Meta struct {
			Slurm struct{ Release string }
		}
		Jobs []map[string]any
	}
	if err := json.Unmarshal(r.Stdout, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Meta.Slurm.Release != "22.05.8" || len(doc.Jobs) != 2 {
		t.Fatalf("release %q, %d jobs (want 22.05.8, both jobs despite -j 999)", doc.Meta.Slurm.Release, len(doc.Jobs))
	}
	j := doc.Jobs[0]
	for k, want := range map[string]any{"job_id": 1.0, "job_state": "RUNNING", "time_limit": 10.0, "cpus": 2.0,
		"memory_per_node": 100.0, "user_name": "alice", "batch_host": "localhost", "billable_tres": 2.0} {
		if j[k] != want {
			t.Errorf("%s = %v, want %v", k, j[k], want)
		}
	}
	cores := j["job_resources"].(map[string]any)["allocated_nodes"].([]any)[0].(map[string]any)["sockets"]
	if b, _ := json.Marshal(cores); string(b) != `{"0":{"cores":{"0":"allocated","1":"allocated"}}}` {
		t.Errorf("cores %s", b)
	}
	if p := doc.Jobs[1]; p["job_state"] != "PENDING" || p["job_resources"] != nil || p["time_limit"] != nil {
		t.Errorf("pending job: %v %v %v", p["job_state"], p["job_resources"], p["time_limit"])
	}

	// sinfo --json: the node, busy with the job's two CPUs.
	r = l.run(t, "", "sinfo", "--json")
	var nodes struct{ Nodes []map[string]any }
	if err := json.Unmarshal(r.Stdout, &nodes); err != nil || len(nodes.Nodes) != 1 {
		t.Fatalf("sinfo --json: %v %s", err, r.Stdout)
	}
	for k, want := range map[string]any{"name": "localhost", "state": "allocated", "alloc_cpus": 2.0, "idle_cpus": 0.0, "tres_used": "cpu=2"} {
		if got := nodes.Nodes[0][k]; got != want {
			t.Errorf("sinfo --json %s = %v, want %v", k, got, want)
		}
	}
	r = l.run(t, "", "sacct", "--json")
	var acct struct {
		Jobs []struct {
			JobID int `json:"job_id"`
			State struct{ Current string }
			Steps []struct{ State string }
		}
	}
	if err := json.Unmarshal(r.Stdout, &acct); err != nil || len(acct.Jobs) != 2 || acct.Jobs[0].State.Current != "RUNNING" ||
		len(acct.Jobs[0].Steps) != 1 || acct.Jobs[0].Steps[0].State != "RUNNING" || len(acct.Jobs[1].Steps) != 0 {
		t.Errorf("sacct --json: %v %s", err, r.Stdout)
	}
}

// scontrol update JobId=: what a user may change, what only root may, and
// Slurm's messages for the rest; a lowered limit ends a running job.
func TestScontrolUpdateJob(t *testing.T) {
	l := newLocalOn(t, clock.NewVirtual(epoch))
	l.run(t, "", "sbatch", "-t", "10", "--wrap", "sleep 1000")
	l.run(t, "", "sbatch", "-t", "10", "-c", "2", "--wrap", "true")
	l.clk.Advance(time.Second)
	l.state(t, 1, fakeslurm.Running)
	for _, c := range []struct {
		args []string
		err  string
		code int
	}{
		{[]string{"JobId=1", "TimeLimit=20"}, "Access/permission denied for job 1\n", 1},
		{[]string{"JobId=1", "Partition=other"}, "Job is no longer pending execution for job 1\n", 1},
		{[]string{"JobId=2", "Partition=other"}, "Invalid partition name specified for job 2\n", 1},
		{[]string{"JobId=2", "NumNodes=2"}, "scontrol: error: fakeslurm does not model updating a job's NumNodes\n", 1},
		{[]string{"JobId=2", "Color=red"}, "Update of this parameter is not supported: Color=red\nRequest aborted\n", 1},
		{[]string{"JobId=2", "TimeLimit=soon"}, "scontrol: error: Invalid TimeLimit value\n", 1},
		{[]string{"JobId=2"}, "No changes specified\n", 1},
		{[]string{"JobId=2", "JobName=renamed", "TimeLimit=-5", "Dependency=afterok:1"}, "", 0},
		{[]string{"JobId=1", "TimeLimit=1"}, "", 0},
	} {
		r := l.run(t, "", append([]string{"scontrol", "update"}, c.args...)...)
		if string(r.Stderr) != c.err || r.ExitCode != c.code {
			t.Errorf("update %v: %q exit %d; want %q exit %d", c.args, r.Stderr, r.ExitCode, c.err, c.code)
		}
	}
	j, _ := l.srv.Job(context.Background(), 2)
	if j.Name != "renamed" || j.TimeLimit != 5*time.Minute || !strings.HasPrefix(j.Dependency, "afterok:1") {
		t.Errorf("job 2 after update: %q %v %q", j.Name, j.TimeLimit, j.Dependency)
	}
	l.clk.Advance(2 * time.Minute)
	if j := l.state(t, 1, fakeslurm.Timeout); j.TimeLimit != time.Minute {
		t.Errorf("job 1 limit %v", j.TimeLimit)
	}
	if r := l.run(t, "", "scontrol", "update", "JobId=1", "TimeLimit=5"); string(r.Stderr) != "Job has already finished for job 1\n" {
		t.Errorf("update of a finished job: %q", r.Stderr)
	}
}

// scontrol requeue: a running job is killed with slurmstepd's requeue
// line and runs again after two minutes with Restarts=1; pending and
// --no-requeue jobs are refused with Slurm's texts.
func TestScontrolRequeue(t *testing.T) {
	l := newLocalOn(t, clock.NewVirtual(epoch))
	l.run(t, "", "sbatch", "--wrap", "echo run; sleep 1000")
	l.run(t, "", "sbatch", "--no-requeue", "--wrap", "sleep 1000")
	l.run(t, "", "sbatch", "-c", "2", "--wrap", "true")
	l.clk.Advance(time.Second)
	l.state(t, 1, fakeslurm.Running)
	l.state(t, 2, fakeslurm.Running)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		// The script is under way (its output open) before the requeue.
		if out, _ := afero.ReadFile(l.fs, "/home/alice/slurm-1.out"); string(out) == "run\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job 1 never printed")
		}
	}
	for _, c := range []struct{ id, err string }{
		{"2", "Requested operation is presently disabled for job 2\n"},
		{"3", "Job is pending execution for job 3\n"},
		{"999", "Invalid job id specified for job 999\n"},
		{"1", ""},
	} {
		r := l.run(t, "", "scontrol", "requeue", c.id)
		if string(r.Stderr) != c.err || (r.ExitCode == 0) != (c.err == "") {
			t.Errorf("requeue %s: %q exit %d; want %q", c.id, r.Stderr, r.ExitCode, c.err)
		}
	}
	j := l.state(t, 1, fakeslurm.Pending)
	if j.Reason != "BeginTime" || j.Restarts != 1 {
		t.Errorf("requeued job: reason %s restarts %d", j.Reason, j.Restarts)
	}
	out, _ := afero.ReadFile(l.fs, "/home/alice/slurm-1.out")
	if !strings.Contains(string(out), "run\nslurmstepd-localhost: error: *** JOB 1 ON localhost CANCELLED AT 2026-12-06T07:41:16 DUE TO JOB REQUEUE ***\n") {
		t.Errorf("slurm-1.out: %q", out)
	}
	l.run(t, "", "scancel", "2")
	l.clk.Advance(3 * time.Minute)
	l.state(t, 1, fakeslurm.Running)
}

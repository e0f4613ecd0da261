// Package contract holds the contract tests of fakeslurm's three clients:
// the commands Cylc 8.0.2's slurm job runner, batchspawner's SlurmSpawner
// and dask-jobqueue's SLURMJob run, and the regular expressions they parse
// the answers with, taken from /work/shared/reference/slurm.md (which cites
// the clients' sources). Each test fails when the fake's answer would make
// the client misread the job.
package contract_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/fakeslurm/virtualsrun"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type site struct {
	srv    *fakeslurm.Server
	fs     afero.Fs
	faults *fault.Set
}

func newSite(t *testing.T) *site {
	t.Helper()
	fs := afero.NewMemMapFs()
	for _, d := range []string{"/home/alice/cylc-run/w/log/job/1/t/01", "/home/alice/logs", "/tmp"} {
		if err := fs.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	set := fault.NewSet()
	e := virtual.New(virtual.WithFS(fs), virtual.WithHostname("localhost"), virtual.WithBuiltin("srun", virtualsrun.Builtin()))
	srv, err := fakeslurm.NewServer(context.Background(), fakeslurm.WithFS(fs), fakeslurm.WithExecutor(e),
		fakeslurm.WithSchedulerDelay(5*time.Millisecond), fakeslurm.WithFaults(set), fakeslurm.WithMessageTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Close()
		_ = e.Close()
	})
	return &site{srv: srv, fs: fs, faults: set}
}

// run is one client command as alice, in $HOME.
func (s *site) run(t *testing.T, stdin string, args ...string) cli.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cli.Run(ctx, s.srv, cli.Invocation{Command: args[0], Args: args[1:], Stdin: strings.NewReader(stdin),
		Env: []string{"HOME=/home/alice", "USER=alice", "PATH=/usr/bin:/bin"}, Cwd: "/home/alice",
		User: "alice", UID: 1000, GID: 1000, Host: "login1", FS: s.fs}, cli.WithFaults(s.faults))
}

func (s *site) waitState(t *testing.T, id int, want fakeslurm.State) fakeslurm.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := s.srv.Job(context.Background(), id)
		if err == nil && j.State == want && !j.Completing {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: want %v, have %+v (%v)", id, want, j, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Cylc 8.0.2 (job_runner_handlers/slurm.py).
var (
	cylcSubmitRE = regexp.MustCompile(`\ASubmitted\sbatch\sjob\s(?P<id>\d+)`)
	cylcPollRE   = regexp.MustCompile(`^ *(?P<id>\d+)`)
)

// cylcID is how Cylc reads the job id: the first stdout line that matches.
func cylcID(out string) (int, bool) {
	for _, line := range strings.Split(out, "\n") {
		if m := cylcSubmitRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n, true
		}
	}
	return 0, false
}

// cylcPolled lists the ids squeue -h -j reports, as Cylc reads them.
func cylcPolled(out string) map[int]bool {
	ids := map[int]bool{}
	for _, line := range strings.Split(out, "\n") {
		if m := cylcPollRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			ids[n] = true
		}
	}
	return ids
}

// Cylc's submit, poll and kill: the job script with Cylc's directives is
// submitted by path, the id is read from "Submitted batch job N", polls
// see the job until it leaves the queue, and a kill of any job succeeds.
func TestCylc(t *testing.T) {
	s := newSite(t)
	jobPath := "/home/alice/cylc-run/w/log/job/1/t/01/job"
	script := "#!/bin/bash -l\n#SBATCH --job-name=t.1.w\n#SBATCH --output=cylc-run/w/log/job/1/t/01/job.out\n" +
		"#SBATCH --error=cylc-run/w/log/job/1/t/01/job.err\n#SBATCH --time=1:30\n" +
		"echo \"CYLC_JOB_RUNNER_SUBMIT_TIME\"\necho started $SLURM_JOB_ID\nsleep 0.2\necho done >&2\n"
	if err := afero.WriteFile(s.fs, jobPath, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	res := s.run(t, "", "sbatch", jobPath)
	id, ok := cylcID(string(res.Stdout))
	if res.ExitCode != 0 || !ok {
		t.Fatalf("sbatch: Cylc cannot read a job id from %q (exit %d, %q)", res.Stdout, res.ExitCode, res.Stderr)
	}
	j, _ := s.srv.Job(context.Background(), id)
	if j.Name != "t.1.w" || j.TimeLimit != 2*time.Minute || j.StdOut != "/home/alice/cylc-run/w/log/job/1/t/01/job.out" ||
		j.StdErr != "/home/alice/cylc-run/w/log/job/1/t/01/job.err" || j.Command != jobPath {
		t.Errorf("Cylc's directives not applied: %+v", j)
	}
	otherPath := "/home/alice/cylc-run/w/log/job/1/t/01/job-u"
	if err := afero.WriteFile(s.fs, otherPath, []byte(strings.ReplaceAll(script, "job.out", "job-u.out")), 0o644); err != nil {
		t.Fatal(err)
	}
	other := s.run(t, "", "sbatch", otherPath)
	otherID, _ := cylcID(string(other.Stdout))
	s.waitState(t, id, fakeslurm.Running)
	poll := s.run(t, "", "squeue", "-h", "-j", strconv.Itoa(id)+","+strconv.Itoa(otherID)+",999")
	if got := cylcPolled(string(poll.Stdout)); !got[id] || got[999] || poll.ExitCode != 0 {
		t.Errorf("poll of a running job: %q exit %d", poll.Stdout, poll.ExitCode)
	}
	s.waitState(t, id, fakeslurm.Completed)
	poll = s.run(t, "", "squeue", "-h", "-j", strconv.Itoa(id)+","+strconv.Itoa(otherID))
	if cylcPolled(string(poll.Stdout))[id] {
		t.Errorf("a finished job must leave squeue (Cylc then reads job.status): %q", poll.Stdout)
	}
	out, _ := afero.ReadFile(s.fs, "/home/alice/cylc-run/w/log/job/1/t/01/job.out")
	if string(out) != "CYLC_JOB_RUNNER_SUBMIT_TIME\nstarted "+strconv.Itoa(id)+"\n" {
		t.Errorf("job.out: %q", out)
	}
	// Kill: an unknown or finished job still reports success.
	for _, k := range []string{strconv.Itoa(otherID), strconv.Itoa(id), "999"} {
		if r := s.run(t, "", "scancel", k); r.ExitCode != 0 {
			t.Errorf("scancel %s: exit %d %q", k, r.ExitCode, r.Stderr)
		}
	}
	// The controller away: squeue prints nothing on stdout, so Cylc sees
	// every polled job as gone and reads its job.status.
	if _, err := s.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"squeue"}, Effect: fault.Effect{Kind: fault.Unreachable}}); err != nil {
		t.Fatal(err)
	}
	poll = s.run(t, "", "squeue", "-h", "-j", strconv.Itoa(otherID))
	if len(poll.Stdout) != 0 || poll.ExitCode != 1 {
		t.Errorf("poll with the controller away: %q exit %d", poll.Stdout, poll.ExitCode)
	}
}

// batchspawner's SlurmSpawner (batchspawner.py, HEAD 451dcf1).
var (
	bsRunningRE = regexp.MustCompile(`^(?:RUNNING|COMPLETING)`)
	bsPendingRE = regexp.MustCompile(`^(?:PENDING|CONFIGURING)`)
	bsUnknownRE = regexp.MustCompile(`^slurm_load_jobs error: (?:Socket timed out on send/recv|Unable to contact slurm controller)`)
	bsHostRE    = regexp.MustCompile(`\s+((?:[\w_-]+\.?)+)$`)
)

const bsScript = `#!/bin/bash
#SBATCH --output=/home/alice/jupyterhub_slurmspawner_%j.log
#SBATCH --job-name=spawner-jupyterhub
#SBATCH --chdir=/home/alice
#SBATCH --export=PATH,LANG,JUPYTERHUB_API_TOKEN
#SBATCH --get-user-env=L
#SBATCH --time=1:00:00

set -euo pipefail

trap 'echo SIGTERM received' TERM
srun echo jupyterhub-singleuser started on $SLURMD_NODENAME
sleep 600
`

// bsStatus is batchspawner's reading of a query's output: stdout, or the
// stderr of a failed query, checked running, pending, unknown, else gone.
func bsStatus(r cli.Result) string {
	out := strings.TrimSpace(string(r.Stdout))
	if r.ExitCode != 0 {
		out = strings.TrimSpace(string(r.Stderr))
	}
	switch {
	case bsRunningRE.MatchString(out):
		return "running"
	case bsPendingRE.MatchString(out):
		return "pending"
	case bsUnknownRE.MatchString(out):
		return "unknown"
	}
	return "notfound"
}

// SlurmSpawner: the script on stdin with --parsable (id = last line cut at
// ';'), queries with -o '%T %B' read through its regexes (host included),
// srun inside the job, and a cancel after which the job is no longer
// running.
func TestBatchspawner(t *testing.T) {
	s := newSite(t)
	res := s.run(t, bsScript, "sbatch", "--parsable")
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	last, _, _ := strings.Cut(lines[len(lines)-1], ";")
	id, err := strconv.Atoi(last)
	if res.ExitCode != 0 || err != nil {
		t.Fatalf("sbatch --parsable: %q exit %d %q", res.Stdout, res.ExitCode, res.Stderr)
	}
	query := func() cli.Result { return s.run(t, "", "squeue", "-h", "-j", strconv.Itoa(id), "-o", "%T %B") }
	if st := bsStatus(query()); st != "pending" && st != "running" {
		t.Errorf("just submitted: %s", st)
	}
	s.waitState(t, id, fakeslurm.Running)
	q := query()
	if bsStatus(q) != "running" {
		t.Errorf("running job read as %s from %q", bsStatus(q), q.Stdout)
	}
	if m := bsHostRE.FindStringSubmatch(strings.TrimSpace(string(q.Stdout))); m == nil || m[1] != "localhost" {
		t.Errorf("host from %q: %v", q.Stdout, m)
	}
	j, _ := s.srv.Job(context.Background(), id)
	if j.Name != "spawner-jupyterhub" || j.TimeLimit != time.Hour || j.StdOut != "/home/alice/jupyterhub_slurmspawner_"+strconv.Itoa(id)+".log" {
		t.Errorf("spawner directives: %+v", j)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := afero.ReadFile(s.fs, j.StdOut)
		if strings.Contains(string(b), "jupyterhub-singleuser started on localhost\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("srun in the job did not run its command: log %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A query while the controller does not answer is "unknown" (alive).
	rule, err := s.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"squeue"}, Effect: fault.Effect{Kind: fault.Unreachable, Style: "cannot-connect"}})
	if err != nil {
		t.Fatal(err)
	}
	if st := bsStatus(query()); st != "unknown" {
		t.Errorf("controller hung: read as %s", st)
	}
	s.faults.Remove(rule.ID)
	if r := s.run(t, "", "scancel", strconv.Itoa(id)); r.ExitCode != 0 {
		t.Fatalf("scancel: %d %q", r.ExitCode, r.Stderr)
	}
	deadline = time.Now().Add(10 * time.Second)
	for bsStatus(query()) == "running" {
		if time.Now().After(deadline) {
			t.Fatal("stop() would loop: the job stays running after scancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := bsStatus(query()); st != "notfound" {
		t.Errorf("after the cancel: %s", st)
	}
	if st := bsStatus(s.run(t, "", "squeue", "-h", "-j", "99999", "-o", "%T %B")); st != "notfound" {
		t.Errorf("unknown job: %s", st)
	}
}

// dask-jobqueue's SLURMJob (slurm.py, core.py): the header it writes, the
// id as the first run of digits, a temp file deleted right after sbatch.
func TestDaskJobqueue(t *testing.T) {
	s := newSite(t)
	tmp := "/tmp/tmpab12cd.sh"
	script := "#!/usr/bin/env bash\n\n#SBATCH -J dask-worker\n#SBATCH -e /home/alice/logs/dask-worker-%J.err\n" +
		"#SBATCH -o /home/alice/logs/dask-worker-%J.out\n#SBATCH -p debug\n#SBATCH -A proj\n#SBATCH -n 1\n#SBATCH -N 1\n" +
		"#SBATCH --cpus-per-task=2\n#SBATCH --mem=954M\n#SBATCH -t 00:30:00\n\necho worker $SLURM_CPUS_ON_NODE\n"
	if err := afero.WriteFile(s.fs, tmp, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	res := s.run(t, "", "sbatch", tmp)
	_ = s.fs.Remove(tmp) // dask deletes the file as soon as sbatch returns
	m := regexp.MustCompile(`(?P<job_id>\d+)`).FindStringSubmatch(string(res.Stdout))
	if res.ExitCode != 0 || m == nil {
		t.Fatalf("sbatch: %q exit %d %q", res.Stdout, res.ExitCode, res.Stderr)
	}
	id, _ := strconv.Atoi(m[1])
	j := s.waitState(t, id, fakeslurm.Completed)
	if j.Name != "dask-worker" || j.Account != "proj" || j.NumCPUs != 2 || j.MemMB != 954 || j.TimeLimit != 30*time.Minute {
		t.Errorf("dask header: %+v", j)
	}
	out, _ := afero.ReadFile(s.fs, "/home/alice/logs/dask-worker-"+m[1]+".out")
	if string(out) != "worker 2\n" {
		t.Errorf("worker output %q", out)
	}
	// A rejected submission is a non-zero exit, which dask raises on.
	if _, err := s.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"sbatch"}, Count: 1, Effect: fault.Effect{Kind: fault.Exit,
		Stderr: "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"}}); err != nil {
		t.Fatal(err)
	}
	if r := s.run(t, "#!/bin/sh\n", "sbatch"); r.ExitCode == 0 {
		t.Errorf("rejected sbatch exited 0: %q", r.Stdout)
	}
	// scancel of a finished worker: its non-zero exit would be suppressed,
	// and Slurm gives 0 anyway.
	if r := s.run(t, "", "scancel", m[1]); r.ExitCode != 0 {
		t.Errorf("scancel of a finished job: exit %d", r.ExitCode)
	}
}

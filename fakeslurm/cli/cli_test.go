package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/fakeslurm/virtualsrun"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

var epoch = time.Date(2026, 12, 6, 7, 41, 15, 0, time.UTC)

// local is a fake controller on a virtual clock that moves by itself,
// with jobs run by the virtual executor.
type local struct {
	srv    *fakeslurm.Server
	clk    *clock.Virtual
	fs     afero.Fs
	faults *fault.Set
}

func newLocal(t *testing.T, opts ...fakeslurm.Option) *local {
	t.Helper()
	return newLocalOn(t, clock.NewVirtual(epoch, clock.AutoAdvance()), opts...)
}

func newLocalOn(t *testing.T, clk *clock.Virtual, opts ...fakeslurm.Option) *local {
	t.Helper()
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	set := fault.NewSet(fault.WithClock(clk))
	e := virtual.New(virtual.WithFS(fs), virtual.WithClock(clk), virtual.WithHostname("localhost"), virtual.WithBuiltin("srun", virtualsrun.Builtin()))
	all := append([]fakeslurm.Option{fakeslurm.WithClock(clk), fakeslurm.WithFS(fs), fakeslurm.WithExecutor(e), fakeslurm.WithFaults(set)}, opts...)
	srv, err := fakeslurm.NewServer(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Close()
		_ = e.Close()
	})
	return &local{srv: srv, clk: clk, fs: fs, faults: set}
}

func (l *local) run(t *testing.T, stdin string, args ...string) cli.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cli.Run(ctx, l.srv, cli.Invocation{Command: args[0], Args: args[1:], Stdin: strings.NewReader(stdin),
		Env: []string{"HOME=/home/alice"}, Cwd: "/home/alice", User: "alice", UID: 1000, GID: 1000, Host: "login1", FS: l.fs},
		cli.WithFaults(l.faults), cli.WithClock(l.clk), cli.WithLocation(time.UTC))
}

func (l *local) final(t *testing.T, id int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := l.srv.Job(context.Background(), id)
		if err == nil && j.State.Finished() && !j.Completing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d did not finish: %+v %v", id, j, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestParseTimeLimit(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"10": 10 * time.Minute, "1:30": 2 * time.Minute, "0:03": time.Minute, "01:00:00": time.Hour,
		"1-0": 24 * time.Hour, "1-02:03": 26*time.Hour + 3*time.Minute, "1-2:3:4": 26*time.Hour + 4*time.Minute,
		"UNLIMITED": fakeslurm.Unlimited, "infinite": fakeslurm.Unlimited, "0": fakeslurm.Unlimited,
	} {
		if got, err := cli.ParseTimeLimit(in); err != nil || got != want {
			t.Errorf("ParseTimeLimit(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"abc", "1:2:3:4", "", "1-", "-5"} {
		if _, err := cli.ParseTimeLimit(bad); err == nil {
			t.Errorf("ParseTimeLimit(%q) accepted", bad)
		}
	}
}

// sacct with history: a finished job stays in sacct after slurmctld forgot
// it; the parsable form is what scripts read, the fixed form cuts long
// values with '+' and ends every line with a space.
func TestSacct(t *testing.T) {
	l := newLocalOn(t, clock.NewVirtual(epoch), fakeslurm.WithMinJobAge(time.Second))
	l.run(t, "", "sbatch", "--wrap", "true")
	l.run(t, "", "sbatch", "--wrap", "exit 3")
	l.run(t, "", "sbatch", "-J", "spawner-jupyterhub", "--wrap", "sleep 100")
	l.clk.Advance(time.Second)
	l.final(t, 1)
	l.final(t, 2)
	l.clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if j, _ := l.srv.Job(context.Background(), 3); j.State == fakeslurm.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job 3 does not start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if r := l.run(t, "", "scancel", "3"); r.ExitCode != 0 {
		t.Fatal(string(r.Stderr))
	}
	l.final(t, 3)
	l.clk.Advance(time.Hour)
	if r := l.run(t, "", "squeue", "-j", "1"); r.ExitCode != 1 {
		t.Errorf("job 1 should be purged from slurmctld after MinJobAge: %q", r.Stdout)
	}
	r := l.run(t, "", "sacct", "-n", "-X", "-P", "-j", "1,2,3", "-o", "JobID,State,ExitCode")
	if want := "1|COMPLETED|0:0\n2|FAILED|3:0\n3|CANCELLED by 1000|0:0\n"; string(r.Stdout) != want {
		t.Errorf("sacct -P:\n%s\nwant:\n%s", r.Stdout, want)
	}
	r = l.run(t, "", "sacct", "-j", "3")
	want := "JobID           JobName  Partition    Account  AllocCPUS      State ExitCode \n" +
		"------------ ---------- ---------- ---------- ---------- ---------- -------- \n" +
		"3            spawner-j+      debug                     1 CANCELLED+      0:0 \n" +
		"3.batch           batch                                1  CANCELLED     0:15 \n"
	if string(r.Stdout) != want {
		t.Errorf("sacct:\n%q\nwant:\n%q", r.Stdout, want)
	}
	if r := l.run(t, "", "sacct", "-n", "-j", "999"); len(r.Stdout) != 0 || r.ExitCode != 0 {
		t.Errorf("sacct of an unknown job: %q exit %d", r.Stdout, r.ExitCode)
	}
}

func TestSacctDisabled(t *testing.T) {
	l := newLocal(t, fakeslurm.WithAccounting(false))
	r := l.run(t, "", "sacct")
	if string(r.Stderr) != "Slurm accounting storage is disabled\n" || r.ExitCode != 1 {
		t.Errorf("%q exit %d", r.Stderr, r.ExitCode)
	}
}

// A controller that is away (restarting) costs a client MessageTimeout-1s
// on the client's clock, twice that for a single job id; MessageTimeout
// comes from the controller's configuration.
func TestControllerAwayHonoursMessageTimeout(t *testing.T) {
	l := newLocalOn(t, clock.NewVirtual(epoch), fakeslurm.WithMessageTimeout(5*time.Second))
	if err := l.srv.Restart(context.Background(), fakeslurm.RestartOptions{Down: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// The controller stays down on its own clock, which nothing moves now;
	// the clients wait on a clock of their own.
	l.clk = clock.NewVirtual(epoch, clock.AutoAdvance())
	for _, c := range []struct {
		args []string
		took time.Duration
		err  string
		code int
	}{
		{[]string{"squeue"}, 4 * time.Second, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n", 1},
		{[]string{"squeue", "-h", "-j", "4"}, 8 * time.Second, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n", 1},
		{[]string{"sbatch", "--wrap", "true"}, 4 * time.Second, "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)\n", 1},
		{[]string{"scancel", "4", "5"}, 4 * time.Second, "scancel: error: Kill job error on job id 4: Unable to contact slurm controller (connect failure)\n" +
			"scancel: error: Kill job error on job id 5: Unable to contact slurm controller (connect failure)\n", 8},
		{[]string{"sinfo"}, 4 * time.Second, "slurm_load_partitions: Unable to contact slurm controller (connect failure)\n", 1},
	} {
		before := l.clk.Now()
		r := l.run(t, "", c.args...)
		if took := l.clk.Now().Sub(before); took != c.took {
			t.Errorf("%v took %v on the clock, want %v", c.args, took, c.took)
		}
		if string(r.Stderr) != c.err || r.ExitCode != c.code {
			t.Errorf("%v: %q exit %d", c.args, r.Stderr, r.ExitCode)
		}
	}
}

// Fault rules on commands: a rejected sbatch with Slurm's message, slow
// commands, garbage output.
func TestCommandFaults(t *testing.T) {
	l := newLocal(t)
	code := 1
	if _, err := l.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"sbatch"}, Count: 1, Effect: fault.Effect{Kind: fault.Exit, ExitCode: &code,
		Stderr: "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified\n"}}); err != nil {
		t.Fatal(err)
	}
	r := l.run(t, "", "sbatch", "--wrap", "true")
	if r.ExitCode != 1 || !strings.Contains(string(r.Stderr), "Invalid account") {
		t.Errorf("rejected: %q exit %d", r.Stderr, r.ExitCode)
	}
	if r := l.run(t, "", "sbatch", "--wrap", "true"); string(r.Stdout) != "Submitted batch job 1\n" {
		t.Errorf("after the one rejection (no id used): %q", r.Stdout)
	}
	if _, err := l.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"squeue"}, Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(30 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	before := l.clk.Now()
	if r := l.run(t, "", "squeue", "-h", "-o", "%i"); r.ExitCode != 0 || l.clk.Now().Sub(before) < 30*time.Second {
		t.Errorf("slow squeue: exit %d after %v", r.ExitCode, l.clk.Now().Sub(before))
	}
	l.faults.Clear()
	if _, err := l.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"squeue"}, Effect: fault.Effect{Kind: fault.Garbage, Stdout: "garbled\n"}}); err != nil {
		t.Fatal(err)
	}
	if r := l.run(t, "", "squeue"); string(r.Stdout) != "garbled\n" {
		t.Errorf("garbage: %q", r.Stdout)
	}
}

// #SBATCH directives apply up to the first command; the command line wins.
func TestDirectivesAndCommandLine(t *testing.T) {
	l := newLocal(t)
	script := "#!/bin/bash\n# a comment\n#SBATCH -J fromscript --time=5\n#SBATCH --output=o-%x.txt # trailing\n\necho hi\n#SBATCH -J ignored\n"
	if err := afero.WriteFile(l.fs, "/home/alice/s.sh", []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	r := l.run(t, "", "sbatch", "--time=7", "s.sh")
	if r.ExitCode != 0 {
		t.Fatal(string(r.Stderr))
	}
	j, _ := l.srv.Job(context.Background(), 1)
	if j.Name != "fromscript" || j.TimeLimit != 7*time.Minute || j.StdOut != "/home/alice/o-fromscript.txt" || j.Command != "/home/alice/s.sh" {
		t.Errorf("%+v", j)
	}
	r = l.run(t, "", "sbatch", "--array=1-2", "s.sh")
	if r.ExitCode != 1 || string(r.Stderr) != "sbatch: error: Batch job submission failed: Invalid job array specification\n" {
		t.Errorf("array: %q", r.Stderr)
	}
}

// A hang rule holds the command until the rule is cleared (or the caller
// gives up: the command then ends as if killed).
func TestCommandHangs(t *testing.T) {
	l := newLocal(t)
	rule, err := l.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"squeue"}, Effect: fault.Effect{Kind: fault.Hang}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan cli.Result, 1)
	go func() { done <- l.run(t, "", "squeue", "-h") }()
	select {
	case r := <-done:
		t.Fatalf("squeue did not hang: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	l.faults.Remove(rule.ID)
	select {
	case r := <-done:
		if r.ExitCode != 0 {
			t.Errorf("squeue after the hang cleared: exit %d %q", r.ExitCode, r.Stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("squeue still hangs after the rule was cleared")
	}
	if _, err := l.faults.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"scancel"}, Effect: fault.Effect{Kind: fault.Hang}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := cli.Run(ctx, l.srv, cli.Invocation{Command: "scancel", Args: []string{"1"}, User: "alice"}, cli.WithFaults(l.faults))
	if r.ExitCode != 137 {
		t.Errorf("scancel given up on: exit %d", r.ExitCode)
	}
}

// scontrol update drains, downs and resumes a node (root only, a reason
// for DOWN and DRAIN); a node taken down under a job requeues it.
func TestScontrolUpdateNode(t *testing.T) {
	l := newLocalOn(t, clock.NewVirtual(epoch))
	root := func(args ...string) cli.Result {
		return cli.Run(context.Background(), l.srv, cli.Invocation{Command: args[0], Args: args[1:], User: "root", Cwd: "/home/alice", FS: l.fs},
			cli.WithClock(l.clk), cli.WithLocation(time.UTC))
	}
	if r := l.run(t, "", "scontrol", "update", "NodeName=localhost", "State=DRAIN", "Reason=x"); r.ExitCode != 1 ||
		string(r.Stderr) != "slurm_update error: Access/permission denied\n" {
		t.Errorf("non-root update: %q exit %d", r.Stderr, r.ExitCode)
	}
	if r := root("scontrol", "update", "NodeName=localhost", "State=DOWN"); r.ExitCode != 1 || !strings.HasPrefix(string(r.Stderr), "You must specify a reason") {
		t.Errorf("DOWN without a reason: %q", r.Stderr)
	}
	if r := root("scontrol", "update", "NodeName=localhost", "State=DRAIN", "Reason=maint"); r.ExitCode != 0 {
		t.Fatalf("drain: %q", r.Stderr)
	}
	if r := root("sinfo", "-h", "-o", "%t %N"); string(r.Stdout) != "drain localhost\n" {
		t.Errorf("sinfo after drain: %q", r.Stdout)
	}
	if r := root("scontrol", "show", "node", "localhost"); !strings.Contains(string(r.Stdout), "   Reason=maint [root@2026-12-06T07:41:15]\n") {
		t.Errorf("show node after drain: %s", r.Stdout)
	}
	root("scontrol", "update", "NodeName=localhost", "State=RESUME")
	l.run(t, "", "sbatch", "--wrap", "sleep 600")
	l.clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if j, _ := l.srv.Job(context.Background(), 1); j.State == fakeslurm.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job 1 does not start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if r := root("scontrol", "update", "NodeName=localhost", "State=DOWN", "Reason=broken"); r.ExitCode != 0 {
		t.Fatalf("down: %q", r.Stderr)
	}
	if r := root("squeue", "-h", "-o", "%i %T %r"); string(r.Stdout) != "1 PENDING BeginTime\n" {
		t.Errorf("job on the downed node: %q", r.Stdout)
	}
	if r := root("sinfo", "-h", "-o", "%t"); string(r.Stdout) != "down*\n" {
		t.Errorf("sinfo after down: %q", r.Stdout)
	}
}

// sbatch --wait returns when the job has ended, with its exit code.
func TestSbatchWait(t *testing.T) {
	l := newLocal(t)
	r := l.run(t, "", "sbatch", "-W", "--wrap", "sleep 30; exit 3")
	if string(r.Stdout) != "Submitted batch job 1\n" || r.ExitCode != 3 {
		t.Errorf("sbatch -W: %q exit %d", r.Stdout, r.ExitCode)
	}
	if r := l.run(t, "", "sbatch", "--wait", "--wrap", "true"); r.ExitCode != 0 {
		t.Errorf("sbatch --wait of a good job: exit %d", r.ExitCode)
	}
}

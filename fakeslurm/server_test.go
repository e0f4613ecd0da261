package fakeslurm_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 12, 6, 7, 41, 15, 0, time.UTC)

// cluster is a server on a virtual clock whose jobs run in the project's
// virtual executor over an in-memory filesystem shared with the server.
type cluster struct {
	s   *fakeslurm.Server
	fs  afero.Fs
	clk *clock.Virtual
}

// newCluster's clock moves by itself whenever every job sleeps; manual
// makes a test move it (Advance), to look at jobs while they run.
func newCluster(t testing.TB, opts ...fakeslurm.Option) *cluster {
	return newClusterClock(t, clock.NewVirtual(epoch, clock.AutoAdvance()), opts...)
}

func manual(t testing.TB, opts ...fakeslurm.Option) *cluster {
	return newClusterClock(t, clock.NewVirtual(epoch), opts...)
}

// running advances past the scheduler's pass and waits for id to run.
func (c *cluster) running(t testing.TB, id int) fakeslurm.Job {
	t.Helper()
	c.clk.Advance(time.Second)
	return c.wait(t, id, "running", func(j fakeslurm.Job) bool { return j.State == fakeslurm.Running })
}

func newClusterClock(t testing.TB, clk *clock.Virtual, opts ...fakeslurm.Option) *cluster {
	t.Helper()
	fs := afero.NewMemMapFs()
	for _, d := range []string{"/home/alice", "/root"} {
		if err := fs.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := virtual.New(virtual.WithFS(fs), virtual.WithClock(clk), virtual.WithHostname("localhost"))
	all := append([]fakeslurm.Option{fakeslurm.WithClock(clk), fakeslurm.WithFS(fs), fakeslurm.WithExecutor(e)}, opts...)
	s, err := fakeslurm.NewServer(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = e.Close()
	})
	return &cluster{s: s, fs: fs, clk: clk}
}

func (c *cluster) submit(t testing.TB, script string, mod func(*fakeslurm.SubmitRequest)) int {
	t.Helper()
	req := fakeslurm.SubmitRequest{User: "alice", UID: 1000, GID: 1000, SubmitDir: "/home/alice", SubmitHost: "localhost",
		Name: "job", Script: []byte("#!/bin/bash\n" + script + "\n"), Env: []string{"HOME=/home/alice", "FROM_SUBMIT=yes"}}
	if mod != nil {
		mod(&req)
	}
	id, err := c.s.Submit(context.Background(), req)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return id
}

// wait polls (in wall time) until cond holds for job id.
func (c *cluster) wait(t testing.TB, id int, what string, cond func(fakeslurm.Job) bool) fakeslurm.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := c.s.Job(context.Background(), id)
		if err == nil && cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: not %s after 10s: %+v (err %v)", id, what, j, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func final(j fakeslurm.Job) bool { return j.State.Finished() && !j.Completing }

func (c *cluster) read(t testing.TB, p string) string {
	t.Helper()
	b, err := afero.ReadFile(c.fs, p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// A job runs with the Slurm environment, writes its output to
// slurm-<id>.out in the submit directory, and its exit code is what
// scontrol reports (FAILED, NonZeroExitCode, 3:0).
func TestJobRunsWithSlurmEnvironmentAndExitCode(t *testing.T) {
	c := newCluster(t)
	id := c.submit(t, `echo "id=$SLURM_JOB_ID nodes=$SLURM_JOB_NODELIST name=$SLURM_JOB_NAME sub=$FROM_SUBMIT dir=$(pwd)"; echo oops >&2; exit 3`, nil)
	j := c.wait(t, id, "finished", final)
	if j.State != fakeslurm.Failed || j.Reason != "NonZeroExitCode" || j.ExitCode != 3 || j.ExitSignal != 0 {
		t.Errorf("state %v reason %s exit %d:%d, want FAILED NonZeroExitCode 3:0", j.State, j.Reason, j.ExitCode, j.ExitSignal)
	}
	out := c.read(t, "/home/alice/slurm-1.out")
	if out != "id=1 nodes=localhost name=job sub=yes dir=/home/alice\noops\n" {
		t.Errorf("slurm-1.out = %q", out)
	}
	if j.StdOut != "/home/alice/slurm-1.out" || j.StdErr != j.StdOut || j.NodeList != "localhost" {
		t.Errorf("paths/nodes: %q %q %q", j.StdOut, j.StdErr, j.NodeList)
	}
}

// Output patterns expand %j and %x; a clean exit is COMPLETED 0:0.
func TestOutputPatternsAndCompleted(t *testing.T) {
	c := newCluster(t)
	id := c.submit(t, "echo out; echo err >&2", func(r *fakeslurm.SubmitRequest) {
		r.Name = "named"
		r.Output = "logs/%x-%j.out"
		r.Error = "/home/alice/logs/%x-%j.err"
	})
	if err := c.fs.MkdirAll("/home/alice/logs", 0o755); err != nil {
		t.Fatal(err)
	}
	j := c.wait(t, id, "finished", final)
	if j.State != fakeslurm.Completed || j.ExitCode != 0 {
		t.Errorf("state %v exit %d", j.State, j.ExitCode)
	}
	if got := c.read(t, "/home/alice/logs/named-1.out"); got != "out\n" {
		t.Errorf("stdout file %q", got)
	}
	if got := c.read(t, "/home/alice/logs/named-1.err"); got != "err\n" {
		t.Errorf("stderr file %q", got)
	}
}

// Over its time limit a job gets slurmstepd's message, SIGTERM, and ends
// TIMEOUT with Reason=TimeLimit and ExitCode 0:15.
func TestTimeLimit(t *testing.T) {
	c := newCluster(t)
	id := c.submit(t, "sleep 3600", func(r *fakeslurm.SubmitRequest) { r.TimeLimit = time.Minute })
	j := c.wait(t, id, "finished", final)
	if j.State != fakeslurm.Timeout || j.Reason != "TimeLimit" || j.ExitCode != 0 || j.ExitSignal != 15 {
		t.Errorf("state %v reason %s exit %d:%d, want TIMEOUT TimeLimit 0:15", j.State, j.Reason, j.ExitCode, j.ExitSignal)
	}
	if got := j.End.Sub(j.Start); got != time.Minute {
		t.Errorf("ran %v, want the 1m limit", got)
	}
	want := "slurmstepd-localhost: error: *** JOB 1 ON localhost CANCELLED AT 2026-12-06T07:42:16 DUE TO TIME LIMIT ***\n"
	if got := c.read(t, "/home/alice/slurm-1.out"); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// Strict FIFO on a 2-CPU node: two jobs run, the next waits for
// Resources, the one behind it for Priority; a job asking for more nodes
// than the partition has waits for PartitionConfig without blocking.
func TestPendingReasons(t *testing.T) {
	c := manual(t)
	a := c.submit(t, "sleep 100", nil)
	b := c.submit(t, "sleep 100", nil)
	big := c.submit(t, "true", func(r *fakeslurm.SubmitRequest) { r.Nodes = 5 })
	d := c.submit(t, "sleep 100", nil)
	e := c.submit(t, "sleep 100", nil)
	if j, _ := c.s.Job(context.Background(), a); j.State != fakeslurm.Pending || j.Reason != "None" {
		t.Errorf("before the first pass: %v %s, want PENDING None", j.State, j.Reason)
	}
	c.running(t, a)
	c.running(t, b)
	for id, reason := range map[int]string{big: "PartitionConfig", d: "Resources", e: "Priority"} {
		j, _ := c.s.Job(context.Background(), id)
		if j.State != fakeslurm.Pending || j.Reason != reason {
			t.Errorf("job %d: %v %s, want PENDING %s", id, j.State, j.Reason, reason)
		}
	}
	// The first end lets d start (and e then waits on Resources). Both
	// scripts must be asleep on the clock before it moves.
	deadline := time.Now().Add(10 * time.Second)
	for c.clk.Pending() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the running jobs never sleep")
		}
		time.Sleep(time.Millisecond)
	}
	c.clk.Advance(100 * time.Second)
	c.wait(t, a, "finished", final)
	c.running(t, d)
}

// scancel of a running job: CANCELLED at once, COMPLETING until the script
// is gone, then CANCELLED with 0:15 and slurmstepd's line in the output.
func TestCancelRunning(t *testing.T) {
	c := manual(t)
	id := c.submit(t, "sleep 3600", nil)
	c.running(t, id)
	if err := c.s.Cancel(context.Background(), "alice", 1000, id); err != nil {
		t.Fatal(err)
	}
	j := c.wait(t, id, "finished", final)
	if j.State != fakeslurm.Cancelled || j.ExitSignal != 15 || j.CancelledBy != 1000 {
		t.Errorf("%v %d:%d by %d", j.State, j.ExitCode, j.ExitSignal, j.CancelledBy)
	}
	if got := c.read(t, "/home/alice/slurm-1.out"); !strings.HasPrefix(got, "slurmstepd-localhost: error: *** JOB 1 ON localhost CANCELLED AT ") {
		t.Errorf("output %q", got)
	}
	err := c.s.Cancel(context.Background(), "alice", 1000, id)
	if fakeslurm.CodeOf(err) != fakeslurm.ErrAlreadyDone {
		t.Errorf("second cancel: %v, want ESLURM_ALREADY_DONE", err)
	}
	if err := c.s.Cancel(context.Background(), "alice", 1000, 999); fakeslurm.CodeOf(err) != fakeslurm.ErrInvalidJobID {
		t.Errorf("cancel 999: %v", err)
	}
	if err := c.s.Cancel(context.Background(), "bob", 1001, id); fakeslurm.CodeOf(err) != fakeslurm.ErrAccessDenied {
		t.Errorf("cancel by another user: %v", err)
	}
}

// A dependency on a job that failed can never be met.
func TestDependency(t *testing.T) {
	c := newCluster(t)
	a := c.submit(t, "exit 1", nil)
	ok := c.submit(t, "true", func(r *fakeslurm.SubmitRequest) { r.Dependency = "afterok:1" })
	notok := c.submit(t, "true", func(r *fakeslurm.SubmitRequest) { r.Dependency = "afternotok:1" })
	c.wait(t, a, "finished", final)
	c.wait(t, notok, "finished", final)
	c.wait(t, ok, "never satisfied", func(j fakeslurm.Job) bool { return j.Reason == "DependencyNeverSatisfied" })
	if _, err := c.s.Submit(context.Background(), fakeslurm.SubmitRequest{User: "alice", Script: []byte("#!/bin/sh\n"), Dependency: "afterwards:1"}); fakeslurm.CodeOf(err) != fakeslurm.ErrDependency {
		t.Errorf("bad dependency: %v", err)
	}
}

// Hold and release; a finished job cannot be held.
func TestHoldRelease(t *testing.T) {
	c := newCluster(t)
	id := c.submit(t, "true", func(r *fakeslurm.SubmitRequest) { r.Hold = true })
	j, _ := c.s.Job(context.Background(), id)
	if j.Reason != "JobHeldUser" || j.Priority != 0 {
		t.Errorf("submitted held: %s %d", j.Reason, j.Priority)
	}
	if err := c.s.Hold(context.Background(), "root", id); err != nil {
		t.Fatal(err)
	}
	if err := c.s.Release(context.Background(), "alice", id); fakeslurm.CodeOf(err) != fakeslurm.ErrAccessDenied {
		t.Errorf("user releasing an admin hold: %v", err)
	}
	if err := c.s.Release(context.Background(), "root", id); err != nil {
		t.Fatal(err)
	}
	c.wait(t, id, "finished", final)
	if err := c.s.Hold(context.Background(), "root", id); fakeslurm.CodeOf(err) != fakeslurm.ErrJobFinished {
		t.Errorf("hold of a finished job: %v", err)
	}
}

// A node failing under a job: requeued by default, NODE_FAIL with
// --no-requeue; the node is DOWN until resumed.
func TestNodeFailure(t *testing.T) {
	c := manual(t)
	no := false
	rq := c.submit(t, "sleep 3600", nil)
	nf := c.submit(t, "sleep 3600", func(r *fakeslurm.SubmitRequest) { r.Requeue = &no })
	c.running(t, nf)
	if err := c.s.FailNode(context.Background(), "localhost", ""); err != nil {
		t.Fatal(err)
	}
	j, _ := c.s.Job(context.Background(), nf)
	if j.State != fakeslurm.NodeFail {
		t.Errorf("--no-requeue job: %v, want NODE_FAIL", j.State)
	}
	j, _ = c.s.Job(context.Background(), rq)
	if j.State != fakeslurm.Pending || j.Restarts != 1 {
		t.Errorf("requeued job: %v restarts %d", j.State, j.Restarts)
	}
	nodes, _ := c.s.Nodes(context.Background())
	if nodes[0].State != "DOWN" {
		t.Errorf("node %s", nodes[0].State)
	}
	if err := c.s.ResumeNode(context.Background(), "localhost"); err != nil {
		t.Fatal(err)
	}
	if j, _ = c.s.Job(context.Background(), rq); j.Reason != "BeginTime" || !j.Eligible.Equal(epoch.Add(time.Second+2*time.Minute)) {
		t.Errorf("requeued job waits 2 minutes: %s eligible %v", j.Reason, j.Eligible)
	}
	c.clk.Advance(2 * time.Minute)
	c.running(t, rq)
}

// A fault rule makes a job lost (gone from squeue and sacct) or fails its node.
func TestFaultRules(t *testing.T) {
	set := fault.NewSet()
	c := manual(t, fakeslurm.WithFaults(set))
	a := c.submit(t, "sleep 3600", nil)
	c.running(t, a)
	if _, err := set.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"run"}, Job: "1", Effect: fault.Effect{Kind: fault.Vanish}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.s.Job(context.Background(), a); fakeslurm.CodeOf(err) != fakeslurm.ErrInvalidJobID {
		t.Errorf("lost job still known: %v", err)
	}
	set.Clear()
	b := c.submit(t, "sleep 3600", func(r *fakeslurm.SubmitRequest) { no := false; r.Requeue = &no })
	c.running(t, b)
	if _, err := set.Add(fault.Rule{Layer: fault.Slurm, Ops: []string{"run"}, Effect: fault.Effect{Kind: fault.NodeFail}}); err != nil {
		t.Fatal(err)
	}
	if j, _ := c.s.Job(context.Background(), b); j.State != fakeslurm.NodeFail {
		t.Errorf("node-fail rule: %v", j.State)
	}
}

// Finished jobs leave slurmctld after MinJobAge; sacct's history keeps them.
func TestMinJobAgeAndHistory(t *testing.T) {
	c := newCluster(t, fakeslurm.WithMinJobAge(10*time.Second))
	id := c.submit(t, "true", nil)
	c.wait(t, id, "finished", final)
	// Something on the clock so that it moves past MinJobAge.
	c.submit(t, "sleep 60", nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.s.Job(context.Background(), id)
		if errors.Is(err, err) && fakeslurm.CodeOf(err) == fakeslurm.ErrInvalidJobID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job not purged after MinJobAge")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if j, err := c.s.Status(context.Background(), id); err != nil || j.State != fakeslurm.Completed {
		t.Errorf("Status of a purged job: %+v %v", j, err)
	}
	h, err := c.s.History(context.Background())
	if err != nil || len(h) != 2 || h[0].ID != id || h[0].State != fakeslurm.Completed {
		t.Errorf("history %+v %v", h, err)
	}
}

func TestRejections(t *testing.T) {
	c := newCluster(t)
	base := fakeslurm.SubmitRequest{User: "alice", Script: []byte("#!/bin/sh\ntrue\n")}
	r := base
	r.Partition = "nosuch"
	if _, err := c.s.Submit(context.Background(), r); fakeslurm.CodeOf(err) != fakeslurm.ErrInvalidPartition {
		t.Errorf("bad partition: %v", err)
	}
	r = base
	r.Array = "0-3"
	if _, err := c.s.Submit(context.Background(), r); fakeslurm.CodeOf(err) != fakeslurm.ErrInvalidArray {
		t.Errorf("array: %v", err)
	}
	r = base
	r.MemMB = 99999
	id, err := c.s.Submit(context.Background(), r)
	if fakeslurm.CodeOf(err) != fakeslurm.ErrNodeConfig || id != 1 {
		t.Errorf("too much memory: id %d %v", id, err)
	}
	j, _ := c.s.Job(context.Background(), id)
	if j.State != fakeslurm.Failed || j.Reason != "BadConstraints" || j.ExitSignal != 1 {
		t.Errorf("rejected job kept as %v %s %d:%d", j.State, j.Reason, j.ExitCode, j.ExitSignal)
	}
}

func TestHostlist(t *testing.T) {
	for in, want := range map[string]string{
		"node1":                   "node1",
		"node1,node2,node3,node5": "node[1-3,5]",
		"a,b":                     "a,b",
		"n01,n02,x":               "n[01-02],x",
	} {
		if got := fakeslurm.Hostlist(strings.Split(in, ",")); got != want {
			t.Errorf("Hostlist(%s) = %s, want %s", in, got, want)
		}
	}
}

// --signal=B:USR1@60 reaches the batch shell a minute before the limit.
func TestSignalBeforeLimit(t *testing.T) {
	c := newCluster(t)
	id := c.submit(t, "trap 'echo got USR1' USR1\nfor i in 1 2 3 4 5; do sleep 45; done", func(r *fakeslurm.SubmitRequest) {
		r.TimeLimit = 2 * time.Minute
		r.Signal, r.SigBefore, r.SigBatch = syscall.SIGUSR1, time.Minute, true
	})
	j := c.wait(t, id, "finished", final)
	if j.State != fakeslurm.Timeout {
		t.Errorf("state %v", j.State)
	}
	out := c.read(t, "/home/alice/slurm-1.out")
	if !strings.HasPrefix(out, "got USR1\nslurmstepd-localhost: error: *** JOB 1 ON localhost CANCELLED AT 2026-12-06T07:43:16 DUE TO TIME LIMIT ***") {
		t.Errorf("output %q (job %+v)", out, j)
	}
}

// usageExec is an executor whose scripts end at once, reporting a peak
// memory use (as the real executor measures it).
type usageExec struct{ rss int64 }

func (e usageExec) Start(context.Context, executor.Command) (executor.Process, error) {
	return usageProc(e), nil
}

type usageProc struct{ rss int64 }

func (usageProc) Signal(syscall.Signal) error  { return nil }
func (usageProc) Resize(executor.Window) error { return nil }
func (p usageProc) Wait() executor.Status {
	return executor.Status{Usage: fakepbs.Usage{MaxRSS: p.rss}}
}

// A job that used more memory than its --mem ends OUT_OF_MEMORY.
func TestOutOfMemory(t *testing.T) {
	c := newCluster(t, fakeslurm.WithExecutor(usageExec{rss: 200 << 20}))
	over := c.submit(t, "true", func(r *fakeslurm.SubmitRequest) { r.MemMB = 100 })
	j := c.wait(t, over, "finished", final)
	if j.State != fakeslurm.OutOfMemory || j.Reason != "OutOfMemory" || j.ExitSignal != 125 {
		t.Errorf("over --mem: %v %s %d:%d", j.State, j.Reason, j.ExitCode, j.ExitSignal)
	}
	under := c.submit(t, "true", func(r *fakeslurm.SubmitRequest) { r.MemMB = 500 })
	if j := c.wait(t, under, "finished", final); j.State != fakeslurm.Completed {
		t.Errorf("within --mem: %v", j.State)
	}
}

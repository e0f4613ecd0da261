package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/bashexec"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// These tests drive qsub -W block=true and qdel -x through the command
// front end against a real fakepbs.Server: real bash jobs (bashexec) or
// jobs of the virtual shell sleeping on a virtual clock.

var blockEpoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// bashServer is a server named pbs on clk running real bash jobs for alice,
// whose home (returned) is a temporary directory.
func bashServer(t *testing.T, clk clock.Clock, opts ...fakepbs.Option) (*fakepbs.Server, string) {
	t.Helper()
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("needs /bin/bash to run jobs (apt-get install bash)")
	}
	home := t.TempDir()
	all := append([]fakepbs.Option{fakepbs.WithName("pbs"), fakepbs.WithClock(clk), fakepbs.WithExecutor(bashexec.Executor{}),
		fakepbs.WithNodes(fakepbs.NodeConfig{Name: "node1", NCPUs: 4, Mem: "4gb"}),
		fakepbs.WithHomeDirs(func(string) string { return home }), fakepbs.WithFS(afero.NewOsFs()),
		fakepbs.WithPBSHome(t.TempDir()), fakepbs.WithTmpDir(t.TempDir())}, opts...)
	srv, err := fakepbs.NewServer(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, home
}

func writeScript(t *testing.T, home, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runAs runs a command as user with a deadline of d.
func runAs(t *testing.T, b fakepbs.Backend, fs afero.Fs, home, user string, d time.Duration, cmd string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return Run(ctx, b, Invocation{Command: cmd, Args: args, User: user, Host: "login1", Cwd: home,
		Env: []string{"HOME=" + home, "PATH=/usr/bin:/bin", "LOGNAME=" + user}, FS: fs})
}

func virtualClock() *clock.Virtual { return clock.NewVirtual(blockEpoch, clock.AutoAdvance()) }

// Without job history the server forgets a job as soon as it has finished;
// qsub -W block=true must still exit with the script's exit status, as
// OpenPBS's server sends it to the waiting qsub.
func TestQsubBlockWithoutHistoryExitsWithTheJobsStatus(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, home := bashServer(t, virtualClock(), fakepbs.WithHistory(false, 0))
	fs := afero.NewOsFs()
	for i, c := range []struct {
		script string
		want   int
	}{
		{"true\n", 0},
		{"echo out; exit 3\n", 3},
		{"kill -TERM $$\nsleep 5\n", 256 + 15}, // the top shell killed by SIGTERM: Exit_status 271, qsub exits 271 & 0xff = 15
	} {
		writeScript(t, home, "j.sh", c.script)
		res := runAs(t, srv, fs, home, "alice", 20*time.Second, "qsub", "-W", "block=true", "j.sh")
		id := strconv.Itoa(i+1) + ".pbs"
		if res.ExitCode != c.want&0xff || string(res.Stdout) != id+"\n" || len(res.Stderr) != 0 {
			t.Errorf("script %q: exit %d stdout %q stderr %q, want exit %d and the id", c.script, res.ExitCode, res.Stdout, res.Stderr, c.want&0xff)
		}
		// The server really kept no history.
		if r := runAs(t, srv, fs, home, "alice", 5*time.Second, "qstat", "-x", id); r.ExitCode != 153 || string(r.Stderr) != "qstat: Unknown Job Id "+id+"\n" {
			t.Errorf("qstat -x %s without history: exit %d %q", id, r.ExitCode, r.Stderr)
		}
	}
}

// A job killed for its walltime ends with Exit_status -29 (OpenPBS since
// late 2020); qsub exits with it as exit(3) does: -29 & 0xff = 227.
func TestQsubBlockWalltimeKill(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, home := bashServer(t, clock.Real{}, fakepbs.WithHistory(false, 0),
		fakepbs.WithWalltimeGrace(0), fakepbs.WithKillDelay(100*time.Millisecond))
	writeScript(t, home, "w.sh", "#PBS -l walltime=00:00:01\nsleep 30\n")
	res := runAs(t, srv, afero.NewOsFs(), home, "alice", 20*time.Second, "qsub", "-W", "block=true", "w.sh")
	if res.ExitCode != 227 || string(res.Stdout) != "1.pbs\n" || len(res.Stderr) != 0 {
		t.Errorf("walltime kill: exit %d stdout %q stderr %q, want 227", res.ExitCode, res.Stdout, res.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(home, "w.sh.e1")); err != nil || !strings.Contains(string(b), "=>> PBS: job killed: walltime 1 exceeded limit 1") {
		t.Errorf("job stderr %q %v", b, err)
	}
}

// virtualServer is a server on clk whose jobs run in the virtual shell and
// sleep on clk: hours of job time pass in no wall time.
func virtualServer(t *testing.T, clk *clock.Virtual, opts ...fakepbs.Option) (*fakepbs.Server, afero.Fs) {
	t.Helper()
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	ve := virtual.New(virtual.WithFS(fs), virtual.WithClock(clk), virtual.WithHostname("node1"))
	all := append([]fakepbs.Option{fakepbs.WithName("pbs"), fakepbs.WithClock(clk), fakepbs.WithExecutor(executor.ForBatch(ve)),
		fakepbs.WithNodes(fakepbs.NodeConfig{Name: "node1", NCPUs: 4}), fakepbs.WithFS(fs)}, opts...)
	srv, err := fakepbs.NewServer(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(); _ = ve.Close() })
	return srv, fs
}

// A qsub waiting outside the simulation does not hold the virtual clock:
// a job sleeping two hours ends in no wall time, and its end wakes qsub.
// A walltime kill in virtual time gives 227 too.
func TestQsubBlockOnVirtualClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := virtualClock()
	srv, fs := virtualServer(t, clk, fakepbs.WithHistory(false, 0))
	if err := afero.WriteFile(fs, "/home/alice/long.sh", []byte("sleep 7200\nexit 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Were the clock held while qsub waits, qsub would be interrupted at its
	// deadline (exit 2) instead.
	res := runAs(t, srv, fs, "/home/alice", "alice", 20*time.Second, "qsub", "-W", "block=true", "long.sh")
	if res.ExitCode != 5 || string(res.Stdout) != "1.pbs\n" || len(res.Stderr) != 0 {
		t.Errorf("exit %d stdout %q stderr %q, want 5", res.ExitCode, res.Stdout, res.Stderr)
	}
	if d := clk.Now().Sub(blockEpoch); d < 2*time.Hour {
		t.Errorf("the clock moved %v while qsub waited, want the job's 2h", d)
	}

	if err := afero.WriteFile(fs, "/home/alice/over.sh", []byte("#PBS -l walltime=00:01:00\nsleep 3600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = runAs(t, srv, fs, "/home/alice", "alice", 20*time.Second, "qsub", "-W", "block=true", "over.sh")
	if res.ExitCode != 227 || string(res.Stdout) != "2.pbs\n" {
		t.Errorf("walltime kill: exit %d stdout %q stderr %q, want 227", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// submitBlocking starts qsub -W block=true in the background and returns
// its result channel once the server shows the job in one of states.
func submitBlocking(t *testing.T, srv *fakepbs.Server, fs afero.Fs, home, id string, states string, args ...string) <-chan Result {
	t.Helper()
	done := make(chan Result, 1)
	go func() {
		done <- runAs(t, srv, fs, home, "alice", 20*time.Second, "qsub", append([]string{"-W", "block=true"}, args...)...)
	}()
	testutil.WaitFor(t, fmt.Sprintf("job %s in %s", id, states), 10*time.Second, func() bool {
		j, err := srv.Job(context.Background(), id, true)
		return err == nil && strings.ContainsRune(states, rune(j.State))
	})
	return done
}

func result(t *testing.T, done <-chan Result) Result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("qsub did not return")
	}
	return Result{}
}

// OpenPBS's server answers a qsub waiting on a job deleted with qdel with
// "Job deleted at request of <user>@<host>"; qsub prints it after the job
// id and exits 3. That holds for a queued job and for a running one.
func TestQsubBlockDeletedJob(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, home := bashServer(t, virtualClock(), fakepbs.WithHistory(false, 0))
	fs := afero.NewOsFs()
	writeScript(t, home, "j.sh", "sleep 30\n")

	held := submitBlocking(t, srv, fs, home, "1.pbs", "H", "-h", "j.sh")
	if r := runAs(t, srv, fs, home, "alice", 5*time.Second, "qdel", "1"); r.ExitCode != 0 {
		t.Fatalf("qdel: %d %q", r.ExitCode, r.Stderr)
	}
	res := result(t, held)
	if res.ExitCode != 3 || string(res.Stdout) != "1.pbs\n" || string(res.Stderr) != "qsub: 1.pbs Job deleted at request of alice@pbs\n" {
		t.Errorf("held job deleted: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}

	running := submitBlocking(t, srv, fs, home, "2.pbs", "R", "j.sh")
	if r := runAs(t, srv, fs, home, "root", 5*time.Second, "qdel", "2.pbs"); r.ExitCode != 0 {
		t.Fatalf("qdel: %d %q", r.ExitCode, r.Stderr)
	}
	res = result(t, running)
	if res.ExitCode != 3 || string(res.Stderr) != "qsub: 2.pbs Job deleted at request of root@pbs\n" {
		t.Errorf("running job deleted: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// A job that vanishes gets no word from OpenPBS's server: qsub waits until
// it is interrupted, says so, tries to delete the job and exits 2.
func TestQsubBlockVanishedJobWaitsUntilInterrupted(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := virtualClock()
	set := fault.NewSet(fault.WithClock(clk))
	srv, fs := virtualServer(t, clk, fakepbs.WithFaults(set))
	if err := afero.WriteFile(fs, "/home/alice/j.sh", []byte("sleep 600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Add(fault.Rule{Layer: fault.PBS, Ops: []string{"run"}, Job: "1", Effect: fault.Effect{Kind: fault.Vanish}}); err != nil {
		t.Fatal(err)
	}
	res := runAs(t, srv, fs, "/home/alice", "alice", 300*time.Millisecond, "qsub", "-W", "block=true", "j.sh")
	if res.ExitCode != 2 || string(res.Stdout) != "1.pbs\nJob 1.pbs is being deleted\n" ||
		string(res.Stderr) != "qsub: wait for job 1.pbs interrupted by signal 15\n" {
		t.Errorf("vanished job: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if _, err := srv.Job(context.Background(), "1", true); err == nil {
		t.Error("the vanished job is back on the server")
	}
}

// qdel -x takes a finished job out of history, and deletes a queued or
// running job so that it leaves no history; permissions are qdel's.
func TestQdelHistoryPurge(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv, home := bashServer(t, virtualClock(), fakepbs.WithHistory(true, time.Hour))
	fs := afero.NewOsFs()
	run := func(user, cmd string, args ...string) Result {
		return runAs(t, srv, fs, home, user, 10*time.Second, cmd, args...)
	}
	unknown := func(id string) {
		t.Helper()
		if r := run("alice", "qstat", "-x", id); r.ExitCode != 153 || string(r.Stderr) != "qstat: Unknown Job Id "+id+"\n" {
			t.Errorf("qstat -x %s after qdel -x: exit %d %q %q", id, r.ExitCode, r.Stdout, r.Stderr)
		}
	}
	writeScript(t, home, "ok.sh", "exit 0\n")
	writeScript(t, home, "long.sh", "sleep 30\n")

	// A finished job in history.
	if r := run("alice", "qsub", "-W", "block=true", "ok.sh"); r.ExitCode != 0 {
		t.Fatalf("qsub: %d %q", r.ExitCode, r.Stderr)
	}
	if r := run("alice", "qstat", "-x", "1"); r.ExitCode != 0 || !strings.Contains(string(r.Stdout), " F ") {
		t.Fatalf("finished job not in history: %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	perm := fakepbs.ErrPermission & 0xff
	if r := run("bob", "qdel", "-x", "1"); r.ExitCode != perm || string(r.Stderr) != "qdel: Unauthorized Request  1\n" {
		t.Errorf("bob's qdel -x of alice's job: exit %d %q", r.ExitCode, r.Stderr)
	}
	if r := run("alice", "qdel", "-x", "1"); r.ExitCode != 0 || len(r.Stdout)+len(r.Stderr) != 0 {
		t.Errorf("qdel -x of a finished job: exit %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	unknown("1.pbs")
	if r := run("alice", "qdel", "-x", "1"); r.ExitCode != 153 || string(r.Stderr) != "qdel: Unknown Job Id 1\n" {
		t.Errorf("qdel -x of a purged job: exit %d %q", r.ExitCode, r.Stderr)
	}

	// A queued (held) job: plain qdel keeps it in history, qdel -x does not.
	for i := 0; i < 2; i++ {
		if r := run("alice", "qsub", "-h", "long.sh"); r.ExitCode != 0 {
			t.Fatalf("qsub -h: %d %q", r.ExitCode, r.Stderr)
		}
	}
	if r := run("alice", "qdel", "2"); r.ExitCode != 0 {
		t.Fatalf("qdel: %d %q", r.ExitCode, r.Stderr)
	}
	if r := run("alice", "qstat", "-x", "2"); r.ExitCode != 0 || !strings.Contains(string(r.Stdout), " F ") {
		t.Errorf("a job deleted without -x must stay in history: %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	if r := run("alice", "qdel", "-x", "3"); r.ExitCode != 0 || len(r.Stderr) != 0 {
		t.Errorf("qdel -x of a queued job: %d %q", r.ExitCode, r.Stderr)
	}
	unknown("3.pbs")

	// A running job: deleted, and once it has ended it is not in history.
	running := submitBlocking(t, srv, fs, home, "4.pbs", "R", "long.sh")
	if r := run("alice", "qdel", "-x", "4"); r.ExitCode != 0 || len(r.Stderr) != 0 {
		t.Errorf("qdel -x of a running job: %d %q", r.ExitCode, r.Stderr)
	}
	if res := result(t, running); res.ExitCode != 3 {
		t.Errorf("qsub waiting on the job: exit %d %q", res.ExitCode, res.Stderr)
	}
	unknown("4.pbs")

	// qdel -x -W force on a running job.
	running = submitBlocking(t, srv, fs, home, "5.pbs", "R", "long.sh")
	if r := run("root", "qdel", "-x", "-W", "force", "5"); r.ExitCode != 0 || len(r.Stderr) != 0 {
		t.Errorf("qdel -x -W force: %d %q", r.ExitCode, r.Stderr)
	}
	result(t, running)
	unknown("5.pbs")
}

package fakepbs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/bashexec"
	"github.com/jobsim/jobsim/internal/testutil"
)

// bashServer is a server on the real clock whose jobs are real bash
// processes writing to a temporary directory tree.
func bashServer(t *testing.T, opts ...fakepbs.Option) (*fakepbs.Server, string) {
	t.Helper()
	needBash(t)
	root := t.TempDir()
	home := func(u string) string { return filepath.Join(root, "home", u) }
	for _, d := range []string{filepath.Join(home("alice"), "work"), home("bob")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	all := append([]fakepbs.Option{
		fakepbs.WithExecutor(bashexec.Executor{}), fakepbs.WithFS(afero.NewOsFs()), fakepbs.WithHomeDirs(home),
		fakepbs.WithPBSHome(filepath.Join(root, "pbs")), fakepbs.WithTmpDir(filepath.Join(root, "tmp")),
		fakepbs.WithKillDelay(300 * time.Millisecond), fakepbs.WithHost("login1.example.org"), fakepbs.WithHistory(true, 0),
	}, opts...)
	srv, err := fakepbs.NewServer(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, root
}

func bashSubmit(t *testing.T, srv *fakepbs.Server, root string, req fakepbs.SubmitRequest) fakepbs.Job {
	t.Helper()
	req.WorkDir = filepath.Join(root, "home", "alice", "work")
	return submit(t, srv, req)
}

func waitState(t *testing.T, srv *fakepbs.Server, id string, st fakepbs.State) fakepbs.Job {
	t.Helper()
	var j fakepbs.Job
	testutil.WaitFor(t, id+" in state "+st.String(), 20*time.Second, func() bool {
		j = job(t, srv, id)
		return j.State == st
	})
	return j
}

func TestBashJobEnvironmentAndOutput(t *testing.T) {
	srv, root := bashServer(t)
	home := filepath.Join(root, "home", "alice")
	work := filepath.Join(home, "work")
	script := `#!/bin/bash
#PBS -N envjob
echo "pwd=$(pwd)"
for v in PBS_JOBID PBS_JOBNAME PBS_QUEUE PBS_NODEFILE TMPDIR PBS_ENVIRONMENT ENVIRONMENT NCPUS OMP_NUM_THREADS PBS_JOBDIR PBS_TASKNUM PBS_MOMPORT PBS_O_WORKDIR PBS_O_HOST FOO HOME USER; do
  echo "$v=${!v}"
done
echo "nodefile=$(cat "$PBS_NODEFILE" | tr '\n' ' ')"
test -d "$TMPDIR" && echo tmpdir=yes
echo to-stderr >&2
`
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "envjob", Script: []byte(script),
		Variables: []string{"PBS_O_WORKDIR=" + work, "FOO=bar baz", "PBS_O_QUEUE=workq", "PBS_O_HOST=login1.example.org"},
		Resources: map[string]string{"select": "1:ncpus=3:mpiprocs=2"}})
	got := waitState(t, srv, j.ID, fakepbs.Finished)
	if exitOf(got) != "0" {
		t.Fatalf("Exit_status %s", exitOf(got))
	}
	out, err := os.ReadFile(filepath.Join(work, "envjob.o1"))
	if err != nil {
		t.Fatal(err)
	}
	pbsHome := filepath.Join(root, "pbs")
	for _, want := range []string{
		"pwd=" + home, "PBS_JOBID=1.fakepbs", "PBS_JOBNAME=envjob", "PBS_QUEUE=workq",
		"PBS_NODEFILE=" + pbsHome + "/aux/1.fakepbs", "TMPDIR=" + root + "/tmp/pbs.1.fakepbs",
		"PBS_ENVIRONMENT=PBS_BATCH", "ENVIRONMENT=BATCH", "NCPUS=3", "OMP_NUM_THREADS=3", "PBS_JOBDIR=" + home,
		"PBS_TASKNUM=1", "PBS_MOMPORT=15003", "PBS_O_WORKDIR=" + work, "PBS_O_HOST=login1.example.org",
		"FOO=bar baz", "HOME=" + home, "USER=alice",
		"nodefile=login1.example.org login1.example.org ", "tmpdir=yes",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("job output lacks %q:\n%s", want, out)
		}
	}
	if errOut, err := os.ReadFile(filepath.Join(work, "envjob.e1")); err != nil || string(errOut) != "to-stderr\n" {
		t.Errorf("error file %q, %v", errOut, err)
	}
	for _, gone := range []string{pbsHome + "/aux/1.fakepbs", root + "/tmp/pbs.1.fakepbs"} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind after the job: %v", gone, err)
		}
	}
}

func TestBashJoinedOutputIntoDirectory(t *testing.T) {
	srv, root := bashServer(t)
	logs := filepath.Join(root, "home", "alice", "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "joined", OutputPath: "../logs", Join: "oe",
		Script: []byte("echo one\necho two >&2\necho three\n")})
	waitState(t, srv, j.ID, fakepbs.Finished)
	out, err := os.ReadFile(filepath.Join(logs, "1.fakepbs.OU"))
	if err != nil || string(out) != "one\ntwo\nthree\n" {
		t.Fatalf("joined output in a directory: %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(logs, "1.fakepbs.ER")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("-j oe wrote an error file: %v", err)
	}
}

func TestBashExitStatuses(t *testing.T) {
	srv, root := bashServer(t)
	cases := map[string]string{
		"exit 3":        "3",
		"kill -TERM $$": "271",
		"kill -KILL $$": "265",
		"sleep 0.01":    "0",
	}
	ids := map[string]string{}
	for script := range cases {
		ids[script] = bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "x", Script: []byte(script + "\n")}).ID
	}
	for script, want := range cases {
		if got := waitState(t, srv, ids[script], fakepbs.Finished); exitOf(got) != want || got.Substate != 92 {
			t.Errorf("%q: Exit_status %s substate %d, want %s and 92", script, exitOf(got), got.Substate, want)
		}
	}
}

func TestBashWalltimeKillEscalates(t *testing.T) {
	srv, root := bashServer(t, fakepbs.WithWalltimeGrace(0))
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "wall", Resources: map[string]string{"walltime": "1"},
		Script: []byte("trap '' TERM\necho started\nsleep 30\n")})
	got := waitState(t, srv, j.ID, fakepbs.Finished)
	if exitOf(got) != "-29" {
		t.Fatalf("Exit_status %s, want -29", exitOf(got))
	}
	if ran := got.Obittime.Sub(got.Stime); ran < 1300*time.Millisecond || ran > 10*time.Second {
		t.Fatalf("a job ignoring SIGTERM ran %v, want its walltime plus kill_delay", ran)
	}
	errOut, _ := os.ReadFile(filepath.Join(root, "home", "alice", "work", "wall.e1"))
	if !regexp.MustCompile(`\A=>> PBS: job killed: walltime [12] exceeded limit 1\n\z`).Match(errOut) {
		t.Fatalf("stderr file %q", errOut)
	}
}

func TestBashDeleteRunningJob(t *testing.T) {
	srv, root := bashServer(t)
	ctx := context.Background()
	home := filepath.Join(root, "home", "alice")
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "del", Script: []byte("echo started\ntouch \"$HOME/ready\"\nsleep 30\n")})
	testutil.WaitFor(t, "the script to start", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(home, "ready"))
		return err == nil
	})
	wantCode(t, srv.Delete(ctx, "bob", j.ID, false), fakepbs.ErrPermission, "Unauthorized Request  1.fakepbs")
	if err := srv.Delete(ctx, "alice", j.ID, false); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, srv, j.ID, fakepbs.Finished)
	if exitOf(got) != "271" || got.Substate != 91 || !strings.HasSuffix(got.Comment, "and terminated") {
		t.Fatalf("qdel of a running job: Exit_status %s substate %d comment %q", exitOf(got), got.Substate, got.Comment)
	}
	if out, err := os.ReadFile(filepath.Join(home, "work", "del.o1")); err != nil || string(out) != "started\n" {
		t.Fatalf("output of the deleted job: %q, %v", out, err)
	}

	// qdel -W force: gone at once, the SIGTERM-proof script killed, no output.
	f := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "force", Script: []byte("echo $$ > \"$HOME/pid\"\ntrap '' TERM\nsleep 30\n")})
	var pid int
	testutil.WaitFor(t, "the pid file", 10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(home, "pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	if err := srv.Delete(ctx, "root", f.ID, true); err != nil {
		t.Fatal(err)
	}
	fg := job(t, srv, f.ID)
	if fg.State != fakepbs.Finished || fg.Substate != 91 || fg.ExitStatus != nil {
		t.Fatalf("forced delete: %s/%d Exit_status %s", fg.State, fg.Substate, exitOf(fg))
	}
	testutil.WaitFor(t, "the forced job's process to die", 10*time.Second, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
	if _, err := os.Stat(filepath.Join(home, "work", "force.o2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("forced delete staged output: %v", err)
	}
}

func TestBashSuspendResume(t *testing.T) {
	srv, root := bashServer(t)
	ctx := context.Background()
	ticks := filepath.Join(root, "home", "alice", "ticks")
	count := func() int {
		b, _ := os.ReadFile(ticks)
		return strings.Count(string(b), "\n")
	}
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "ticker",
		Script: []byte("while :; do echo x >> \"$HOME/ticks\"; sleep 0.02; done\n")})
	testutil.WaitFor(t, "ticks", 10*time.Second, func() bool { return count() >= 3 })
	if err := srv.Signal(ctx, "alice", j.ID, "suspend"); err != nil {
		t.Fatal(err)
	}
	if got := job(t, srv, j.ID); got.State != fakepbs.Suspended {
		t.Fatalf("state %s after suspend", got.State)
	}
	time.Sleep(100 * time.Millisecond)
	c1 := count()
	time.Sleep(300 * time.Millisecond)
	if c2 := count(); c2 != c1 {
		t.Fatalf("suspended job kept running: %d ticks, then %d", c1, c2)
	}
	if err := srv.Signal(ctx, "alice", j.ID, "resume"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "ticks after resume", 10*time.Second, func() bool { return count() > c1+2 })
	if err := srv.Signal(ctx, "alice", j.ID, "SIGUSR1"); err != nil {
		t.Fatal(err)
	}
	if got := waitState(t, srv, j.ID, fakepbs.Finished); exitOf(got) != strconv.Itoa(256+int(syscall.SIGUSR1)) {
		t.Fatalf("qsig -s SIGUSR1: Exit_status %s", exitOf(got))
	}
}

func TestBashCloseKillsRunningJobs(t *testing.T) {
	srv, root := bashServer(t)
	home := filepath.Join(root, "home", "alice")
	bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "forever", Script: []byte("echo $$ > \"$HOME/pid\"\ntrap '' TERM\nsleep 300\n")})
	var pid int
	testutil.WaitFor(t, "the pid file", 10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(home, "pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("job process %d still there after Close: %v", pid, err)
	}
}

// A job that burns CPU reports it in resources_used, as a MoM does: sites
// read cput and mem back from qstat -f to size their next requests.
func TestBashJobResourcesUsedMeasured(t *testing.T) {
	srv, root := bashServer(t)
	// Spin until the shell itself has used 1.2 s of CPU (utime+stime in
	// /proc ticks), however busy the machine is.
	script := `#!/bin/bash
while :; do
  read -r -a s < /proc/$$/stat
  (( s[13] + s[14] >= 120 )) && break
done
`
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "burn", Script: []byte(script)})
	got := waitState(t, srv, j.ID, fakepbs.Finished)
	if exitOf(got) != "0" {
		t.Fatalf("Exit_status %s, want 0", exitOf(got))
	}
	ru := got.ResourcesUsed
	cput, err := time.Parse("15:04:05", ru["cput"])
	if err != nil || cput.Hour()*3600+cput.Minute()*60+cput.Second() < 1 {
		t.Fatalf("resources_used.cput %q, want at least 00:00:01 (%v)", ru["cput"], ru)
	}
	kb, err := strconv.Atoi(strings.TrimSuffix(ru["mem"], "kb"))
	if err != nil || kb < 1000 || !strings.HasSuffix(ru["mem"], "kb") {
		t.Fatalf("resources_used.mem %q, want bash's resident size in kb (%v)", ru["mem"], ru)
	}
	if pct, err := strconv.Atoi(ru["cpupercent"]); err != nil || pct <= 0 {
		t.Fatalf("resources_used.cpupercent %q, want > 0 (%v)", ru["cpupercent"], ru)
	}
}

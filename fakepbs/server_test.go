package fakepbs_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/internal/testutil"
)

// homeFS is an in-memory filesystem with alice's home and work directory.
func homeFS(t testing.TB) afero.Fs {
	fs := afero.NewMemMapFs()
	for _, d := range []string{"/home/alice/work", "/tmp"} {
		if err := fs.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func TestVirtualHourLongJobTakesNoWallTime(t *testing.T) {
	fs := homeFS(t)
	srv, v, _ := virtualServer(t, fakepbs.WithFS(fs), fakepbs.WithHistory(true, 0))
	start := time.Now()
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "hour", Script: []byte("echo begin\nsleep 3600\necho end\n"),
		Resources: map[string]string{"walltime": "02:00:00"}})
	if j.ID != "1.fakepbs" || j.Seq != 1 {
		t.Fatalf("first job id %q seq %d, want 1.fakepbs", j.ID, j.Seq)
	}
	settle(t, v)
	if wall := time.Since(start); wall > 5*time.Second {
		t.Fatalf("an hour-long virtual job took %v of wall time", wall)
	}
	got := job(t, srv, j.ID)
	if got.State != fakepbs.Finished || got.Substate != 92 {
		t.Fatalf("state %s/%d, want F/92", got.State, got.Substate)
	}
	if !got.Stime.Equal(epoch) || !got.Obittime.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("stime %v obittime %v, want %v and an hour later", got.Stime, got.Obittime, epoch)
	}
	if got.ResourcesUsed["walltime"] != "01:00:00" || got.ResourcesUsed["ncpus"] != "1" {
		t.Fatalf("resources_used %v", got.ResourcesUsed)
	}
	if exitOf(got) != "0" {
		t.Fatalf("Exit_status %s, want 0", exitOf(got))
	}
	out, err := afero.ReadFile(fs, "/home/alice/work/hour.o1")
	if err != nil || string(out) != "begin\nend\n" {
		t.Fatalf("output file: %q, %v", out, err)
	}
	if errOut, err := afero.ReadFile(fs, "/home/alice/work/hour.e1"); err != nil || len(errOut) != 0 {
		t.Fatalf("error file: %q, %v (want an empty file)", errOut, err)
	}
	if got.Comment != "Job run at Mon Mar 02 at 09:00 on (login1:ncpus=1) and finished" {
		t.Fatalf("comment %q", got.Comment)
	}
}

func TestJobEnvironmentAndAttributes(t *testing.T) {
	fs := afero.NewMemMapFs()
	srv, v, ex := virtualServer(t, fakepbs.WithFS(fs), fakepbs.WithHistory(true, 0))
	vars := []string{"PBS_O_HOME=/home/alice", "PBS_O_LOGNAME=alice", "PBS_O_PATH=/usr/bin:/bin",
		"PBS_O_WORKDIR=/home/alice/work", "PBS_O_SYSTEM=Linux", "FOO=bar", "PBS_O_QUEUE=workq", "PBS_O_HOST=login1.example.org"}
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "envjob", SubmitHost: "login1.example.org", Variables: vars,
		Resources: map[string]string{"select": "1:ncpus=2:mem=1gb"}, Script: []byte("sleep 10\n"),
		Args: []string{"-N", "envjob", "job.sh"}})
	if j.Owner != "alice@login1.example.org" || j.Queue != "workq" || j.SubmitArgs != "-N envjob job.sh" {
		t.Fatalf("owner %q queue %q args %q", j.Owner, j.Queue, j.SubmitArgs)
	}
	if j.OutputPath != "login1.example.org:/home/alice/work/envjob.o1" || j.ErrorPath != "login1.example.org:/home/alice/work/envjob.e1" {
		t.Fatalf("paths %q %q", j.OutputPath, j.ErrorPath)
	}
	wantRes := map[string]string{"select": "1:ncpus=2:mem=1gb", "ncpus": "2", "nodect": "1", "place": "free", "mem": "1gb"}
	for k, v := range wantRes {
		if j.Resources[k] != v {
			t.Fatalf("Resource_List.%s = %q, want %q (all: %v)", k, j.Resources[k], v, j.Resources)
		}
	}
	if j.State != fakepbs.Running || j.ExecHost != "login1/0*2" || j.ExecVnode != "(login1:ncpus=2:mem=1048576kb)" {
		t.Fatalf("state %s exec_host %q exec_vnode %q", j.State, j.ExecHost, j.ExecVnode)
	}
	// While it runs, the node file exists with one line per MPI process.
	nf, err := afero.ReadFile(fs, "/var/spool/pbs/aux/1.fakepbs")
	if err == nil && string(nf) != "login1.example.org\n" {
		t.Fatalf("node file %q", nf)
	}
	settle(t, v)
	if _, err := fs.Stat("/var/spool/pbs/aux/1.fakepbs"); err == nil {
		t.Fatal("node file left behind after the job")
	}
	specs := ex.specs()
	if len(specs) != 1 {
		t.Fatalf("%d scripts started", len(specs))
	}
	spec := specs[0]
	if spec.Dir != "/home/alice" || spec.User != "alice" || spec.Node != "login1.example.org" {
		t.Fatalf("run spec dir %q user %q node %q", spec.Dir, spec.User, spec.Node)
	}
	env := map[string]string{}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; dup {
			t.Fatalf("%s twice in the job environment", k)
		}
		env[k] = v
	}
	for k, want := range map[string]string{
		"PBS_JOBID": "1.fakepbs", "PBS_JOBNAME": "envjob", "PBS_QUEUE": "workq",
		"PBS_NODEFILE": "/var/spool/pbs/aux/1.fakepbs", "TMPDIR": "/var/tmp/pbs.1.fakepbs",
		"PBS_ENVIRONMENT": "PBS_BATCH", "ENVIRONMENT": "BATCH", "NCPUS": "2", "OMP_NUM_THREADS": "2",
		"PBS_JOBDIR": "/home/alice", "PBS_TASKNUM": "1", "PBS_MOMPORT": "15003", "PBS_NODENUM": "0",
		"HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice",
		"PBS_O_WORKDIR": "/home/alice/work", "PBS_O_HOST": "login1.example.org", "PBS_O_QUEUE": "workq", "FOO": "bar",
	} {
		if env[k] != want {
			t.Errorf("job environment %s=%q, want %q", k, env[k], want)
		}
	}
	if !slices.Equal(job(t, srv, j.ID).Variables, vars) {
		t.Fatalf("Variable_List not kept as given")
	}
}

func TestSchedulerFIFOOnNodes(t *testing.T) {
	srv, v, _ := virtualServer(t, fakepbs.WithHistory(true, 0), fakepbs.WithNodes(
		fakepbs.NodeConfig{Name: "cn1", Host: "cn1.example.org", NCPUs: 2},
		fakepbs.NodeConfig{Name: "cn2", Host: "cn2.example.org", NCPUs: 2}))
	release := v.Hold()
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, submit(t, srv, fakepbs.SubmitRequest{Name: "w", Script: []byte("sleep 3600\n")}).ID)
	}
	wide := submit(t, srv, fakepbs.SubmitRequest{Name: "wide", Script: []byte("sleep 60\n"),
		Resources: map[string]string{"select": "2:ncpus=2", "place": "scatter"}})
	never := submit(t, srv, fakepbs.SubmitRequest{Name: "huge", Script: []byte("sleep 60\n"),
		Resources: map[string]string{"ncpus": "64"}})
	wantHosts := []string{"cn1/0", "cn1/1", "cn2/0", "cn2/1"}
	for i, h := range wantHosts {
		if j := job(t, srv, ids[i]); j.State != fakepbs.Running || j.ExecHost != h || j.ExecVnode != "("+h[:3]+":ncpus=1)" {
			t.Fatalf("job %d: %s on %q %q, want R on %s", i+1, j.State, j.ExecHost, j.ExecVnode, h)
		}
	}
	fifth := job(t, srv, ids[4])
	if fifth.State != fakepbs.Queued || fifth.Comment != "Not Running: Insufficient amount of resource: ncpus (R: 1 A: 0 T: 4)" {
		t.Fatalf("fifth job %s %q", fifth.State, fifth.Comment)
	}
	nodes := srv.Nodes(context.Background())
	if nodes[0].State != "job-busy" || !slices.Equal(nodes[0].Jobs, []string{"1.fakepbs/0", "2.fakepbs/1"}) || nodes[0].AssignedCPUs != 2 {
		t.Fatalf("pbsnodes cn1: %+v", nodes[0])
	}
	release()
	settle(t, v)
	w := job(t, srv, wide.ID)
	if w.ExecHost != "cn1/0*2+cn2/0*2" || w.ExecVnode != "(cn1:ncpus=2)+(cn2:ncpus=2)" {
		t.Fatalf("wide job exec_host %q exec_vnode %q", w.ExecHost, w.ExecVnode)
	}
	// FIFO: the fifth single-cpu job ran before the wide job, when the first four ended.
	if !job(t, srv, ids[4]).Stime.Equal(epoch.Add(time.Hour)) || !w.Stime.Equal(epoch.Add(2*time.Hour)) {
		t.Fatalf("fifth started %v, wide %v", job(t, srv, ids[4]).Stime, w.Stime)
	}
	n := job(t, srv, never.ID)
	if n.State != fakepbs.Queued || !strings.HasPrefix(n.Comment, "Can Never Run: Insufficient amount of resource: ncpus (R: 64") {
		t.Fatalf("oversized job: %s %q", n.State, n.Comment)
	}
	if st := srv.Nodes(context.Background())[1]; st.State != "free" || len(st.Jobs) != 0 {
		t.Fatalf("cn2 after the jobs: %+v", st)
	}
}

func TestWalltimeKillVirtual(t *testing.T) {
	fs := homeFS(t)
	srv, v, _ := virtualServer(t, fakepbs.WithFS(fs), fakepbs.WithHistory(true, 0))
	release := v.Hold()
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "long", Script: []byte("echo working\nsleep 7200\n"),
		Resources: map[string]string{"walltime": "3600"}})
	stubborn := submit(t, srv, fakepbs.SubmitRequest{Name: "stubborn", Join: "oe", Script: []byte("trap TERM\necho going on >&2\nsleep 7200\n"),
		Resources: map[string]string{"walltime": "00:10:00"}})
	if j.Resources["walltime"] != "01:00:00" {
		t.Fatalf("Resource_List.walltime %q, want 01:00:00", j.Resources["walltime"])
	}
	release()
	settle(t, v)
	got := job(t, srv, j.ID)
	if exitOf(got) != "-29" || !got.Obittime.Equal(epoch.Add(3601*time.Second)) {
		t.Fatalf("walltime-killed job: Exit_status %s, obittime %v", exitOf(got), got.Obittime)
	}
	errOut, _ := afero.ReadFile(fs, "/home/alice/work/long.e1")
	if string(errOut) != "=>> PBS: job killed: walltime 3601 exceeded limit 3600\n" {
		t.Fatalf("stderr file %q", errOut)
	}
	if out, _ := afero.ReadFile(fs, "/home/alice/work/long.o1"); string(out) != "working\n" {
		t.Fatalf("stdout file %q", out)
	}
	// A script that ignores SIGTERM is killed kill_delay (10 s) later; -j oe joins the message into the output.
	s := job(t, srv, stubborn.ID)
	if exitOf(s) != "-29" || !s.Obittime.Equal(epoch.Add(611*time.Second)) {
		t.Fatalf("stubborn job: Exit_status %s, obittime %v", exitOf(s), s.Obittime)
	}
	out, _ := afero.ReadFile(fs, "/home/alice/work/stubborn.o2")
	if string(out) != "going on\n=>> PBS: job killed: walltime 601 exceeded limit 600\n" {
		t.Fatalf("joined output %q", out)
	}
	if _, err := fs.Stat("/home/alice/work/stubborn.e2"); err == nil {
		t.Fatal("-j oe still wrote an error file")
	}
}

func TestStartTimeWaits(t *testing.T) {
	srv, v, _ := virtualServer(t, fakepbs.WithHistory(true, 0))
	at := epoch.Add(30 * time.Minute)
	release := v.Hold()
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "later", StartAt: at, Script: []byte("sleep 60\n")})
	if j.State != fakepbs.Waiting || j.Substate != 30 {
		t.Fatalf("state %s/%d, want W/30", j.State, j.Substate)
	}
	release()
	settle(t, v)
	got := job(t, srv, j.ID)
	if !got.Stime.Equal(at) || !got.Etime.Equal(at) || !got.Qtime.Equal(epoch) {
		t.Fatalf("stime %v etime %v qtime %v, want start and eligibility at %v", got.Stime, got.Etime, got.Qtime, at)
	}
}

func TestHoldAndRelease(t *testing.T) {
	srv, v, _ := virtualServer(t, fakepbs.WithHistory(true, 0), fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 1}))
	ctx := context.Background()
	release := v.Hold()
	defer release()
	held := submit(t, srv, fakepbs.SubmitRequest{Name: "held", Hold: true, Script: []byte("sleep 60\n")})
	if held.State != fakepbs.Held || held.HoldTypes != "u" || held.Substate != 20 {
		t.Fatalf("qsub -h: %s/%d Hold_Types %q", held.State, held.Substate, held.HoldTypes)
	}
	runner := submit(t, srv, fakepbs.SubmitRequest{Name: "runner", Script: []byte("sleep 600\n")})
	queued := submit(t, srv, fakepbs.SubmitRequest{Name: "queued", Script: []byte("sleep 60\n")})
	if runner.State != fakepbs.Running || queued.State != fakepbs.Queued {
		t.Fatalf("runner %s queued %s", runner.State, queued.State)
	}
	wantCode(t, srv.Hold(ctx, "bob", queued.ID, "u"), fakepbs.ErrPermission, "Unauthorized Request  3.fakepbs")
	wantCode(t, srv.Hold(ctx, "alice", queued.ID, "s"), fakepbs.ErrPermission, "")
	if err := srv.Hold(ctx, "alice", "3", ""); err != nil {
		t.Fatal(err)
	}
	if q := job(t, srv, queued.ID); q.State != fakepbs.Held || q.HoldTypes != "u" {
		t.Fatalf("after qhold: %s %q", q.State, q.HoldTypes)
	}
	if err := srv.Hold(ctx, "root", queued.ID, "os"); err != nil {
		t.Fatal(err)
	}
	if q := job(t, srv, queued.ID); q.HoldTypes != "uos" {
		t.Fatalf("Hold_Types %q, want uos", q.HoldTypes)
	}
	// qhold on a running job only sets the flag.
	if err := srv.Hold(ctx, "alice", runner.ID, "u"); err != nil {
		t.Fatal(err)
	}
	if r := job(t, srv, runner.ID); r.State != fakepbs.Running || r.HoldTypes != "u" {
		t.Fatalf("held running job: %s %q", r.State, r.HoldTypes)
	}
	if err := srv.Release(ctx, "alice", queued.ID, "u"); err != nil {
		t.Fatal(err)
	}
	if q := job(t, srv, queued.ID); q.State != fakepbs.Held || q.HoldTypes != "os" {
		t.Fatalf("released u only: %s %q", q.State, q.HoldTypes)
	}
	if err := srv.Release(ctx, "root", queued.ID, "os"); err != nil {
		t.Fatal(err)
	}
	if q := job(t, srv, queued.ID); q.State != fakepbs.Queued || q.HoldTypes != "n" {
		t.Fatalf("fully released: %s %q", q.State, q.HoldTypes)
	}
	if err := srv.Release(ctx, "alice", held.ID, ""); err != nil {
		t.Fatal(err)
	}
	release()
	settle(t, v)
	// held was submitted first, so once released it ran before queued (FIFO by submission).
	h, q := job(t, srv, held.ID), job(t, srv, queued.ID)
	if h.State != fakepbs.Finished || q.State != fakepbs.Finished || !h.Stime.Before(q.Stime) {
		t.Fatalf("held %s %v, queued %s %v", h.State, h.Stime, q.State, q.Stime)
	}
	wantCode(t, srv.Hold(ctx, "alice", held.ID, "u"), fakepbs.ErrJobFinished, "Job has finished 1.fakepbs")
}

func TestDeleteAndSignalVirtual(t *testing.T) {
	srv, v, _ := virtualServer(t, fakepbs.WithHistory(true, 0), fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 1}))
	ctx := context.Background()
	release := v.Hold()
	running := submit(t, srv, fakepbs.SubmitRequest{Name: "r", Script: []byte("sleep 600\n")})
	queued := submit(t, srv, fakepbs.SubmitRequest{Name: "q", Script: []byte("sleep 600\n")})
	wantCode(t, srv.Delete(ctx, "bob", running.ID, false), fakepbs.ErrPermission, "Unauthorized Request  1.fakepbs")
	wantCode(t, srv.Signal(ctx, "alice", running.ID, "BOGUS"), fakepbs.ErrUnknownSignal, "")
	wantCode(t, srv.Signal(ctx, "alice", queued.ID, "SIGUSR1"), fakepbs.ErrBadState, "Request invalid for state of job 2.fakepbs")
	wantCode(t, srv.Signal(ctx, "alice", queued.ID, "resume"), fakepbs.ErrBadState, "")
	if err := srv.Delete(ctx, "alice", queued.ID, false); err != nil {
		t.Fatal(err)
	}
	q := job(t, srv, queued.ID)
	if q.State != fakepbs.Finished || q.Substate != 91 || q.ExitStatus != nil || q.Stime != (time.Time{}) {
		t.Fatalf("deleted queued job: %s/%d exit %s stime %v", q.State, q.Substate, exitOf(q), q.Stime)
	}
	if err := srv.Signal(ctx, "alice", running.ID, "suspend"); err != nil {
		t.Fatal(err)
	}
	if r := job(t, srv, running.ID); r.State != fakepbs.Suspended || r.Substate != 43 {
		t.Fatalf("suspended: %s/%d", r.State, r.Substate)
	}
	wantCode(t, srv.Signal(ctx, "alice", running.ID, "suspend"), fakepbs.ErrBadState, "")
	if err := srv.Signal(ctx, "alice", running.ID, "resume"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(ctx, "root", running.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	release()
	settle(t, v)
	r := job(t, srv, running.ID)
	if exitOf(r) != "265" || r.Substate != 92 {
		t.Fatalf("qsig -s SIGKILL: Exit_status %s substate %d, want 265 and 92", exitOf(r), r.Substate)
	}
	wantCode(t, srv.Delete(ctx, "alice", running.ID, false), fakepbs.ErrJobFinished, "Job has finished 1.fakepbs")
	wantCode(t, srv.Delete(ctx, "alice", "77", false), fakepbs.ErrUnknownJob, "Unknown Job Id 77.fakepbs")
	wantCode(t, srv.Delete(ctx, "alice", "1.otherserver", false), fakepbs.ErrUnknownJob, "")
}

func TestHistoryOnAndOff(t *testing.T) {
	ctx := context.Background()
	t.Run("off", func(t *testing.T) {
		srv, v, _ := virtualServer(t)
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "x", Script: []byte("sleep 1\n")})
		settle(t, v)
		_, err := srv.Job(ctx, j.ID, true)
		wantCode(t, err, fakepbs.ErrUnknownJob, "Unknown Job Id 1.fakepbs")
		_, err = srv.Job(ctx, "1", false)
		wantCode(t, err, fakepbs.ErrUnknownJob, "Unknown Job Id 1.fakepbs")
		if js := srv.Jobs(ctx, true); len(js) != 0 {
			t.Fatalf("without history %d jobs remain", len(js))
		}
		if srv.Info(ctx).HistoryEnable {
			t.Fatal("history reported on")
		}
	})
	t.Run("on", func(t *testing.T) {
		srv, v, _ := virtualServer(t, fakepbs.WithHistory(true, 24*time.Hour))
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "x", Script: []byte("sleep 1\n")})
		live := submit(t, srv, fakepbs.SubmitRequest{Name: "y", Hold: true, Script: []byte("sleep 1\n")})
		settle(t, v)
		_, err := srv.Job(ctx, j.ID, false)
		wantCode(t, err, fakepbs.ErrJobFinished, "Job has finished 1.fakepbs")
		if got := job(t, srv, "1.fakepbs.example.org"); got.State != fakepbs.Finished {
			t.Fatalf("with history: %s", got.State)
		}
		if js := srv.Jobs(ctx, false); len(js) != 1 || js[0].ID != live.ID {
			t.Fatalf("Jobs without history flag: %v", js)
		}
		if js := srv.Jobs(ctx, true); len(js) != 2 || js[0].ID != j.ID {
			t.Fatalf("Jobs with history flag: %d jobs", len(js))
		}
		v.Advance(25 * time.Hour)
		_, err = srv.Job(ctx, j.ID, true)
		wantCode(t, err, fakepbs.ErrUnknownJob, "")
		if js := srv.Jobs(ctx, true); len(js) != 1 {
			t.Fatalf("expired history still listed: %d jobs", len(js))
		}
	})
}

func TestDependencies(t *testing.T) {
	srv, v, _ := virtualServer(t, fakepbs.WithHistory(true, 0))
	release := v.Hold()
	ok := submit(t, srv, fakepbs.SubmitRequest{Name: "ok", Script: []byte("sleep 100\n")})
	bad := submit(t, srv, fakepbs.SubmitRequest{Name: "bad", Script: []byte("sleep 200\nexit 3\n")})
	afterOK := submit(t, srv, fakepbs.SubmitRequest{Name: "a1", DependOn: "afterok:" + ok.ID, Script: []byte("sleep 10\n")})
	if afterOK.State != fakepbs.Held || afterOK.Substate != 22 || afterOK.HoldTypes != "s" {
		t.Fatalf("dependant: %s/%d Hold_Types %q, want H/22 s", afterOK.State, afterOK.Substate, afterOK.HoldTypes)
	}
	if afterOK.DependOn != "afterok:1.fakepbs@login1.example.org" {
		t.Fatalf("depend %q", afterOK.DependOn)
	}
	if p := job(t, srv, ok.ID); p.DependOn != "beforeok:3.fakepbs@login1.example.org" {
		t.Fatalf("parent depend %q", p.DependOn)
	}
	doomed := submit(t, srv, fakepbs.SubmitRequest{Name: "a2", DependOn: "afterok:2", Script: []byte("sleep 10\n")})
	grandchild := submit(t, srv, fakepbs.SubmitRequest{Name: "a2b", DependOn: "afterany:" + doomed.ID, Script: []byte("sleep 10\n")})
	notOK := submit(t, srv, fakepbs.SubmitRequest{Name: "a3", DependOn: "afternotok:2", Script: []byte("sleep 10\n")})
	any := submit(t, srv, fakepbs.SubmitRequest{Name: "a4", DependOn: "afterany:1:2", Script: []byte("sleep 10\n")})
	started := submit(t, srv, fakepbs.SubmitRequest{Name: "a5", DependOn: "after:2", Script: []byte("sleep 10\n")})
	orphan := submit(t, srv, fakepbs.SubmitRequest{Name: "a6", DependOn: "afterok:999", Script: []byte("sleep 10\n")})
	release()
	settle(t, v)

	check := func(id string, state fakepbs.State, sub int, stime time.Duration) {
		t.Helper()
		j := job(t, srv, id)
		if j.State != state || j.Substate != sub {
			t.Fatalf("%s (%s): %s/%d, want %s/%d (comment %q)", id, j.Name, j.State, j.Substate, state, sub, j.Comment)
		}
		if stime >= 0 && !j.Stime.Equal(epoch.Add(stime)) {
			t.Fatalf("%s (%s) started at %v, want %v", id, j.Name, j.Stime, epoch.Add(stime))
		}
	}
	check(afterOK.ID, fakepbs.Finished, 92, 100*time.Second)
	check(doomed.ID, fakepbs.Finished, 91, -1)
	check(grandchild.ID, fakepbs.Finished, 91, -1) // a held job's deletion deletes its dependants
	check(notOK.ID, fakepbs.Finished, 92, 200*time.Second)
	check(any.ID, fakepbs.Finished, 92, 200*time.Second)
	check(started.ID, fakepbs.Finished, 92, 0)
	check(orphan.ID, fakepbs.Finished, 91, -1)
	if d := job(t, srv, doomed.ID); d.Comment != "Job deleted as result of dependency on job 2.fakepbs" || d.ExitStatus != nil {
		t.Fatalf("deleted dependant: comment %q exit %s", d.Comment, exitOf(d))
	}

	// On a finished job in history: satisfied at once, or the new job is deleted.
	late := submit(t, srv, fakepbs.SubmitRequest{Name: "late", DependOn: "afterok:" + ok.ID, Script: []byte("sleep 1\n")})
	lateBad := submit(t, srv, fakepbs.SubmitRequest{Name: "latebad", DependOn: "afterok:" + bad.ID, Script: []byte("sleep 1\n")})
	if late.State != fakepbs.Running || lateBad.State != fakepbs.Finished {
		t.Fatalf("dependency on history: %s and %s, want R and F", late.State, lateBad.State)
	}
	_, err := srv.Submit(context.Background(), fakepbs.SubmitRequest{Owner: "alice", DependOn: "beforeok:1", Script: []byte("sleep 1\n")})
	wantCode(t, err, fakepbs.ErrBadDepend, "Invalid Job Dependency")
	_, err = srv.Submit(context.Background(), fakepbs.SubmitRequest{Owner: "alice", DependOn: "afterok", Script: []byte("sleep 1\n")})
	wantCode(t, err, fakepbs.ErrBadDepend, "")
}

func TestSubmitErrors(t *testing.T) {
	srv, _, _ := virtualServer(t, fakepbs.WithQueues(
		fakepbs.Queue{Name: "workq", Enabled: true, Started: true},
		fakepbs.Queue{Name: "closed", Enabled: false, Started: true}))
	ctx := context.Background()
	for _, c := range []struct {
		name string
		req  fakepbs.SubmitRequest
		code int
		text string
	}{
		{"unknown queue", fakepbs.SubmitRequest{Queue: "nope"}, fakepbs.ErrUnknownQueue, "Unknown queue"},
		{"disabled queue", fakepbs.SubmitRequest{Queue: "closed@fakepbs"}, fakepbs.ErrQueueDisabled, "Queue is not enabled"},
		{"unknown resource", fakepbs.SubmitRequest{Resources: map[string]string{"gpus_please": "2"}}, fakepbs.ErrUnknownResource, "Unknown resource Resource_List.gpus_please"},
		{"bad walltime", fakepbs.SubmitRequest{Resources: map[string]string{"walltime": "1:xx"}}, fakepbs.ErrBadAttrValue, "Illegal attribute or resource value Resource_List.walltime"},
		{"bad select", fakepbs.SubmitRequest{Resources: map[string]string{"select": "0:ncpus=1"}}, fakepbs.ErrBadAttrValue, ""},
		{"select with ncpus", fakepbs.SubmitRequest{Resources: map[string]string{"select": "1:ncpus=1", "ncpus": "2"}}, fakepbs.ErrBadAttrValue, ""},
		{"place alone", fakepbs.SubmitRequest{Resources: map[string]string{"place": "scatter"}}, fakepbs.ErrPlaceNoSelect, ""},
		{"bad join", fakepbs.SubmitRequest{Join: "xy"}, fakepbs.ErrBadAttrValue, ""},
		{"array", fakepbs.SubmitRequest{Array: "1-10"}, fakepbs.ErrNotSupported, ""},
	} {
		c.req.Owner = "alice"
		_, err := srv.Submit(ctx, c.req)
		if pbsCode(err) != c.code || c.text != "" && err.Error() != c.text {
			t.Errorf("%s: error %v, want %d %q", c.name, err, c.code, c.text)
		}
	}
	if js := srv.Jobs(ctx, true); len(js) != 0 {
		t.Fatalf("rejected submissions left %d jobs", len(js))
	}
	// Torque's nodes= becomes a select; mem is a size.
	j, err := srv.Submit(ctx, fakepbs.SubmitRequest{Owner: "alice", Resources: map[string]string{"nodes": "1:ppn=2", "walltime": "90:00"}, Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	if j.Resources["select"] != "1:ncpus=2:mpiprocs=2" || j.Resources["ncpus"] != "2" || j.Resources["walltime"] != "01:30:00" || j.Resources["place"] != "scatter" {
		t.Fatalf("nodes= normalized to %v", j.Resources)
	}
	if j.Name != "STDIN" || j.OutputPath != "login1.example.org:/home/alice/STDIN.o1" {
		t.Fatalf("defaults: name %q output %q", j.Name, j.OutputPath)
	}
}

func TestOutputPathResolution(t *testing.T) {
	fs := homeFS(t)
	if err := fs.MkdirAll("/home/alice/logs", 0o755); err != nil {
		t.Fatal(err)
	}
	srv, v, _ := virtualServer(t, fakepbs.WithFS(fs))
	dir := submit(t, srv, fakepbs.SubmitRequest{Name: "d", OutputPath: "/home/alice/logs/", ErrorPath: "../logs",
		Script: []byte("echo out\necho err >&2\n")})
	if dir.OutputPath != "login1.example.org:/home/alice/logs/" || dir.ErrorPath != "login1.example.org:/home/alice/logs" {
		t.Fatalf("paths %q %q", dir.OutputPath, dir.ErrorPath)
	}
	rel := submit(t, srv, fakepbs.SubmitRequest{Name: "r", OutputPath: "sub/job.out", ErrorPath: "otherhost:/tmp/job.err", Umask: "022",
		Script: []byte("echo out\necho err >&2\n")})
	if rel.OutputPath != "login1.example.org:/home/alice/work/sub/job.out" || rel.ErrorPath != "otherhost:/tmp/job.err" {
		t.Fatalf("paths %q %q", rel.OutputPath, rel.ErrorPath)
	}
	eo := submit(t, srv, fakepbs.SubmitRequest{Name: "eo", Join: "eo", Script: []byte("echo out\necho err >&2\n")})
	settle(t, v)
	for path, want := range map[string]string{
		"/home/alice/logs/1.fakepbs.OU": "out\n", "/home/alice/logs/1.fakepbs.ER": "err\n",
		"/tmp/job.err": "err\n", "/home/alice/work/eo.e3": "out\nerr\n",
	} {
		if got, err := afero.ReadFile(fs, path); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
	}
	if fi, err := fs.Stat("/tmp/job.err"); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("umask 022 file mode: %v %v", fi, err)
	}
	if fi, err := fs.Stat("/home/alice/work/eo.e3"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("default umask 077 file mode: %v %v", fi, err)
	}
	if _, err := fs.Stat("/home/alice/work/eo.o3"); err == nil {
		t.Error("-j eo wrote an output file")
	}
	// sub/ did not exist: the output is kept in PBS_HOME/undelivered, as the MOM does.
	if got, err := afero.ReadFile(fs, "/var/spool/pbs/undelivered/2.fakepbs.OU"); err != nil || string(got) != "out\n" {
		t.Errorf("undelivered output: %q, %v", got, err)
	}
	_ = rel
	_ = eo
}

func TestJobStateEvents(t *testing.T) {
	log := events.NewLog()
	srv, v, _ := virtualServer(t, fakepbs.WithRecorder(log), fakepbs.WithHistory(true, 0))
	submit(t, srv, fakepbs.SubmitRequest{Name: "ev", Script: []byte("sleep 5\n")})
	settle(t, v)
	var got []string
	for _, e := range log.All() {
		if e.Kind == events.PBSJobState {
			got = append(got, e.Fields["from"].(string)+">"+e.Fields["to"].(string))
			if e.Fields["job"] != "1.fakepbs" || e.Fields["name"] != "ev" || e.Fields["reason"] == "" {
				t.Fatalf("event fields %v", e.Fields)
			}
		}
	}
	if !slices.Equal(got, []string{">Q", "Q>R", "R>E", "E>F"}) {
		t.Fatalf("state events %v", got)
	}
	if ev := log.All(); !ev[len(ev)-1].Time.Equal(epoch.Add(5 * time.Second)) {
		t.Fatalf("last event stamped %v, want the server clock", ev[len(ev)-1].Time)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	srv, _, _ := virtualServer(t)
	for i := 0; i < 20; i++ {
		submit(t, srv, fakepbs.SubmitRequest{Name: "c", Script: []byte("sleep 86400\n"), StartAt: epoch.Add(time.Duration(i) * time.Minute),
			Resources: map[string]string{"walltime": "48:00:00"}})
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := srv.Submit(context.Background(), fakepbs.SubmitRequest{Owner: "alice"})
	wantCode(t, err, fakepbs.ErrInternal, "")
}

func TestNoExecutorKeepsJobsQueued(t *testing.T) {
	srv, err := fakepbs.NewServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	j, err := srv.Submit(context.Background(), fakepbs.SubmitRequest{Owner: "alice", Script: []byte("true\n")})
	if err != nil || j.State != fakepbs.Queued {
		t.Fatalf("%v %s", err, j.State)
	}
	info := srv.Info(context.Background())
	if info.Name != "fakepbs" || info.DefaultQueue != "workq" || info.Version == "" {
		t.Fatalf("info %+v", info)
	}
}

type failingExec struct{}

func (failingExec) Start(context.Context, fakepbs.RunSpec) (fakepbs.Process, error) {
	return nil, errors.New("no such user on the execution host")
}

func TestScriptThatCannotStart(t *testing.T) {
	srv, err := fakepbs.NewServer(context.Background(), fakepbs.WithExecutor(failingExec{}), fakepbs.WithHistory(true, 0),
		fakepbs.WithFS(homeFS(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "nostart", Script: []byte("true\n")})
	var got fakepbs.Job
	testutil.WaitFor(t, "the job to fail", 5*time.Second, func() bool {
		got = job(t, srv, j.ID)
		return got.State == fakepbs.Finished
	})
	if exitOf(got) != "-1" || got.Substate != 93 || !strings.HasSuffix(got.Comment, " and failed") {
		t.Fatalf("Exit_status %s substate %d comment %q, want -1, 93, ... and failed", exitOf(got), got.Substate, got.Comment)
	}
}

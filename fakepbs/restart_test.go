package fakepbs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/cli"
)

func qstatNow(srv *fakepbs.Server, args ...string) cli.Result {
	return cli.Run(context.Background(), srv, cli.Invocation{Command: "qstat", Args: args, User: "alice", Host: "login1"})
}

// A restart that keeps the jobs is OpenPBS's qterm -t quick: clients are
// refused while it is down, running jobs run on and their ends are kept,
// and nothing new starts until the server is back.
func TestRestartKeepsJobs(t *testing.T) {
	log := events.NewLog()
	srv, v, _ := virtualServer(t, fakepbs.WithRecorder(log), fakepbs.WithHistory(true, 0),
		fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 1}))
	release := v.Hold()
	a := submit(t, srv, fakepbs.SubmitRequest{Name: "a", Script: []byte("sleep 600\n")})
	b := submit(t, srv, fakepbs.SubmitRequest{Name: "b", Script: []byte("sleep 60\n")})
	if err := srv.Restart(context.Background(), fakepbs.RestartOptions{Down: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if !srv.Down() {
		t.Fatal("Down() is false right after Restart")
	}
	res := qstatNow(srv)
	if res.ExitCode != 255 || string(res.Stderr) != "Connection refused\nqstat: cannot connect to server fakepbs (errno=111)\n" || len(res.Stdout) != 0 {
		t.Fatalf("qstat while down: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if err := srv.Restart(context.Background(), fakepbs.RestartOptions{}); err == nil || !strings.Contains(err.Error(), "already down") {
		t.Fatalf("second restart while down: %v", err)
	}
	release()
	settle(t, v)
	if srv.Down() {
		t.Fatal("still down after the restart")
	}
	ja, jb := job(t, srv, a.ID), job(t, srv, b.ID)
	if ja.State != fakepbs.Finished || exitOf(ja) != "0" || !ja.Obittime.Equal(epoch.Add(10*time.Minute)) {
		t.Fatalf("running job across the restart: %s exit %s ended %v, want F 0 at +10m", ja.State, exitOf(ja), ja.Obittime)
	}
	if jb.State != fakepbs.Finished || !jb.Stime.Equal(epoch.Add(30*time.Minute)) {
		t.Fatalf("queued job: %s started %v, want F and started when the server came back (+30m)", jb.State, jb.Stime)
	}
	var lifecycle []string
	for _, e := range log.All() {
		if e.Kind == events.HostLifecycle {
			lifecycle = append(lifecycle, e.Fields["state"].(string)+"@"+e.Time.Sub(epoch).String()+" "+e.Msg)
		}
	}
	want := []string{"down@0s pbs_server fakepbs stopped for 30m0s; jobs kept (qterm -t quick)", "up@30m0s pbs_server fakepbs started; 2 jobs recovered"}
	if strings.Join(lifecycle, "|") != strings.Join(want, "|") {
		t.Fatalf("lifecycle events %q, want %q", lifecycle, want)
	}
}

// A restart that loses the datastore comes back knowing no job: the
// running script is killed, the history is gone, qstat says Unknown Job Id,
// and the next job gets a fresh id (ids are never reused within a run).
func TestRestartLosesJobs(t *testing.T) {
	srv, v, ex := virtualServer(t, fakepbs.WithHistory(true, 0), fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 1}))
	done := submit(t, srv, fakepbs.SubmitRequest{Name: "done", Script: []byte("sleep 1\n")})
	settle(t, v)
	release := v.Hold()
	running := submit(t, srv, fakepbs.SubmitRequest{Name: "run", Script: []byte("sleep 600\n")})
	queued := submit(t, srv, fakepbs.SubmitRequest{Name: "q", Script: []byte("sleep 60\n")})
	if st := job(t, srv, running.ID).State; st != fakepbs.Running {
		t.Fatalf("job %s is %s before the restart, want R", running.ID, st)
	}
	if err := srv.Restart(context.Background(), fakepbs.RestartOptions{Down: time.Minute, LoseJobs: true}); err != nil {
		t.Fatal(err)
	}
	release()
	settle(t, v)
	if got := srv.Jobs(context.Background(), true); len(got) != 0 {
		t.Fatalf("jobs after losing the datastore: %+v", got)
	}
	for _, id := range []string{done.ID, running.ID, queued.ID} {
		if _, err := srv.Job(context.Background(), id, true); pbsCode(err) != fakepbs.ErrUnknownJob {
			t.Errorf("job %s after the restart: %v, want PBSE_UNKJOBID", id, err)
		}
	}
	res := qstatNow(srv, running.ID)
	if res.ExitCode != 153 || string(res.Stderr) != "qstat: Unknown Job Id "+running.ID+"\n" {
		t.Errorf("qstat of a lost job: exit %d %q", res.ExitCode, res.Stderr)
	}
	for _, sp := range ex.specs() {
		if sp.JobID == queued.ID {
			t.Errorf("the lost queued job %s was started", queued.ID)
		}
	}
	next := submit(t, srv, fakepbs.SubmitRequest{Name: "next", Script: []byte("sleep 1\n")})
	if next.Seq != 4 {
		t.Errorf("next job %s, want sequence 4", next.ID)
	}
}

func TestRestartRejectsNegativeDown(t *testing.T) {
	srv, _, _ := virtualServer(t)
	if err := srv.Restart(context.Background(), fakepbs.RestartOptions{Down: -time.Second}); err == nil || srv.Down() {
		t.Fatalf("negative down: err %v, down %v", err, srv.Down())
	}
}

// Stopping a host while its PBS server is down for a restart stops at once,
// not when the down time is over (jobsim host after `pbs restart --down
// 30s` took those 30 s to stop on Ctrl-C).
func TestCloseDuringARestartDoesNotWaitItOut(t *testing.T) {
	srv, err := fakepbs.NewServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(context.Background(), fakepbs.RestartOptions{Down: time.Hour}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close is waiting for the restart's hour of down time")
	}
}

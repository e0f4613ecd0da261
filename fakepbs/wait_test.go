package fakepbs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
)

// waitJob calls WaitJob from outside the simulation with a deadline.
func waitJob(t *testing.T, srv *fakepbs.Server, id string) (fakepbs.Job, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.WaitJob(ctx, id)
}

// Without history the server forgets a job at its end; the waiter still
// learns its Exit_status. Waiting from outside the simulation leaves the
// virtual clock free: an hour of job time passes while the test blocks.
func TestWaitJobWithoutHistory(t *testing.T) {
	srv, v, _ := virtualServer(t)
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "w", Block: true, Script: []byte("sleep 3600\nexit 4\n")})
	got, err := waitJob(t, srv, j.ID)
	if err != nil || got.State != fakepbs.Finished || exitOf(got) != "4" {
		t.Fatalf("WaitJob: %s exit %s %v", got.State, exitOf(got), err)
	}
	if d := v.Now().Sub(epoch); d < time.Hour {
		t.Fatalf("the clock moved %v while the test waited, want the job's hour", d)
	}
	if _, err := srv.Job(context.Background(), j.ID, true); pbsCode(err) != fakepbs.ErrUnknownJob {
		t.Fatalf("without history the job must be gone: %v", err)
	}
	// The answer was collected: the server keeps nothing more.
	_, err = waitJob(t, srv, j.ID)
	wantCode(t, err, fakepbs.ErrUnknownJob, "Unknown Job Id 1.fakepbs")
}

// A job submitted with Block that ends before its waiter comes (the window
// between qsub's submit and its wait) is kept for that waiter; a job
// without Block is not.
func TestWaitJobAfterTheJobEnded(t *testing.T) {
	srv, v, _ := virtualServer(t)
	blocked := submit(t, srv, fakepbs.SubmitRequest{Name: "b", Block: true, Script: []byte("exit 2\n")})
	plain := submit(t, srv, fakepbs.SubmitRequest{Name: "p", Script: []byte("exit 2\n")})
	settle(t, v)
	if got, err := waitJob(t, srv, blocked.ID); err != nil || exitOf(got) != "2" {
		t.Fatalf("blocked job: exit %s %v", exitOf(got), err)
	}
	_, err := waitJob(t, srv, plain.ID)
	wantCode(t, err, fakepbs.ErrUnknownJob, "")

	// With history a finished job is answered at once.
	hsrv, hv, _ := virtualServer(t, fakepbs.WithHistory(true, 0))
	h := submit(t, hsrv, fakepbs.SubmitRequest{Name: "h", Script: []byte("exit 6\n")})
	settle(t, hv)
	if got, err := waitJob(t, hsrv, h.ID); err != nil || exitOf(got) != "6" {
		t.Fatalf("job in history: exit %s %v", exitOf(got), err)
	}
}

func TestWaitJobEnds(t *testing.T) {
	t.Run("signal", func(t *testing.T) {
		srv, _, _ := virtualServer(t)
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "s", Block: true, Script: []byte("sleep 3600\n")})
		if err := srv.Signal(context.Background(), "alice", j.ID, "TERM"); err != nil {
			t.Fatal(err)
		}
		if got, err := waitJob(t, srv, j.ID); err != nil || exitOf(got) != "271" {
			t.Fatalf("killed by SIGTERM: exit %s %v, want 271", exitOf(got), err)
		}
	})
	t.Run("walltime", func(t *testing.T) {
		srv, _, _ := virtualServer(t)
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "w", Block: true, Script: []byte("sleep 3600\n"),
			Resources: map[string]string{"walltime": "00:01:00"}})
		if got, err := waitJob(t, srv, j.ID); err != nil || exitOf(got) != "-29" {
			t.Fatalf("over walltime: exit %s %v, want -29", exitOf(got), err)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		srv, _, _ := virtualServer(t, fakepbs.WithHistory(true, 0))
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "d", Block: true, Hold: true, Script: []byte("true\n")})
		if err := srv.Delete(context.Background(), "alice", j.ID, false); err != nil {
			t.Fatal(err)
		}
		got, err := waitJob(t, srv, j.ID)
		var ab *fakepbs.AbortedError
		if !errors.As(err, &ab) || ab.JobID != j.ID || ab.Message != "Job deleted at request of alice@login1.example.org" ||
			got.State != fakepbs.Finished {
			t.Fatalf("deleted job: %s %v (%T)", got.State, err, err)
		}
	})
	t.Run("dependency failed", func(t *testing.T) {
		srv, _, _ := virtualServer(t)
		a := submit(t, srv, fakepbs.SubmitRequest{Name: "a", Script: []byte("sleep 60\nexit 1\n")})
		b := submit(t, srv, fakepbs.SubmitRequest{Name: "b", Block: true, DependOn: "afterok:" + a.ID, Script: []byte("true\n")})
		if _, err := waitJob(t, srv, b.ID); !errors.Is(err, fakepbs.ErrNoReply) {
			t.Fatalf("job aborted before it ran: %v, want ErrNoReply", err)
		}
	})
	t.Run("vanished", func(t *testing.T) {
		srv, set, _, _, _ := faultServer(t)
		addRule(t, set, fault.Rule{Ops: []string{"run"}, Job: "1", Effect: fault.Effect{Kind: fault.Vanish}})
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "v", Block: true, Script: []byte("sleep 10\n")})
		if _, err := waitJob(t, srv, j.ID); !errors.Is(err, fakepbs.ErrNoReply) {
			t.Fatalf("vanished job: %v, want ErrNoReply", err)
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		srv, _, _ := virtualServer(t)
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "h", Block: true, Hold: true, Script: []byte("true\n")})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := srv.WaitJob(ctx, j.ID); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitJob past its deadline: %v", err)
		}
	})
	t.Run("server closed", func(t *testing.T) {
		srv, _, _ := virtualServer(t)
		j := submit(t, srv, fakepbs.SubmitRequest{Name: "h", Block: true, Hold: true, Script: []byte("true\n")})
		errc := make(chan error, 1)
		go func() { _, err := waitJob(t, srv, j.ID); errc <- err }()
		time.Sleep(10 * time.Millisecond)
		_ = srv.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, fakepbs.ErrServerClosed) {
				t.Fatalf("WaitJob on a closed server: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not end the wait")
		}
	})
}

// PurgeHistory on the server: only the owner or a manager, and an exiting
// job is refused as qdel refuses it.
func TestPurgeHistory(t *testing.T) {
	srv, v, _ := virtualServer(t, fakepbs.WithHistory(true, 0))
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "f", Script: []byte("true\n")})
	settle(t, v)
	wantCode(t, srv.PurgeHistory(context.Background(), "bob", j.ID), fakepbs.ErrPermission, "")
	if err := srv.PurgeHistory(context.Background(), "root", j.ID); err != nil {
		t.Fatalf("a manager purging: %v", err)
	}
	_, err := srv.Job(context.Background(), j.ID, true)
	wantCode(t, err, fakepbs.ErrUnknownJob, "")
	if got := len(srv.Jobs(context.Background(), true)); got != 0 {
		t.Fatalf("%d jobs left in history", got)
	}
}

package fakepbs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/internal/testutil"
)

// nodeFailed is JOB_EXEC_RERUN_MS_FAIL.
var nodeFailed = -20

func TestRequeueRunsTheJobAgain(t *testing.T) {
	srv, root := bashServer(t, fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 1}, fakepbs.NodeConfig{Name: "cn2", NCPUs: 1}))
	marker := filepath.Join(root, "home", "alice", "runs")
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "rerun", Script: []byte("echo run >> " + marker + "\nsleep 2\n")})
	waitState(t, srv, j.ID, fakepbs.Running)
	testutil.WaitFor(t, "the first run", 10*time.Second, func() bool { b, _ := os.ReadFile(marker); return string(b) == "run\n" })
	ctx := context.Background()
	if err := srv.SetNodeState("cn1", "down", "node down: communication closed"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Requeue(ctx, j.ID, &nodeFailed, "Job requeued, execution node cn1 down"); err != nil {
		t.Fatal(err)
	}
	got := job(t, srv, j.ID)
	if got.State != fakepbs.Running || got.ExecHost != "cn2/0" || got.RunCount != 2 {
		t.Fatalf("after requeue with cn1 down: state %s exec_host %q run_count %d; want it running again on cn2, second run", got.State, got.ExecHost, got.RunCount)
	}
	done := waitState(t, srv, j.ID, fakepbs.Finished)
	if done.ExitStatus == nil || *done.ExitStatus != 0 {
		t.Errorf("the second run's Exit_status %v, want 0", done.ExitStatus)
	}
	if b, _ := os.ReadFile(marker); string(b) != "run\nrun\n" {
		t.Errorf("the script ran %q, want twice", b)
	}
	var pe *fakepbs.Error
	if err := srv.Requeue(ctx, j.ID, nil, "again"); !errors.As(err, &pe) || pe.Code != fakepbs.ErrBadState {
		t.Errorf("requeue of a finished job: %v, want ErrBadState", err)
	}
}

func TestRequeueWaitsWhenNoNodeIsLeft(t *testing.T) {
	srv, root := bashServer(t, fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 1}))
	j := bashSubmit(t, srv, root, fakepbs.SubmitRequest{Name: "waits", Script: []byte("sleep 30\n")})
	waitState(t, srv, j.ID, fakepbs.Running)
	if err := srv.SetNodeState("cn1", "down", "node down"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Requeue(context.Background(), j.ID, &nodeFailed, "Job requeued, execution node cn1 down"); err != nil {
		t.Fatal(err)
	}
	got := job(t, srv, j.ID)
	if got.State != fakepbs.Queued || got.ExecHost != "" || got.ExitStatus == nil || *got.ExitStatus != -20 {
		t.Fatalf("requeued with its only node down: %+v", got)
	}
	if n := srv.Nodes(context.Background())[0]; n.AssignedCPUs != 0 || len(n.Jobs) != 0 {
		t.Errorf("the down node still holds the job: %+v", n)
	}
	if err := srv.SetNodeState("cn1", "free", ""); err != nil {
		t.Fatal(err)
	}
	if got := waitState(t, srv, j.ID, fakepbs.Running); got.ExecHost != "cn1/0" {
		t.Errorf("exec_host %q once the node is back", got.ExecHost)
	}
}

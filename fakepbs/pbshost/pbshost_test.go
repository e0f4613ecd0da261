package pbshost_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/pbshost"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/batch/batchtest"
	"github.com/jobsim/jobsim/sim/executor"
)

// A PBS server as a host's batch system: commands run through Run as in
// the host's shells, Jobs reports them with their PBS state, the control
// API's JSON is the full PBS record, and a restart that loses jobs leaves
// none.
func TestPBSAsABatchSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := batchtest.New(t)
	srv, err := fakepbs.NewServer(ctx, fakepbs.WithName("pbs"), fakepbs.WithClock(b.Clock), fakepbs.WithExecutor(executor.ForBatch(b.Exec)),
		fakepbs.WithNodes(fakepbs.NodeConfig{Name: "node1", NCPUs: 4}), fakepbs.WithFS(b.FS), fakepbs.WithHistory(true, 0))
	if err != nil {
		t.Fatal(err)
	}
	var sys batch.System = pbshost.New(srv, pbshost.WithHost("fakehpc"), pbshost.WithFS(b.FS))
	defer func() { _ = sys.Close() }()

	if sys.Kind() != "pbs" || !strings.Contains(strings.Join(sys.Commands(), " "), "qsub") {
		t.Fatalf("kind %q commands %v", sys.Kind(), sys.Commands())
	}
	res := sys.Run(ctx, batch.Invocation{Command: "qsub", Args: []string{"-N", "hello", "-h"}, Stdin: strings.NewReader("echo hi\n"), User: "alice", Cwd: "/home/alice"})
	if res.ExitCode != 0 || !strings.HasSuffix(strings.TrimSpace(string(res.Stdout)), ".pbs") {
		t.Fatalf("qsub: exit %d out %q err %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	id := strings.TrimSpace(string(res.Stdout))
	jobs := sys.Jobs(ctx, true)
	if len(jobs) != 1 || jobs[0].ID != id || jobs[0].Name != "hello" || jobs[0].User != "alice" || jobs[0].State != "H" {
		t.Fatalf("jobs %+v, want %s hello of alice held", jobs, id)
	}
	raw, err := json.Marshal(jobs[0])
	if err != nil {
		t.Fatal(err)
	}
	var back fakepbs.Job
	if err := json.Unmarshal(raw, &back); err != nil || back.ID != id || back.HoldTypes != "u" || back.Queue == "" {
		t.Fatalf("the control API's JSON is not the PBS record: %s (%v)", raw, err)
	}
	if res := sys.Run(ctx, batch.Invocation{Command: "qstat", Args: []string{"-B"}, User: "alice"}); res.ExitCode != 0 {
		t.Fatalf("qstat -B: exit %d %q", res.ExitCode, res.Stderr)
	}
	b.RestartLosingJobs(ctx, t, sys, time.Millisecond, true)
}

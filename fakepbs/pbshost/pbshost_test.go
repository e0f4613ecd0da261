package pbshost_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/pbshost"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// A PBS server as a host's batch system: commands run through Run as in
// the host's shells, Jobs reports them with their PBS state, the control
// API's JSON is the full PBS record, and a restart that loses jobs leaves
// none.
func TestPBSAsABatchSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	ve := virtual.New(virtual.WithFS(fs), virtual.WithClock(clk), virtual.WithHostname("node1"))
	srv, err := fakepbs.NewServer(ctx, fakepbs.WithName("pbs"), fakepbs.WithClock(clk), fakepbs.WithExecutor(executor.ForBatch(ve)),
		fakepbs.WithNodes(fakepbs.NodeConfig{Name: "node1", NCPUs: 4}), fakepbs.WithFS(fs), fakepbs.WithHistory(true, 0))
	if err != nil {
		t.Fatal(err)
	}
	var sys batch.System = pbshost.New(srv, pbshost.WithHost("fakehpc"), pbshost.WithFS(fs))
	defer func() { _ = sys.Close(); _ = ve.Close() }()

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
	if err := sys.Restart(ctx, batch.RestartOptions{Down: time.Millisecond, LoseJobs: true}); err != nil {
		t.Fatal(err)
	}
	if testutil.Poll("the server up again with no jobs", 10*time.Second, func() bool {
		if sys.Down() || len(sys.Jobs(ctx, true)) != 0 {
			clk.Advance(10 * time.Millisecond)
			return false
		}
		return true
	}) != nil {
		t.Fatalf("after a restart that loses jobs: down %v, jobs %+v", sys.Down(), sys.Jobs(ctx, true))
	}
}

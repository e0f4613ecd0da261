package mom

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/real"
)

// node is a MoM behind a switch that can make it stop answering, as a
// dead or cut-off node does.
type testNode struct {
	srv  *httptest.Server
	mom  *Server
	down atomic.Bool
	// refusedDeletes counts the DELETEs the node refused while down.
	refusedDeletes atomic.Int32
}

func newTestNode(t *testing.T, name string) *testNode {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "home", "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	rx, err := real.New(root, real.WithKillOrphans(), real.WithKillGrace(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewServer(name, "tok", executor.ForBatch(rx), WithSpool(filepath.Join(root, "spool")))
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{mom: m}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.down.Load() {
			if r.Method == http.MethodDelete {
				n.refusedDeletes.Add(1)
			}
			http.Error(w, "node down", http.StatusServiceUnavailable)
			return
		}
		m.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		n.srv.CloseClientConnections()
		n.srv.Close()
		_ = m.Close()
		_ = rx.Close()
	})
	return n
}

// states records what the dispatcher tells the PBS server about nodes.
type states struct {
	mu  sync.Mutex
	log []string
}

func (s *states) SetNodeState(name, state, comment string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, name+"="+state+":"+comment)
	return nil
}

func (s *states) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, "; ")
}

func dispatcher(t *testing.T, n *testNode, opts ...DispatcherOption) (*Dispatcher, *states) {
	t.Helper()
	d, err := NewDispatcher("tok", []Node{{Name: "cn1", URL: n.srv.URL}}, append([]DispatcherOption{WithHeartbeat(100*time.Millisecond, 3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	st := &states{}
	d.Attach(st, events.Discard{})
	t.Cleanup(func() { _ = d.Close() })
	return d, st
}

var jobSeq atomic.Int64

func start(t *testing.T, d *Dispatcher, ctx context.Context, script string, out, errb *testutil.SyncBuffer) batch.Process {
	t.Helper()
	id := strconv.FormatInt(jobSeq.Add(1), 10) + ".login"
	p, err := d.Start(ctx, batch.RunSpec{JobID: id, User: "alice", Node: "cn1", Script: []byte(script), Env: []string{"PBS_JOBID=" + id, "JOBSIM_PBS_SERVER=unix:/login/only"}, Stdout: out, Stderr: errb})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitStatus(t *testing.T, p batch.Process, within time.Duration) batch.ExitStatus {
	t.Helper()
	ch := make(chan batch.ExitStatus, 1)
	go func() { ch <- p.Wait() }()
	select {
	case st := <-ch:
		return st
	case <-time.After(within):
		t.Fatalf("the job did not end within %s", within)
		return batch.ExitStatus{}
	}
}

func TestJobRunsOnItsNodeWithOutputAndStatus(t *testing.T) {
	n := newTestNode(t, "cn1")
	d, _ := dispatcher(t, n)
	var out, errb testutil.SyncBuffer
	p := start(t, d, context.Background(), `echo "job $PBS_JOBID server=${JOBSIM_PBS_SERVER:-none}"; echo oops >&2; exit 3`, &out, &errb)
	st := waitStatus(t, p, 10*time.Second)
	if st.Code != 3 || st.Signal != 0 {
		t.Errorf("status %+v, want code 3", st)
	}
	if got := out.String(); !regexp.MustCompile(`^job \d+\.login server=none\n$`).MatchString(got) {
		t.Errorf("stdout %q (the login node's PBS client settings must not reach the node)", got)
	}
	if got := errb.String(); got != "oops\n" {
		t.Errorf("stderr %q", got)
	}
	if _, err := d.Start(context.Background(), batch.RunSpec{JobID: "2.login", User: "alice", Node: "cn7"}); err == nil || !strings.Contains(err.Error(), `node "cn7" has no MoM`) {
		t.Errorf("a job for an unknown node: %v", err)
	}
}

func TestJobScriptRunsFromAFileWithNodeFileAndTmpdir(t *testing.T) {
	n := newTestNode(t, "cn1")
	d, _ := dispatcher(t, n)
	dir := t.TempDir()
	var out, errb testutil.SyncBuffer
	// Cylc's job scripts re-exec "$0"; the node file and TMPDIR are the MoM's to make.
	// The node file is the server's: one line per MPI process of each chunk.
	script := "#!/bin/bash -l\nif [[ $1 != again ]]; then exec bash -l \"$0\" again; fi\necho \"args=$1 nodefile=$(paste -sd, $PBS_NODEFILE) tmpdir=$(test -d $TMPDIR && echo yes)\"\n"
	p, err := d.Start(context.Background(), batch.RunSpec{JobID: "77.login", User: "alice", Node: "cn1", Script: []byte(script), NodeFile: "cn1\ncn1\ncn2\ncn2\n",
		Env: []string{"PBS_NODEFILE=" + filepath.Join(dir, "aux", "77.login"), "TMPDIR=" + filepath.Join(dir, "tmp", "pbs.77.login")}, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitStatus(t, p, 10*time.Second); st.Code != 0 {
		t.Fatalf("status %+v, stderr %q", st, errb.String())
	}
	if got := out.String(); got != "args=again nodefile=cn1,cn1,cn2,cn2 tmpdir=yes\n" {
		t.Errorf("output %q", got)
	}
	for _, f := range []string{filepath.Join(dir, "aux", "77.login"), filepath.Join(dir, "tmp", "pbs.77.login")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is left after the job: %v", f, err)
		}
	}
}

func TestStreamResumesWithoutLosingOrRepeatingOutput(t *testing.T) {
	n := newTestNode(t, "cn1")
	d, _ := dispatcher(t, n)
	var out, errb testutil.SyncBuffer
	p := start(t, d, context.Background(), `for i in $(seq 1 30); do echo line$i; sleep 0.02; done`, &out, &errb)
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond)
		n.srv.CloseClientConnections() // the stream breaks; the job goes on
	}
	if st := waitStatus(t, p, 15*time.Second); st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	var want strings.Builder
	for i := 1; i <= 30; i++ {
		want.WriteString("line" + strconv.Itoa(i) + "\n")
	}
	if out.String() != want.String() {
		t.Errorf("output after broken streams:\n%s\nwant every line once, in order", out.String())
	}
}

func TestDeadNodeIsMarkedDownAndItsJobEndsAfterNodeFailRequeue(t *testing.T) {
	n := newTestNode(t, "cn1")
	d, st := dispatcher(t, n, WithNodeFailRequeue(600*time.Millisecond))
	var out, errb testutil.SyncBuffer
	p := start(t, d, context.Background(), `echo started; sleep 30`, &out, &errb)
	time.Sleep(300 * time.Millisecond)
	n.down.Store(true)
	n.srv.CloseClientConnections()
	began := time.Now()
	s := waitStatus(t, p, 10*time.Second)
	if s.Code != ExitNodeFailed {
		t.Errorf("status %+v, want Exit_status %d", s, ExitNodeFailed)
	}
	if took := time.Since(began); took < 600*time.Millisecond {
		t.Errorf("the job ended %s after the node died: before node_fail_requeue", took)
	}
	if got := st.String(); !strings.Contains(got, "cn1=down:node down: communication closed") {
		t.Errorf("node states %q, want cn1 down", got)
	}
	// The dispatcher's own attempt to drop the job met the dead node.
	testutil.WaitFor(t, "a refused DELETE of the job", 5*time.Second, func() bool { return n.refusedDeletes.Load() > 0 })
	n.down.Store(false)
	testutil.WaitFor(t, "the node that answers again to be back (cn1=free)", 5*time.Second, func() bool { return strings.Contains(st.String(), "cn1=free") })
	// The job the server gave up was killed on the node before it took
	// jobs again (a rerun must not meet its old self).
	if h := momHealth(t, n); len(h.JobIDs) != 0 {
		t.Errorf("the node back from down still has the job the server gave up: %+v", h)
	}
}

// momHealth asks a MoM directly what it has.
func momHealth(t *testing.T, n *testNode) Health {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/v1/mom/health", nil)
	req.Header.Set("Authorization", "Bearer tok")
	rec := httptest.NewRecorder()
	n.mom.ServeHTTP(rec, req)
	var h Health
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("health: %d %s (%v)", rec.Code, rec.Body.String(), err)
	}
	return h
}

func TestNodeBackBeforeNodeFailRequeueKeepsTheJob(t *testing.T) {
	n := newTestNode(t, "cn1")
	d, st := dispatcher(t, n, WithNodeFailRequeue(time.Minute))
	var out, errb testutil.SyncBuffer
	p := start(t, d, context.Background(), `echo before; sleep 1.5; echo after`, &out, &errb)
	time.Sleep(200 * time.Millisecond)
	n.down.Store(true)
	n.srv.CloseClientConnections()
	time.Sleep(700 * time.Millisecond)
	n.down.Store(false)
	if s := waitStatus(t, p, 10*time.Second); s.Code != 0 {
		t.Fatalf("status %+v", s)
	}
	if out.String() != "before\nafter\n" {
		t.Errorf("output %q", out.String())
	}
	if !strings.Contains(st.String(), "cn1=down") || !strings.HasSuffix(st.String(), "cn1=free:") {
		t.Errorf("node states %q: want down, then free", st)
	}
}

func TestSignalsAndCancelReachTheJob(t *testing.T) {
	n := newTestNode(t, "cn1")
	d, _ := dispatcher(t, n)
	var out, errb testutil.SyncBuffer
	p := start(t, d, context.Background(), `trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done`, &out, &errb)
	testutil.WaitFor(t, "the job to print ready", 10*time.Second, func() bool { return strings.Contains(out.String(), "ready") })
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if s := waitStatus(t, p, 10*time.Second); s.Code != 7 || !strings.Contains(out.String(), "got TERM") {
		t.Errorf("status %+v output %q", s, out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	var out2 testutil.SyncBuffer
	p2 := start(t, d, ctx, `echo ready; sleep 30`, &out2, &errb)
	testutil.WaitFor(t, "the second job to print ready", 10*time.Second, func() bool { return strings.Contains(out2.String(), "ready") })
	cancel()
	if s := waitStatus(t, p2, 10*time.Second); s.Signal != syscall.SIGKILL {
		t.Errorf("a cancelled job: status %+v, want killed", s)
	}
	testutil.WaitFor(t, "the MoM to hold no jobs", 5*time.Second, func() bool {
		n.mom.mu.Lock()
		defer n.mom.mu.Unlock()
		return len(n.mom.jobs) == 0
	})
}

// The MoM answers bad requests as the other jobsim servers do: 401 without
// the token, 400 for a second JSON value or an unknown field, 413 for an
// oversized job, each with a JSON error body, and runs nothing.
func TestRequestsAreCheckedStrictly(t *testing.T) {
	n := newTestNode(t, "cn1")
	send := func(token, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, n.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	job := `{"job_id":"1.pbs","user":"alice","script":"echo hi\n"}`
	for _, c := range []struct {
		token, path, body string
		want              int
	}{
		{"wrong", "/v1/mom/jobs", job, http.StatusUnauthorized},
		{"tok", "/v1/mom/jobs", job + job, http.StatusBadRequest},
		{"tok", "/v1/mom/jobs", `{"job_id":"1.pbs","user":"alice","scrip":"x"}`, http.StatusBadRequest},
		{"tok", "/v1/mom/jobs", `{"job_id":"1.pbs","user":"alice","script":"` + strings.Repeat("x", maxJobRequest) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		code, body := send(c.token, c.path, c.body)
		if code != c.want || !strings.HasPrefix(body, `{"error":`) || len(body) > 1024 {
			t.Errorf("%.60s: %d %.200s, want %d and a JSON error", c.body, code, body, c.want)
		}
	}
	if j := n.mom.job("1.pbs"); j != nil {
		t.Fatal("a refused request started a job")
	}
}

// A Slurm controller's batch script runs on the node its environment
// names (SLURMD_NODENAME), with the compute node's own client settings
// (the login node's JOBSIM_SLURM_* and SLURM_CONF are dropped), and its
// output and exit code come back; a script without a node is refused.
func TestSlurmExecutorRunsTheScriptOnItsNode(t *testing.T) {
	n := newTestNode(t, "cn1")
	d, _ := dispatcher(t, n)
	x := d.SlurmExecutor()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb testutil.SyncBuffer
	p, err := x.Start(ctx, executor.Command{
		User: "alice", Script: `echo "node=$SLURMD_NODENAME server=${JOBSIM_SLURM_SERVER:-none} conf=${SLURM_CONF:-none}"; echo oops >&2; exit 3`,
		Env:    []string{"SLURMD_NODENAME=cn1", "SLURM_JOB_ID=7", "JOBSIM_SLURM_SERVER=unix:/login/only", "SLURM_CONF=/login/slurm.conf"},
		Stdout: &out, Stderr: &errb,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Wait(); st.Code != 3 || st.Signal != 0 {
		t.Errorf("status %+v, want code 3", st)
	}
	if got := out.String(); got != "node=cn1 server=none conf=none\n" || errb.String() != "oops\n" {
		t.Errorf("stdout %q stderr %q", got, errb.String())
	}
	if _, err := x.Start(ctx, executor.Command{User: "alice", Script: "true", Env: []string{"SLURM_JOB_ID=8"}}); err == nil || !strings.Contains(err.Error(), "SLURMD_NODENAME") {
		t.Errorf("a script without a node: %v", err)
	}
}

// A node the Dispatcher finds dead fails in the Slurm controller as one
// whose slurmd stopped answering (DOWN, "Not responding") and returns to
// service when it answers again; a node an administrator drained is left
// drained.
func TestSlurmNodesFollowTheMoMs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := fakeslurm.NewServer(ctx, fakeslurm.WithNodes(fakeslurm.NodeConfig{Name: "cn1"}, fakeslurm.NodeConfig{Name: "cn2"}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	states := func() map[string]string {
		ns, err := srv.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, n := range ns {
			out[n.Name] = n.State + "/" + n.Reason
		}
		return out
	}
	ns := SlurmNodes(srv)
	if err := ns.SetNodeState("cn1", "down", "node down: communication closed"); err != nil {
		t.Fatal(err)
	}
	if got := states()["cn1"]; got != "DOWN/Not responding" {
		t.Errorf("a dead node: %s, want DOWN/Not responding", got)
	}
	if err := ns.SetNodeState("cn1", "free", ""); err != nil {
		t.Fatal(err)
	}
	if got := states()["cn1"]; got != "IDLE/" {
		t.Errorf("a node answering again: %s, want IDLE", got)
	}
	if err := srv.DrainNode(ctx, "cn2", "maintenance"); err != nil {
		t.Fatal(err)
	}
	if err := ns.SetNodeState("cn2", "free", ""); err != nil {
		t.Fatal(err)
	}
	if got := states()["cn2"]; got != "IDLE+DRAIN/maintenance" {
		t.Errorf("a drained node answering: %s, want it left drained", got)
	}
}

package sshd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/testutil"
)

func addRule(t *testing.T, h *testHost, r fault.Rule) fault.Rule {
	t.Helper()
	r.Layer = fault.SSH
	got, err := h.faults.Add(r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func intp(i int) *int { return &i }

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestFaultRefuseAuth(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	rule := addRule(t, h, fault.Rule{Effect: fault.Effect{Kind: fault.RefuseAuth}, Count: 1})
	r := h.ssh(ctx, "echo in")
	if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
		t.Errorf("refused login: %v", r)
	}
	ev := h.waitEvent(ctx, events.SSHAuth, nil)
	if ev.Fields["ok"] != false || ev.Fields["reason"] != "refused by fault "+rule.ID {
		t.Errorf("auth event: %+v", ev.Fields)
	}
	// Count 1 was used by the login, not by the connection before it.
	if r := h.ssh(ctx, "echo in"); r.code != 0 || r.stdout != "in\n" {
		t.Errorf("after the one refusal: %v", r)
	}
	// A user selector refuses only that user.
	addRule(t, h, fault.Rule{User: "bob", Effect: fault.Effect{Kind: fault.RefuseAuth}})
	if r := h.ssh(ctx, "true"); r.code != 0 {
		t.Errorf("alice refused by bob's rule: %v", r)
	}
}

func TestFaultSlowBanner(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	rule := addRule(t, h, fault.Rule{Effect: fault.Effect{Kind: fault.SlowBanner, Latency: fault.Duration(3 * time.Second)}})
	r := h.ssh(ctx, "-o", "ConnectTimeout=1", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "Connection timed out during banner exchange") {
		t.Errorf("banner slower than ConnectTimeout: %v", r)
	}
	h.faults.Remove(rule.ID)
	addRule(t, h, fault.Rule{Effect: fault.Effect{Kind: fault.SlowBanner, Latency: fault.Duration(700 * time.Millisecond)}})
	start := time.Now()
	r = h.ssh(ctx, "echo ok")
	if r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("slow banner within the timeout: %v", r)
	}
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("the banner came after %v, before the 700ms latency", d)
	}
}

func TestFaultDropAtConnect(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	addRule(t, h, fault.Rule{Ops: []string{"connect"}, Effect: fault.Effect{Kind: fault.Drop}})
	r := h.ssh(ctx, "true")
	// The client has sent its banner already: it sees a reset or a close.
	if r.code != 255 || !strings.Contains(r.stderr, "kex_exchange_identification") {
		t.Errorf("drop at connect: %v", r)
	}
}

func TestFaultLatencyOnMatchingCommands(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	rule := addRule(t, h, fault.Rule{Command: `^qsub\b`, Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(800 * time.Millisecond)}})
	start := time.Now()
	r := h.ssh(ctx, "qsub() { echo 1.pbs; }; qsub job.sh")
	if r.code != 0 || r.stdout != "1.pbs\n" {
		t.Errorf("delayed command: %v", r)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Errorf("qsub took %v, less than the 800ms latency", d)
	}
	// Another command is not selected: no activation is recorded for it.
	if r := h.ssh(ctx, "echo other"); r.code != 0 {
		t.Errorf("other command: %v", r)
	}
	n := 0
	for _, e := range h.events(events.FaultActivate) {
		if e.Fields["rule"] == rule.ID {
			n++
			if e.Fields["op"] != "exec" {
				t.Errorf("latency fired on %v", e.Fields["op"])
			}
		}
	}
	if n != 1 {
		t.Errorf("want 1 activation (qsub only), got %d", n)
	}
}

func TestFaultHang(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	rule := addRule(t, h, fault.Rule{Command: "held", Effect: fault.Effect{Kind: fault.Hang}})
	marker := filepath.Join(h.home, "held-ran")

	c := h.cmd(ctx, "ssh", "fakehpc", "touch held-ran; echo held done")
	var out bytes.Buffer
	c.Stdout = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(ctx, events.FaultActivate, func(e events.Event) bool { return e.Fields["rule"] == rule.ID })
	time.Sleep(200 * time.Millisecond)
	if exists(marker) {
		t.Fatal("the held command started")
	}
	h.faults.Remove(rule.ID)
	if err := c.Wait(); err != nil || out.String() != "held done\n" {
		t.Errorf("after the hang was cleared: %v %q", err, out.String())
	}
	if !exists(marker) {
		t.Error("the command did not run after the hang was cleared")
	}

	// A client that gives up while held: the command never runs.
	rule = addRule(t, h, fault.Rule{Command: "held", Effect: fault.Effect{Kind: fault.Hang}})
	marker2 := filepath.Join(h.home, "held-ran-2")
	c = h.cmd(ctx, "ssh", "fakehpc", "touch held-ran-2")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(ctx, events.FaultActivate, func(e events.Event) bool { return e.Fields["rule"] == rule.ID })
	c.Process.Kill()
	c.Wait()
	ev := h.waitEvent(ctx, events.SSHExec, func(e events.Event) bool { return e.Fields["command"] == "touch held-ran-2" })
	if ev.Fields["exit"] != -1 || !strings.Contains(ev.Fields["error"].(string), "went away") {
		t.Errorf("event of the abandoned command: %+v", ev.Fields)
	}
	h.faults.Remove(rule.ID)
	time.Sleep(100 * time.Millisecond)
	if exists(marker2) {
		t.Error("the abandoned command ran after the hang was cleared")
	}
}

func TestFaultDropMidCommand(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	addRule(t, h, fault.Rule{Command: "submit", Effect: fault.Effect{Kind: fault.Drop}})
	// The command runs (the job is submitted) but the client only sees the
	// connection go: the incident of a submission whose outcome is unknown.
	r := h.ssh(ctx, "sleep 0.2; echo submitted > submit-done; echo 1.pbs")
	// The client reports the cut in its own words, depending on what it was
	// doing: "Connection to ... closed by remote host." or "client_loop:
	// send disconnect: Broken pipe".
	if r.code != 255 || r.stdout != "" || !containsAny(r.stderr, "closed by remote host", "Broken pipe", "Connection reset") {
		t.Errorf("dropped command: %v", r)
	}
	testutil.WaitFor(t, "the command to finish on the host", 30*time.Second, func() bool { return exists(filepath.Join(h.home, "submit-done")) })
	ev := h.waitEvent(ctx, events.SSHExec, func(e events.Event) bool { return strings.Contains(e.Fields["command"].(string), "submit") })
	if ev.Fields["dropped"] != true || ev.Fields["exit"] != 0 {
		t.Errorf("exec event: %+v", ev.Fields)
	}
}

func TestFaultDropAfterBytes(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	addRule(t, h, fault.Rule{Ops: []string{"exec"}, Effect: fault.Effect{Kind: fault.Drop, AfterBytes: 1000}})
	r := h.ssh(ctx, `head -c 100000 /dev/zero | tr '\0' x`)
	if r.code != 255 || r.stdout != strings.Repeat("x", 1000) {
		t.Errorf("drop after 1000 bytes: exit %d, %d bytes of stdout, stderr %q", r.code, len(r.stdout), r.stderr)
	}
}

func TestFaultExit(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	addRule(t, h, fault.Rule{Command: `^qsub`, Effect: fault.Effect{Kind: fault.Exit, ExitCode: intp(42), Stderr: "qsub: cannot connect to server pbs (errno=111)\n"}})
	r := h.ssh(ctx, "qsub job.sh; touch qsub-ran")
	if r.code != 42 || r.stderr != "qsub: cannot connect to server pbs (errno=111)\n" || r.stdout != "" {
		t.Errorf("exit fault: %v", r)
	}
	if exists(filepath.Join(h.home, "qsub-ran")) {
		t.Error("the command ran despite the exit fault")
	}
	// Default: 255 and no output, which the client cannot tell from its own failure.
	addRule(t, h, fault.Rule{Command: `^qstat`, Effect: fault.Effect{Kind: fault.Exit}})
	if r := h.ssh(ctx, "qstat"); r.code != 255 || r.stderr != "" {
		t.Errorf("default exit fault: %v", r)
	}
	ev := h.waitEvent(ctx, events.SSHExec, func(e events.Event) bool { return e.Fields["command"] == "qstat" })
	if ev.Fields["exit"] != 255 || ev.Fields["faults"] == nil {
		t.Errorf("event: %+v", ev.Fields)
	}
}

func TestFaultSFTPAndForward(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 60*time.Second)
	rule := addRule(t, h, fault.Rule{Ops: []string{"sftp"}, Effect: fault.Effect{Kind: fault.Exit, ExitCode: intp(1), Stderr: "sftp refused\n"}})
	if r := h.sftpBatch(ctx, "pwd"); r.code == 0 {
		t.Errorf("sftp with an exit fault: %v", r)
	}
	h.faults.Remove(rule.ID)

	// A 20 MB download cut after 1 MB.
	writeRandom(t, filepath.Join(h.home, "big"), 20<<20)
	rule = addRule(t, h, fault.Rule{Ops: []string{"sftp"}, Effect: fault.Effect{Kind: fault.Drop, AfterBytes: 1 << 20}})
	out := filepath.Join(h.dir, "big")
	r := h.sftpBatch(ctx, "get big "+out)
	if r.code == 0 {
		t.Errorf("cut download succeeded: %v", r)
	}
	if fi, err := os.Stat(out); err == nil && fi.Size() >= 20<<20 {
		t.Errorf("the whole file arrived despite the drop")
	}
	h.faults.Remove(rule.ID)
	if r := h.sftpBatch(ctx, "get big "+out); r.code != 0 || sha(t, out) != sha(t, filepath.Join(h.home, "big")) {
		t.Errorf("download after clearing: %v", r)
	}

	addRule(t, h, fault.Rule{Ops: []string{"forward"}, Effect: fault.Effect{Kind: fault.Exit, Stderr: "tunnel refused"}})
	if r := h.run(ctx, strings.NewReader(""), "ssh", "-W", "127.0.0.1:9", "fakehpc"); r.code != 255 || !strings.Contains(r.stderr, "stdio forwarding failed") {
		t.Errorf("forward with an exit fault: %v", r)
	}
	ev := h.waitEvent(ctx, events.SSHForward, nil)
	if ev.Fields["ok"] != false || ev.Fields["error"] != "tunnel refused" {
		t.Errorf("forward event: %+v", ev.Fields)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// A command held by a latency rule goes on as soon as the rule is cleared,
// instead of waiting the latency out.
func TestFaultLatencyReleasedWhenCleared(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	rule := addRule(t, h, fault.Rule{Command: "held", Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(time.Hour)}})
	c := h.cmd(ctx, "ssh", "fakehpc", "echo held done")
	var out bytes.Buffer
	c.Stdout = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(ctx, events.FaultActivate, func(e events.Event) bool { return e.Fields["rule"] == rule.ID })
	h.faults.Remove(rule.ID)
	if err := c.Wait(); err != nil || out.String() != "held done\n" {
		t.Errorf("after the latency was cleared: %v %q", err, out.String())
	}
}

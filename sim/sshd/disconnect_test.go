package sshd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// What happens to a command whose client goes away follows OpenSSH's sshd
// (seen with OpenSSH 9.2 on Debian 12): a command without a pty runs on
// with its stdin at EOF, and its next write to stdout fails (bash dies of
// SIGPIPE); a command on a pty is hung up (SIGHUP). The same scripts run
// against a real sshd started beside ours, when /usr/sbin/sshd is there.

// liveProc reports whether pid is a process that has not exited (a zombie,
// which a container's pid 1 may never reap, counts as gone).
func liveProc(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	stat := string(b)
	i := strings.LastIndexByte(stat, ')')
	f := strings.Fields(stat[i+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// startAndKillClient runs script on host with the real ssh client (extra
// arguments first), waits for the line "started", reads the pid the script
// wrote to dir/pid and kills the client (no goodbye).
func startAndKillClient(ctx context.Context, t *testing.T, h *testHost, host, dir, script string, extra ...string) int {
	t.Helper()
	c := h.cmd(ctx, "ssh", append(extra, host, script)...)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("started"))
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "started" {
		_ = c.Process.Kill()
		_ = c.Wait()
		t.Fatalf("%s: command did not start: %q %v", host, buf, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: pid file: %q", host, b)
	}
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait()
	return pid
}

// disconnectCase is one script and what must be seen after its client was
// killed: the files it must write (it ran on, or its trap ran) and those it
// must not (it died).
type disconnectCase struct {
	name    string
	pty     bool
	script  string // %[1]s is the case's directory
	want    []string
	notWant []string
	signal  string // how our ssh.exec event says it ended ("" = exit)
}

var disconnectCases = []disconnectCase{{
	// The issue's `ssh host 'sleep 21; echo done'`: sleep runs on, the
	// echo then dies of SIGPIPE (stdout is gone).
	name:    "no-pty-runs-on",
	script:  `echo $$ > %[1]s/pid; echo started; read line; echo "eof $?" > %[1]s/stdin; sleep 1; echo slept > %[1]s/slept; echo done; echo wrote > %[1]s/wrote`,
	want:    []string{"stdin", "slept"},
	notWant: []string{"wrote"},
	signal:  "PIPE",
}, {
	name:    "pty-hangup-trapped",
	pty:     true,
	script:  `trap 'echo hup > %[1]s/hup' HUP; echo $$ > %[1]s/pid; echo started; sleep 1; echo after > %[1]s/after`,
	want:    []string{"hup", "after"},
	notWant: nil,
}, {
	name:    "pty-hangup-kills",
	pty:     true,
	script:  `echo $$ > %[1]s/pid; echo started; sleep 5; echo after > %[1]s/after`,
	notWant: []string{"after"},
	signal:  "HUP",
}}

// runDisconnectCase runs c on host (the fake or the real sshd) and checks
// what the command did after its client was killed.
// It returns the command line sent.
func runDisconnectCase(ctx context.Context, t *testing.T, h *testHost, host string, c disconnectCase) string {
	t.Helper()
	dir := t.TempDir()
	var extra []string
	if c.pty {
		extra = []string{"-tt"}
	}
	script := fmt.Sprintf(c.script, dir)
	pid := startAndKillClient(ctx, t, h, host, dir, script, extra...)
	if !c.pty && !liveProc(pid) {
		t.Errorf("%s: the command died with its client", host)
	}
	testutil.WaitFor(t, host+": the command to end", 30*time.Second, func() bool { return !liveProc(pid) })
	for _, w := range c.want {
		if !exists(filepath.Join(dir, w)) {
			t.Errorf("%s: %s not written: the command did not get there", host, w)
		}
	}
	for _, w := range c.notWant {
		if exists(filepath.Join(dir, w)) {
			t.Errorf("%s: %s written: the command went on where it should have died", host, w)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "stdin")); err == nil && strings.TrimSpace(string(b)) != "eof 1" {
		t.Errorf("%s: stdin after the client left: %q, want EOF", host, b)
	}
	return script
}

func TestClientGoneAsOpenSSH(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 60*time.Second)
	for _, c := range disconnectCases {
		t.Run(c.name, func(t *testing.T) {
			script := runDisconnectCase(ctx, t, h, "fakehpc", c)
			ev := h.waitEvent(ctx, events.SSHExec, func(e events.Event) bool { return e.Fields["command"] == script })
			if ev.Fields["client_gone_ms"] == nil {
				t.Errorf("ssh.exec does not say the client left: %+v", ev.Fields)
			}
			if got, _ := ev.Fields["signal"].(string); got != c.signal {
				t.Errorf("ssh.exec signal %q, want %q: %+v", got, c.signal, ev.Fields)
			}
			if ev.Fields["killed_on_disconnect"] != nil {
				t.Errorf("killed on disconnect by default: %+v", ev.Fields)
			}
		})
	}
}

// TestClientGoneRealSSHD runs the same cases against Debian's sshd: the
// authority for what TestClientGoneAsOpenSSH expects.
func TestClientGoneRealSSHD(t *testing.T) {
	e := newBenchEnv(t)
	ctx := testCtx(t, 60*time.Second)
	for _, c := range disconnectCases {
		t.Run(c.name, func(t *testing.T) { runDisconnectCase(ctx, t, e.testHost, "realsshd", c) })
	}
}

// TestChannelCloseLeavesCommand: over a ControlMaster connection, killing a
// mux client closes only its channel; the command runs on, as under
// OpenSSH's sshd, and the master connection stays usable.
func TestChannelCloseLeavesCommand(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	mux := []string{"-o", "ControlMaster=auto", "-o", "ControlPath=" + filepath.Join(h.cmDir, "%C"), "-o", "ControlPersist=60"}
	t.Cleanup(func() { _ = h.cmd(testCtx(t, 10*time.Second), "ssh", append(mux, "-O", "exit", "fakehpc")...).Run() })
	if r := h.ssh(ctx, append(mux, "true")...); r.code != 0 {
		t.Fatalf("master: %v", r)
	}
	dir := t.TempDir()
	pid := startAndKillClient(ctx, t, h, "fakehpc", dir, fmt.Sprintf(`echo $$ > %[1]s/pid; echo started; sleep 1; echo slept > %[1]s/slept`, dir), mux...)
	if !liveProc(pid) {
		t.Errorf("the command died with its channel")
	}
	testutil.WaitFor(t, "the command to end", 30*time.Second, func() bool { return !liveProc(pid) })
	if !exists(filepath.Join(dir, "slept")) {
		t.Errorf("the command did not run to its end after its channel closed")
	}
	if r := h.ssh(ctx, append(mux, "echo still-up")...); r.stdout != "still-up\n" {
		t.Errorf("master connection after a channel closed: %v", r)
	}
}

// TestCloseEndsCommandsThatOutlivedTheirClient: a command left running by
// its client still dies with the server.
func TestCloseEndsCommandsThatOutlivedTheirClient(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	dir := t.TempDir()
	pid := startAndKillClient(ctx, t, h, "fakehpc", dir, fmt.Sprintf(`echo $$ > %s/pid; echo started; exec sleep 60`, dir))
	h.waitEvent(ctx, events.SSHAuth, nil)
	time.Sleep(200 * time.Millisecond) // the server notices the client is gone
	if !liveProc(pid) {
		t.Fatalf("the command died with its client")
	}
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if liveProc(pid) {
		t.Errorf("command %d survives the server's Close", pid)
	}
}

// TestKillOnDisconnect: WithKillOnDisconnect ends a command whose client
// went away: SIGHUP, SIGTERM, and SIGKILL after the grace period when it
// ignores them.
func TestKillOnDisconnect(t *testing.T) {
	h := newTestHost(t, WithKillOnDisconnect())
	ctx := testCtx(t, 30*time.Second)
	for _, tc := range []struct {
		name, script, marker, signal string
	}{
		{"hup", `trap 'echo got-hup > %[1]s/marker; exit 1' HUP; echo $$ > %[1]s/pid; echo started; while :; do sleep 0.05; done`, "got-hup", ""},
		{"ignores", `trap '' HUP TERM; echo $$ > %[1]s/pid; echo started; while :; do sleep 0.05; done`, "", "KILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			script := fmt.Sprintf(tc.script, dir)
			pid := startAndKillClient(ctx, t, h, "fakehpc", dir, script)
			testutil.WaitFor(t, "the remote command to die", 30*time.Second, func() bool { return !liveProc(pid) })
			if tc.marker != "" {
				b, _ := os.ReadFile(filepath.Join(dir, "marker"))
				if strings.TrimSpace(string(b)) != tc.marker {
					t.Errorf("marker %q, want %q; %+v", b, tc.marker, h.events(events.SSHExec))
				}
			}
			ev := h.waitEvent(ctx, events.SSHExec, func(e events.Event) bool { return e.Fields["command"] == script })
			if ev.Fields["killed_on_disconnect"] != true || (tc.signal != "" && ev.Fields["signal"] != tc.signal) {
				t.Errorf("event: %+v", ev.Fields)
			}
		})
	}
}

// TestClientGoneVirtualExecutor: on a virtual host too the command runs on
// after its client left, with stdin at EOF; its writes to stdout fail
// (the virtual shell has no SIGPIPE, so it is not killed by them).
func TestClientGoneVirtualExecutor(t *testing.T) {
	mem := afero.NewMemMapFs()
	if err := mem.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	ve := virtual.New(virtual.WithFS(mem))
	t.Cleanup(func() { ve.Close() })
	h := newTestHost(t, WithExecutor(ve))
	ctx := testCtx(t, 30*time.Second)
	c := h.cmd(ctx, "ssh", "fakehpc", `echo started; read line; echo "eof $?" > stdin; sleep 1; echo slept > slept; echo done; echo "wrote $?" > wrote`)
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("started"))
	if _, err := io.ReadFull(out, buf); err != nil {
		t.Fatal(err)
	}
	_ = c.Process.Kill()
	_ = c.Wait()
	ev := h.waitEvent(ctx, events.SSHExec, nil)
	read := func(name string) string {
		b, _ := afero.ReadFile(mem, "/home/alice/"+name)
		return strings.TrimSpace(string(b))
	}
	if read("stdin") != "eof 1" || read("slept") != "slept" {
		t.Errorf("the command did not run on with stdin at EOF: stdin %q slept %q (%+v)", read("stdin"), read("slept"), ev.Fields)
	}
	if ev.Fields["client_gone_ms"] == nil {
		t.Errorf("ssh.exec does not say the client left: %+v", ev.Fields)
	}
	t.Logf("after the client left, echo's status: %q", read("wrote"))
}

package sshd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExecStdioAndExitStatus(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)

	r := h.run(ctx, strings.NewReader("line one\nline two\n"), "ssh", "fakehpc",
		`tr a-z A-Z; echo "to stderr" >&2; pwd; exit 7`)
	if r.code != 7 {
		t.Fatalf("want exit 7: %v", r)
	}
	if want := "LINE ONE\nLINE TWO\n" + h.home + "\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if r.stderr != "to stderr\n" {
		t.Errorf("stderr %q, want %q", r.stderr, "to stderr\n")
	}

	// The command line arrives as one string for the user's shell, as sshd does.
	r = h.ssh(ctx, "printf", "'%s|'", "a b", `"c d"`)
	if r.code != 0 || r.stdout != "a|b|c d|" {
		t.Errorf("quoting: %v", r)
	}

	// Without -n the client's stdin stays open: the command's end must
	// still end the session.
	c := h.cmd(ctx, "ssh", "fakehpc", "true")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	c.Stdin = pr
	if err := c.Run(); err != nil {
		t.Errorf("ssh fakehpc true with an open stdin: %v", err)
	}

	ev := h.waitEvent(ctx, events.SSHExec, func(e events.Event) bool { return strings.Contains(e.Fields["command"].(string), "tr a-z") })
	if ev.Fields["exit"] != 7 || ev.Fields["user"] != "alice" || ev.Fields["bytes_in"] != int64(18) || ev.Fields["bytes_err"] != int64(10) {
		t.Errorf("exec event: %+v", ev.Fields)
	}
	if _, ok := ev.Fields["duration_ms"].(float64); !ok {
		t.Errorf("exec event has no duration: %+v", ev.Fields)
	}
}

func TestEnvPassing(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	c := h.cmd(ctx, "ssh", "-o", "SendEnv=JOBSIM_*", "fakehpc", `echo "$JOBSIM_A|$JOBSIM_B|$OTHER|${SSH_CONNECTION:+set}"`)
	c.Env = append(c.Env, "JOBSIM_A=alpha", "JOBSIM_B=two words", "OTHER=not sent")
	out, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "alpha|two words||set\n" {
		t.Errorf("env: %q", got)
	}
	// SetEnv sends a variable from the config itself.
	r := h.ssh(ctx, "-o", "SetEnv=JOBSIM_C=from-config", "echo $JOBSIM_C")
	if r.stdout != "from-config\n" {
		t.Errorf("SetEnv: %v", r)
	}
}

func TestAcceptEnvRestricts(t *testing.T) {
	h := newTestHost(t, WithAcceptEnv(func(n string) bool { return strings.HasPrefix(n, "OK_") }))
	ctx := testCtx(t, 30*time.Second)
	r := h.ssh(ctx, "-o", "SetEnv=OK_A=1 NO_B=2", `echo "${OK_A:-unset}${NO_B:-unset}"`)
	if r.stdout != "1unset\n" {
		t.Errorf("AcceptEnv: %v", r)
	}
}

func TestPTYShell(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	c := h.cmd(ctx, "ssh", "-tt", "fakehpc")
	c.Env = append(c.Env, "TERM=xterm-256color")
	c.Stdin = strings.NewReader("echo hello-$((6*7)); tty; echo term=$TERM; exit 3\n")
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("want exit 3 from the shell, got %v; output %q", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"hello-42\r\n", "/dev/pts/", "term=xterm-256color"} {
		if !strings.Contains(s, want) {
			t.Errorf("pty output lacks %q: %q", want, s)
		}
	}
	ev := h.waitEvent(ctx, events.SSHExec, nil)
	if ev.Fields["op"] != "shell" || ev.Fields["pty"] != true || ev.Fields["exit"] != 3 {
		t.Errorf("shell event: %+v", ev.Fields)
	}

	// A command with -t gets a pty too: stdout and stderr both through it.
	r := h.ssh(ctx, "-tt", "test -t 0 && test -t 1 && echo tty-ok; echo err >&2")
	if r.code != 0 || !strings.Contains(r.stdout, "tty-ok\r\nerr\r\n") {
		t.Errorf("ssh -tt command: %v", r)
	}
}

func TestWindowChangeResizes(t *testing.T) {
	t.Run("real-executor", func(t *testing.T) {
		if raceEnabled {
			// The real executor's Resize reads the pty's fd (os.File.Fd)
			// while its wait goroutine closes it: unsynchronised.
			t.Skip("sim/executor/real: Process.Resize races the pty Close after exit (pty.Setsize uses os.File.Fd); runs without -race")
		}
		testWindowChange(t, newTestHost(t))
	})
	t.Run("test-executor", func(t *testing.T) {
		h := newTestHost(t)
		h.exec = bashExec{home: h.home}
		srv, err := Start(testCtx(t, time.Minute), WithAuthorizedKey("alice", mustPub(t, h.key)), WithExecutor(h.exec))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		h.srv = srv
		testWindowChange(t, h)
	})
}

func testWindowChange(t *testing.T, h *testHost) {
	c := h.goClient(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 40, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	var out testutil.SyncBuffer
	sess.Stdout = &out
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	seen := func(s string) func() bool {
		return func() bool { return strings.Contains(out.String(), s) }
	}
	fmt.Fprintln(in, "echo size=$(stty size)")
	testutil.WaitFor(t, "initial size 40 100", 30*time.Second, seen("size=40 100"))
	if err := sess.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "resized 50 132", 30*time.Second, func() bool {
		fmt.Fprintln(in, "echo size=$(stty size)")
		time.Sleep(50 * time.Millisecond)
		return seen("size=50 132")()
	})
	fmt.Fprintln(in, "exit")
	if err := sess.Wait(); err != nil {
		t.Errorf("shell end: %v", err)
	}
}

func TestControlMasterManyChannels(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 60*time.Second)
	cp := filepath.Join(h.cmDir, "%C")
	mux := []string{"-o", "ControlMaster=auto", "-o", "ControlPath=" + cp, "-o", "ControlPersist=60"}
	t.Cleanup(func() {
		// Kill the master even when the test failed half way.
		_ = h.cmd(testCtx(t, 10*time.Second), "ssh", append(mux, "-O", "exit", "fakehpc")...).Run()
	})
	for i := range 3 {
		r := h.ssh(ctx, append(mux, fmt.Sprintf("echo seq-%d; exit %d", i, i))...)
		if r.code != i || r.stdout != fmt.Sprintf("seq-%d\n", i) {
			t.Fatalf("command %d over the master: %v", i, r)
		}
	}
	// Several channels at once over the one connection, with stdin.
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.run(ctx, strings.NewReader(fmt.Sprintf("in-%d", i)), "ssh", append(mux, "fakehpc", "sleep 0.3; cat")...)
			if r.code != 0 || r.stdout != fmt.Sprintf("in-%d", i) {
				errs <- fmt.Sprintf("parallel %d: %v", i, r)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if r := h.ssh(ctx, append(mux, "-O", "check")...); r.code != 0 {
		t.Errorf("ssh -O check: %v", r)
	}
	// One login, one connection for all seven commands.
	if n := len(h.events(events.SSHAuth)); n != 1 {
		t.Errorf("want 1 auth event with ControlMaster, got %d", n)
	}
	execs := h.events(events.SSHExec)
	if len(execs) != 7 {
		t.Fatalf("want 7 exec events, got %d", len(execs))
	}
	for _, e := range execs {
		if e.Fields["conn"] != execs[0].Fields["conn"] {
			t.Errorf("exec over another connection: %v vs %v", e.Fields["conn"], execs[0].Fields["conn"])
		}
	}
	if r := h.ssh(ctx, append(mux, "-O", "exit")...); r.code != 0 {
		t.Errorf("ssh -O exit: %v", r)
	}
}

func TestWrongKeyRefused(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	other := filepath.Join(h.dir, "id_other")
	otherPub := newKey(t, other)
	h.writeConfig(other)
	r := h.ssh(ctx, "echo should-not-run")
	if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") || r.stdout != "" {
		t.Errorf("wrong key: %v", r)
	}
	evs := h.events(events.SSHAuth)
	if len(evs) == 0 {
		t.Fatal("no auth event")
	}
	e := evs[0]
	if e.Fields["ok"] != false || e.Fields["key"] != gossh.FingerprintSHA256(otherPub) || e.Fields["reason"] != "key not authorized" {
		t.Errorf("auth event: %+v", e.Fields)
	}
	if n := len(h.events(events.SSHExec)); n != 0 {
		t.Errorf("%d commands ran after a refused login", n)
	}

	// An unknown user is refused the same way.
	h.writeConfig(h.key, "  User mallory")
	if r := h.ssh(ctx, "true"); r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
		t.Errorf("unknown user: %v", r)
	}
}

func TestAuthorizedKeysFileAndAddUser(t *testing.T) {
	needOpenSSH(t)
	dir := t.TempDir()
	pub := newKey(t, filepath.Join(dir, "id"))
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, append([]byte("# a comment\n\n"), gossh.MarshalAuthorizedKey(pub)...), 0o600)
	if _, err := New(WithAuthorizedKeysFile("bob", filepath.Join(dir, "missing"))); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing authorized_keys file: %v", err)
	}
	if _, err := New(WithAuthorizedKeys("bob", []byte("ssh-ed25519 notbase64!\n"))); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad authorized_keys: %v", err)
	}
	h := newTestHost(t, WithAuthorizedKeysFile("bob", ak))
	ctx := testCtx(t, 30*time.Second)
	os.MkdirAll(filepath.Join(h.root, "home", "bob"), 0o755)
	h.writeConfig(filepath.Join(dir, "id"), "  User bob")
	if r := h.ssh(ctx, "echo $USER"); r.code != 0 || r.stdout != "bob\n" {
		t.Errorf("bob from authorized_keys file: %v", r)
	}
	h.srv.RemoveUser("bob")
	if r := h.ssh(ctx, "true"); r.code != 255 {
		t.Errorf("removed user still logs in: %v", r)
	}
	if err := h.srv.AddUser(User{Name: "bob", Keys: []gossh.PublicKey{pub}}); err != nil {
		t.Fatal(err)
	}
	if r := h.ssh(ctx, "true"); r.code != 0 {
		t.Errorf("re-added user: %v", r)
	}
}

func TestPasswordOnlyWhenAsked(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	h := newTestHost(t)
	// Without a password option, password auth is not even offered.
	c, err := gossh.Dial("tcp", h.srv.Addr(), &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.Password("x")},
		HostKeyCallback: gossh.FixedHostKey(h.srv.HostKey())})
	if err == nil {
		c.Close()
		t.Fatal("password login accepted without WithPassword")
	}
	if !strings.Contains(err.Error(), "no supported methods remain") {
		t.Errorf("offered methods: %v", err)
	}
	r := h.ssh(ctx, "-o", "PreferredAuthentications=password", "true")
	if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
		t.Errorf("real client: %v", r)
	}

	h2 := newTestHost(t, WithPassword("alice", "s3cret"))
	for pw, ok := range map[string]bool{"s3cret": true, "wrong": false} {
		c, err := gossh.Dial("tcp", h2.srv.Addr(), &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.Password(pw)},
			HostKeyCallback: gossh.FixedHostKey(h2.srv.HostKey())})
		if (err == nil) != ok {
			t.Errorf("password %q: err %v", pw, err)
		}
		if err == nil {
			c.Close()
		}
	}
	evs := h2.events(events.SSHAuth)
	if len(evs) != 2 || evs[0].Fields["method"] != "password" {
		t.Errorf("password auth events: %v", evs)
	}
}

func TestExitSignal(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	// OpenSSH's client, as with a real sshd, exits 255 on exit-signal.
	if r := h.ssh(ctx, "kill -TERM $$"); r.code != 255 {
		t.Errorf("real client on a signalled command: %v", r)
	}
	c := h.goClient(t)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	err = sess.Run("kill -USR1 $$")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "USR1" {
		t.Errorf("want exit-signal USR1, got %v", err)
	}
}

func TestLocalForward(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	defer web.Close()
	webPort := web.Listener.Addr().(interface{ String() string }).String()
	_, hp, _ := strings.Cut(webPort, ":")
	lport := testutil.FreePort(t)
	c := h.cmd(ctx, "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%s", lport, hp), "fakehpc")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/notebook", lport)
	var body string
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	testutil.WaitFor(t, "the tunnel", 30*time.Second, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return true
	})
	if body != "hello from /notebook" {
		t.Errorf("through the tunnel: %q", body)
	}
	ev := h.waitEvent(ctx, events.SSHForward, nil)
	if ev.Fields["dest"] != "127.0.0.1:"+hp || ev.Fields["ok"] != true || ev.Fields["bytes_down"].(int64) == 0 {
		t.Errorf("forward event: %+v", ev.Fields)
	}

	// ssh -W (stdio forwarding) uses the same channel type.
	r := h.run(ctx, strings.NewReader("GET /w HTTP/1.0\r\n\r\n"), "ssh", "-W", "127.0.0.1:"+hp, "fakehpc")
	if !strings.Contains(r.stdout, "hello from /w") {
		t.Errorf("ssh -W: %v", r)
	}
}

func TestForwardLoopbackOnly(t *testing.T) {
	h := newTestHost(t, WithForwarding(ForwardLoopback))
	ctx := testCtx(t, 30*time.Second)
	r := h.run(ctx, strings.NewReader(""), "ssh", "-W", "192.0.2.1:80", "fakehpc")
	if r.code != 255 || !strings.Contains(r.stderr, "stdio forwarding failed") {
		t.Errorf("forward to a non-loopback target: %v", r)
	}
	ev := h.waitEvent(ctx, events.SSHForward, nil)
	if ev.Fields["ok"] != false || !strings.Contains(ev.Fields["error"].(string), "not allowed") {
		t.Errorf("event: %+v", ev.Fields)
	}
}

func TestCloseKillsRunningCommands(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	c := h.cmd(ctx, "ssh", "fakehpc", `trap '' HUP TERM; echo $$ > pid-close; echo started; exec sleep 60`)
	out, _ := c.StdoutPipe()
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(out, buf); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(h.home, "pid-close"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	start := time.Now()
	if err := h.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) != syscall.ESRCH {
		t.Errorf("command %d survives Close", pid)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	err := c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Errorf("client after Close: %v %q", err, errb.String())
	}
	if _, err := h.srv.Addr(), h.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestHostKey(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if a.HostKey().Type() != "ssh-ed25519" || a.Fingerprint() == b.Fingerprint() || !strings.HasPrefix(a.Fingerprint(), "SHA256:") {
		t.Errorf("generated host keys: %s %s %s", a.HostKey().Type(), a.Fingerprint(), b.Fingerprint())
	}
	k, _ := NewHostKey()
	c, err := New(WithHostKey(k))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() != gossh.FingerprintSHA256(k.PublicKey()) {
		t.Error("WithHostKey not used")
	}
	if _, err := New(WithHostKeyPEM([]byte("junk"))); err == nil || !strings.Contains(err.Error(), "WithHostKeyPEM") {
		t.Errorf("bad PEM: %v", err)
	}
	for _, s := range []*Server{a, b, c} {
		s.Close()
	}
}

func TestShellWithoutPTY(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	r := h.run(ctx, strings.NewReader("echo from-stdin-shell\ntest -t 0 || echo no-tty\n"), "ssh", "-T", "fakehpc")
	if r.code != 0 || r.stdout != "from-stdin-shell\nno-tty\n" {
		t.Errorf("ssh -T shell: %v", r)
	}
}

func TestServeAndListenAndServe(t *testing.T) {
	needOpenSSH(t)
	h := newTestHost(t)
	ctx, cancel := context.WithCancel(testCtx(t, 30*time.Second))
	defer cancel()
	srv, err := New(WithAuthorizedKey("alice", mustPub(t, h.key)), WithExecutor(h.exec))
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != "" || srv.Port() != 0 {
		t.Errorf("address before listening: %q", srv.Addr())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	testutil.WaitFor(t, "Serve to register its listener", 30*time.Second, func() bool { return srv.Addr() != "" })
	h.srv = srv
	h.writeConfig(h.key)
	if r := h.ssh(ctx, "echo served"); r.stdout != "served\n" {
		t.Errorf("through Serve: %v", r)
	}
	cancel() // ending Serve's context closes the server
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if _, err := net.Dial("tcp", srv.Addr()); err == nil {
		t.Error("the listener is still open")
	}
	srv.Close()

	srv2, err := New(WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(testCtx(t, 30*time.Second))
	go func() { served <- srv2.ListenAndServe(ctx2) }()
	testutil.WaitFor(t, "ListenAndServe to listen", 30*time.Second, func() bool { return srv2.Port() != 0 })
	cancel2()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServe returned %v", err)
	}
	if err := srv2.Serve(context.Background(), ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

// ssh -R: the host listens on loopback and carries what connects there back
// to the client's side; the listener goes with the client, and a policy or
// a fault rule can refuse the forward.
func TestRemoteForward(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hub reached at %s", r.URL.Path)
	}))
	defer web.Close()
	_, hp, _ := strings.Cut(web.Listener.Addr().String(), ":")
	var stderr testutil.SyncBuffer
	c := h.cmd(ctx, "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO", "-R", "0:127.0.0.1:"+hp, "fakehpc")
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }()
	t.Cleanup(func() { c.Process.Kill(); <-exited })
	// OpenSSH prints the port the server allocated.
	re := regexp.MustCompile(`Allocated port (\d+) for remote forward`)
	var port string
	testutil.WaitFor(t, "the allocated port", 30*time.Second, func() bool {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			port = m[1]
			return true
		}
		return false
	})
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://127.0.0.1:" + port + "/hub/api")
	if err != nil {
		t.Fatalf("through the remote forward: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hub reached at /hub/api" {
		t.Errorf("through the remote forward: %q", b)
	}
	ev := h.waitEvent(ctx, events.SSHForward, func(e events.Event) bool { return e.Fields["direction"] == "remote" })
	if ev.Fields["ok"] != true || ev.Fields["listen"] != "127.0.0.1:"+port {
		t.Errorf("remote forward event: %+v", ev.Fields)
	}
	// The listener goes with the client.
	c.Process.Kill()
	<-exited
	testutil.WaitFor(t, "the listener to close", 30*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})

	// A fault rule refuses it, as a site's sshd with forwarding off would.
	if _, err := h.faults.Add(fault.Rule{ID: "no-R", Layer: fault.SSH, Ops: []string{"forward"}, Command: "^-R ", Effect: fault.Effect{Kind: fault.Exit}}); err != nil {
		t.Fatal(err)
	}
	r := h.run(ctx, nil, "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:"+hp, "fakehpc")
	if r.code != 255 || !strings.Contains(r.stderr, "remote port forwarding failed") {
		t.Errorf("refused remote forward: %v", r)
	}
}

func TestRemoteForwardPolicyNone(t *testing.T) {
	h := newTestHost(t, WithForwarding(ForwardNone))
	ctx := testCtx(t, 30*time.Second)
	r := h.run(ctx, nil, "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:80", "fakehpc")
	if r.code != 255 || !strings.Contains(r.stderr, "remote port forwarding failed") {
		t.Errorf("remote forward with forwarding off: %v", r)
	}
	ev := h.waitEvent(ctx, events.SSHForward, nil)
	if ev.Fields["ok"] != false || ev.Fields["direction"] != "remote" || !strings.Contains(ev.Fields["error"].(string), "not allowed") {
		t.Errorf("event: %+v", ev.Fields)
	}
}

package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/internal/testutil"
)

// startServer runs a fake PBS server and Serve on a unix socket in a fresh
// directory; both stop when the test ends.
func startServer(t *testing.T, opts ...Option) (string, *fakepbs.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := fakepbs.NewServer(ctx, fakepbs.WithName("pbs"), fakepbs.WithHistory(true, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := openDir(t)
	sock := filepath.Join(dir, "pbs.sock")
	ln, err := Listen("unix:"+sock, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv, opts...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = srv.Close()
	})
	return "unix:" + sock, srv
}

// openDir is a temporary directory other uids can enter (t.TempDir's
// directories are private).
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func invocation(cmd string, args ...string) cli.Invocation {
	return cli.Invocation{Command: cmd, Args: args, User: "alice", Host: "login1", Cwd: "/home/alice",
		Env: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LOGNAME=alice"}}
}

func call(t *testing.T, addr string, inv cli.Invocation, opts ...CallOption) cli.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Call(ctx, addr, inv, opts...)
	if err != nil {
		t.Fatalf("Call %s %v: %v", inv.Command, inv.Args, err)
	}
	return res
}

func TestCallRunsTheCommandOnTheServer(t *testing.T) {
	addr, srv := startServer(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(script, []byte("#!/bin/bash\n#PBS -N from-file\nsleep 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := invocation("qsub", "job.sh")
	inv.Cwd = dir
	res := call(t, addr, inv)
	if res.ExitCode != 0 || string(res.Stdout) != "1.pbs\n" {
		t.Fatalf("qsub: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	j, err := srv.Job(context.Background(), "1.pbs", false)
	if err != nil || j.Name != "from-file" {
		t.Fatalf("the server has %+v, %v: the script file must be read by the client and its directives applied", j, err)
	}

	res = call(t, addr, invocation("qsub", "-N", "piped"), CallStdin(strings.NewReader("echo from stdin\n")))
	if res.ExitCode != 0 || string(res.Stdout) != "2.pbs\n" {
		t.Fatalf("qsub from stdin: exit %d %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}

	// The same command run in-process prints the same bytes.
	remote := call(t, addr, invocation("qstat", "-f", "1", "2"))
	local := cli.Run(context.Background(), srv, invocation("qstat", "-f", "1", "2"))
	if !bytes.Equal(remote.Stdout, local.Stdout) || remote.ExitCode != local.ExitCode || !bytes.Contains(remote.Stdout, []byte("Job_Name = piped")) {
		t.Errorf("remote and in-process qstat differ:\n%s\n---\n%s", remote.Stdout, local.Stdout)
	}

	res = call(t, addr, invocation("qstat", "99"))
	if res.ExitCode != 153 || string(res.Stderr) != "qstat: Unknown Job Id 99.pbs\n" {
		t.Errorf("unknown job: exit %d %q", res.ExitCode, res.Stderr)
	}
}

func TestMissingScriptIsReportedAsOpenPBSDoes(t *testing.T) {
	addr, _ := startServer(t)
	res := call(t, addr, invocation("qsub", "/nonexistent/job.sh"))
	if res.ExitCode != 1 || string(res.Stderr) != "qsub: script file:: No such file or directory\n" {
		t.Errorf("exit %d stderr %q", res.ExitCode, res.Stderr)
	}
}

// neverEOF is a standard input that is open but never sends anything, as
// a non-interactive ssh session gives a remote command.
type neverEOF struct{ ctx context.Context }

func (n neverEOF) Read([]byte) (int, error) {
	<-n.ctx.Done()
	return 0, io.EOF
}

func TestOpenStdinNeverBlocksCommandsThatDoNotReadIt(t *testing.T) {
	addr, _ := startServer(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "j.sh"), []byte("true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdin := neverEOF{ctx}
	for _, args := range [][]string{{"qstat"}, {"qsub", "j.sh"}, {"qdel", "1"}, {"pbsnodes", "-a"}} {
		inv := invocation(args[0], args[1:]...)
		inv.Cwd = dir
		done := make(chan cli.Result, 1)
		go func() {
			res, _ := Call(context.Background(), addr, inv, CallStdin(stdin))
			done <- res
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%v blocked on an open standard input it does not read", args)
		}
	}
}

func TestUnreachableServerPrintsOpenPBSMessages(t *testing.T) {
	addr := "unix:" + filepath.Join(t.TempDir(), "nobody-listens.sock")
	for cmd, exit := range map[string]int{"qstat": 255, "qsub": 111, "qdel": 111, "pbsnodes": 1} {
		inv := invocation(cmd, "1")
		inv.Env = append(inv.Env, "PBS_SERVER=pbsserver")
		res, err := Call(context.Background(), addr, inv)
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: error %v, want ErrUnreachable", cmd, err)
		}
		if res.ExitCode != exit || !strings.HasPrefix(string(res.Stderr), "Connection refused\n") || !strings.Contains(string(res.Stderr), "cannot connect to server pbsserver") {
			t.Errorf("%s: exit %d stderr %q", cmd, res.ExitCode, res.Stderr)
		}
	}
	// A TCP port nobody listens on is refused too.
	tcp := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	res, err := Call(context.Background(), "tcp:"+tcp, invocation("qstat"))
	if !errors.Is(err, ErrUnreachable) || res.ExitCode != 255 || !strings.Contains(string(res.Stderr), "qstat: cannot connect to server 127.0.0.1 (errno=111)") {
		t.Errorf("tcp: %v exit %d %q", err, res.ExitCode, res.Stderr)
	}
}

func TestTokenOverTCP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := fakepbs.NewServer(ctx, fakepbs.WithName("pbs"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("tcp:127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv, WithToken("s3cret")) }()
	t.Cleanup(func() { cancel(); <-done; _ = srv.Close() })
	addr := "tcp:" + ln.Addr().String()
	if res := call(t, addr, invocation("qstat", "-B"), CallToken("s3cret")); res.ExitCode != 0 || !bytes.Contains(res.Stdout, []byte("pbs ")) {
		t.Errorf("with the token: exit %d %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	res, err := Call(context.Background(), addr, invocation("qstat", "-B"), CallToken("wrong"))
	if err == nil || res.ExitCode != 255 || !strings.HasPrefix(string(res.Stderr), "No Permission.\nqstat: cannot connect to server 127.0.0.1 (errno=15007)") {
		t.Errorf("with a wrong token: %v exit %d %q", err, res.ExitCode, res.Stderr)
	}
}

// TestPeerCredentials runs a client as an unprivileged uid: it may act as
// itself but not in another user's name.
func TestPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the client as another uid (run the tests as root, as CI does)")
	}
	addr, _ := startServer(t, WithUserLookup(func(uid uint32) (string, error) {
		if uid == 65534 {
			return "nobody", nil
		}
		return "", errors.New("unknown uid")
	}))
	// The test binary's directory is private to root: copy it where the
	// unprivileged uid may execute it.
	bin := filepath.Join(openDir(t), "remote.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(user string) (int, string) {
		cmd := exec.Command(bin, "-test.run=^TestHelperClient$")
		cmd.Dir = filepath.Dir(bin)
		cmd.Env = append(os.Environ(), "REMOTE_HELPER_ADDR="+addr, "REMOTE_HELPER_USER="+user)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out.String())
		}
		return 0, out.String()
	}
	if code, out := run("nobody"); code != 0 || !strings.Contains(out, "HELPER exit=0") {
		t.Errorf("acting as itself: exit %d\n%s", code, out)
	}
	if code, out := run("alice"); code != 0 || !strings.Contains(out, "HELPER exit=255") || !strings.Contains(out, "No Permission.") {
		t.Errorf("acting as alice: exit %d\n%s", code, out)
	}
}

func TestHelperClient(t *testing.T) {
	addr := os.Getenv("REMOTE_HELPER_ADDR")
	if addr == "" {
		t.Skip("helper process for TestPeerCredentials")
	}
	inv := invocation("qstat")
	inv.User = os.Getenv("REMOTE_HELPER_USER")
	res, _ := Call(context.Background(), addr, inv)
	os.Stdout.WriteString(string(res.Stderr))
	os.Stdout.WriteString("HELPER exit=" + itoa(res.ExitCode) + "\n")
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for i > 0 {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
	}
	return string(b)
}

func TestCallerCancelEndsAHangingCommand(t *testing.T) {
	addr, _ := startServer(t)
	// qsub -W block=true on a server without an executor never ends: the
	// job is never run. The caller's deadline must end the call and the
	// server's command.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "j.sh"), []byte("true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := invocation("qsub", "-W", "block=true", "j.sh")
	inv.Cwd = dir
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Call(ctx, addr, inv)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("blocked call: %v after %v (%+v)", err, time.Since(start), res)
	}
}

func TestWithHostAndClosingTheListener(t *testing.T) {
	ctx := context.Background()
	srv, err := fakepbs.NewServer(ctx, fakepbs.WithName("pbs"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sock := filepath.Join(t.TempDir(), "pbs.sock")
	ln, err := Listen("unix:"+sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv, WithHost("fakehpc")) }()
	res := call(t, "unix:"+sock, invocation("qsub", "-"), CallStdin(strings.NewReader("true\n")))
	if res.ExitCode != 0 {
		t.Fatalf("qsub: %q", res.Stderr)
	}
	j, err := srv.Job(ctx, "1", false)
	if err != nil || j.Owner != "alice@fakehpc" || j.SubmitHost != "fakehpc" {
		t.Errorf("job %+v %v: the server's host name must replace the client's", j, err)
	}
	_ = ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after its listener was closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its listener was closed")
	}
}

func TestTerminalPromptBeforeReading(t *testing.T) {
	addr, _ := startServer(t)
	var prompt bytes.Buffer
	stdin := &promptCheck{prompt: &prompt, r: strings.NewReader("true\n")}
	inv := invocation("qsub")
	inv.StdinTTY = true
	res := call(t, addr, inv, CallStdin(stdin), CallPrompt(&prompt))
	if !stdin.sawPrompt {
		t.Error("the prompt must be written before the terminal is read")
	}
	if prompt.String() != cli.ReadScriptPrompt || string(res.Stdout) != "1.pbs\n" {
		t.Errorf("prompt %q, stdout %q: the prompt once, then the id", prompt.String(), res.Stdout)
	}
}

type promptCheck struct {
	prompt    *bytes.Buffer
	r         io.Reader
	sawPrompt bool
}

func (p *promptCheck) Read(b []byte) (int, error) {
	if p.prompt.Len() > 0 {
		p.sawPrompt = true
	}
	return p.r.Read(b)
}

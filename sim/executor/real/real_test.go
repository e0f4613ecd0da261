package real_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/executortest"
	"github.com/jobsim/jobsim/sim/executor/real"
)

const relayEnv = "JOBSIM_TEST_RSH_RELAY"

func TestMain(m *testing.M) {
	if sock := os.Getenv(relayEnv); sock != "" {
		// Started by rsync as its remote shell: relay to the test.
		os.Exit(relay(sock, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// relay is a minimal ssh stand-in for rsync's -e: it sends the remote
// command line, then copies its stdin to the test and the test's answer to
// its stdout.
func relay(sock string, args []string) int {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "-l" && len(args) > 1 {
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "relay: want HOST COMMAND...")
		return 255
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 255
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%s\n", strings.Join(args[1:], " ")); err != nil {
		return 255
	}
	go func() {
		_, _ = io.Copy(conn, os.Stdin)
		_ = conn.(*net.UnixConn).CloseWrite()
	}()
	_, _ = io.Copy(os.Stdout, conn)
	return 0
}

type host struct {
	root, bin string
	e         *real.Executor
}

// newHost makes a host root with homes for alice and bob and a bin directory
// holding a stand-in qsub.
func newHost(t testing.TB, opts ...real.Option) host {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: the real executor runs bash (apt-get install bash)")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "opt", "pbs", "bin")
	for _, d := range []string{"home/alice", "home/bob", "opt/pbs/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "qsub"), []byte("#!/bin/sh\necho 1.fakepbs\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := real.New(root, append([]real.Option{real.WithBinDir(bin), real.WithKillGrace(300 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return host{root: root, bin: bin, e: e}
}

// cmds runs the tests' commands: as alice unless they name a user, for up
// to 20 s.
var cmds = executortest.Runner{Within: 20 * time.Second, User: "alice"}

func waitOutput(t testing.TB, b *testutil.SyncBuffer, want string) {
	t.Helper()
	if err := testutil.Poll(fmt.Sprintf("%q in the output", want), 20*time.Second, func() bool { return strings.Contains(b.String(), want) }); err != nil {
		t.Fatalf("%v; have %q", err, b.String())
	}
}

// gone reports whether pid no longer runs (absent, or a zombie nobody has
// reaped yet).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestExitCodesAndStreams(t *testing.T) {
	h := newHost(t)
	cmds.Check(t, h.e, []executortest.Case{
		{"exit 3", "", "", 3},
		{"echo out; echo err >&2", "out\n", "err\n", 0},
		{"nosuchcommand", "", "bash: line 1: nosuchcommand: command not found\n", 127},
		{"kill -9 $$", "", "", 137},
	})
	r := cmds.Run(t, h.e, executor.Command{Script: "kill -9 $$"})
	if r.Status.Signal != syscall.SIGKILL {
		t.Errorf("killed: %+v", r.Status)
	}
	r = cmds.Run(t, h.e, executor.Command{Script: "read a; echo got $a; cat", Stdin: strings.NewReader("one\ntwo\n")})
	if r.Stdout != "got one\ntwo\n" {
		t.Errorf("stdin: %q", r.Stdout)
	}
	var both testutil.SyncBuffer
	cmds.Run(t, h.e, executor.Command{Script: "echo 1; echo 2 >&2; echo 3", Stdout: &both, Stderr: &both})
	if both.String() != "1\n2\n3\n" {
		t.Errorf("one writer for both streams: %q", both.String())
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("JOBSIM_HARNESS_ONLY", "leaked")
	h := newHost(t, real.WithEnv("SITE=hpc"))
	r := cmds.Run(t, h.e, executor.Command{User: "bob", Env: []string{"FOO=bar", "SITE=override"},
		Script: `echo "$HOME|$USER|$LOGNAME|$LANG|$TMPDIR|$FOO|$SITE|${JOBSIM_HARNESS_ONLY-unset}"; echo "$PATH"; command -v qsub; pwd`})
	want := fmt.Sprintf("%s/home/bob|bob|bob|C.UTF-8|%s/tmp|bar|override|unset\n%s:%s\n%s/qsub\n%s/home/bob\n",
		h.root, h.root, h.bin, real.DefaultPath, h.bin, h.root)
	if r.Stdout != want {
		t.Errorf("stdout %q\nwant   %q\nstderr %q", r.Stdout, want, r.Stderr)
	}
	if fi, err := os.Stat(filepath.Join(h.root, "tmp")); err != nil || !fi.IsDir() {
		t.Errorf("TMPDIR not made: %v", err)
	}
}

func TestWorkingDirectory(t *testing.T) {
	h := newHost(t)
	if err := os.MkdirAll(filepath.Join(h.root, "home/alice/work"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := cmds.Run(t, h.e, executor.Command{Script: "pwd", Dir: "work"}); r.Stdout != h.root+"/home/alice/work\n" {
		t.Errorf("relative Dir: %q", r.Stdout)
	}
	if r := cmds.Run(t, h.e, executor.Command{Script: "pwd", Dir: "/"}); r.Stdout != "/\n" {
		t.Errorf("absolute Dir: %q", r.Stdout)
	}
	if _, err := h.e.Start(context.Background(), executor.Command{User: "carol", Script: "pwd"}); err == nil || !strings.Contains(err.Error(), "home/carol") {
		t.Errorf("missing home: %v", err)
	}
	if _, err := real.New("relative/root"); err == nil {
		t.Error("relative root accepted")
	}
}

func TestLoginShell(t *testing.T) {
	h := newHost(t)
	home := filepath.Join(h.root, "home/alice")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	profile := "export GREETING=hello\nPATH=$HOME/bin:$PATH\n"
	if err := os.WriteFile(filepath.Join(home, ".bash_profile"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `echo "${GREETING-unset}"; case ":$PATH:" in *":$HOME/bin:"*) echo home-bin;; *) echo no-home-bin;; esac; qsub; shopt -q login_shell && echo login || echo not-login`
	r := cmds.Run(t, h.e, executor.Command{Script: script, Login: true})
	if r.Stdout != "hello\nhome-bin\n1.fakepbs\nlogin\n" {
		t.Errorf("login: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	r = cmds.Run(t, h.e, executor.Command{Script: script})
	if r.Stdout != "unset\nno-home-bin\n1.fakepbs\nnot-login\n" {
		t.Errorf("not login: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	// Line numbers of the script are kept despite the PATH fix.
	r = cmds.Run(t, h.e, executor.Command{Script: "true\nnosuch", Login: true})
	if r.Stderr != "bash: line 2: nosuch: command not found\n" {
		t.Errorf("line numbers: %q", r.Stderr)
	}
}

func TestTrapRunsWhenTERMArrivesDuringSleep(t *testing.T) {
	h := newHost(t)
	p, out, _ := cmds.Start(context.Background(), t, h.e, executor.Command{Script: "trap 'echo bye' TERM; sleep 1000 & echo ready; wait $!; echo after $?"})
	// The sleep runs before "ready" is printed, so the TERM sent to the
	// group reaches it whenever it comes: during the wait (the trap runs
	// and wait returns 143) or just before it (the trap runs, and wait
	// reports the sleep killed by TERM, 143).
	waitOutput(t, out, "ready\n")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := cmds.Wait(t, p)
	if out.String() != "ready\nbye\nafter 143\n" || st.Code != 0 || st.Signal != 0 {
		t.Errorf("stdout %q status %+v", out.String(), st)
	}
	// wait returns as soon as the trap has run, so bash may exit while the
	// sleep it orphaned is still dying of the same TERM; once that is gone
	// the group is, and a signal says so.
	testutil.WaitFor(t, "a signal to the ended group to return os.ErrProcessDone", 5*time.Second, func() bool {
		return errors.Is(p.Signal(syscall.SIGTERM), os.ErrProcessDone)
	})
}

func TestUntrappedTERM(t *testing.T) {
	h := newHost(t)
	p, out, _ := cmds.Start(context.Background(), t, h.e, executor.Command{Script: "echo ready; sleep 1000"})
	waitOutput(t, out, "ready\n")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := cmds.Wait(t, p); st.Code != 143 || st.Signal != syscall.SIGTERM {
		t.Errorf("status %+v", st)
	}
}

// childPid starts script, whose first output line is a pid, and returns it.
func childPid(t *testing.T, out *testutil.SyncBuffer) int {
	t.Helper()
	waitOutput(t, out, "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(out.String(), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("pid line: %q", out.String())
	}
	return pid
}

func TestCancelKillsTheWholeTree(t *testing.T) {
	for name, script := range map[string]string{
		"term":         "sleep 1000 & echo $!; wait",
		"ignores-term": "trap '' TERM; sleep 1000 & echo $!; wait",
	} {
		t.Run(name, func(t *testing.T) {
			h := newHost(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, out, _ := cmds.Start(ctx, t, h.e, executor.Command{Script: script})
			child := childPid(t, out)
			if gone(child) {
				t.Fatalf("child %d not running", child)
			}
			cancel()
			st := cmds.Wait(t, p)
			if st.Signal == 0 {
				t.Errorf("status %+v: not killed by a signal", st)
			}
			if testutil.Poll("the child to go", 5*time.Second, func() bool { return gone(child) }) != nil {
				t.Errorf("child %d survived the cancellation", child)
				_ = syscall.Kill(child, syscall.SIGKILL)
			}
		})
	}
}

func TestOrphans(t *testing.T) {
	h := newHost(t)
	// Like sshd: the output stays open while a background job holds it.
	r := cmds.Run(t, h.e, executor.Command{Script: "(sleep 0.3; echo late) & echo early"})
	if r.Stdout != "early\nlate\n" || r.Status.Code != 0 {
		t.Errorf("stdout %q status %+v", r.Stdout, r.Status)
	}
	// Like a batch system: what is left is killed when the script ends.
	k := newHost(t, real.WithKillOrphans())
	p, out, _ := cmds.Start(context.Background(), t, k.e, executor.Command{Script: "sleep 1000 & echo $!"})
	child := childPid(t, out)
	if st := cmds.Wait(t, p); st.Code != 0 {
		t.Errorf("status %+v", st)
	}
	if testutil.Poll("the orphan to go", 5*time.Second, func() bool { return gone(child) }) != nil {
		t.Errorf("orphan %d survived", child)
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
}

func TestTTY(t *testing.T) {
	h := newHost(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	p, out, _ := cmds.Start(context.Background(), t, h.e, executor.Command{
		Script: "tty; echo $TERM; echo err >&2; read go; stty size",
		Stdin:  pr, TTY: &executor.Window{Term: "vt220", Width: 80, Height: 24},
	})
	waitOutput(t, out, "err\r\n")
	if err := p.Resize(executor.Window{Width: 100, Height: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	st := cmds.Wait(t, p)
	got := out.String()
	if st.Code != 0 || !strings.HasPrefix(got, "/dev/pts/") || !strings.Contains(got, "vt220\r\nerr\r\n") || !strings.HasSuffix(got, "30 100\r\n") {
		t.Errorf("status %+v output %q", st, got)
	}
}

// Resize may come while the command ends (an ssh window-change racing the
// exit): no data race, no error once it has ended.
func TestResizeWhileEnding(t *testing.T) {
	h := newHost(t)
	for i := 0; i < 20; i++ {
		p, _, _ := cmds.Start(context.Background(), t, h.e, executor.Command{Script: "echo hi", TTY: &executor.Window{Width: 80, Height: 24}})
		pid := p.(interface{ Pid() int }).Pid()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := 0; !gone(pid); j++ {
				if err := p.Resize(executor.Window{Width: 80 + j%5, Height: 24}); err != nil {
					t.Errorf("resize: %v", err)
					return
				}
			}
		}()
		cmds.Wait(t, p)
		<-done
		if err := p.Resize(executor.Window{Width: 90, Height: 30}); err != nil {
			t.Errorf("resize after the end: %v", err)
		}
	}
}

func TestShellReadingStdin(t *testing.T) {
	h := newHost(t)
	r := cmds.Run(t, h.e, executor.Command{Login: true, TTY: &executor.Window{Width: 80, Height: 24},
		Stdin: strings.NewReader("echo hi-$((1+1))\nexit 3\n")})
	if r.Status.Code != 3 || !strings.Contains(r.Stdout, "hi-2\r\n") {
		t.Errorf("interactive login: %+v %q", r.Status, r.Stdout)
	}
	r = cmds.Run(t, h.e, executor.Command{Stdin: strings.NewReader("echo one\nexit 4\n")})
	if r.Status.Code != 4 || r.Stdout != "one\n" {
		t.Errorf("stdin script: %+v %q %q", r.Status, r.Stdout, r.Stderr)
	}
}

func TestPython(t *testing.T) {
	h := newHost(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3 on the clean PATH: apt-get install python3")
	}
	r := cmds.Run(t, h.e, executor.Command{Script: `python3 -c 'import os, sys; print(os.environ["HOME"]); sys.exit(4)'`})
	if r.Stdout != h.root+"/home/alice\n" || r.Status.Code != 4 {
		t.Errorf("%+v %q %q", r.Status, r.Stdout, r.Stderr)
	}
}

// TestRsync runs the real rsync client against `rsync --server` started by
// the executor, relayed over a socket as an ssh server would, both ways.
func TestRsync(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not found: apt-get install rsync")
	}
	h := newHost(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "rsh.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var served sync.WaitGroup
	var remoteErr testutil.SyncBuffer
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				defer conn.Close()
				br := bufio.NewReader(conn)
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				p, err := h.e.Start(context.Background(), executor.Command{User: "alice", Script: strings.TrimSpace(line), Stdin: br, Stdout: conn, Stderr: &remoteErr})
				if err != nil {
					fmt.Fprintln(&remoteErr, err)
					return
				}
				p.Wait()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		served.Wait()
	})
	rsh := filepath.Join(dir, "rsh")
	if err := os.WriteFile(rsh, []byte(fmt.Sprintf("#!/bin/sh\nexec env %s=%s %s \"$@\"\n", relayEnv, sock, self)), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	files := map[string]string{"a.txt": "alpha\n", "sub/b.bin": strings.Repeat("\x00\x01binary", 5000), "sub/deep/c": "c\n"}
	for name, content := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755))
		must(t, os.WriteFile(filepath.Join(src, name), []byte(content), 0o640))
	}
	rsync := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "rsync", append([]string{"-a", "-e", rsh}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("rsync %v: %v\n%s\nremote stderr: %s", args, err, out, remoteErr.String())
		}
	}
	rsync(src+"/", "fakehost:pushed/")
	pulled := filepath.Join(dir, "pulled")
	rsync("fakehost:pushed/", pulled+"/")
	for name, content := range files {
		for _, base := range []string{filepath.Join(h.root, "home/alice/pushed"), pulled} {
			b, err := os.ReadFile(filepath.Join(base, name))
			if err != nil || string(b) != content {
				t.Errorf("%s/%s: %v (%d bytes)", base, name, err, len(b))
				continue
			}
			if fi, _ := os.Stat(filepath.Join(base, name)); fi.Mode().Perm() != 0o640 {
				t.Errorf("%s/%s: mode %v", base, name, fi.Mode())
			}
		}
	}
}

func TestCloseKillsRunning(t *testing.T) {
	h := newHost(t)
	p, out, _ := cmds.Start(context.Background(), t, h.e, executor.Command{Script: "echo started; sleep 1000"})
	waitOutput(t, out, "started\n")
	if err := h.e.Close(); err != nil {
		t.Fatal(err)
	}
	if st := cmds.Wait(t, p); st.Signal == 0 {
		t.Errorf("status after Close: %+v", st)
	}
	if _, err := h.e.Start(context.Background(), executor.Command{User: "alice", Script: "true"}); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkRealBashTrue(b *testing.B) {
	b.Run("machine namespace", func(b *testing.B) { benchBashTrue(b, newHost(b)) })
	b.Run("hiding a directory", func(b *testing.B) {
		h := newHost(b, real.WithHidden(b.TempDir()))
		if err := h.e.Isolation(); err != nil {
			b.Skipf("no isolation here: %v", err)
		}
		benchBashTrue(b, h)
	})
}

// benchBashTrue measures starting and waiting for bash -c true.
func benchBashTrue(b *testing.B, h host) {
	ctx := context.Background()
	for b.Loop() {
		p, err := h.e.Start(ctx, executor.Command{User: "alice", Script: "true", Stdout: io.Discard, Stderr: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		if st := p.Wait(); st.Code != 0 {
			b.Fatalf("status %+v", st)
		}
	}
}

// BenchmarkExecBinTrue is the floor: exec of /bin/true with no shell.
func BenchmarkExecBinTrue(b *testing.B) {
	if _, err := os.Stat("/bin/true"); err != nil {
		b.Skip("no /bin/true")
	}
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

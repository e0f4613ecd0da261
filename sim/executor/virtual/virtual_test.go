package virtual_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/executortest"
	"github.com/jobsim/jobsim/sim/executor/virtual"
	"github.com/jobsim/jobsim/sim/fsys"
)

func TestExitCodes(t *testing.T) {
	e := newExec(t, nil)
	for _, tc := range []struct {
		script string
		code   int
		stdout string
		stderr string
	}{
		{script: "true"},
		{script: "false", code: 1},
		{script: "exit 3", code: 3},
		{script: "(exit 7); echo $?", stdout: "7\n"},
		{script: "nosuchcmd --flag", code: 127, stderr: "bash: line 1: nosuchcmd: command not found\n"},
		{script: "set -e; false; echo not reached", code: 1},
		{script: "if (", code: 2},
		{script: "exit 300", code: 44},
	} {
		t.Run(tc.script, func(t *testing.T) {
			r := sh(t, e, tc.script)
			if r.Status.Code != tc.code || r.Status.Signal != 0 || r.Status.Err != nil {
				t.Errorf("status = %+v, want code %d", r.Status, tc.code)
			}
			if r.Stdout != tc.stdout {
				t.Errorf("stdout = %q, want %q", r.Stdout, tc.stdout)
			}
			if tc.stderr != "" && r.Stderr != tc.stderr {
				t.Errorf("stderr = %q, want %q", r.Stderr, tc.stderr)
			}
		})
	}
}

func TestStreams(t *testing.T) {
	e := newExec(t, nil)
	r := cmds.Run(t, e, executor.Command{
		User:   "alice",
		Script: `read first; echo "first=$first"; cat; echo oops >&2; printf 'x\n' | tr x y >&2`,
		Stdin:  strings.NewReader("one\ntwo\nthree\n"),
	})
	if r.Stdout != "first=one\ntwo\nthree\n" {
		t.Errorf("stdout = %q", r.Stdout)
	}
	if r.Stderr != "oops\ny\n" {
		t.Errorf("stderr = %q", r.Stderr)
	}
	// Without stdin, reads see end of input at once.
	r = sh(t, e, `cat; read x || echo eof`)
	if r.Stdout != "eof\n" {
		t.Errorf("no stdin: stdout = %q", r.Stdout)
	}
	// One writer for both streams keeps their order.
	var both testutil.SyncBuffer
	r = cmds.Run(t, e, executor.Command{User: "alice", Script: "echo 1; echo 2 >&2; echo 3", Stdout: &both, Stderr: &both})
	if both.String() != "1\n2\n3\n" {
		t.Errorf("merged = %q", both.String())
	}
}

func TestEnvironment(t *testing.T) {
	e := newExec(t, nil, virtual.WithEnv("SITE=hpc1"), virtual.WithPath("/opt/pbs/bin:/usr/bin:/bin"))
	r := cmds.Run(t, e, executor.Command{
		User:   "bob",
		Script: `echo "$HOME $USER $LOGNAME $SHELL $HOSTNAME $SITE $FOO"; echo "$PATH"; env | grep -c '^FOO=bar$'; printenv SITE; echo ${TMPDIR-unset}`,
		Env:    []string{"FOO=bar", "SITE=override"},
	})
	want := "/home/bob bob bob /bin/bash node1.example.org override bar\n/opt/pbs/bin:/usr/bin:/bin\n1\noverride\nunset\n"
	if r.Stdout != want {
		t.Errorf("stdout = %q, want %q (stderr %q)", r.Stdout, want, r.Stderr)
	}
	r = sh(t, e, "whoami; id -un; id -u; id; hostname; hostname -s")
	want = "alice\nalice\n1000\nuid=1000(alice) gid=1000(alice) groups=1000(alice)\nnode1.example.org\nnode1\n"
	if r.Stdout != want {
		t.Errorf("identity = %q, want %q", r.Stdout, want)
	}
}

func TestWorkingDirectory(t *testing.T) {
	e := newExec(t, nil)
	if r := sh(t, e, "pwd; /bin/pwd; cd /tmp && pwd; cd; pwd"); r.Stdout != "/home/alice\n/home/alice\n/tmp\n/home/alice\n" {
		t.Errorf("stdout = %q", r.Stdout)
	}
	if r := cmds.Run(t, e, executor.Command{User: "alice", Script: "pwd", Dir: "/opt/lib"}); r.Stdout != "/opt/lib\n" {
		t.Errorf("Dir: stdout = %q", r.Stdout)
	}
	_, err := e.Start(context.Background(), executor.Command{User: "alice", Script: "pwd", Dir: "/no/such/dir"})
	if err == nil || !strings.Contains(err.Error(), "/no/such/dir") {
		t.Errorf("missing Dir: err = %v", err)
	}
	if _, err := e.Start(context.Background(), executor.Command{User: "mallory", Script: "true"}); err == nil {
		t.Error("unknown user started")
	}
	if r := sh(t, e, "cd /nonexistent"); r.Status.Code != 1 || r.Stderr != "bash: line 1: cd: /nonexistent: No such file or directory\n" {
		t.Errorf("cd: %+v %q", r.Status, r.Stderr)
	}
}

func TestLoginProfile(t *testing.T) {
	fs := newFS(t)
	must(t, afero.WriteFile(fs, "/etc/profile", []byte("export SITE_PROFILE=etc\n"), 0o644))
	must(t, afero.WriteFile(fs, "/home/alice/.bash_profile", []byte("export GREETING=hello\nPATH=$HOME/bin:$PATH\n"), 0o644))
	must(t, afero.WriteFile(fs, "/home/alice/.profile", []byte("export GREETING=ignored\n"), 0o644))
	must(t, afero.WriteFile(fs, "/home/bob/.profile", []byte("export GREETING=from-profile\n"), 0o644))
	e := newExec(t, fs)
	for _, tc := range []struct {
		user  string
		login bool
		want  string
	}{
		{"alice", true, "etc hello /home/alice/bin:/usr/local/bin:/usr/bin:/bin\n"},
		{"alice", false, " unset /usr/local/bin:/usr/bin:/bin\n"},
		{"bob", true, "etc from-profile /usr/local/bin:/usr/bin:/bin\n"},
	} {
		r := cmds.Run(t, e, executor.Command{User: tc.user, Login: tc.login, Script: `echo "$SITE_PROFILE ${GREETING-unset} $PATH"`})
		if r.Stdout != tc.want {
			t.Errorf("%s login=%v: stdout = %q, want %q (stderr %q)", tc.user, tc.login, r.Stdout, tc.want, r.Stderr)
		}
	}
}

// signalReady starts script as alice, sends sig once it has written
// "ready", and waits for it to end.
func signalReady(t *testing.T, e executor.Executor, script string, sig syscall.Signal) (executor.Process, *testutil.SyncBuffer, executor.Status) {
	t.Helper()
	p, out, _ := cmds.Start(context.Background(), t, e, executor.Command{Script: script})
	waitOutput(t, out, "ready\n")
	must(t, p.Signal(sig))
	return p, out, cmds.Wait(t, p)
}

func TestTrapRunsWhenTERMArrivesDuringSleep(t *testing.T) {
	e := newExec(t, nil)
	_, out, st := signalReady(t, e, "trap 'echo bye' TERM; echo ready; sleep 1000; echo after $?", syscall.SIGTERM)
	// As bash: the sleep dies of the signal, the trap runs, the script goes on.
	if out.String() != "ready\nbye\nafter 143\n" || st.Code != 0 || st.Signal != 0 {
		t.Errorf("stdout %q status %+v", out.String(), st)
	}
}

func TestUntrappedSignalEndsScriptAfterExitTrap(t *testing.T) {
	e := newExec(t, nil)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR2} {
		p, out, st := signalReady(t, e, "trap 'echo cleanup' EXIT; echo ready; sleep 1000; echo not reached", sig)
		if out.String() != "ready\ncleanup\n" || st.Code != 128+int(sig) || st.Signal != sig {
			t.Errorf("%v: stdout %q status %+v", sig, out.String(), st)
		}
		if err := p.Signal(syscall.SIGTERM); err == nil {
			t.Error("signalling a finished process succeeded")
		}
	}
}

func TestSIGKILLSkipsTraps(t *testing.T) {
	e := newExec(t, nil)
	_, out, st := signalReady(t, e, "trap 'echo cleanup' EXIT TERM; echo ready; while true; do sleep 1; done", syscall.SIGKILL)
	if out.String() != "ready\n" || st.Code != 137 || st.Signal != syscall.SIGKILL {
		t.Errorf("stdout %q status %+v", out.String(), st)
	}
}

func TestIgnoredSignal(t *testing.T) {
	e := newExec(t, nil)
	if _, out, st := signalReady(t, e, "trap '' TERM; echo ready; sleep 0.2; echo survived", syscall.SIGTERM); st.Code != 0 || out.String() != "ready\nsurvived\n" {
		t.Errorf("stdout %q status %+v", out.String(), st)
	}
}

func TestStopAndContinue(t *testing.T) {
	clk := clock.NewVirtual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	e := newExec(t, nil, virtual.WithClock(clk))
	p, out, _ := cmds.Start(context.Background(), t, e, executor.Command{User: "alice", Script: "echo a; sleep 10; echo b"})
	testutil.WaitFor(t, "the sleep", 10*time.Second, func() bool { return clk.Pending() == 1 })
	must(t, p.Signal(syscall.SIGSTOP))
	clk.Advance(10 * time.Second) // the sleep ends; the stopped shell waits before `echo b`
	testutil.WaitFor(t, "the stopped shell to wait", 10*time.Second, func() bool { return clk.Pending() == 1 })
	if out.String() != "a\n" {
		t.Fatalf("a stopped script went on: %q", out.String())
	}
	if ps := e.Processes(); len(ps) != 1 || !ps[0].Stopped {
		t.Errorf("process table: %+v", ps)
	}
	must(t, p.Signal(syscall.SIGCONT))
	if st := cmds.Wait(t, p); st.Code != 0 || out.String() != "a\nb\n" {
		t.Errorf("stdout %q status %+v", out.String(), st)
	}
}

func TestContextCancelKills(t *testing.T) {
	e := newExec(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, out, _ := cmds.Start(ctx, t, e, executor.Command{User: "alice", Script: "trap 'echo trap' EXIT; sleep 1000 & echo started; wait"})
	waitOutput(t, out, "started\n")
	cancel()
	st := cmds.Wait(t, p)
	if st.Code != 137 || st.Signal != syscall.SIGKILL || out.String() != "started\n" {
		t.Errorf("stdout %q status %+v", out.String(), st)
	}
	if ps := e.Processes(); len(ps) != 0 {
		t.Errorf("processes left: %+v", ps)
	}
}

func TestSleepOnVirtualClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := clock.NewVirtual(t0, clock.AutoAdvance())
	e := newExec(t, nil, virtual.WithClock(clk))
	r := sh(t, e, "date +%s; sleep 3600; date +%s; date -u '+%F %T'")
	want := fmt.Sprintf("%d\n%d\n2026-01-02 04:04:05\n", t0.Unix(), t0.Unix()+3600)
	if r.Stdout != want || r.Status.Code != 0 {
		t.Errorf("stdout %q (want %q) status %+v stderr %q", r.Stdout, want, r.Status, r.Stderr)
	}
	// Background jobs are actors of their own: two sleeps in parallel take
	// the longer of the two, not the sum.
	t1 := clk.Now()
	r = sh(t, e, "sleep 100 & sleep 50; echo fg-done; wait; echo all-done")
	if d := clk.Now().Sub(t1); d != 100*time.Second || r.Stdout != "fg-done\nall-done\n" {
		t.Errorf("parallel sleeps took %v of virtual time, stdout %q", d, r.Stdout)
	}
}

// readdirEIO fails Readdir and Readdirnames of one directory with EIO while
// everything else works: the incident where a library directory could not
// be listed but its files still opened.
type readdirEIO struct {
	afero.Fs
	dir string
}

func (f readdirEIO) Open(name string) (afero.File, error) {
	file, err := f.Fs.Open(name)
	if err != nil || name != f.dir {
		return file, err
	}
	return eioDir{file}, nil
}

type eioDir struct{ afero.File }

func (d eioDir) Readdir(int) ([]os.FileInfo, error) {
	return nil, &os.PathError{Op: "readdirent", Path: d.Name(), Err: syscall.EIO}
}

func (d eioDir) Readdirnames(int) ([]string, error) {
	return nil, &os.PathError{Op: "readdirent", Path: d.Name(), Err: syscall.EIO}
}

func TestUnlistableDirectory(t *testing.T) {
	check := func(t *testing.T, fs afero.Fs) {
		must(t, afero.WriteFile(fs, "/opt/lib/mod.py", []byte("print('hi')\n"), 0o644))
		e := newExec(t, fs)
		r := sh(t, e, "ls /opt/lib")
		if r.Status.Code != 2 || r.Stdout != "" || r.Stderr != "ls: reading directory '/opt/lib': Input/output error\n" {
			t.Errorf("ls: %+v stdout %q stderr %q", r.Status, r.Stdout, r.Stderr)
		}
		r = sh(t, e, "cat /opt/lib/mod.py && ls /opt/lib/mod.py && test -d /opt/lib && echo dir-ok")
		if r.Status.Code != 0 || r.Stdout != "print('hi')\n/opt/lib/mod.py\ndir-ok\n" {
			t.Errorf("files inside: %+v stdout %q stderr %q", r.Status, r.Stdout, r.Stderr)
		}
		// Globbing an unlistable directory matches nothing, as in bash.
		if r := sh(t, e, "echo /opt/lib/*"); r.Stdout != "/opt/lib/*\n" {
			t.Errorf("glob: %q", r.Stdout)
		}
	}
	t.Run("in-test wrapper", func(t *testing.T) {
		check(t, readdirEIO{Fs: newFS(t), dir: "/opt/lib"})
	})
	t.Run("fault rule", func(t *testing.T) {
		set := fault.NewSet()
		if _, err := set.Add(fault.Rule{Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/lib",
			Effect: fault.Effect{Kind: fault.Errno, Errno: "EIO"}}); err != nil {
			t.Fatal(err)
		}
		check(t, fsys.WithFaults(newFS(t), set))
	})
}

func TestLsMessages(t *testing.T) {
	fs := newFS(t)
	must(t, fs.MkdirAll("/home/alice/locked", 0o755))
	must(t, fs.Chmod("/home/alice/locked", 0))
	e := newExec(t, fs)
	cmds.Check(t, e, []executortest.Case{
		{"ls /missing", "", "ls: cannot access '/missing': No such file or directory\n", 2},
		{"ls locked", "", "ls: cannot open directory 'locked': Permission denied\n", 2},
		{"ls -d locked", "locked\n", "", 0},
		{"ls -z", "", "ls: invalid option -- 'z'\nTry 'ls --help' for more information.\n", 2},
	})
	// Root reads anything.
	r := cmds.Run(t, e, executor.Command{User: "root", Script: "ls /home/alice/locked && echo ok"})
	if r.Stdout != "ok\n" {
		t.Errorf("root: %q %q", r.Stdout, r.Stderr)
	}
}

func TestLsLong(t *testing.T) {
	clk := clock.NewVirtual(time.Date(2026, 3, 4, 15, 16, 0, 0, time.UTC))
	e := newExec(t, nil, virtual.WithClock(clk))
	r := sh(t, e, "mkdir d && touch d/a && printf 'hello' > d/b && chmod 755 d/b && mkdir d/sub && chmod 2750 d/sub && ls -l d; ls -la d | head -2")
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	want := []string{
		`total 8`,
		`-rw-r--r-- 1 alice alice    0 Mar  4 15:16 a`,
		`-rwxr-xr-x 1 alice alice    5 Mar  4 15:16 b`,
		`drwxr-s--- 2 alice alice 4096 Mar  4 15:16 sub`,
		`total 16`,
		`drwxr-xr-x 2 alice alice 4096 Mar  4 15:16 .`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("ls -l:\n%s\nwant:\n%s\nstderr %q", r.Stdout, strings.Join(want, "\n"), r.Stderr)
	}
}

func TestHostFilesystemOnly(t *testing.T) {
	fs := newFS(t)
	e := newExec(t, fs)
	marker := fmt.Sprintf("/etc/jobsim-virtual-test-%d", os.Getpid())
	r := cmds.Run(t, e, executor.Command{User: "root", Script: "cat /etc/passwd; echo written > " + marker + "; ls /etc; cp /etc/passwd /tmp/p && wc -l < /tmp/p"})
	want := "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
	if !strings.HasPrefix(r.Stdout, want) {
		t.Errorf("cat /etc/passwd = %q: the script saw the real disk", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "jobsim-virtual-test") || !strings.HasSuffix(r.Stdout, "2\n") {
		t.Errorf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the script wrote %s on the real disk (stat: %v)", marker, err)
	}
	if b, err := afero.ReadFile(fs, marker); err != nil || string(b) != "written\n" {
		t.Errorf("host fs %s = %q, %v", marker, b, err)
	}
	// Real programs do not exist on a virtual host.
	r = sh(t, e, "/usr/bin/python3 -c 'print(1)'")
	if r.Status.Code != 127 || r.Stdout != "" {
		t.Errorf("python3 ran: %+v %q %q", r.Status, r.Stdout, r.Stderr)
	}
}

func TestPluggedBuiltin(t *testing.T) {
	fs := newFS(t)
	must(t, afero.WriteFile(fs, "/home/alice/job.sh", []byte("#PBS -N x\nsleep 1\n"), 0o644))
	var seen []string
	qsub := func(ctx context.Context, c *virtual.Call) int {
		if len(c.Args) < 2 {
			b, _ := io.ReadAll(c.Stdin)
			seen = append(seen, "stdin:"+string(b))
		} else {
			b, err := afero.ReadFile(c.FS, c.Abs(c.Args[1]))
			if err != nil {
				fmt.Fprintf(c.Stderr, "qsub: script file cannot be loaded - No such file or directory\n")
				return 2
			}
			seen = append(seen, "file:"+string(b))
		}
		fmt.Fprintf(c.Stdout, "%d.server\n", len(seen))
		return 0
	}
	e := newExec(t, fs, virtual.WithBuiltin("qsub", qsub), virtual.WithBuiltin("rm", nil))
	r := sh(t, e, "echo hostname | qsub; qsub job.sh; /usr/bin/qsub job.sh; qsub nope.sh; echo $?; command -v qsub; type qsub; rm x")
	want := "1.server\n2.server\n3.server\n2\n/usr/bin/qsub\nqsub is /usr/bin/qsub\n"
	if r.Stdout != want {
		t.Errorf("stdout %q want %q", r.Stdout, want)
	}
	if !strings.Contains(r.Stderr, "bash: line 1: rm: command not found") {
		t.Errorf("removed builtin still ran: %q", r.Stderr)
	}
	if len(seen) != 3 || seen[0] != "stdin:hostname\n" || seen[1] != "file:#PBS -N x\nsleep 1\n" {
		t.Errorf("seen %q", seen)
	}
}

func TestKillBuiltin(t *testing.T) {
	e := newExec(t, nil)
	target, out, _ := cmds.Start(context.Background(), t, e, executor.Command{User: "alice", Script: "echo $$; sleep 1000"})
	testutil.WaitFor(t, "the pid", 10*time.Second, func() bool { return strings.HasSuffix(out.String(), "\n") })
	pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	r := cmds.Run(t, e, executor.Command{User: "bob", Script: fmt.Sprintf("kill %d", pid)})
	if r.Status.Code != 1 || r.Stderr != fmt.Sprintf("bash: line 1: kill: (%d) - Operation not permitted\n", pid) {
		t.Errorf("bob: %+v %q", r.Status, r.Stderr)
	}
	r = sh(t, e, fmt.Sprintf("ps -p %d -o pid= >/dev/null && kill -0 %d && kill -s USR1 %d", pid, pid, pid))
	if r.Status.Code != 0 {
		t.Errorf("alice: %+v %q", r.Status, r.Stderr)
	}
	if st := cmds.Wait(t, target); st.Code != 138 || st.Signal != syscall.SIGUSR1 {
		t.Errorf("target status %+v", st)
	}
	r = sh(t, e, fmt.Sprintf("kill -0 %d; kill -FOO 1", pid))
	if r.Status.Code != 1 || r.Stderr != fmt.Sprintf("bash: line 1: kill: (%d) - No such process\nbash: line 1: kill: FOO: invalid signal specification\n", pid) {
		t.Errorf("gone: %+v %q", r.Status, r.Stderr)
	}
}

func TestScriptsOnTheHost(t *testing.T) {
	fs := newFS(t)
	must(t, fs.MkdirAll("/home/alice/bin", 0o755))
	must(t, afero.WriteFile(fs, "/home/alice/bin/greet", []byte("#!/bin/bash\necho \"hi $1 from $0\"\nexit 4\n"), 0o755))
	must(t, afero.WriteFile(fs, "/home/alice/plain.sh", []byte("echo plain $#\n"), 0o644))
	must(t, afero.WriteFile(fs, "/home/alice/py", []byte("#!/usr/bin/env python3\nprint(1)\n"), 0o755))
	e := newExec(t, fs)
	cmds.Check(t, e, []executortest.Case{
		{"PATH=$HOME/bin:$PATH; greet you", "hi you from /home/alice/bin/greet\n", "", 4},
		{"bin/greet me", "hi me from bin/greet\n", "", 4},
		{"./plain.sh", "", "bash: line 1: ./plain.sh: Permission denied\n", 126},
		{"bash plain.sh a b; sh -c 'echo $0 $1' x y", "plain 2\nx y\n", "", 0},
		{"./py", "", "bash: line 1: ./py: cannot execute: required file not found\n", 127},
		{"./nope", "", "bash: line 1: ./nope: No such file or directory\n", 127},
		{"/home", "", "bash: line 1: /home: Is a directory\n", 126},
		{"bash -c 'trap \"echo inner\" EXIT; exit 5'; echo $?", "inner\n5\n", "", 0},
	})
}

func TestTTYAndInteractive(t *testing.T) {
	e := newExec(t, nil)
	r := cmds.Run(t, e, executor.Command{User: "alice", Script: "echo out; echo err >&2; echo $TERM", TTY: &executor.Window{Term: "vt100", Width: 80, Height: 24}})
	if r.Stdout != "out\r\nerr\r\nvt100\r\n" {
		t.Errorf("tty: %q", r.Stdout)
	}
	r = cmds.Run(t, e, executor.Command{User: "alice", Login: true, TTY: &executor.Window{Width: 80, Height: 24},
		Stdin: strings.NewReader("cd /tmp\recho hi $((1+2))\rexit 3\r")})
	if r.Status.Code != 3 || !strings.Contains(r.Stdout, "alice@node1:~$ ") || !strings.Contains(r.Stdout, "hi 3\r\n") || !strings.Contains(r.Stdout, "alice@node1:/tmp$ ") {
		t.Errorf("interactive: %+v %q", r.Status, r.Stdout)
	}
	// Without a terminal, commands come from standard input, no prompts.
	r = cmds.Run(t, e, executor.Command{User: "alice", Stdin: strings.NewReader("echo one\nfor i in 1 2; do\necho $i\ndone\n")})
	if r.Stdout != "one\n1\n2\n" || r.Status.Code != 0 {
		t.Errorf("stdin script: %+v %q %q", r.Status, r.Stdout, r.Stderr)
	}
}

func TestCoreutilsOnHostFS(t *testing.T) {
	e := newExec(t, nil)
	for _, tc := range []struct{ script, stdout string }{
		{"mkdir -p a/b/c && touch a/b/c/f && ls a/b/c && rm -r a && ls -A", ""},
		{"echo x > f; cp f g; mv g h; ls; cat h; rm f h", "f\nh\nx\n"},
		{"mkdir d; echo 1 > d/1; cp -r d e; ls e; rm -rf d e nonexistent; echo $?", "1\n0\n"},
		{"echo abc | tee t1 t2 >/dev/null; cat t1 t2", "abc\nabc\n"},
		{"ln -s /etc/passwd p 2>&1; echo $?", "ln: failed to create symbolic link 'p': Operation not supported\n1\n"},
		{"t=$(mktemp); test -f $t && echo file; d=$(mktemp -d); test -d $d && echo dir; case $t in /tmp/tmp.*) echo intmp;; esac", "file\ndir\nintmp\n"},
		{"chmod 600 /etc/passwd 2>&1; echo $?", ""},
		{"seq 3 | xargs echo n:", "n: 1 2 3\n"},
		{"echo 'a=1' | sed -e 's/=/ is /'", "a is 1\n"},
		{"timeout 0.05 sleep 5; echo $?", "124\n"},
		{"env -i FOO=1 env", "FOO=1\n"},
		{"cat <(echo procsub) <(echo two); echo hi | tee >(cat >/dev/null) >/dev/null; echo $?", "procsub\ntwo\n0\n"},
		{"uname -sn; ulimit -n; umask", "Linux node1.example.org\n1024\n0022\n"},
		{"date -u -d @0 '+%Y-%m-%dT%H:%M:%SZ %a %j %s'", "1970-01-01T00:00:00Z Thu 001 0\n"},
	} {
		r := sh(t, e, tc.script)
		if tc.stdout != "" && r.Stdout != tc.stdout {
			t.Errorf("%s: stdout %q want %q (stderr %q)", tc.script, r.Stdout, tc.stdout, r.Stderr)
		}
	}
	// A user cannot change root's files.
	r := sh(t, e, "chmod 600 /etc/passwd")
	if r.Status.Code != 0 {
		// MemMapFs has no owners: files count as the caller's.
		t.Logf("chmod: %+v %q", r.Status, r.Stderr)
	}
}

func TestNoRealProcesses(t *testing.T) {
	// $$ is the virtual pid, and the process table lists the script.
	e := newExec(t, nil)
	p, out, _ := cmds.Start(context.Background(), t, e, executor.Command{User: "alice", Script: "echo $$; sleep 1000"})
	testutil.WaitFor(t, "the pid", 10*time.Second, func() bool { return strings.HasSuffix(out.String(), "\n") })
	pid, _ := strconv.Atoi(strings.TrimSpace(out.String()))
	if pid == os.Getpid() || pid <= 0 {
		t.Errorf("$$ = %d", pid)
	}
	ps := e.Processes()
	if len(ps) != 1 || ps[0].Pid != pid || ps[0].User != "alice" {
		t.Errorf("process table %+v", ps)
	}
	// While the script sleeps, the test process has no child process.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	if len(tasks) == 0 {
		t.Log("no /proc/PID/task/*/children on this kernel: the child-process check did not run")
	}
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) != "" {
			t.Errorf("a real child process runs: %s: %q", f, b)
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); regexp.MustCompile(`sleep`).Match(b) {
			t.Errorf("a real process %d runs sleep", pid)
		}
	}
	must(t, e.Signal(pid, syscall.SIGTERM))
	if st := cmds.Wait(t, p); st.Signal != syscall.SIGTERM {
		t.Errorf("status %+v", st)
	}
}

// Back-references in a pattern cannot be matched by Go's automata: grep
// and sed refuse them with a clear message and GNU's status for a bad
// pattern, instead of matching something else. In a replacement they work.
func TestBackreferencesRefused(t *testing.T) {
	const errBackref = `back-references (\1 to \9) in a pattern are not supported by the virtual host`
	e := newExec(t, newFS(t))
	cmds.Check(t, e, []executortest.Case{
		{`echo aa | grep '\(a\)\1'`, "", "grep: " + errBackref + "\n", 2},
		{`echo aa | grep -E '(a)\1'`, "", "grep: " + errBackref + "\n", 2},
		{`echo aa | sed 's/\(a\)\1/X/'`, "", "sed: -e expression #1, char 0: " + errBackref + "\n", 1},
		{`echo ab | sed 's/\(a\)\(b\)/\2\1/'`, "ba\n", "", 0},
		{`echo ab | grep '[[.a.]]'`, "", "grep: collating symbols and equivalence classes ([.x.], [=x=]) are not supported by the virtual host\n", 2},
	})
}

// tty names the pseudo-terminal on stdin as the real host does: /dev/pts/N
// with a pty (the lowest free number), "not a tty" and status 1 without
// one or with stdin redirected; -s only sets the status.
func TestTTY(t *testing.T) {
	e := newExec(t, newFS(t))
	r := sh(t, e, "tty; echo $?; tty -s; echo $?")
	if r.Stdout != "not a tty\n1\n1\n" || r.Stderr != "" {
		t.Fatalf("without a pty: %q %q", r.Stdout, r.Stderr)
	}
	win := &executor.Window{Term: "xterm", Width: 80, Height: 24}
	hold, _, _ := cmds.Start(context.Background(), t, e, executor.Command{User: "alice", Script: "sleep 1000", TTY: win})
	r = cmds.Run(t, e, executor.Command{User: "alice", TTY: win,
		Script: "tty; echo $?; tty -s; echo $?; tty < /dev/null; echo x | tty; (tty)"})
	want := "/dev/pts/1\r\n0\r\n0\r\nnot a tty\r\nnot a tty\r\n/dev/pts/1\r\n"
	if r.Stdout != want {
		t.Fatalf("with a pty: %q, want %q", r.Stdout, want)
	}
	if err := hold.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmds.Wait(t, hold)
	if r := cmds.Run(t, e, executor.Command{User: "alice", TTY: win, Script: "tty"}); r.Stdout != "/dev/pts/0\r\n" {
		t.Fatalf("after the first pty closed: %q", r.Stdout)
	}
	if r := sh(t, e, "tty x"); r.Status.Code != 2 || r.Stderr != "tty: extra operand ‘x’\nTry 'tty --help' for more information.\n" {
		t.Fatalf("tty x: %+v %q", r.Status, r.Stderr)
	}
}

// A shell user cannot reach the real machine's disk through process
// substitution: its names are /dev/fd/N of the virtual host (the
// interpreter's own FIFOs in a real temporary directory are gone, and with
// them `echo <(true)` showing that directory and writes into it). Process
// substitution still works: in redirections and as file operands, nested,
// in eval'd and sourced text, in background jobs and traps, in functions
// with local variables, and >(...).
func TestProcSubstTouchesNoRealFile(t *testing.T) {
	realTmp := t.TempDir()
	t.Setenv("TMPDIR", realTmp) // where os.TempDir and the interpreter would put FIFOs
	fs := newFS(t)
	e := newExec(t, fs)
	script := `p=$(echo <(true)); echo "$p"
d=${p%/*}
for t in "$d/sh-interp-x" "${d%/*}/sh-interp-x" "` + realTmp + `/sh-interp-x" "//sh-interp-x"; do echo pwned > "$t"; done 2>/dev/null
cat <(echo one) <(echo two)
while read l; do echo "got $l"; done < <(printf 'a\nb\n')
cat <(cat <(echo nested))
eval 'cat <(echo evald)'
printf 'cat <(echo sourced)\n' > lib.sh; . ./lib.sh
f() { local v=local; cat <(echo "$v"); }; f
echo hi | tee >(tr a-z A-Z > up.txt) >/dev/null
i=0; until [ -s up.txt ] || [ $i -gt 100000 ]; do i=$((i+1)); sleep 0.01; done; cat up.txt
[ -p <(true) ] && echo pipe
cat <(echo background) & wait
trap 'cat <(echo trapped)' TERM; kill -TERM $$
`
	r := sh(t, e, script)
	want := "/dev/fd/63\none\ntwo\ngot a\ngot b\nnested\nevald\nsourced\nlocal\nHI\npipe\nbackground\ntrapped\n"
	if r.Stdout != want || r.Status.Code != 0 {
		t.Errorf("stdout %q, want %q (stderr %q, %+v)", r.Stdout, want, r.Stderr, r.Status)
	}
	entries, err := os.ReadDir(realTmp)
	if err != nil || len(entries) != 0 {
		t.Errorf("the real temporary directory holds %v (%v)", entries, err)
	}
	for _, p := range []string{"/sh-interp-x", "/tmp/sh-interp-x"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created on the real disk", p)
		}
	}
}

// command -v and type answer from the host's own PATH: a program that
// exists only on the real machine (ssh-keygen here) is not found, while
// the host's builtins, shell builtins, functions, keywords and the host's
// scripts are; `. NAME` finds the host's file, not the real machine's.
func TestCommandVLooksOnlyAtHostPath(t *testing.T) {
	real, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Skip("needs a program on the real PATH that the virtual host lacks (ssh-keygen)")
	}
	t.Setenv("PATH", filepath.Dir(real)+":"+os.Getenv("PATH"))
	fs := newFS(t)
	must(t, fs.MkdirAll("/home/alice/bin", 0o755))
	must(t, afero.WriteFile(fs, "/home/alice/bin/mytool", []byte("echo mine\n"), 0o755))
	must(t, afero.WriteFile(fs, "/home/alice/ssh-keygen", []byte("echo sourced from the host\n"), 0o644))
	e := newExec(t, fs)
	script := `PATH=/usr/bin:/bin:/home/alice/bin:` + filepath.Dir(real) + `
command -v ssh-keygen; echo "v $?"
command -V ssh-keygen; echo "V $?"
type ssh-keygen; echo "type $?"
type -P ssh-keygen; echo "P $?"
type -t ssh-keygen; echo "t $?"
f() { :; }
command -v f; command -v cd; command -v if; command -v mytool; command -v grep
type -t f; type -t cd; type -t if; type -t mytool
. ssh-keygen
`
	r := sh(t, e, script)
	want := "v 1\nV 1\ntype 1\nP 1\nt 1\nf\ncd\nif\n/home/alice/bin/mytool\n/usr/bin/grep\nfunction\nbuiltin\nkeyword\nfile\nsourced from the host\n"
	if r.Stdout != want {
		t.Errorf("stdout %q, want %q (stderr %q)", r.Stdout, want, r.Stderr)
	}
	wantErr := "bash: line 3: command: ssh-keygen: not found\nbash: line 4: type: ssh-keygen: not found\n"
	if r.Stderr != wantErr {
		t.Errorf("stderr %q, want %q", r.Stderr, wantErr)
	}
}

// docs/virtual-host.md lists every command a virtual host offers.
func TestDocsListBuiltins(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/virtual-host.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range virtual.Builtins() {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/virtual-host.md does not list %s", name)
		}
	}
}

package fusefs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/fault"
)

func ptr[T any](v T) *T { return &v }

func skipUnlessFuse(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("%v", err)
	}
}

// world is one mount under test: the backing tree has lib/mod.py,
// lib/data.txt and out/; the mountpoint and the backing directory are
// readable by every user (the mount is for other users' processes too).
type world struct {
	backing, mp string
	fs          *FS
	set         *fault.Set
}

func worldDir(t *testing.T, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func newWorld(t *testing.T, opts ...Option) *world {
	t.Helper()
	skipUnlessFuse(t)
	w := &world{backing: worldDir(t, "jobsim-backing-"), mp: worldDir(t, "jobsim-mnt-"), set: fault.NewSet()}
	for p, data := range map[string]string{"lib/mod.py": "VALUE = 42\n", "lib/data.txt": "library data\n", "out/.keep": ""} {
		p = filepath.Join(w.backing, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { assertNotMounted(t, w.mp) }) // runs after the unmount below
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	fs, err := Mount(ctx, w.backing, w.mp, w.set, opts...)
	if err != nil {
		t.Fatal(err)
	}
	w.fs = fs
	t.Cleanup(func() {
		if err := fs.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return w
}

func assertNotMounted(t *testing.T, mp string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == mp {
			t.Errorf("still mounted: %s", line)
		}
	}
}

func (w *world) add(t *testing.T, r fault.Rule) fault.Rule {
	t.Helper()
	r, err := w.set.Add(r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fsRule(ops []string, path string, e fault.Effect) fault.Rule {
	return fault.Rule{Layer: fault.FS, Ops: ops, Path: path, Effect: e}
}

func errnoEffect(name string) fault.Effect { return fault.Effect{Kind: fault.Errno, Errno: name} }

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

// run runs a real command (with a deadline) and returns its exit code and output.
func run(t *testing.T, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PYTHONDONTWRITEBYTECODE=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	t.Logf("$ %s %s -> exit %v, stdout %q, stderr %q, %v", name, strings.Join(args, " "), err, r.stdout, r.stderr, r.took.Round(time.Millisecond))
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// The site incident, with real programs: the library directory cannot be
// listed (ls exits 2, "reading directory ... Input/output error") while a
// file inside still reads with cat.
func TestUnlistableDirectoryWithRealLsAndCat(t *testing.T) {
	w := newWorld(t)
	lib := filepath.Join(w.mp, "lib")
	r := w.add(t, fsRule([]string{"readdir"}, lib, errnoEffect("EIO")))

	ls := run(t, "ls", lib)
	if ls.code != 2 || !strings.Contains(ls.stderr, "reading directory") || !strings.Contains(ls.stderr, "Input/output error") {
		t.Fatalf("ls: exit %d, stderr %q; want exit 2 and reading directory ...: Input/output error", ls.code, ls.stderr)
	}
	cat := run(t, "cat", filepath.Join(lib, "data.txt"))
	if cat.code != 0 || cat.stdout != "library data\n" {
		t.Fatalf("cat of a file inside: exit %d %q %q", cat.code, cat.stdout, cat.stderr)
	}
	if ls := run(t, "ls", w.mp); ls.code != 0 || !strings.Contains(ls.stdout, "lib") {
		t.Fatalf("listing the parent: %+v", ls)
	}
	w.set.Remove(r.ID)
	ls = run(t, "ls", lib)
	if ls.code != 0 || ls.stdout != "data.txt\nmod.py\n" {
		t.Fatalf("ls after clearing: %+v", ls)
	}
}

func TestOpendirRuleCannotOpenDirectory(t *testing.T) {
	w := newWorld(t)
	lib := filepath.Join(w.mp, "lib")
	w.add(t, fsRule([]string{"opendir"}, lib, errnoEffect("EACCES")))
	ls := run(t, "ls", lib)
	if ls.code != 2 || !strings.Contains(ls.stderr, "cannot open directory") || !strings.Contains(ls.stderr, "Permission denied") {
		t.Fatalf("ls: exit %d, stderr %q; want exit 2 and cannot open directory ...: Permission denied", ls.code, ls.stderr)
	}
	if cat := run(t, "cat", filepath.Join(lib, "mod.py")); cat.code != 0 {
		t.Fatalf("cat: %+v", cat)
	}
}

// Python imports from the unlistable directory: EIO is an OSError, EACCES
// makes Python treat the directory as empty (ModuleNotFoundError), and the
// import works again once the rule is cleared.
func TestPythonImportFromUnlistableDirectory(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed (apt-get install python3)")
	}
	w := newWorld(t)
	lib := filepath.Join(w.mp, "lib")
	script := fmt.Sprintf("import sys; sys.path.insert(0, %q); import mod; print(mod.VALUE)", lib)

	r := w.add(t, fsRule([]string{"readdir"}, lib, errnoEffect("EIO")))
	res := run(t, py, "-c", script)
	if res.code == 0 || !strings.Contains(res.stderr, "OSError: [Errno 5]") {
		t.Fatalf("import with EIO: exit %d, stderr %q; want OSError: [Errno 5]", res.code, res.stderr)
	}
	w.set.Remove(r.ID)

	r = w.add(t, fsRule([]string{"readdir"}, lib, errnoEffect("EACCES")))
	res = run(t, py, "-c", script)
	if res.code == 0 || !strings.Contains(res.stderr, "ModuleNotFoundError") {
		t.Fatalf("import with EACCES: exit %d, stderr %q; want ModuleNotFoundError", res.code, res.stderr)
	}
	w.set.Remove(r.ID)

	res = run(t, py, "-c", script)
	if res.code != 0 || res.stdout != "42\n" {
		t.Fatalf("import after clearing: %+v", res)
	}
}

func TestLatencyDelaysRealReads(t *testing.T) {
	w := newWorld(t)
	f := filepath.Join(w.mp, "lib", "data.txt")
	base := run(t, "cat", f)
	w.add(t, fsRule([]string{"read"}, f, fault.Effect{Kind: fault.Latency, Latency: fault.Duration(400 * time.Millisecond)}))
	res := run(t, "cat", f)
	if res.code != 0 || res.stdout != "library data\n" {
		t.Fatalf("cat: %+v", res)
	}
	if res.took < 400*time.Millisecond {
		t.Fatalf("cat took %v with a 400ms read latency (%v without)", res.took, base.took)
	}
}

func TestENOSPCMakesCpFail(t *testing.T) {
	w := newWorld(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte(strings.Repeat("x", 100_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(w.mp, "out", "copy")
	w.add(t, fsRule([]string{"write"}, filepath.Join(w.mp, "out", "**"), errnoEffect("ENOSPC")))
	cp := run(t, "cp", src, dst)
	if cp.code != 1 || !strings.Contains(cp.stderr, "No space left on device") {
		t.Fatalf("cp: exit %d, stderr %q; want exit 1 and No space left on device", cp.code, cp.stderr)
	}
	w.set.Clear()
	if cp := run(t, "cp", src, dst); cp.code != 0 {
		t.Fatalf("cp after clearing: %+v", cp)
	}
	if b, err := os.ReadFile(filepath.Join(w.backing, "out", "copy")); err != nil || len(b) != 100_000 {
		t.Fatalf("the copy on the backing directory: %d bytes, %v", len(b), err)
	}
}

// A hang holds a real process until the rule is cleared; unmounting
// releases hanging processes too.
func TestHangHoldsRealProcessUntilCleared(t *testing.T) {
	w := newWorld(t)
	f := filepath.Join(w.mp, "lib", "data.txt")
	r := w.add(t, fsRule([]string{"open"}, f, fault.Effect{Kind: fault.Hang}))
	catHeldUntilCleared(t, w, f, r.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)

	// A process killed while hanging goes away.
	r = w.add(t, fsRule([]string{"open"}, f, fault.Effect{Kind: fault.Hang}))
	kctx, kill := context.WithCancel(ctx)
	cmd := exec.CommandContext(kctx, "cat", f)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	time.Sleep(200 * time.Millisecond)
	kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a process killed during a hang did not exit")
	}
	w.set.Remove(r.ID)

	w.add(t, fsRule([]string{"open"}, f, fault.Effect{Kind: fault.Hang}))
	cmd = exec.CommandContext(ctx, "cat", f)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	time.Sleep(200 * time.Millisecond)
	if err := w.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cat succeeded although its open hung until the unmount")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("unmounting did not release the hanging cat")
	}
	if err := w.fs.Unmount(); err != nil {
		t.Fatalf("second Unmount: %v", err)
	}
	assertNotMounted(t, w.mp)
}

// Clearing a latency rule lets the real process it holds go on at once,
// instead of waiting out the latency.
func TestLatencyReleasedWhenCleared(t *testing.T) {
	w := newWorld(t)
	f := filepath.Join(w.mp, "lib", "data.txt")
	r := w.add(t, fsRule([]string{"open"}, f, fault.Effect{Kind: fault.Latency, Latency: fault.Duration(time.Hour)}))
	catHeldUntilCleared(t, w, f, r.ID)
}

// catHeldUntilCleared starts a real cat of f, which rule id holds: cat is
// still held after a while, and reads f at once when the rule is cleared.
func catHeldUntilCleared(t *testing.T, w *world, f, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "cat", f)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("cat finished while rule %s holds it: %v", id, err)
	case <-time.After(300 * time.Millisecond):
	}
	w.set.Remove(id)
	select {
	case err := <-done:
		if err != nil || out.String() != "library data\n" {
			t.Fatalf("cat after rule %s was cleared: %v %q", id, err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("cat still held after rule %s was cleared", id)
	}
}

// Other users reach the mount (allow_other); a rule with User selects only
// that user's processes; a perm rule is what stat shows and what the
// kernel enforces for users other than root.
func TestOtherUsersPermAndUserRules(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed (util-linux)")
	}
	if os.Geteuid() != 0 {
		t.Skip("running commands as nobody needs root")
	}
	w := newWorld(t)
	lib := filepath.Join(w.mp, "lib")
	asNobody := func(args ...string) result {
		return run(t, setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...)
	}
	if res := asNobody("cat", filepath.Join(lib, "data.txt")); res.code != 0 {
		t.Fatalf("nobody reading through the mount: %+v", res)
	}
	r := fsRule([]string{"readdir"}, lib, errnoEffect("EIO"))
	r.User = "nobody"
	r = w.add(t, r)
	if res := asNobody("ls", lib); res.code != 2 {
		t.Fatalf("nobody's ls with a rule for nobody: %+v", res)
	}
	if res := run(t, "ls", lib); res.code != 0 {
		t.Fatalf("root's ls with a rule for nobody: %+v", res)
	}
	w.set.Remove(r.ID)

	f := filepath.Join(lib, "data.txt")
	w.add(t, fault.Rule{Layer: fault.FS, Path: f, Effect: fault.Effect{Kind: fault.Perm, Mode: ptr(uint32(0o600))}})
	if res := run(t, "stat", "-c", "%a", f); strings.TrimSpace(res.stdout) != "600" {
		t.Fatalf("stat with a perm rule: %+v", res)
	}
	if res := asNobody("cat", f); res.code == 0 || !strings.Contains(res.stderr, "Permission denied") {
		t.Fatalf("nobody reading a file the perm rule made 0600: %+v", res)
	}
	if res := run(t, "cat", f); res.code != 0 {
		t.Fatalf("root reading it: %+v", res)
	}
}

// Rule paths are the paths the processes see: WithVisiblePath moves them.
func TestVisiblePath(t *testing.T) {
	w := newWorld(t, WithVisiblePath("/site/apps"))
	w.add(t, fsRule([]string{"readdir"}, "/site/apps/lib", errnoEffect("EIO")))
	if res := run(t, "ls", filepath.Join(w.mp, "lib")); res.code != 2 {
		t.Fatalf("ls: %+v", res)
	}
	if res := run(t, "ls", filepath.Join(w.mp, "out")); res.code != 0 {
		t.Fatalf("ls of another directory: %+v", res)
	}
}

// Mounted over its own backing directory, the faults appear in place and
// the files underneath are the ones served.
func TestMountOverItself(t *testing.T) {
	skipUnlessFuse(t)
	dir := worldDir(t, "jobsim-inplace-")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("underneath\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set := fault.NewSet()
	t.Cleanup(func() { assertNotMounted(t, dir) })
	fs, err := Mount(t.Context(), dir, dir, set)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Unmount()
	if _, err := set.Add(fsRule([]string{"readdir"}, dir, errnoEffect("EIO"))); err != nil {
		t.Fatal(err)
	}
	if res := run(t, "ls", dir); res.code != 2 {
		t.Fatalf("ls of the directory mounted over itself: %+v", res)
	}
	if res := run(t, "cat", filepath.Join(dir, "f")); res.stdout != "underneath\n" {
		t.Fatalf("cat: %+v", res)
	}
	if err := os.WriteFile(filepath.Join(dir, "g"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "g")); err != nil || string(b) != "new\n" {
		t.Fatalf("a file written through the mount, after unmounting: %q %v", b, err)
	}
}

func TestMountBadInput(t *testing.T) {
	skipUnlessFuse(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	for _, c := range []struct{ backing, mp, want string }{
		{filepath.Join(dir, "missing"), dir, "backing directory"},
		{file, dir, "not a directory"},
		{dir, filepath.Join(dir, "missing"), "fuse mountpoint"},
		{dir, filepath.Join(dir, "sub"), "inside the backing directory"},
	} {
		fs, err := Mount(t.Context(), c.backing, c.mp, nil)
		if err == nil {
			fs.Unmount()
			t.Errorf("Mount(%s, %s) worked", c.backing, c.mp)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Mount(%s, %s): %v, want it to say %q", c.backing, c.mp, err, c.want)
		}
	}
}

// helperEnv makes the test binary a process that mounts and waits to be
// killed, to leave a stale mount behind as a crashed run does.
const helperEnv = "JOBSIM_FUSEFS_HELPER"

func TestMain(m *testing.M) {
	if mp := os.Getenv(helperEnv); mp != "" {
		backing := os.Getenv(helperEnv + "_BACKING")
		if _, err := Mount(context.Background(), backing, mp, nil); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("mounted")
		time.Sleep(time.Minute) // killed long before
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A mount left by a run killed with SIGKILL ("Transport endpoint is not
// connected") is cleaned up by the next Mount at the same place.
func TestStaleMountOfACrashedRunIsCleaned(t *testing.T) {
	skipUnlessFuse(t)
	backing, mp := worldDir(t, "jobsim-backing-"), worldDir(t, "jobsim-mnt-")
	os.WriteFile(filepath.Join(backing, "f"), []byte("ok\n"), 0o644)
	t.Cleanup(func() { assertNotMounted(t, mp) })
	t.Cleanup(func() { // whatever happens, leave no mount behind
		if err := LazyUnmount(mp); err == nil {
			t.Log("removed a leftover mount")
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mp, helperEnv+"_BACKING="+backing)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "mounted\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(mp, "f")); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL the mountpoint answers %v, want ENOTCONN (a stale mount)", err)
	}
	fs, err := Mount(ctx, backing, mp, nil)
	if err != nil {
		t.Fatalf("mounting over the stale mount: %v", err)
	}
	if res := run(t, "cat", filepath.Join(mp, "f")); res.stdout != "ok\n" {
		t.Fatalf("cat through the new mount: %+v", res)
	}
	if err := fs.Unmount(); err != nil {
		t.Fatal(err)
	}
}

func TestParseMountinfo(t *testing.T) {
	in := `22 27 0:21 / /proc rw,relatime - proc proc rw
95 27 0:50 / /tmp/with\040space rw,nosuid,nodev,relatime - fuse.jobsimfs /srv/back\040ing rw,user_id=0,group_id=0,default_permissions,allow_other
96 27 0:51 / /tmp/other rw - fuse.sshfs host:/ rw
97 27 0:52 / /opt/lib rw - fuse.jobsimfs jobsim-run:r0123abcd:/tmp/r/lib rw
`
	got, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Mountpoint != "/tmp/with space" || got[0].Source != "/srv/back ing" || got[0].Dev != "0:50" || got[0].Run != "" ||
		got[1] != (MountEntry{Mountpoint: "/opt/lib", Source: "/tmp/r/lib", Dev: "0:52", Run: "r0123abcd"}) {
		t.Fatalf("%+v", got)
	}
}

// Real rsync into the mount: it works without rules, and a full disk on
// the destination makes it fail.
func TestRsyncIntoTheMount(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed (apt-get install rsync)")
	}
	w := newWorld(t)
	src := t.TempDir()
	for _, n := range []string{"a", "b/c"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(n)), 0o755)
		if err := os.WriteFile(filepath.Join(src, n), []byte("content of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(w.mp, "out", "job")
	w.add(t, fsRule([]string{"write"}, filepath.Join(w.mp, "out", "**"), errnoEffect("ENOSPC")))
	res := run(t, "rsync", "-a", src+"/", dst+"/")
	if res.code == 0 || !strings.Contains(res.stderr, "No space left on device") {
		t.Fatalf("rsync onto a full disk: %+v", res)
	}
	w.set.Clear()
	if res := run(t, "rsync", "-a", src+"/", dst+"/"); res.code != 0 {
		t.Fatalf("rsync after clearing: %+v", res)
	}
	if b, err := os.ReadFile(filepath.Join(w.backing, "out", "job", "b", "c")); err != nil || string(b) != "content of b/c" {
		t.Fatalf("copied file on the backing directory: %q %v", b, err)
	}
}

// A child process started while a mount is being made must not inherit
// /dev/fuse: holding it, the child keeps the FUSE connection open after
// jobsim dies and every access to the mountpoint hangs for ever (the
// scheduler of a killed run did so). Children are started from other
// goroutines all through several mounts, then their descriptors read.
func TestChildrenDoNotInheritDevFuse(t *testing.T) {
	skipUnlessFuse(t)
	stop := make(chan struct{})
	var pids []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := exec.Command("sleep", "30")
			if err := c.Start(); err != nil {
				return
			}
			pids = append(pids, c.Process.Pid)
			go c.Wait()
		}
	}()
	for range 20 {
		w := newWorld(t)
		if err := w.fs.Unmount(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	var holders []int
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == "/dev/fuse" {
				holders = append(holders, pid)
			}
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(pids) < 20 {
		t.Fatalf("only %d children started during the mounts: the test proves nothing", len(pids))
	}
	if len(holders) > 0 {
		t.Fatalf("%d of %d children started during mounts hold /dev/fuse: %v", len(holders), len(pids), holders)
	}
	t.Logf("%d children started during 20 mounts; none holds /dev/fuse", len(pids))
}

package fsys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

func ptr[T any](v T) *T { return &v }

func errnoRule(errno, path string, ops ...string) fault.Rule {
	return fault.Rule{Layer: fault.FS, Ops: ops, Path: path, Effect: fault.Effect{Kind: fault.Errno, Errno: errno}}
}

func mustAdd(t testing.TB, s *fault.Set, r fault.Rule) fault.Rule {
	t.Helper()
	r, err := s.Add(r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tree lays out the test tree on fsys: /d/f.txt ("hello"), /d/sub/x.py,
// /opt/lib/mod.py.
func tree(t testing.TB, fsys afero.Fs) {
	t.Helper()
	for p, data := range map[string]string{
		"/d/f.txt":        "hello",
		"/d/sub/x.py":     "x = 1\n",
		"/opt/lib/mod.py": "VALUE = 42\n",
	} {
		if err := fsys.MkdirAll(dirOf(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := afero.WriteFile(fsys, p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func dirOf(p string) string { return p[:strings.LastIndex(p, "/")] }

// backings returns the filesystems the wrapper is tested over: an in-memory
// one and a RootFs on a temporary directory.
func backings(t *testing.T) map[string]func(t *testing.T) afero.Fs {
	return map[string]func(t *testing.T) afero.Fs{
		"mem": func(t *testing.T) afero.Fs { return afero.NewMemMapFs() },
		"root": func(t *testing.T) afero.Fs {
			r, err := NewRootFs(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return r
		},
	}
}

// opCase is one operation family: do performs a call that succeeds on the
// test tree without rules, and that a rule on op at path must fail.
type opCase struct {
	op, path string
	symlink  bool // needs afero.Symlinker on the base
	linkErr  bool // the error is an *os.LinkError
	do       func(fsys afero.Fs) error
}

func withFile(fsys afero.Fs, name string, flag int, f func(afero.File) error) error {
	file, err := fsys.OpenFile(name, flag, 0o644)
	if err != nil {
		return fmt.Errorf("opening for the test: %w", err)
	}
	defer file.Close()
	return f(file)
}

var opCases = []opCase{
	{op: "open", path: "/d/f.txt", do: func(fsys afero.Fs) error { f, err := fsys.Open("/d/f.txt"); closeIf(f); return err }},
	{op: "open", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		f, err := fsys.OpenFile("/d/f.txt", os.O_WRONLY|os.O_TRUNC, 0)
		closeIf(f)
		return err
	}},
	{op: "opendir", path: "/d", do: func(fsys afero.Fs) error { f, err := fsys.Open("/d"); closeIf(f); return err }},
	{op: "create", path: "/d/new.txt", do: func(fsys afero.Fs) error { f, err := fsys.Create("/d/new.txt"); closeIf(f); return err }},
	{op: "read", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_RDONLY, func(f afero.File) error { _, err := io.ReadAll(f); return err })
	}},
	{op: "read", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_RDONLY, func(f afero.File) error { _, err := f.ReadAt(make([]byte, 5), 0); return err })
	}},
	{op: "write", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_WRONLY, func(f afero.File) error { _, err := f.Write([]byte("H")); return err })
	}},
	{op: "write", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_WRONLY, func(f afero.File) error { _, err := f.WriteAt([]byte("H"), 1); return err })
	}},
	{op: "write", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_WRONLY, func(f afero.File) error { _, err := f.WriteString("H"); return err })
	}},
	{op: "readdir", path: "/d", do: func(fsys afero.Fs) error { _, err := afero.ReadDir(fsys, "/d"); return err }},
	{op: "readdir", path: "/d", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d", os.O_RDONLY, func(f afero.File) error { _, err := f.Readdirnames(-1); return err })
	}},
	{op: "readdir", path: "/d", do: func(fsys afero.Fs) error { _, err := fs.ReadDir(afero.NewIOFS(fsys), "d"); return err }},
	{op: "stat", path: "/d/f.txt", do: func(fsys afero.Fs) error { _, err := fsys.Stat("/d/f.txt"); return err }},
	{op: "stat", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_RDONLY, func(f afero.File) error { _, err := f.Stat(); return err })
	}},
	{op: "lstat", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		_, _, err := fsys.(afero.Lstater).LstatIfPossible("/d/f.txt")
		return err
	}},
	{op: "mkdir", path: "/d/newdir", do: func(fsys afero.Fs) error { return fsys.Mkdir("/d/newdir", 0o755) }},
	{op: "mkdir", path: "/d/a", do: func(fsys afero.Fs) error { return fsys.MkdirAll("/d/a/b/c", 0o755) }},
	{op: "remove", path: "/d/f.txt", do: func(fsys afero.Fs) error { return fsys.Remove("/d/f.txt") }},
	{op: "remove", path: "/d/sub/x.py", do: func(fsys afero.Fs) error { return fsys.RemoveAll("/d") }},
	{op: "rename", path: "/d/f.txt", linkErr: true, do: func(fsys afero.Fs) error { return fsys.Rename("/d/f.txt", "/d/g.txt") }},
	{op: "rename", path: "/d/g.txt", linkErr: true, do: func(fsys afero.Fs) error { return fsys.Rename("/d/f.txt", "/d/g.txt") }},
	{op: "chmod", path: "/d/f.txt", do: func(fsys afero.Fs) error { return fsys.Chmod("/d/f.txt", 0o600) }},
	{op: "chown", path: "/d/f.txt", do: func(fsys afero.Fs) error { return fsys.Chown("/d/f.txt", os.Getuid(), os.Getgid()) }},
	{op: "chtimes", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return fsys.Chtimes("/d/f.txt", time.Unix(1e9, 0), time.Unix(1e9, 0))
	}},
	{op: "truncate", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_RDWR, func(f afero.File) error { return f.Truncate(2) })
	}},
	{op: "sync", path: "/d/f.txt", do: func(fsys afero.Fs) error {
		return withFile(fsys, "/d/f.txt", os.O_RDWR, func(f afero.File) error { return f.Sync() })
	}},
	{op: "symlink", path: "/d/link", symlink: true, linkErr: true, do: func(fsys afero.Fs) error {
		return fsys.(afero.Linker).SymlinkIfPossible("f.txt", "/d/link")
	}},
	{op: "readlink", path: "/d/ln", symlink: true, do: func(fsys afero.Fs) error {
		_, err := fsys.(afero.LinkReader).ReadlinkIfPossible("/d/ln")
		return err
	}},
}

func closeIf(f afero.File) {
	if f != nil {
		f.Close()
	}
}

// Every operation family fails with the rule's errno, as the error type
// callers expect, does not touch the tree when it fails, and works again
// once the rule is cleared.
func TestEveryOperationFails(t *testing.T) {
	for bname, mk := range backings(t) {
		for i, c := range opCases {
			t.Run(fmt.Sprintf("%s/%d-%s", bname, i, c.op), func(t *testing.T) {
				base := mk(t)
				if _, ok := base.(afero.Symlinker); c.symlink && !ok {
					t.Skipf("%s has no symbolic links", base.Name())
				}
				tree(t, base)
				if c.symlink {
					if err := base.(afero.Linker).SymlinkIfPossible("f.txt", "/d/ln"); err != nil {
						t.Fatal(err)
					}
				}
				set := fault.NewSet()
				fsys := WithFaults(base, set)
				before := snapshot(t, base)
				r := mustAdd(t, set, errnoRule("EIO", c.path, c.op))
				err := c.do(fsys)
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("with a %s rule on %s: error %v, want EIO", c.op, c.path, err)
				}
				var pe *os.PathError
				var le *os.LinkError
				if c.linkErr && !errors.As(err, &le) || !c.linkErr && !errors.As(err, &pe) {
					t.Errorf("error %T (%v): want *os.PathError or, for rename and symlink, *os.LinkError", err, err)
				}
				if c.op != "remove" || c.path != "/d/sub/x.py" { // rm -r removes what comes before the failure
					if after := snapshot(t, base); after != before {
						t.Errorf("the failed %s changed the tree:\nbefore %s\nafter  %s", c.op, before, after)
					}
				}
				if !set.Remove(r.ID) {
					t.Fatal("rule vanished")
				}
				if err := c.do(fsys); err != nil {
					t.Fatalf("after clearing the rule: %v", err)
				}
				st := set.Status()
				if len(st) != 0 {
					t.Fatalf("status %v", st)
				}
			})
		}
	}
}

// snapshot describes the tree under / (paths, sizes, contents).
func snapshot(t testing.TB, fsys afero.Fs) string {
	t.Helper()
	var b strings.Builder
	err := afero.Walk(fsys, "/", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			return nil
		}
		fmt.Fprintf(&b, "%s %v %d", p, fi.IsDir(), fi.Size())
		if fi.Mode().IsRegular() {
			data, err := afero.ReadFile(fsys, p)
			fmt.Fprintf(&b, " %q %v", data, err)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// transcript runs a fixed workload on fsys and describes every result,
// errors included, so two filesystems can be compared call for call.
func transcript(fsys afero.Fs) string {
	var b strings.Builder
	say := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	fi, err := fsys.Stat("/d/f.txt")
	if err == nil {
		say("stat %s %v %d %v", fi.Name(), fi.Mode(), fi.Size(), fi.IsDir())
	} else {
		say("stat %v", err)
	}
	_, err = fsys.Stat("/nope")
	say("stat missing: %v", err)
	_, err = fsys.Open("/nope/x")
	say("open missing: %v", err)
	data, err := afero.ReadFile(fsys, "/d/f.txt")
	say("read %q %v", data, err)
	infos, err := afero.ReadDir(fsys, "/d")
	for _, fi := range infos {
		say("entry %s %v %d", fi.Name(), fi.IsDir(), fi.Size())
	}
	say("readdir %v", err)
	say("mkdir existing: %v", fsys.Mkdir("/d", 0o755))
	say("mkdirall: %v", fsys.MkdirAll("/e/f/g", 0o750))
	f, err := fsys.OpenFile("/e/f/g/h", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		n, err := f.WriteString("abc")
		say("write %d %v", n, err)
		n, err = f.WriteAt([]byte("Z"), 5)
		say("writeat %d %v", n, err)
		say("truncate %v", f.Truncate(4))
		say("close %v", f.Close())
	} else {
		say("create %v", err)
	}
	_, err = fsys.OpenFile("/e/f/g/h", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	say("create excl existing: %v", err)
	data, err = afero.ReadFile(fsys, "/e/f/g/h")
	say("read back %q %v", data, err)
	say("rename %v", fsys.Rename("/e/f/g/h", "/e/h"))
	say("remove non-empty fails: %v", fsys.Remove("/e") != nil)
	say("removeall %v", fsys.RemoveAll("/e"))
	_, err = fsys.Stat("/e")
	say("gone %v", errors.Is(err, fs.ErrNotExist))
	say("removeall missing %v", fsys.RemoveAll("/nope"))
	return b.String()
}

// Clearing the rules gives back exactly the behaviour of the bare
// filesystem, and rules that do not select anything change nothing.
func TestClearedRulesRestoreExactBehaviour(t *testing.T) {
	for bname, mk := range backings(t) {
		t.Run(bname, func(t *testing.T) {
			bare := mk(t)
			tree(t, bare)
			want := transcript(bare)

			base := mk(t)
			tree(t, base)
			set := fault.NewSet()
			fsys := WithFaults(base, set)
			for _, op := range fault.LayerOps[fault.FS] {
				mustAdd(t, set, errnoRule("EIO", "/", op))
				mustAdd(t, set, errnoRule("EACCES", "/**", op))
			}
			if got := transcript(fsys); got == want {
				t.Fatal("rules on every operation changed nothing")
			}
			if n := set.Clear(fault.FS); n != 2*len(fault.LayerOps[fault.FS]) {
				t.Fatalf("cleared %d rules", n)
			}
			// The failing run created /e partly; start again from the tree.
			if err := base.RemoveAll("/e"); err != nil {
				t.Fatal(err)
			}
			if got := transcript(fsys); got != want {
				t.Errorf("after clearing:\n%s\nbare:\n%s", got, want)
			}

			quiet := mk(t)
			tree(t, quiet)
			set = fault.NewSet()
			for i := range 10 {
				mustAdd(t, set, errnoRule("EIO", fmt.Sprintf("/elsewhere/%d/**", i)))
			}
			if got := transcript(WithFaults(quiet, set)); got != want {
				t.Errorf("with non-matching rules:\n%s\nbare:\n%s", got, want)
			}
		})
	}
}

// The site incident: the library directory cannot be listed; its files still
// open and read, and the directory still stats.
func TestUnlistableDirectory(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	log := events.NewLog()
	set := fault.NewSet(fault.WithRecorder(log))
	fsys := WithFaults(base, set)
	mustAdd(t, set, errnoRule("EIO", "/opt/lib", "readdir"))

	_, err := afero.ReadDir(fsys, "/opt/lib")
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "readdir /opt/lib") {
		t.Fatalf("listing: %v, want readdir /opt/lib: input/output error", err)
	}
	if data, err := afero.ReadFile(fsys, "/opt/lib/mod.py"); err != nil || string(data) != "VALUE = 42\n" {
		t.Fatalf("reading a file inside: %q %v", data, err)
	}
	if fi, err := fsys.Stat("/opt/lib"); err != nil || !fi.IsDir() {
		t.Fatalf("stat of the directory: %v", err)
	}
	if _, err := afero.ReadDir(fsys, "/opt"); err != nil {
		t.Fatalf("listing the parent: %v", err)
	}
	var acts []events.Event
	for _, e := range log.All() {
		if e.Kind == events.FaultActivate {
			acts = append(acts, e)
		}
	}
	if len(acts) != 1 || acts[0].Fields["path"] != "/opt/lib" || acts[0].Fields["op"] != "readdir" {
		t.Fatalf("activations %v, want one readdir of /opt/lib", acts)
	}
}

// Relative names (afero.NewIOFS) match rules written with absolute paths.
func TestRelativeNamesMatchAbsoluteRules(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	mustAdd(t, set, errnoRule("EACCES", "/opt/lib/*.py", "open"))
	iofs := afero.NewIOFS(WithFaults(base, set))
	if _, err := fs.ReadFile(iofs, "opt/lib/mod.py"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("io/fs read: %v, want EACCES", err)
	}
	if _, err := fs.ReadFile(iofs, "d/f.txt"); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{"": "/", ".": "/", "a/../b/": "/b", "/x//y/.": "/x/y", "../..": "/", "/": "/"} {
		if got := Abs(in); got != want {
			t.Errorf("Abs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUserSelectsRules(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	r := errnoRule("EACCES", "/d/**")
	r.User = "alice"
	mustAdd(t, set, r)
	fsys := WithFaults(base, set)
	if _, err := afero.ReadFile(ForUser(fsys, "alice"), "/d/f.txt"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("alice: %v, want EACCES", err)
	}
	if _, err := afero.ReadFile(ForUser(fsys, "bob"), "/d/f.txt"); err != nil {
		t.Errorf("bob: %v", err)
	}
	if _, err := afero.ReadFile(fsys, "/d/f.txt"); err != nil {
		t.Errorf("no user: %v", err)
	}
	if _, err := afero.ReadFile(WithFaults(base, set, WithUser("alice")), "/d/f.txt"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("WithUser(alice): %v, want EACCES", err)
	}
	if got := ForUser(base, "alice"); got != base {
		t.Error("ForUser on a plain fs should return it unchanged")
	}
}

func TestPermOverridesStat(t *testing.T) {
	for bname, mk := range backings(t) {
		t.Run(bname, func(t *testing.T) {
			base := mk(t)
			tree(t, base)
			set := fault.NewSet()
			fsys := WithFaults(base, set)
			mustAdd(t, set, fault.Rule{Layer: fault.FS, Path: "/d", Effect: fault.Effect{Kind: fault.Perm, Mode: ptr(uint32(0o1700))}})
			mustAdd(t, set, fault.Rule{Layer: fault.FS, Path: "/d/f.txt", Effect: fault.Effect{Kind: fault.Perm, Mode: ptr(uint32(0))}})
			fi, err := fsys.Stat("/d")
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != fs.ModeDir|fs.ModeSticky|0o700 || !fi.IsDir() {
				t.Errorf("stat /d: mode %v, want drwx------ with sticky bit", fi.Mode())
			}
			fi, _, err = fsys.(afero.Lstater).LstatIfPossible("/d/f.txt")
			if err != nil || fi.Mode() != 0 || fi.Size() != 5 {
				t.Errorf("lstat /d/f.txt: %v %v", fi.Mode(), err)
			}
			f, err := fsys.Open("/d/f.txt")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if fi, err := f.Stat(); err != nil || fi.Mode().Perm() != 0 || fi.Name() != "f.txt" {
				t.Errorf("fstat: %v %v", fi.Mode(), err)
			}
			set.Clear()
			if fi, err := fsys.Stat("/d/f.txt"); err != nil || fi.Mode().Perm() != 0o644 {
				t.Errorf("after clearing: %v %v", fi.Mode(), err)
			}
		})
	}
}

func TestLatencyDelays(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	fsys := WithFaults(base, set)
	mustAdd(t, set, fault.Rule{Layer: fault.FS, Ops: []string{"read"}, Path: "/d/f.txt",
		Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(80 * time.Millisecond)}})
	start := time.Now()
	data, err := afero.ReadFile(fsys, "/d/f.txt")
	if err != nil || string(data) != "hello" {
		t.Fatalf("%q %v", data, err)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("read took %v, want at least the 80ms latency", d)
	}
}

func TestHangEndsWhenClearedOrContextEnds(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	r := mustAdd(t, set, fault.Rule{Layer: fault.FS, Ops: []string{"stat"}, Path: "/d", Effect: fault.Effect{Kind: fault.Hang}})
	fsys := WithFaults(base, set).(*FaultFs)

	heldUntilCleared(t, set, r.ID, func() error { _, err := fsys.Stat("/d"); return err })

	mustAdd(t, set, fault.Rule{Layer: fault.FS, Ops: []string{"stat"}, Path: "/d", Effect: fault.Effect{Kind: fault.Hang}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := fsys.WithContext(ctx).Stat("/d")
	if !errors.Is(err, syscall.EINTR) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stat hanging until the session ends: %v, want EINTR and the context's error", err)
	}
}

// Clearing a latency rule lets a call it holds go on at once, as clearing a
// hang does, instead of making it wait out the latency.
func TestLatencyEndsWhenCleared(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	r := mustAdd(t, set, fault.Rule{Layer: fault.FS, Ops: []string{"read"}, Path: "/d/f.txt",
		Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(time.Hour)}})
	fsys := WithFaults(base, set)
	heldUntilCleared(t, set, r.ID, func() error {
		data, err := afero.ReadFile(fsys, "/d/f.txt")
		if err == nil && string(data) != "hello" {
			err = fmt.Errorf("read %q", data)
		}
		return err
	})
}

// heldUntilCleared runs op, which rule id holds: op is still held after a
// while, and returns without error at once when the rule is cleared.
func heldUntilCleared(t *testing.T, set *fault.Set, id string, op func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		t.Fatalf("returned while rule %s holds it: %v", id, err)
	case <-time.After(100 * time.Millisecond):
	}
	set.Remove(id)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after rule %s was cleared: %v", id, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still held after rule %s was cleared", id)
	}
}

// The same seed gives the same activations; another seed other ones.
func TestSameSeedSameActivations(t *testing.T) {
	run := func(seed int64) []int {
		base := afero.NewMemMapFs()
		tree(t, base)
		set := fault.NewSet(fault.WithSeed(seed))
		r := errnoRule("EIO", "/d/f.txt", "read")
		r.Probability = ptr(0.3)
		mustAdd(t, set, r)
		fsys := WithFaults(base, set)
		var failed []int
		for i := range 200 {
			if _, err := afero.ReadFile(fsys, "/d/f.txt"); err != nil {
				failed = append(failed, i)
			}
		}
		return failed
	}
	a, b, c := run(7), run(7), run(8)
	if len(a) < 20 || len(a) > 120 {
		t.Fatalf("%d of 200 reads failed with probability 0.3", len(a))
	}
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different activations:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatal("another seed gave the same activations")
	}
}

// Concurrent positional I/O on one in-memory handle (as pkg/sftp does)
// lands at the right offsets, while rules are added and cleared.
func TestConcurrentPositionalIO(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	fsys := WithFaults(base, set)
	f, err := fsys.Create("/d/big")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const workers, block, rounds = 8, 512, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	stop := make(chan struct{})
	go func() { // churn rules that never select this file
		defer close(errs)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := set.Add(errnoRule("EIO", "/elsewhere/**"))
			if err != nil {
				errs <- err
				return
			}
			set.Remove(r.ID)
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := []byte(strings.Repeat(string(rune('a'+w)), block))
			got := make([]byte, block)
			for i := range rounds {
				off := int64((i*workers + w) * block)
				if _, err := f.WriteAt(want, off); err != nil {
					errs <- err
					return
				}
				if _, err := f.ReadAt(got, off); err != nil {
					errs <- fmt.Errorf("readat %d: %w", off, err)
					return
				}
				if string(got) != string(want) {
					errs <- fmt.Errorf("worker %d round %d: read back %q..., want %q...", w, i, got[:8], want[:8])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	for err := range errs {
		t.Error(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != workers*block*rounds {
		t.Fatalf("size %d %v", fi.Size(), err)
	}
}

// Many goroutines over many operations and paths with rules firing: the
// race detector checks the wrapper; every error is the rule's errno.
func TestConcurrentUse(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	r := errnoRule("EIO", "/d/**")
	r.Probability = ptr(0.5)
	mustAdd(t, set, r)
	fsys := WithFaults(base, set)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				name := fmt.Sprintf("/d/w%d-%d", w, i%5)
				for _, err := range []error{
					afero.WriteFile(fsys, name, []byte("x"), 0o644),
					func() error { _, err := afero.ReadDir(fsys, "/d"); return err }(),
					func() error { _, err := fsys.Stat(name); return err }(),
					fsys.Remove(name),
				} {
					if err != nil && !errors.Is(err, syscall.EIO) && !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("unexpected error %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestReadAtKeepsReaderAtContract(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	f, err := WithFaults(base, nil).Open("/d/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 10)
	n, err := f.ReadAt(buf, 2)
	if n != 3 || err != io.EOF || string(buf[:n]) != "llo" {
		t.Fatalf("ReadAt past the end: %d %v %q, want 3 io.EOF \"llo\"", n, err, buf[:n])
	}
}

// mkdir -p stops at the directory a rule fails, leaving its parents made.
func TestMkdirAllStopsAtTheFailingDirectory(t *testing.T) {
	base := afero.NewMemMapFs()
	tree(t, base)
	set := fault.NewSet()
	mustAdd(t, set, errnoRule("ENOSPC", "/d/a/b", "mkdir"))
	err := WithFaults(base, set).MkdirAll("/d/a/b/c", 0o755)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "mkdir /d/a/b:") {
		t.Fatalf("mkdir -p: %v, want mkdir /d/a/b: no space left on device", err)
	}
	if fi, err := base.Stat("/d/a"); err != nil || !fi.IsDir() {
		t.Fatalf("/d/a should exist: %v", err)
	}
	if _, err := base.Stat("/d/a/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("/d/a/b should not exist: %v", err)
	}
}

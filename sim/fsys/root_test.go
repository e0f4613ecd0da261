package fsys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/afero"
)

// hostRoot makes a host root with its own /etc/passwd, a secret file next
// to the root (outside it), and the symbolic links that try to get out.
func hostRoot(t *testing.T) (r *RootFs, outside string) {
	t.Helper()
	top := t.TempDir()
	dir := filepath.Join(top, "a", "b", "root")
	outside = filepath.Join(top, "secret")
	for p, data := range map[string]string{
		filepath.Join(dir, "etc/passwd"):         "root:x:0:0:host root:/root:/bin/sh\n",
		filepath.Join(dir, "home/alice/job.sh"):  "echo hi\n",
		filepath.Join(dir, "opt/lib/mod.py"):     "VALUE = 1\n",
		filepath.Join(top, "secret/passwd"):      "outside!\n",
		filepath.Join(top, "a/b/root-peer/data"): "peer\n",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"home/alice/etc":      "/etc",                              // absolute, to the real /etc
		"home/alice/up":       "../../../secret",                   // relative, climbing out
		"home/alice/deep":     "../../../../../../../../../../etc", // climbing far
		"home/alice/peer":     "../../../root-peer",                // a sibling of the root
		"home/alice/lib":      "../../opt/lib",                     // inside: must work
		"home/alice/selfroot": "..",                                // inside
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewRootFs(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, outside
}

func TestRootFsEscapesFail(t *testing.T) {
	r, _ := hostRoot(t)
	for _, name := range []string{
		"../../etc/passwd",
		"../secret/passwd",
		"home/../../secret/passwd",
		"/home/alice/etc/passwd",
		"/home/alice/up/passwd",
		"/home/alice/deep/passwd",
		"/home/alice/peer/data",
		"home/alice/up/passwd",
	} {
		data, err := afero.ReadFile(r, name)
		if err == nil {
			t.Errorf("read %s: got %q, want an error (outside the root)", name, data)
			continue
		}
		if strings.Contains(string(data), "outside") {
			t.Errorf("read %s leaked %q", name, data)
		}
		// Listing, stat and writing through the escapes fail too.
		dir := filepath.Dir(name)
		if _, err := afero.ReadDir(r, dir); err == nil && strings.Contains(dir, "alice/") {
			t.Errorf("listing %s through a link out of the root worked", dir)
		}
	}
	for _, name := range []string{"/home/alice/up/new", "/home/alice/etc/evil", "../escape"} {
		if err := afero.WriteFile(r, name, []byte("x"), 0o644); err == nil {
			t.Errorf("write %s: want an error", name)
		}
	}
	if err := r.Mkdir("/home/alice/up/newdir", 0o755); err == nil {
		t.Error("mkdir through a link out of the root worked")
	}
	if err := r.Rename("/home/alice/job.sh", "/home/alice/up/job.sh"); err == nil {
		t.Error("rename out of the root worked")
	}
	if err := r.Chmod("/home/alice/up/passwd", 0o777); err == nil {
		t.Error("chmod through a link out of the root worked")
	}
	if _, err := r.Stat("/home/alice/etc"); err == nil {
		t.Error("stat of an absolute symlink to /etc worked")
	}
}

func TestRootFsInside(t *testing.T) {
	r, outside := hostRoot(t)
	// "/.." is "/": an absolute name climbing above the root is the root's own.
	for _, name := range []string{"/etc/passwd", "/../../etc/passwd", "etc/passwd"} {
		data, err := afero.ReadFile(r, name)
		if err != nil || !strings.Contains(string(data), "host root") {
			t.Errorf("read %s: %q %v, want the root's own passwd", name, data, err)
		}
	}
	if data, err := afero.ReadFile(r, "/home/alice/lib/mod.py"); err != nil || string(data) != "VALUE = 1\n" {
		t.Errorf("through a symlinked directory inside the root: %q %v", data, err)
	}
	if data, err := afero.ReadFile(r, "/home/alice/selfroot/alice/job.sh"); err != nil || string(data) != "echo hi\n" {
		t.Errorf("through a link to the parent: %q %v", data, err)
	}
	if target, err := r.ReadlinkIfPossible("/home/alice/etc"); err != nil || target != "/etc" {
		t.Errorf("readlink: %q %v", target, err)
	}
	fi, _, err := r.LstatIfPossible("/home/alice/etc")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("lstat of the link: %v %v", fi, err)
	}
	// Writing, listing, renaming, removing inside.
	if err := r.MkdirAll("/var/spool/pbs", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(r, "/var/spool/pbs/x", []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Rename("/var/spool/pbs/x", "/tmpx"); err != nil {
		t.Fatal(err)
	}
	names, err := afero.ReadDir(r, "/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fi := range names {
		got = append(got, fi.Name())
	}
	if strings.Join(got, " ") != "etc home opt tmpx var" {
		t.Errorf("root lists %v", got)
	}
	f, err := r.Open("/tmpx")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "/tmpx" {
		t.Errorf("file name %q, want the name it was opened by", f.Name())
	}
	f.Close()
	if err := r.SymlinkIfPossible("/etc/shadow", "/home/alice/shadow"); err != nil {
		t.Fatalf("creating a link (whatever its target) inside: %v", err)
	}
	if _, err := afero.ReadFile(r, "/home/alice/shadow"); err == nil {
		t.Error("following a new absolute link worked")
	}
	if err := r.RemoveAll("/var"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stat("/var"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after RemoveAll: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "passwd")); err != nil {
		t.Errorf("the file outside is gone: %v", err)
	}
	_, err = r.Stat("/nope")
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != "/nope" {
		t.Errorf("error %v should name the path as given", err)
	}
}

func TestNewRootFsBadDir(t *testing.T) {
	_, err := NewRootFs(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "host root") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v", err)
	}
}

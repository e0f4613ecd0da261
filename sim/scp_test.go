package sim_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/internal/testutil"
)

// realSCP runs the real OpenSSH scp client with the host's ssh config.
func realSCP(t *testing.T, cfg string, args ...string) (string, int) {
	t.Helper()
	testutil.NeedOpenSSH(t, "scp")
	ctx := ctxFor(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, "scp", append([]string{"-F", cfg, "-o", "BatchMode=yes"}, args...)...)
	_, errs, code := testutil.Run(t, cmd)
	return errs, code
}

// TestLegacySCPOnVirtualHost: the real OpenSSH client's legacy protocol
// (scp -O: the server runs scp -t or scp -f through exec) works against a
// virtual host as against a real one: files and trees both ways, -p keeps
// times and modes, and errors come back in scp's words.
func TestLegacySCPOnVirtualHost(t *testing.T) {
	h := newHost(t)
	cfg := sshConfig(t, h)
	local := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 40000)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(local, "big.bin"), data, 0o640))
	must(os.MkdirAll(filepath.Join(local, "tree", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(local, "tree", "a.txt"), []byte("a\n"), 0o644))
	must(os.WriteFile(filepath.Join(local, "tree", "sub", "b.sh"), []byte("echo b\n"), 0o755))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(filepath.Join(local, "tree", "a.txt"), old, old))

	// Upload: a file to the home directory, a file to a new name, a tree.
	if msg, code := realSCP(t, cfg, "-O", "-q", filepath.Join(local, "big.bin"), "fakehpc:"); code != 0 {
		t.Fatalf("scp -O upload: exit %d %q", code, msg)
	}
	if msg, code := realSCP(t, cfg, "-O", "-q", filepath.Join(local, "big.bin"), "fakehpc:copy.bin"); code != 0 {
		t.Fatalf("scp -O upload to a name: exit %d %q", code, msg)
	}
	if msg, code := realSCP(t, cfg, "-O", "-q", "-r", "-p", filepath.Join(local, "tree"), "fakehpc:/home/alice/"); code != 0 {
		t.Fatalf("scp -O -r -p upload: exit %d %q", code, msg)
	}
	fsys := h.FS()
	for name, want := range map[string][]byte{"big.bin": data, "copy.bin": data, "tree/a.txt": []byte("a\n"), "tree/sub/b.sh": []byte("echo b\n")} {
		got, err := afero.ReadFile(fsys, "/home/alice/"+name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s on the host: %d bytes, %v", name, len(got), err)
		}
	}
	if fi, err := fsys.Stat("/home/alice/tree/a.txt"); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("-p: a.txt mtime %v, want %v (%v)", fi.ModTime(), old, err)
	}
	if fi, err := fsys.Stat("/home/alice/tree/sub/b.sh"); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("-p: b.sh mode %v (%v)", fi.Mode(), err)
	}

	// Download: a file, a tree.
	back := t.TempDir()
	if msg, code := realSCP(t, cfg, "-O", "-q", "fakehpc:big.bin", filepath.Join(back, "big.bin")); code != 0 {
		t.Fatalf("scp -O download: exit %d %q", code, msg)
	}
	if got, err := os.ReadFile(filepath.Join(back, "big.bin")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("downloaded big.bin: %d bytes, %v", len(got), err)
	}
	if msg, code := realSCP(t, cfg, "-O", "-q", "-r", "-p", "fakehpc:tree", back); code != 0 {
		t.Fatalf("scp -O -r download: exit %d %q", code, msg)
	}
	if got, err := os.ReadFile(filepath.Join(back, "tree", "sub", "b.sh")); err != nil || string(got) != "echo b\n" {
		t.Errorf("downloaded tree/sub/b.sh: %q %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(back, "tree", "a.txt")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("-p download: a.txt mtime %v, want %v (%v)", fi.ModTime(), old, err)
	}

	// Errors in scp's words: a missing file, a directory without -r, a
	// directory the user cannot write (named TARGET/NAME as scp.c does,
	// even after a trailing slash).
	if msg, code := realSCP(t, cfg, "-O", "fakehpc:nope", back); code != 1 || !strings.Contains(msg, "scp: nope: No such file or directory") {
		t.Errorf("missing file: exit %d %q", code, msg)
	}
	if msg, code := realSCP(t, cfg, "-O", "fakehpc:tree", back); code != 1 || !strings.Contains(msg, "scp: tree: not a regular file") {
		t.Errorf("directory without -r: exit %d %q", code, msg)
	}
	must(fsys.Mkdir("/home/alice/ro", 0o555))
	must(fsys.Chmod("/home/alice/ro", 0o555))
	if msg, code := realSCP(t, cfg, "-O", filepath.Join(local, "big.bin"), "fakehpc:ro/"); code != 1 || !strings.Contains(msg, "scp: ro//big.bin: Permission denied") {
		t.Errorf("unwritable target: exit %d %q", code, msg)
	}
}

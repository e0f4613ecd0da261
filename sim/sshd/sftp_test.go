package sshd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/jobsim/jobsim/base/events"
)

func sha(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func writeRandom(t testing.TB, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sftpBatch runs `sftp -b -` with the given commands.
func (h *testHost) sftpBatch(ctx context.Context, cmds ...string) result {
	h.t.Helper()
	return h.run(ctx, strings.NewReader(strings.Join(cmds, "\n")+"\n"), "sftp", "-b", "-", "fakehpc")
}

func TestSCPAndSFTP20MB(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 60*time.Second)
	local := filepath.Join(h.dir, "big.bin")
	writeRandom(t, local, 20<<20)
	want := sha(t, local)

	// scp of OpenSSH 9 speaks sftp; a relative remote path is in the home.
	if r := h.run(ctx, nil, "scp", "-q", local, "fakehpc:big.bin"); r.code != 0 {
		t.Fatalf("scp put: %v", r)
	}
	if sha(t, filepath.Join(h.home, "big.bin")) != want {
		t.Fatal("scp put: checksum differs on the host")
	}
	back := filepath.Join(h.dir, "back.bin")
	if r := h.run(ctx, nil, "scp", "-q", "fakehpc:/home/alice/big.bin", back); r.code != 0 {
		t.Fatalf("scp get: %v", r)
	}
	if sha(t, back) != want {
		t.Fatal("scp get: checksum differs")
	}
	if n := len(h.events(events.SSHExec)); n != 0 {
		t.Errorf("scp ran %d remote commands; OpenSSH 9 scp should use the sftp subsystem", n)
	}

	back2 := filepath.Join(h.dir, "back2.bin")
	r := h.sftpBatch(ctx, "put "+local+" viasftp.bin", "get viasftp.bin "+back2)
	if r.code != 0 {
		t.Fatalf("sftp put/get: %v", r)
	}
	if sha(t, filepath.Join(h.home, "viasftp.bin")) != want || sha(t, back2) != want {
		t.Fatal("sftp put/get: checksum differs")
	}
	evs := h.events(events.SSHSFTP)
	if len(evs) != 3 {
		t.Fatalf("want 3 sftp session events, got %d", len(evs))
	}
	if evs[2].Fields["bytes_written"] != int64(20<<20) || evs[2].Fields["bytes_read"] != int64(20<<20) || evs[2].Fields["exit"] != 0 {
		t.Errorf("sftp event: %+v", evs[2].Fields)
	}
}

func TestSFTPOperations(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 60*time.Second)
	local := filepath.Join(h.dir, "f.txt")
	os.WriteFile(local, []byte("content\n"), 0o644)
	r := h.sftpBatch(ctx,
		"pwd",
		"mkdir d",
		"put "+local+" d/a.txt",
		"rename d/a.txt d/b.txt",
		"chmod 600 d/b.txt",
		"ln -s b.txt d/link",
		"ls -l d",
		"mkdir gone",
		"rmdir gone",
		"put "+local+" d/tmp",
		"rm d/tmp",
		"cd d",
		"get link "+filepath.Join(h.dir, "via-link.txt"),
	)
	if r.code != 0 {
		t.Fatalf("sftp batch: %v", r)
	}
	if !strings.Contains(r.stdout, "Remote working directory: /home/alice") {
		t.Errorf("pwd: %q", r.stdout)
	}
	fi, err := os.Stat(filepath.Join(h.home, "d", "b.txt"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("renamed and chmodded file: %v %v", fi, err)
	}
	if tgt, err := os.Readlink(filepath.Join(h.home, "d", "link")); err != nil || tgt != "b.txt" {
		t.Errorf("symlink: %q %v", tgt, err)
	}
	if b, _ := os.ReadFile(filepath.Join(h.dir, "via-link.txt")); string(b) != "content\n" {
		t.Errorf("get through a symlink: %q", b)
	}
	for _, p := range []string{"gone", "d/tmp", "d/a.txt"} {
		if _, err := os.Lstat(filepath.Join(h.home, p)); !os.IsNotExist(err) {
			t.Errorf("%s should not exist: %v", p, err)
		}
	}
	if !strings.Contains(r.stdout, "b.txt") || !strings.Contains(r.stdout, "link -> b.txt") && !strings.Contains(r.stdout, "link") {
		t.Errorf("ls -l: %q", r.stdout)
	}
	// OpenSSH's rename uses posix-rename@openssh.com: it replaces.
	os.WriteFile(filepath.Join(h.home, "x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(h.home, "y"), []byte("y"), 0o644)
	if r := h.sftpBatch(ctx, "rename x y"); r.code != 0 {
		t.Errorf("rename over an existing file: %v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(h.home, "y")); string(b) != "x" {
		t.Errorf("renamed file holds %q", b)
	}
}

// TestSFTPStaysInsideTheRoot: no path through sftp reaches outside the
// host's filesystem, with ".." or with symbolic links.
func TestSFTPStaysInsideTheRoot(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 60*time.Second)
	// A secret just outside the host root, and the host's own /etc.
	secret := filepath.Join(filepath.Dir(h.root), "secret-"+filepath.Base(h.root))
	os.WriteFile(secret, []byte("SECRET"), 0o644)
	t.Cleanup(func() { os.Remove(secret) })
	os.MkdirAll(filepath.Join(h.root, "etc"), 0o755)
	os.WriteFile(filepath.Join(h.root, "etc", "passwd"), []byte("fake-passwd\n"), 0o644)
	realPasswd, _ := os.ReadFile("/etc/passwd")

	out := filepath.Join(h.dir, "out")
	get := func(remote string) result {
		os.Remove(out)
		return h.sftpBatch(ctx, "get "+remote+" "+out)
	}
	got := func() string { b, _ := os.ReadFile(out); return string(b) }

	// "../" at the root stays at the root.
	if r := h.sftpBatch(ctx, "cd ../../../../..", "pwd"); r.code != 0 || !strings.Contains(r.stdout, "Remote working directory: /\n") {
		t.Errorf("cd above the root: %v", r)
	}
	if r := get("../../../../../etc/passwd"); r.code != 0 || got() != "fake-passwd\n" {
		t.Errorf("../ path: %v, got %q", r, got())
	}
	if r := get("/../../" + filepath.Base(secret)); r.code == 0 || strings.Contains(got(), "SECRET") {
		t.Errorf("/../ to the secret next to the root: %v, got %q", r, got())
	}

	// Symbolic links made on the host (by its real processes).
	links := map[string]string{
		"rel-escape": "../../../" + filepath.Base(secret),
		"deep":       "../../../../../../../../../../etc/passwd",
		"abs-passwd": "/etc/passwd", // absolute targets are the host's own
		"abs-secret": secret,        // a real path outside: not inside the host
		"updir":      "../../..",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(h.home, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, remote := range []string{"rel-escape", "deep"} {
		r := get(remote)
		if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") || got() != "" {
			t.Errorf("get %s: want permission denied, got %v, content %q", remote, r, got())
		}
	}
	// Through a directory link the client's glob already fails.
	if r := get("updir/" + filepath.Base(secret)); r.code == 0 || got() != "" {
		t.Errorf("get through an escaping directory link: %v, content %q", r, got())
	}
	if r := get("abs-passwd"); r.code != 0 || got() != "fake-passwd\n" || got() == string(realPasswd) {
		t.Errorf("absolute link to /etc/passwd: %v, got %q", r, got())
	}
	if r := get("abs-secret"); r.code == 0 || strings.Contains(got(), "SECRET") {
		t.Errorf("absolute link to a real path outside: %v, got %q", r, got())
	}
	// Listing through an escaping link shows nothing of what is outside.
	if r := h.sftpBatch(ctx, "ls -l updir/"); strings.Contains(r.stdout, "secret-") || strings.Contains(r.stdout, filepath.Base(h.root)) {
		t.Errorf("listing through an escaping link: %v", r)
	}

	// Links made through sftp may not point outside either.
	if r := h.sftpBatch(ctx, "ln -s ../../../../etc/shadow made"); r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("sftp symlink out of the root: %v", r)
	}
	if _, err := os.Lstat(filepath.Join(h.home, "made")); !os.IsNotExist(err) {
		t.Errorf("escaping link was created: %v", err)
	}
	// Writing through an escaping link is refused and writes nothing outside.
	in := filepath.Join(h.dir, "in")
	os.WriteFile(in, []byte("OVERWRITTEN"), 0o644)
	if r := h.sftpBatch(ctx, "put "+in+" rel-escape"); r.code == 0 {
		t.Errorf("put through an escaping link: %v", r)
	}
	if b, _ := os.ReadFile(secret); !bytes.Equal(b, []byte("SECRET")) {
		t.Errorf("the secret outside the root changed: %q", b)
	}
}

func TestSFTPRefusedWithoutFS(t *testing.T) {
	needOpenSSH(t)
	h := newTestHost(t)
	// A second user without a filesystem on a server without a default one.
	srv, err := Start(testCtx(t, time.Minute), WithAuthorizedKey("alice", mustPub(t, h.key)), WithExecutor(h.exec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	h.srv = srv
	h.writeConfig(h.key)
	r := h.sftpBatch(testCtx(t, 30*time.Second), "pwd")
	if r.code == 0 || !strings.Contains(r.stderr, "subsystem request failed") {
		t.Errorf("sftp without a filesystem: %v", r)
	}
}

// TestSFTPGoClient covers what sftp's batch commands do not show:
// Readlink, Lstat against Stat, Setstat (times, size), RealPath.
func TestSFTPGoClient(t *testing.T) {
	h := newTestHost(t)
	os.WriteFile(filepath.Join(h.home, "file"), []byte("0123456789"), 0o644)
	os.Symlink("file", filepath.Join(h.home, "ln"))
	c, err := sftp.NewClient(h.goClient(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if wd, err := c.Getwd(); err != nil || wd != "/home/alice" {
		t.Errorf("Getwd (realpath .): %q %v", wd, err)
	}
	if p, err := c.RealPath("../../home/./alice/ln"); err != nil || p != "/home/alice/file" {
		t.Errorf("RealPath through a link: %q %v", p, err)
	}
	if tgt, err := c.ReadLink("ln"); err != nil || tgt != "file" {
		t.Errorf("ReadLink: %q %v", tgt, err)
	}
	if fi, err := c.Lstat("ln"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Lstat of a link: %v %v", fi, err)
	}
	if fi, err := c.Stat("ln"); err != nil || !fi.Mode().IsRegular() || fi.Size() != 10 {
		t.Errorf("Stat through a link: %v %v", fi, err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := c.Truncate("file", 4); err != nil {
		t.Fatal(err)
	}
	if err := c.Chtimes("file", mtime, mtime); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(h.home, "file"))
	if err != nil || !fi.ModTime().Equal(mtime) || fi.Size() != 4 {
		t.Errorf("after Chtimes and Truncate: %v %v", fi, err)
	}
	if err := c.Remove("/home"); err == nil {
		t.Error("Remove of a non-empty directory succeeded")
	}
	if err := c.Link("file", "hard"); err == nil {
		t.Error("hard links are not supported, yet Link succeeded")
	}
	// Read and write on one handle (OpenFile with O_RDWR).
	f, err := c.OpenFile("rw", os.O_RDWR|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello" {
		t.Errorf("read back on the same handle: %q %v", buf, err)
	}
	f.Close()
}

// scp keeps a file's mode, as with OpenSSH's sftp-server: an executable
// script copied to the host stays executable (LLNL SSHSpawner copies its
// start script this way and then runs it).
func TestSCPKeepsTheFileMode(t *testing.T) {
	h := newTestHost(t)
	ctx := testCtx(t, 30*time.Second)
	local := filepath.Join(h.dir, "start.sh")
	if err := os.WriteFile(local, []byte("#!/bin/sh\necho started\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if r := h.run(ctx, nil, "scp", "-q", local, "fakehpc:start.sh"); r.code != 0 {
		t.Fatalf("scp: %v", r)
	}
	fi, err := os.Stat(filepath.Join(h.home, "start.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("copied with mode %o, want 700", fi.Mode().Perm())
	}
}

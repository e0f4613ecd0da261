package sshd

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/sim/executor/virtual"
	"github.com/jobsim/jobsim/sim/fsys"
)

// ownerColumns returns the owner and group columns of the first line of an
// `ls -l` listing that ends with name.
func ownerColumns(t *testing.T, listing, name string) (string, string) {
	t.Helper()
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) >= 9 && strings.HasSuffix(f[len(f)-1], name) {
			return f[2], f[3]
		}
	}
	t.Fatalf("no line for %s in:\n%s", name, listing)
	return "", ""
}

// checkLsNames compares the real sftp client's `ls -l` with `ls -la` run
// on the host over ssh, for a file in the user's home (shellDir as a
// command sees it, sftpDir as sftp does).
func checkLsNames(ctx context.Context, t *testing.T, h *testHost, shellDir, sftpDir string) {
	t.Helper()
	if r := h.ssh(ctx, "echo x > "+shellDir+"/owned.txt"); r.code != 0 {
		t.Fatalf("make a file: %v", r)
	}
	shell := h.ssh(ctx, "ls -la "+shellDir)
	if shell.code != 0 {
		t.Fatalf("ls -la: %v", shell)
	}
	sftp := h.sftpBatch(ctx, "ls -l "+sftpDir)
	if sftp.code != 0 {
		t.Fatalf("sftp ls -l: %v", sftp)
	}
	wantU, wantG := ownerColumns(t, shell.stdout, "owned.txt")
	gotU, gotG := ownerColumns(t, sftp.stdout, "owned.txt")
	if gotU != wantU || gotG != wantG {
		t.Errorf("sftp ls -l shows %s %s, ls -la on the host %s %s\nsftp:\n%s\nls -la:\n%s", gotU, gotG, wantU, wantG, sftp.stdout, shell.stdout)
	}
	if _, err := strconv.Atoi(gotU); err == nil {
		t.Errorf("sftp ls -l shows a numeric owner %q where ls -la shows %q", gotU, wantU)
	}
}

// TestSFTPListNamesRealHost: on a real host (files on the real disk) sftp's
// ls -l names owners as the real ls does.
func TestSFTPListNamesRealHost(t *testing.T) {
	h := newTestHost(t)
	checkLsNames(testCtx(t, 30*time.Second), t, h, h.home, "/home/alice")
}

// TestSFTPListNamesVirtualHost: on a virtual host sftp's ls -l names
// owners as the virtual executor's ls -la does.
func TestSFTPListNamesVirtualHost(t *testing.T) {
	mem, err := fsys.NewMemHost(fsys.MemUser(fsys.HostUser{Name: "alice", UID: 1001, GID: 1001}))
	if err != nil {
		t.Fatal(err)
	}
	ve := virtual.New(virtual.WithFS(mem), virtual.WithUsers(func(name string) (virtual.User, error) {
		return virtual.User{Name: name, UID: 1001, GID: 1001, Home: "/home/" + name}, nil
	}))
	t.Cleanup(func() { ve.Close() })
	h := newTestHost(t, WithExecutor(ve), WithFS(mem))
	checkLsNames(testCtx(t, 30*time.Second), t, h, "/home/alice", "/home/alice")
}

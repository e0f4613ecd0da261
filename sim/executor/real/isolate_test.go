package real_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/real"
)

// isolatedHost is a host hiding dirs, skipped where the executor cannot
// hide (no mount namespace: not root).
func isolatedHost(t *testing.T, dirs ...string) host {
	t.Helper()
	h := newHost(t, real.WithHidden(dirs...))
	if err := h.e.Isolation(); err != nil {
		t.Skipf("no isolation here: %v", err)
	}
	return h
}

// A hidden directory is empty and read-only to the host's processes (ssh
// sessions, also ones on a terminal), while the machine keeps seeing it and
// nothing the host mounts shows in the machine's mount table.
func TestHiddenDirectoryIsEmptyToTheHost(t *testing.T) {
	secret := t.TempDir()
	must(t, os.WriteFile(filepath.Join(secret, "machine-only.py"), []byte("X = 1\n"), 0o644))
	h := isolatedHost(t, secret, filepath.Join(secret, "missing"))
	if got := h.e.Hidden(); len(got) != 1 || got[0] != secret {
		t.Fatalf("Hidden() = %v, want just %s (a missing directory has nothing to hide)", got, secret)
	}
	r := cmds.Run(t, h.e, executor.Command{Script: "ls -A " + secret + "; touch " + secret + "/new"})
	if r.Stdout != "" || !strings.Contains(r.Stderr, "Read-only file system") || r.Status.Code == 0 {
		t.Fatalf("the host saw %q, touch said %q (exit %d); want an empty read-only directory", r.Stdout, r.Stderr, r.Status.Code)
	}
	tty := cmds.Run(t, h.e, executor.Command{Script: "ls -A " + secret + "; echo end", TTY: &executor.Window{Width: 80, Height: 24}})
	if strings.Contains(tty.Stdout, "machine-only") {
		t.Fatalf("a terminal session saw the hidden file: %q", tty.Stdout)
	}
	if _, err := os.Stat(filepath.Join(secret, "machine-only.py")); err != nil {
		t.Fatalf("the machine lost its own file: %v", err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	if strings.Contains(string(mounts), "jobsim-hidden") {
		t.Fatal("the hiding mount leaked into the machine's mount namespace")
	}
}

// Closing the executor ends what runs in its namespace, also processes that
// left their command's process group.
func TestCloseEndsEscapedProcessesOfTheNamespace(t *testing.T) {
	h := isolatedHost(t, t.TempDir())
	r := cmds.Run(t, h.e, executor.Command{Script: "setsid sleep 300 >/dev/null 2>&1 </dev/null & echo $!"})
	pid, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
	if err != nil {
		t.Fatalf("pid of the escaped sleep: %q %q", r.Stdout, r.Stderr)
	}
	if gone(pid) {
		t.Fatal("the escaped sleep is not running")
	}
	must(t, h.e.Close())
	if !gone(pid) {
		t.Fatalf("pid %d survived Close", pid)
	}
}

// The machine's Python finds its own packages where PythonPackageDirs says.
func TestPythonPackageDirs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dirs, err := real.PythonPackageDirs(ctx, "json", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Skip("no python3 on " + real.DefaultPath)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "__init__.py")); err != nil || filepath.Base(d) != "json" {
			t.Errorf("%s is not the json package: %v", d, err)
		}
	}
	none, err := real.PythonPackageDirs(ctx, "no_such_package_jobsim", "")
	if err != nil || len(none) != 0 {
		t.Fatalf("a package nobody has: %v %v", none, err)
	}
}

// What cannot be hidden is a mistake in the configuration, said at once.
func TestHiddenMustBeAbsoluteDirectories(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(file, nil, 0o644))
	for _, dir := range []string{"relative/cylc", file} {
		if _, err := real.New(t.TempDir(), real.WithHidden(dir)); err == nil || !strings.Contains(err.Error(), "hidden directory") {
			t.Errorf("WithHidden(%q): %v", dir, err)
		}
	}
}

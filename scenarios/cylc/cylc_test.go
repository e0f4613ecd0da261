package cylc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testutil"
)

func writeExecutable(t *testing.T, path, script string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestLocateOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	def := filepath.Join(cache, "cylc-8.0.2", "bin", "cylc")
	fromEnv := filepath.Join(dir, "env", "cylc")
	fromOpt := filepath.Join(dir, "opt", "cylc")
	writeExecutable(t, def, "#!/bin/sh\necho 8.0.2\n")
	writeExecutable(t, fromEnv, "#!/bin/sh\necho 8.1.4\n")
	writeExecutable(t, fromOpt, "#!/bin/sh\necho 8.3.0\n")
	t.Setenv("JOBSIM_CACHE", cache)

	t.Setenv(EnvExecutable, "")
	c, err := Locate(ctx)
	if err != nil || c.Path() != def {
		t.Fatalf("default: Locate = %v, %v; want %s", c, err, def)
	}
	if v, err := c.Version(ctx); err != nil || v != "8.0.2" {
		t.Errorf("Version = %q, %v", v, err)
	}

	t.Setenv(EnvExecutable, fromEnv)
	if c, err = Locate(ctx); err != nil || c.Path() != fromEnv {
		t.Fatalf("$%s: Locate = %v, %v; want %s", EnvExecutable, c, err, fromEnv)
	}
	if v, _ := c.Version(ctx); v != "8.1.4" {
		t.Errorf("Version via $%s = %q", EnvExecutable, v)
	}
	if c, err = Locate(ctx, WithExecutable(fromOpt)); err != nil || c.Path() != fromOpt {
		t.Fatalf("WithExecutable: Locate = %v, %v; want %s", c, err, fromOpt)
	}
	if c.BinDir() != filepath.Dir(fromOpt) {
		t.Errorf("BinDir = %s", c.BinDir())
	}
}

func TestLocateErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	t.Setenv("JOBSIM_CACHE", filepath.Join(dir, "empty-cache"))

	// Nothing anywhere: ErrNotFound, naming how to install.
	t.Setenv(EnvExecutable, "")
	_, err := Locate(ctx)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "make setup-cylc") {
		t.Errorf("no cylc: err = %v, want ErrNotFound naming make setup-cylc", err)
	}
	// An explicit choice that is wrong is an error naming it, not a fallback.
	t.Setenv(EnvExecutable, filepath.Join(dir, "nope"))
	_, err = Locate(ctx)
	if err == nil || !strings.Contains(err.Error(), "$"+EnvExecutable) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing $%s: err = %v", EnvExecutable, err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Errorf("a wrong $%s must fail, not skip: err = %v", EnvExecutable, err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Locate(ctx, WithExecutable(plain)); err == nil || !strings.Contains(err.Error(), "not an executable file") {
		t.Errorf("non-executable: err = %v", err)
	}
	if _, err := Locate(ctx, WithExecutable(dir)); err == nil || !strings.Contains(err.Error(), "not an executable file") {
		t.Errorf("directory: err = %v", err)
	}
}

func TestCommandErrorCarriesOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fake := filepath.Join(t.TempDir(), "cylc")
	writeExecutable(t, fake, "#!/bin/sh\necho \"out: $*\"\necho 'WorkflowStopped: boom' >&2\nexit 3\n")
	c, err := Locate(ctx, WithExecutable(fake))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Version(ctx)
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("Version error = %v, want *CommandError", err)
	}
	if ce.ExitCode != 3 || !strings.Contains(ce.Stderr, "boom") || ce.Stdout != "out: version\n" {
		t.Errorf("CommandError = %+v", ce.Result)
	}
	if !strings.Contains(err.Error(), "cylc version: exit status 3") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("message %q lacks command, status or stderr", err)
	}
}

func TestCommandTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "cylc")
	pidFile := filepath.Join(dir, "child.pid")
	// A child that would outlive its parent if only the parent were killed.
	writeExecutable(t, fake, "#!/bin/sh\nsleep 300 &\necho $! > "+pidFile+"\nwait\n")
	c, err := Locate(context.Background(), WithExecutable(fake), WithCommandTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Version(context.Background())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to give up", d)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(data))
	testutil.WaitFor(t, "child "+pid+" of the timed-out command to end", 5*time.Second, func() bool {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		return err != nil || strings.Contains(string(stat), ") Z ") // gone (or a zombie waiting for init)
	})
}

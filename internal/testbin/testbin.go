// Package testbin builds the jobsim binary for tests that need it as a
// real executable: real job hosts put it on PATH as the PBS client, hubs
// spawn its `uiserver`, containers carry it. One build serves a whole test
// binary; $JOBSIM_BIN names a prebuilt one instead (make build gives
// bin/jobsim).
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Build compiles cmd/jobsim into dir as dir/jobsim as `make build` does
// (static, -trimpath: the container image needs the former, and the latter
// lets tests and make e2e share one cached image), and returns its path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "jobsim")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "github.com/jobsim/jobsim/cmd/jobsim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/jobsim: %w\n%s", err, out)
	}
	return bin, nil
}

// Main is a TestMain body: it sets *bin to $JOBSIM_BIN or to a fresh build
// in a temporary directory readable by every user (servers spawned as other
// Unix users run it too), runs the tests, removes the build and returns the
// exit code. A failed build fails the package with the compiler's output.
func Main(m *testing.M, bin *string) int {
	if p := os.Getenv("JOBSIM_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "JOBSIM_BIN:", err)
			return 1
		}
		*bin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "jobsim-testbin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if *bin, err = Build(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		return 1
	}
	return m.Run()
}

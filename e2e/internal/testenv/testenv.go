// Package testenv is what the e2e tests share: skipping without a Docker
// engine, and a static jobsim binary for the job-host image.
package testenv

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/e2e"
	"github.com/jobsim/jobsim/e2e/image"
)

// RequireDocker skips the test when no Docker engine answers.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	if err := e2e.DockerAvailable(context.Background()); err != nil {
		tb.Skipf("no Docker engine: %v (start dockerd, or set DOCKER_HOST)", err)
	}
}

// Jobsim returns a static jobsim binary: $JOBSIM_BIN when it is one, else
// one built into dir the way make build builds bin/jobsim (CGO_ENABLED=0
// go build -trimpath ./cmd/jobsim), so that tests and make e2e share one
// cached job-host image when the tree is the same.
func Jobsim(dir string) (string, error) {
	if p := os.Getenv("JOBSIM_BIN"); p != "" && static(p) {
		return filepath.Abs(p)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "jobsim")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/jobsim")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build jobsim: %v\n%s", err, b)
	}
	return out, nil
}

func static(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, pr := range f.Progs {
		if pr.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the module")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir || !strings.HasPrefix(parent, "/") {
			return "", fmt.Errorf("no go.mod above %s", file)
		}
		dir = parent
	}
}

// CylcOverlay is the overlay scripts/setup-cylc.sh builds, "" when absent.
func CylcOverlay() string {
	cache := os.Getenv("JOBSIM_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "jobsim")
	}
	dir := filepath.Join(cache, "cylc-8.0.2")
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return ""
	}
	return dir
}

// Image builds (or finds) the job-host image for a test binary, with the
// Cylc overlay when make setup-cylc has built it. skip is set, and the
// image empty, when there is no Docker engine.
func Image(ctx context.Context, dir string) (img image.Image, skip string, err error) {
	if err := e2e.DockerAvailable(ctx); err != nil {
		return image.Image{}, fmt.Sprintf("no Docker engine: %v (start dockerd, or set DOCKER_HOST)", err), nil
	}
	bin, err := Jobsim(dir)
	if err != nil {
		return image.Image{}, "", err
	}
	opts := []image.Option{image.WithJobsimBinary(bin)}
	if ov := CylcOverlay(); ov != "" {
		opts = append(opts, image.WithCylcOverlay(ov))
	}
	img, err = image.Build(ctx, opts...)
	if err != nil {
		return image.Image{}, "", fmt.Errorf("build the job-host image: %w", err)
	}
	return img, "", nil
}

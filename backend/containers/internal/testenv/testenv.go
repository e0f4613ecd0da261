// Package testenv is what the e2e tests share: skipping without a Docker
// engine, and a static jobsim binary for the job-host image.
package testenv

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers"
	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/internal/runreg"
	"github.com/jobsim/jobsim/internal/testbin"
)

// RequireDocker skips the test when no Docker engine answers.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	if err := container.DockerAvailable(context.Background()); err != nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return testbin.Build(ctx, dir)
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
// Cylc overlay when make setup-cylc has built it and batchspawner when
// scripts/setup-hub.sh has installed it. skip is set, and the
// image empty, when there is no Docker engine.
func Image(ctx context.Context, dir string) (img image.Image, skip string, err error) {
	if err := container.DockerAvailable(ctx); err != nil {
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
	// As the containers backend builds it, so that both find one image.
	if bs, _ := containers.LocateBatchspawner(ctx); bs != "" {
		opts = append(opts, image.WithBatchspawner(bs))
	}
	img, err = image.Build(ctx, opts...)
	if err != nil {
		return image.Image{}, "", fmt.Errorf("build the job-host image: %w", err)
	}
	return img, "", nil
}

// Main is the TestMain body of the e2e packages: it registers the test
// binary as a jobsim run unless a run started it, builds the job-host
// image once into *img (or sets *skip, with no Docker engine), runs the
// tests and removes its scratch directory.
func Main(m *testing.M, img *image.Image, skip *string) int {
	// A test binary not started by a jobsim run is a run of its own (a
	// lock held while it lives, its id in $JOBSIM_RUN), so that the
	// containers and networks its tests make carry an owner label and a
	// killed `go test` leaves nothing `jobsim sweep` cannot find.
	if os.Getenv(runreg.EnvVar) == "" {
		r, err := runreg.Start("")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer r.Close()
		os.Setenv(runreg.EnvVar, r.ID())
	}
	dir, err := os.MkdirTemp("", "jobsim-e2e-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if *img, *skip, err = Image(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

package cylcsys_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/inprocess"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// jobsimBinary is the PBS client real hosts put on PATH: $JOBSIM_BIN, or a
// fresh build of ./cmd/jobsim.
func jobsimBinary(t *testing.T, root string) string {
	t.Helper()
	if p := os.Getenv("JOBSIM_BIN"); p != "" {
		return p
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go toolchain to build cmd/jobsim and JOBSIM_BIN is not set (make build; JOBSIM_BIN=bin/jobsim)")
		}
	}
	out := filepath.Join(t.TempDir(), "jobsim")
	cmd := exec.Command(gobin, "build", "-o", out, "./cmd/jobsim")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/jobsim: %v\n%s", err, b)
	}
	return out
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestShippedCylcScenarios runs every file of fixtures/scenarios/cylc
// through the runner on in-process hosts against the real Cylc, as
// `jobsim run fixtures/scenarios/cylc` does, and reports each scenario's
// wall time. $JOBSIM_SCENARIO_PARALLEL sets how many run at once (default
// 4). Every gate must pass and every reproducer must reproduce its bug on
// the releases it affects; a missing prerequisite (Cylc, FUSE for the
// filesystem fault) skips that scenario with its reason.
func TestShippedCylcScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real Cylc for minutes; not in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	root := moduleRoot()
	files, err := scenario.LoadAll(filepath.Join(root, "fixtures", "scenarios", "cylc"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := cylcsys.LocateInstall(ctx)
	var skip *runner.SkipError
	if errors.As(err, &skip) {
		t.Skip(skip.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	parallel := 4
	if v := os.Getenv("JOBSIM_SCENARIO_PARALLEL"); v != "" {
		if parallel, err = strconv.Atoi(v); err != nil || parallel < 1 {
			t.Fatalf("JOBSIM_SCENARIO_PARALLEL=%q: want a positive number", v)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	art := os.Getenv("JOBSIM_ARTIFACTS")
	if art == "" {
		art = t.TempDir()
	}
	r, err := runner.New(
		runner.WithBackend(inprocess.New(inprocess.WithJobsimBinary(jobsimBinary(t, root)), inprocess.WithLogger(logger))),
		runner.WithSystem("cylc", cylcsys.Factory(cylcsys.WithLogger(logger))),
		runner.WithCylcInstall(in),
		runner.WithArtifacts(art),
		runner.WithParallel(parallel),
		runner.WithProgress(progress),
		runner.WithLogger(logger),
	)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	reps := r.RunAll(ctx, files)
	total := time.Since(start)
	var sum strings.Builder
	for _, rep := range reps {
		fmt.Fprintf(&sum, "  %-34s %-10s %-6s %6.1fs  %s\n", rep.Name, rep.JudgedAs, rep.Verdict, rep.Duration.Seconds(), rep.Reason)
	}
	t.Logf("%d Cylc scenarios, %d at a time, in %.1fs (artifacts in %s):\n%s", len(reps), parallel, total.Seconds(), art, sum.String())
	for _, rep := range reps {
		t.Run(rep.Name, func(t *testing.T) {
			switch rep.Verdict {
			case runner.Pass:
			case runner.Skip:
				t.Skip(rep.Reason)
			default:
				tr, _ := os.ReadFile(filepath.Join(rep.Dir, "transcript.md"))
				t.Errorf("%s: %s\n%s", rep.Verdict, rep.Reason, tr)
			}
		})
	}
}

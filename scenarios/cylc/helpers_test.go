package cylc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fixture returns the path of a workflow under fixtures/workflows.
func fixture(t testing.TB, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "fixtures", "workflows", name)
	if _, err := os.Stat(filepath.Join(dir, "flow.cylc")); err != nil {
		t.Fatalf("fixture workflow %s: %v", name, err)
	}
	return dir
}

// locateOrSkip finds the real cylc, skipping the test when it is absent.
func locateOrSkip(t testing.TB) *Cylc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c, err := Locate(ctx, WithLogger(logger))
	if errors.Is(err, ErrNotFound) {
		t.Skip("real Cylc not available: " + err.Error())
	}
	if err != nil {
		t.Fatalf("Locate: %v", err)
	}
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("%s does not run (run `make setup-cylc` / scripts/setup-cylc.sh): %v", c.Path(), err)
	}
	return c
}

// fastGlobal keeps failing and stalled workflows short.
var fastGlobal = GlobalConfig{
	ProcessPoolTimeout: 30 * time.Second,
	StallTimeout:       20 * time.Second,
	InactivityTimeout:  3 * time.Minute,
}

// newTestEnv makes an Env in a temp dir whose Close runs at cleanup, and
// checks that no process of it survives (also when the test failed).
func newTestEnv(t *testing.T, c *Cylc, opts ...EnvOption) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]EnvOption{WithGlobalConfig(fastGlobal)}, opts...)
	env, err := c.NewEnv(ctx, t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := env.Close(ctx); err != nil {
			t.Errorf("env.Close: %v", err)
		}
		assertNoProcesses(t, env)
	})
	return env
}

// assertNoProcesses checks, by marker and with the real pgrep on the
// Env's directory, that nothing it started is still alive.
func assertNoProcesses(t *testing.T, env *Env) {
	t.Helper()
	procs, err := env.Processes()
	if err != nil {
		t.Errorf("Processes: %v", err)
	}
	if len(procs) > 0 {
		t.Errorf("processes left after Close: %+v", procs)
	}
	if _, err := exec.LookPath("pgrep"); err != nil {
		return
	}
	// Jobs have the run directory on their command line, schedulers
	// "cylc play <id>".
	patterns := []string{env.Dir()}
	env.mu.Lock()
	for _, w := range env.workflows {
		patterns = append(patterns, "cylc play "+w.ID())
	}
	env.mu.Unlock()
	for _, p := range patterns {
		out, err := exec.Command("pgrep", "-af", p).CombinedOutput()
		if err == nil {
			t.Errorf("pgrep -af %q found leftovers:\n%s", p, out)
		} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("pgrep -af %q: %v: %s", p, err, out)
		}
	}
}

// playedWorkflow installs and plays a fixture.
func playedWorkflow(t *testing.T, ctx context.Context, env *Env, name string, playArgs ...string) *Workflow {
	t.Helper()
	wf, err := env.Install(ctx, fixture(t, name))
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if err := wf.Play(ctx, playArgs...); err != nil {
		t.Fatalf("Play: %v", err)
	}
	return wf
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(data)
}

func contains(t *testing.T, what, text, want string) {
	t.Helper()
	if !strings.Contains(text, want) {
		t.Errorf("%s does not contain %q:\n%s", what, want, text)
	}
}

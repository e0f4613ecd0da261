package hub

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testbin"
)

// jobsimBin is the jobsim binary built once for these tests; its
// `uiserver` subcommand is the stand-in server the tests' hubs spawn.
var jobsimBin string

const installHint = "jupyterhub is not installed: run scripts/setup-hub.sh as root (installs Debian bookworm's jupyterhub 3)"

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &jobsimBin)) }

// needHub skips a test when jupyterhub is absent and fails it when the
// stand-in binary could not be built.
func needHub(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("jupyterhub"); err != nil {
		t.Skip(installHint)
	}
}

// standIn is a spawner running `jobsim uiserver` with test timeouts.
func standIn() Spawner {
	return Spawner{
		Class:        SimpleLocalProcessSpawner,
		Cmd:          []string{jobsimBin, "uiserver"},
		StartTimeout: 20 * time.Second,
		HTTPTimeout:  20 * time.Second,
		PollInterval: 30 * time.Second,
	}
}

// startHub starts a hub for the test and closes it when the test ends. On
// failure it shows the end of the hub log; with $JOBSIM_ARTIFACTS set the
// whole log is kept there as <test>.hub.log.
func startHub(t testing.TB, opts ...Option) *Hub {
	t.Helper()
	needHub(t)
	dir := t.TempDir()
	base := []Option{WithDir(dir)}
	if art := os.Getenv("JOBSIM_ARTIFACTS"); art != "" {
		name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
		if err := os.MkdirAll(art, 0o755); err == nil {
			base = append(base, WithLogFile(filepath.Join(art, name+".hub.log")))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h, err := Start(ctx, append(base, opts...)...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log %s ends:\n%s", h.LogPath(), h.LogTail(60))
		}
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// testCtx is a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recordFile makes a request-record file every spawned server can append
// to, whatever Unix user it runs as (t.TempDir's parent is private).
func recordFile(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "jobsim-hub-records-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "requests.jsonl")
	if err := os.WriteFile(p, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.Chmod(dir, 0o755), os.Chmod(p, 0o666)); err != nil {
		t.Fatal(err)
	}
	return p
}

// standIns lists the live stand-in servers among a hub's processes.
func standIns(t testing.TB, h *Hub) []Process {
	t.Helper()
	procs, err := h.Processes()
	if err != nil {
		t.Fatal(err)
	}
	var out []Process
	for _, p := range procs {
		if strings.Contains(p.Cmdline, "uiserver") {
			out = append(out, p)
		}
	}
	return out
}

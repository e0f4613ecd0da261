package cylcsys

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/scenarios/slurmbatch"
	"github.com/jobsim/jobsim/sim/control"
)

// repoRoot is the module root, found from this file.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// locateOrSkip finds the real cylc, skipping when it is absent.
func locateOrSkip(t testing.TB) *cylc.Cylc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cylc.Locate(ctx, cylc.WithLogger(testLogger()))
	if errors.Is(err, cylc.ErrNotFound) {
		t.Skip("real Cylc not available: " + err.Error())
	}
	if err != nil {
		t.Fatalf("Locate: %v", err)
	}
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("%s does not run (run `make setup-cylc`): %v", c.Path(), err)
	}
	return c
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakeTopo is a topology of hosts that are only a control API over a fault
// set and a root directory: enough for the configuration the system writes
// and for workflows whose tasks run on the scheduler's own machine.
type fakeTopo struct {
	hosts []*fakeHost
}

type fakeHost struct {
	name string
	root string
	ssh  runner.SSHEndpoint
	c    *control.Client
	srv  *httptest.Server
}

func (h *fakeHost) Name() string             { return h.name }
func (h *fakeHost) Control() *control.Client { return h.c }
func (h *fakeHost) Notes() []string          { return nil }
func (h *fakeHost) ProcessPath(p string) string {
	return filepath.Join(h.root, p)
}
func (h *fakeHost) SSH(user string) (runner.SSHEndpoint, error) {
	ep := h.ssh
	ep.User = user
	return ep, nil
}

func (t *fakeTopo) Hosts() []runner.Host {
	out := make([]runner.Host, len(t.hosts))
	for i, h := range t.hosts {
		out[i] = h
	}
	return out
}

func (t *fakeTopo) Host(name string) (runner.Host, bool) {
	for _, h := range t.hosts {
		if h.name == name {
			return h, true
		}
	}
	return nil, false
}

func (t *fakeTopo) Close(context.Context) error {
	for _, h := range t.hosts {
		h.srv.Close()
	}
	return nil
}

// fakeBackend starts fakeTopos.
type fakeBackend struct{}

func (fakeBackend) Name() string { return "fake" }

func (fakeBackend) Start(ctx context.Context, t scenario.Topology, env runner.Env) (runner.Topology, error) {
	topo := &fakeTopo{}
	for _, hs := range t.Hosts {
		set := fault.NewSet(fault.WithRecorder(events.ForHost(env.Log, hs.Name)))
		srv, err := control.NewServer("tok", control.WithFaults(set), control.WithEvents(env.Log))
		if err != nil {
			return nil, err
		}
		ts := httptest.NewServer(srv)
		root := filepath.Join(env.Dir, "hosts", hs.Name)
		topo.hosts = append(topo.hosts, &fakeHost{name: hs.Name, root: root, c: control.NewClient(ts.URL, "tok"), srv: ts,
			ssh: runner.SSHEndpoint{Addr: "127.0.0.1:2222", KeyFile: filepath.Join(root, "id_ed25519")}})
	}
	return topo, nil
}

// parseScenario parses a scenario as if it lay in fixtures/workflows, so
// its workflow paths name the fixture workflows directly.
func parseScenario(t *testing.T, name, text string) *scenario.File {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "fixtures", "workflows")
	f, err := testVocabulary.Parse(filepath.Join(dir, name+".yaml"), []byte(text))
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	return f
}

// testVocabulary is what the Cylc scenarios use: this plug-in, PBS and Slurm.
var testVocabulary = scenario.MustVocabulary(Plugin{}, pbsbatch.Plugin{}, slurmbatch.Plugin{})

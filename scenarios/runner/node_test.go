package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/scenarios/scenario"
)

// nodeBackend starts fake topologies that record node actions.
type nodeBackend struct {
	fakeBackend
	actions []string
}

type nodeTopo struct {
	*fakeTopo
	b *nodeBackend
}

func (t nodeTopo) NodeAction(_ context.Context, name, action string) error {
	t.b.actions = append(t.b.actions, name+":"+action)
	return nil
}

func (b *nodeBackend) Start(ctx context.Context, t scenario.Topology, env Env) (Topology, error) {
	topo, err := b.fakeBackend.Start(ctx, t, env)
	if err != nil {
		return nil, err
	}
	return nodeTopo{fakeTopo: topo.(*fakeTopo), b: b}, nil
}

func TestNodeStepsGoToTheBackendOrSkip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	step := "  - node: {name: fakehpc, action: pause}\n  - node: {name: fakehpc, action: unpause}"

	var sys *fakeCylc
	r, b, _ := newRunner(t, "8.0.3", &sys)
	rep := r.Run(ctx, load(t, "nodes-plain", "", step))
	if rep.Verdict != Skip || !strings.Contains(rep.Reason, "--backend containers") {
		t.Fatalf("a backend without node actions: verdict %s (%s), want a skip naming the containers backend", rep.Verdict, rep.Reason)
	}
	if b.closed != 1 {
		t.Errorf("the skipped run's topology was closed %d times", b.closed)
	}

	nb := &nodeBackend{}
	r2, err := New(WithBackend(nb), WithArtifacts(t.TempDir()), WithSystem("toy", r.systems["toy"]))
	if err != nil {
		t.Fatal(err)
	}
	rep = r2.Run(ctx, load(t, "nodes", "", step))
	if rep.Verdict != Pass {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
	if got := strings.Join(nb.actions, " "); got != "fakehpc:pause fakehpc:unpause" {
		t.Errorf("node actions %q", got)
	}
}

// Steps and conditions of a host plug-in (a batch system) go to the
// plug-in the runner was given; a runner without it fails the step and
// says which plug-in is missing.
func TestHostPluginStepsGoToTheirPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	steps := "  - bump: fakehpc\n  - wait: {bumped: fakehpc, within: 2s}"

	var sys *fakeCylc
	r, _, _ := newRunner(t, "8.0.3", &sys)
	rep := r.Run(ctx, load(t, "no-bumper", "", steps))
	if rep.Verdict != Fail || !strings.Contains(rep.Reason, `no plug-in "bumper" in this runner performs bump fakehpc`) {
		t.Fatalf("without the host plug-in: verdict %s (%s)", rep.Verdict, rep.Reason)
	}

	th := newToyHost()
	r2, err := New(WithBackend(&fakeBackend{}), WithArtifacts(t.TempDir()), WithSystem("toy", r.systems["toy"]), WithHostPlugin(th))
	if err != nil {
		t.Fatal(err)
	}
	rep = r2.Run(ctx, load(t, "bumper", "", steps))
	if rep.Verdict != Pass || !th.bumped["fakehpc"] {
		t.Fatalf("with the host plug-in: verdict %s (%s), bumped %v", rep.Verdict, rep.Reason, th.bumped)
	}
}

package hubsys

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
)

// TestSiteAuthzSystem: the hub system runs jobsim's stand-in
// authorization service beside the hub (WithSiteAuthz): alice's list
// offers bob's server and reaches it; carol, without a grant, meets the
// hub's refusal; a reload with the system's service token changes that.
func TestSiteAuthzSystem(t *testing.T) {
	needHub(t)
	f := parse(t, `name: site-authz
system:
  hub: {spawner: local, users: [alice, bob, carol], start_timeout: 20s, http_timeout: 20s}
timeline: [{do: start}]
`)
	site := filepath.Join(t.TempDir(), "authz.yaml")
	if err := os.WriteFile(site, []byte("may_view:\n  alice: [bob]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog(), User: "alice"}
	s, err := New(ctx, f, emptyTopo{}, env, env.Log, WithJobsim(jobsimBin), WithSiteAuthz(hub.SiteAuthz{}, site))
	var skip *runner.SkipError
	if errors.As(err, &skip) {
		t.Skip(skip.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	c := s.Hub().Client()
	if _, err := c.StartServer(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	token := s.AuthzToken()
	for {
		rep, err := c.ServiceReport(ctx, hub.DefaultAuthzService, token)
		if err == nil && !rep.Time.IsZero() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no sync report from the service: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	alice, err := c.Login(ctx, "alice", "any")
	if err != nil {
		t.Fatal(err)
	}
	got, _, _, err := alice.Viewable(ctx, hub.DefaultAuthzService)
	if err != nil || !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("alice's list: %v %v, want [bob]", got, err)
	}
	p, err := alice.Browse(ctx, "/user/bob/")
	if err == nil && p.IsAuthorizePage() {
		p, err = alice.Authorize(ctx, p)
	}
	if err != nil || p.Status != http.StatusOK || !strings.Contains(p.Text(), "UI server of bob") {
		t.Fatalf("alice opening /user/bob/: %v %+v", err, p)
	}
	carol, err := c.Login(ctx, "carol", "any")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := carol.Browse(ctx, "/user/bob/"); err != nil || p.Status != http.StatusForbidden {
		t.Errorf("carol opening /user/bob/: %v %d, want the hub's 403", err, p.Status)
	}
	if err := os.WriteFile(site, []byte("may_view:\n  carol: [bob]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReloadService(ctx, hub.DefaultAuthzService, token); err != nil {
		t.Fatal(err)
	}
	p, err = carol.Browse(ctx, "/user/bob/")
	if err == nil && p.IsAuthorizePage() {
		p, err = carol.Authorize(ctx, p)
	}
	if err != nil || p.Status != http.StatusOK || !strings.Contains(p.Text(), "Signed in as carol") {
		t.Errorf("carol opening /user/bob/ after the reload: %v %d %q", err, p.Status, p.Text())
	}
}

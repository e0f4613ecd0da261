package hub

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// siteAuthzHub starts a hub with the stand-in authorization service
// reading file, users alice, bob, carol and dave (any password), and the
// servers of bob and dave running (the stand-in UI server, which logs
// browsers in through the hub's OAuth).
func siteAuthzHub(t *testing.T, file string) (*Hub, string) {
	t.Helper()
	users := []string{"alice", "bob", "carol", "dave"}
	token := randomHex(16)
	h := startHub(t, WithSpawner(standIn()), WithUsers(users...), WithSiteAuthz(SiteAuthz{
		Command: []string{jobsimBin, "authz-service", "--config", file, "--log-level", "debug"},
		Token:   token,
		Owners:  users,
	}))
	ctx := testCtx(t, time.Minute)
	c := h.Client()
	for _, u := range []string{"bob", "dave"} {
		if _, err := c.StartServer(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitReady(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	// The service syncs the hub's groups once it is up.
	for {
		rep, err := c.ServiceReport(ctx, DefaultAuthzService, token)
		if err == nil && !rep.Time.IsZero() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the authz service never reported a sync: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h, token
}

func writeSite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// login logs each user in through the hub's login form.
func login(t *testing.T, ctx context.Context, c *Client, users ...string) map[string]*Session {
	t.Helper()
	out := map[string]*Session{}
	for _, u := range users {
		s, err := c.Login(ctx, u, "any")
		if err != nil {
			t.Fatal(err)
		}
		out[u] = s
	}
	return out
}

// wantViewable checks the service's list for each user.
func wantViewable(t *testing.T, ctx context.Context, sessions map[string]*Session, want map[string][]string) {
	t.Helper()
	for u, w := range want {
		got, links, _, err := sessions[u].Viewable(ctx, DefaultAuthzService)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s's list: %v, want %v", u, got, w)
		}
		for _, o := range got {
			if links[o] != "/user/"+o+"/" {
				t.Errorf("%s's list links %s to %q, want /user/%s/", u, o, links[o], o)
			}
		}
	}
}

// wantOpens checks that viewer reaches owner's server through the hub:
// another user's server after the hub's Authorize access page, the first
// time (the session remembers the server's login after that).
func wantOpens(t *testing.T, ctx context.Context, s *Session, owner string) {
	t.Helper()
	p, err := s.Browse(ctx, "/user/"+owner+"/")
	if err != nil {
		t.Fatal(err)
	}
	if p.IsAuthorizePage() {
		if owner == s.User {
			t.Errorf("%s asked to authorize access to their own server", s.User)
		}
		if !strings.Contains(p.Text(), "Server at /user/"+owner+"/") {
			t.Errorf("%s's Authorize access page does not name the server: %q", s.User, p.Text())
		}
		if p, err = s.Authorize(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if p.Status != http.StatusOK || !strings.Contains(p.Text(), "UI server of "+owner) || !strings.Contains(p.Text(), "Signed in as "+s.User) {
		t.Errorf("%s opening /user/%s/: %d at %s: %q (want owner's server, signed in as %s; via %v)", s.User, owner, p.Status, p.URL, p.Text(), s.User, p.Hops)
	}
}

// wantHubRefuses checks that the hub's OAuth authorize page refuses viewer
// owner's server with 403 and its own message.
func wantHubRefuses(t *testing.T, ctx context.Context, s *Session, owner string) {
	t.Helper()
	p, err := s.Browse(ctx, "/user/"+owner+"/")
	if err != nil {
		t.Fatal(err)
	}
	status, msg, ok := p.HubError()
	if p.Status != http.StatusForbidden || !ok || status != "403" || !strings.Contains(msg, "You do not have permission to access Server at /user/"+owner+"/") {
		t.Errorf("%s opening /user/%s/: %d at %s, hub error %v %q %q; want the hub's 403 refusal", s.User, owner, p.Status, p.URL, ok, status, msg)
		return
	}
	if !strings.HasPrefix(p.URL, "/hub/api/oauth2/authorize") {
		t.Errorf("%s refused at %s, want the hub's authorize page", s.User, p.URL)
	}
}

// TestSiteAuthzService runs jobsim's stand-in authorization service as a
// managed service of the real hub: its list per user, the links reaching
// the servers, the hub refusing users without a grant, and a reload (by
// POST with the service token, and by SIGHUP) changing the answers.
func TestSiteAuthzService(t *testing.T) {
	needHub(t)
	site := filepath.Join(t.TempDir(), "authz.yaml")
	writeSite(t, site, "# who may open whose UI server\nmay_view:\n  alice: [bob]\n  carol: [bob, dave]\n")
	h, token := siteAuthzHub(t, site)
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)

	rep, err := c.ServiceReport(ctx, DefaultAuthzService, token)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Groups["viewers-of-bob"]; !slices.Equal(got, []string{"alice", "carol"}) {
		t.Errorf("group viewers-of-bob: %v, want [alice carol] (report %+v)", got, rep)
	}
	if len(rep.Warnings) > 0 {
		t.Errorf("sync warnings: %v", rep.Warnings)
	}
	// The hub itself says so: the group exists with its members.
	var grp struct {
		Users []string `json:"users"`
	}
	if _, err := c.getJSON(ctx, http.MethodGet, "/groups/viewers-of-dave", nil, &grp); err != nil || !slices.Equal(grp.Users, []string{"carol"}) {
		t.Errorf("hub group viewers-of-dave: %v (%v), want [carol]", grp.Users, err)
	}

	s := login(t, ctx, c, "alice", "bob", "carol", "dave")
	wantViewable(t, ctx, s, map[string][]string{
		"alice": {"bob"}, "carol": {"bob", "dave"}, "dave": {}, "bob": {},
	})
	// Following a link of the list reaches the server.
	_, links, _, err := s["carol"].Viewable(ctx, DefaultAuthzService)
	if err != nil {
		t.Fatal(err)
	}
	wantOpens(t, ctx, s["carol"], strings.Trim(strings.TrimPrefix(links["dave"], "/user/"), "/"))
	wantOpens(t, ctx, s["alice"], "bob")
	wantOpens(t, ctx, s["bob"], "bob") // their own, no grant needed
	wantHubRefuses(t, ctx, s["dave"], "bob")
	wantHubRefuses(t, ctx, s["alice"], "dave")

	// The site changes its mind; a reload with the service token applies it.
	writeSite(t, site, "may_view:\n  alice: [dave]\n  dave: [bob]\n")
	rep, err = c.ReloadService(ctx, DefaultAuthzService, token)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Removed["viewers-of-bob"], []string{"alice", "carol"}) || !slices.Equal(rep.Added["viewers-of-bob"], []string{"dave"}) {
		t.Errorf("reload report: added %v removed %v, want dave added to and alice, carol removed from viewers-of-bob", rep.Added, rep.Removed)
	}
	wantViewable(t, ctx, s, map[string][]string{
		"alice": {"dave"}, "carol": {}, "dave": {"bob"}, "bob": {},
	})
	wantOpens(t, ctx, s["dave"], "bob")
	wantOpens(t, ctx, s["alice"], "dave")
	// alice still holds a session with bob's server from before: the
	// server asks the hub again and her token no longer grants access.
	if p, err := s["alice"].Browse(ctx, "/user/bob/"); err != nil || p.Status != http.StatusForbidden || !strings.Contains(p.Text(), "alice may not access the server of bob") {
		t.Errorf("alice, with an old session, on bob's server after the grant went: %v %d at %s: %q", err, p.Status, p.URL, p.Text())
	}
	// A fresh login meets the hub's refusal.
	fresh := login(t, ctx, c, "alice", "carol")
	wantHubRefuses(t, ctx, fresh["alice"], "bob")
	wantHubRefuses(t, ctx, fresh["carol"], "dave")

	// A file that does not parse is refused and the grants stay.
	writeSite(t, site, "may_view:\n  alice: [dave\n")
	if _, err := c.ReloadService(ctx, DefaultAuthzService, token); err == nil || !strings.Contains(err.Error(), filepath.Base(site)+":2:") {
		t.Errorf("reload of a broken file: %v, want the parse error at its file:line:col", err)
	}
	if _, err := c.ReloadService(ctx, DefaultAuthzService, "not-the-token"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("reload with a wrong token: %v, want 403", err)
	}
	wantViewable(t, ctx, s, map[string][]string{"dave": {"bob"}})

	// SIGHUP re-reads the file too, as for a site's daemon.
	writeSite(t, site, "may_view:\n  bob: [\"*\"]\n")
	procs, err := h.Processes()
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, p := range procs {
		if strings.Contains(p.Cmdline, "authz-service") {
			pid = p.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no authz-service among the hub's processes: %v", procs)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for {
		rep, err := c.ServiceReport(ctx, DefaultAuthzService, token)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(rep.Groups["viewers-of-dave"], []string{"bob"}) && len(rep.Groups["viewers-of-bob"]) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after SIGHUP the groups are %v, want bob in every viewers-of group but his own", rep.Groups)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantViewable(t, ctx, s, map[string][]string{"bob": {"alice", "carol", "dave"}})
	wantViewable(t, ctx, s, map[string][]string{"dave": {}, "alice": {}})
	wantOpens(t, ctx, s["bob"], "dave")
	wantHubRefuses(t, ctx, login(t, ctx, c, "dave")["dave"], "bob")
}

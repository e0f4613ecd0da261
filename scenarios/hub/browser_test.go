package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/browser"
	"github.com/jobsim/jobsim/sim/uiserver"
)

// shotsDir is where a browser test's screenshots go: under
// $JOBSIM_ARTIFACTS when set (kept for CI), else the test's temp dir.
func shotsDir(t *testing.T) string {
	t.Helper()
	if art := os.Getenv("JOBSIM_ARTIFACTS"); art != "" {
		return filepath.Join(art, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")+".shots")
	}
	return filepath.Join(t.TempDir(), "shots")
}

// openBrowser starts Chromium for the test, skipping it with the reason
// where Chromium is absent.
func openBrowser(t *testing.T, ctx context.Context, h *Hub, dir string) *Browser {
	t.Helper()
	b, closeBrowser, err := OpenBrowser(ctx, h.URL(), dir)
	if errors.Is(err, browser.ErrNoChromium) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeBrowser)
	return b
}

// TestBrowserLoginSpawnAuthz is a person at Chromium: the hub's login
// form (PAM with real Unix accounts when the test runs as root), the spawn
// form, the spawn pending page until the server answers, their own
// server, the authorization service's list and a click on its link (via
// the hub's Authorize access page), and typing /user/<other>/ for a
// server they may not open. Each step leaves a screenshot.
func TestBrowserLoginSpawnAuthz(t *testing.T) {
	needHub(t)
	if _, err := browser.Find(); err != nil {
		t.Skip(err)
	}
	ctx := testCtx(t, 4*time.Minute)
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(suffix)
	viewer, owner, other, timed := "jsb-a-"+id, "jsb-b-"+id, "jsb-c-"+id, "jsb-d-"+id
	users := []string{viewer, owner, other, timed}
	password := "purple monkey dishwasher"

	auth := Authenticator{}
	if os.Geteuid() == 0 {
		var accs []Account
		for _, u := range users {
			accs = append(accs, Account{Name: u, Password: password})
		}
		accounts, err := CreateAccounts(ctx, accs...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := accounts.Remove(context.Background()); err != nil {
				t.Errorf("remove the test accounts: %v", err)
			}
		})
		auth = Authenticator{Class: PAMAuthenticator}
	} else {
		t.Log("not root: logging in with DummyAuthenticator (PAM needs root for /etc/shadow and hub.CreateAccounts)")
	}

	site := filepath.Join(t.TempDir(), "authz.yaml")
	writeSite(t, site, "may_view:\n  "+viewer+": ["+owner+"]\n")
	token := randomHex(16)
	sp := standIn()
	sp.OptionsForm = []FormField{{Name: "memory", Label: "Memory", Choices: []string{"1gb", "2gb", "4gb"}, Default: "1gb"}}
	// The viewer's server starts slowly, so the hub shows its pending page.
	sp.UserEnvironment = map[string]map[string]string{viewer: {uiserver.EnvFault: "slow-start=3s"}}
	h := startHub(t, WithSpawner(sp), WithAuthenticator(auth), WithUsers(users...), WithSiteAuthz(SiteAuthz{
		Command: []string{jobsimBin, "authz-service", "--config", site},
		Token:   token, Owners: users,
	}))
	c := h.Client()
	for _, u := range []string{owner, other} {
		if _, err := c.StartServerOptions(ctx, u, map[string]any{"memory": "1gb"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitReady(ctx, u); err != nil {
			t.Fatal(err)
		}
	}

	dir := shotsDir(t)
	b := openBrowser(t, ctx, h, dir)
	shot := func(name string) {
		t.Helper()
		if _, err := b.Screenshot(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			shot("failed")
			t.Fatal(err)
		}
	}
	wait := func(text string) string {
		t.Helper()
		loc, err := b.WaitText(ctx, text)
		must(err)
		return loc
	}

	// The login form.
	must(b.Visit(ctx, "/hub/login"))
	wait("Sign in")
	shot("login-form")
	must(b.Type(ctx, "#username_input", viewer))
	must(b.Type(ctx, "#password_input", password))
	shot("login-filled")
	must(b.Click(ctx, "#login_submit"))

	// The spawn form, then the pending page, then the server.
	if loc := wait("Server Options"); !strings.HasPrefix(loc, "/hub/spawn") {
		t.Errorf("after logging in the browser is at %s, want the spawn form", loc)
	}
	shot("spawn-form")
	must(b.Select(ctx, "#memory", "2gb"))
	must(b.Click(ctx, `#spawn_form input[type="submit"]`))
	if loc := wait("Your server is starting up"); !strings.HasPrefix(loc, "/hub/spawn-pending/"+viewer) {
		t.Errorf("pending page at %s", loc)
	}
	shot("spawn-pending")
	if loc := wait("UI server of " + viewer); loc != "/user/"+viewer+"/" {
		t.Errorf("own server at %s, want /user/%s/", loc, viewer)
	}
	shot("own-server")
	u, err := c.User(ctx, viewer)
	must(err)
	if got := u.Servers[""].UserOptions["memory"]; got != "2gb" {
		t.Errorf("the spawner got user_options %v, want memory 2gb from the form", u.Servers[""].UserOptions)
	}

	// The service's list, and a click on its link.
	must(b.Visit(ctx, "/services/"+DefaultAuthzService+"/"))
	wait("Servers you may open")
	page, err := b.Text(ctx)
	must(err)
	if !strings.Contains(page, owner) || strings.Contains(page, other) {
		t.Errorf("the list shows %q, want %s and not %s", page, owner, other)
	}
	shot("service-list")
	must(b.Click(ctx, `a[href="/user/`+owner+`/"]`))
	wait("Authorize access")
	shot("authorize-access")
	must(b.Click(ctx, `input[value="Authorize"]`))
	if loc := wait("UI server of " + owner); loc != "/user/"+owner+"/" {
		t.Errorf("the link led to %s", loc)
	}
	page, err = b.Text(ctx)
	must(err)
	if !strings.Contains(page, "Signed in as "+viewer) {
		t.Errorf("%s's server shows %q, want it signed in as %s", owner, page, viewer)
	}
	shot("viewing-owner")

	// Typing the address of a server not granted: the hub's refusal.
	must(b.Visit(ctx, "/user/"+other+"/"))
	wait("You do not have permission to access Server at /user/" + other + "/")
	page, err = b.Text(ctx)
	must(err)
	if !strings.Contains(page, "403") {
		t.Errorf("refusal page %q lacks the status 403", page)
	}
	shot("refused-other")

	// The round trip a person waits for: login to their own server,
	// through the spawn form, with a server that starts at once.
	b2 := openBrowser(t, ctx, h, filepath.Join(dir, "round-trip"))
	begin := time.Now()
	must(b2.LoginForm(ctx, timed, password))
	_, err = b2.WaitText(ctx, "Server Options")
	must(err)
	must(b2.Click(ctx, `#spawn_form input[type="submit"]`))
	_, err = b2.WaitText(ctx, "UI server of "+timed)
	must(err)
	t.Logf("browser login+spawn round trip (%s): %v", auth.Class, time.Since(begin).Round(time.Millisecond))
	if _, err := b2.Screenshot(ctx, "round-trip-server"); err != nil {
		t.Fatal(err)
	}

	for _, s := range append(b.Shots(), b2.Shots()...) {
		fi, err := os.Stat(s.Path)
		if err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v (%d bytes)", s.Path, err, fi.Size())
		}
	}
	t.Logf("%d screenshots in %s", len(b.Shots())+len(b2.Shots()), dir)
}

// TestBrowserNeverReady is the hub-side face of a stuck server: the
// person's server never answers (the stand-in's never-ready fault), the
// pending page waits, and when the hub gives up (http_timeout) the page
// shows the hub's failure; nothing is left pending.
func TestBrowserNeverReady(t *testing.T) {
	needHub(t)
	if _, err := browser.Find(); err != nil {
		t.Skip(err)
	}
	ctx := testCtx(t, 2*time.Minute)
	sp := standIn()
	sp.HTTPTimeout = 3 * time.Second
	sp.Environment = map[string]string{uiserver.EnvFault: "never-ready=nobind"}
	h := startHub(t, WithSpawner(sp), WithUsers("alice"))
	b := openBrowser(t, ctx, h, shotsDir(t))
	must := func(err error) {
		t.Helper()
		if err != nil {
			b.Screenshot(ctx, "failed")
			t.Fatal(err)
		}
	}
	must(b.LoginForm(ctx, "alice", "any"))
	loc, err := b.WaitText(ctx, "Your server is starting up")
	must(err)
	if !strings.HasPrefix(loc, "/hub/spawn-pending/alice") {
		t.Errorf("pending page at %s", loc)
	}
	_, err = b.Screenshot(ctx, "pending")
	must(err)
	_, err = b.WaitText(ctx, "Spawn failed")
	must(err)
	page, err := b.Text(ctx)
	must(err)
	if !strings.Contains(page, "didn't respond in 3 seconds") {
		t.Errorf("the failed pending page shows %q, want the hub's words on the timeout", page)
	}
	_, err = b.Screenshot(ctx, "spawn-failed")
	must(err)
	st, err := h.Client().ServerStatus(ctx, "alice")
	must(err)
	if st.Active || st.Pending != "" {
		t.Errorf("after the failure alice's server is %+v, want stopped with nothing pending", st)
	}
	if left := standIns(t, h); len(left) > 0 {
		t.Errorf("stand-in servers left running: %v", left)
	}
}

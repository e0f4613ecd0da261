package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/user"
	"strings"
	"testing"
	"time"
)

// TestPAMLogin: real Unix accounts created for the test (and removed after
// it, also when it fails), the hub's PAMAuthenticator, and its login form:
// the right password logs in; a wrong password, a locked account and a name
// with no account are refused with the hub's own message.
func TestPAMLogin(t *testing.T) {
	needHub(t)
	if os.Geteuid() != 0 {
		t.Skip("PAM logins check /etc/shadow: the hub and the accounts need root")
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(suffix)
	good, locked, unknown := "jsp-good-"+id, "jsp-locked-"+id, "jsp-none-"+id
	ctx := testCtx(t, 2*time.Minute)
	accounts, err := CreateAccounts(ctx,
		Account{Name: good, Password: "right horse battery"},
		Account{Name: locked, Password: "also right", Locked: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := accounts.Remove(context.Background()); err != nil {
			t.Errorf("remove the test accounts: %v", err)
		}
		for _, n := range []string{good, locked} {
			if _, err := user.Lookup(n); err == nil {
				t.Errorf("account %s still exists after Remove", n)
			}
		}
	})
	if _, err := CreateAccounts(ctx, Account{Name: good, Password: "x"}); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("creating an existing account: %v, want a refusal", err)
	}

	h := startHub(t, WithSpawner(standIn()), WithAuthenticator(Authenticator{Class: PAMAuthenticator}),
		WithUsers(good, locked, unknown))
	c := h.Client()

	s, err := c.Login(ctx, good, "right horse battery")
	if err != nil {
		t.Fatalf("login with the right password: %v", err)
	}
	status, page, err := s.Get(ctx, "/hub/home")
	if err != nil || status != 200 || !strings.Contains(string(page), good) {
		t.Errorf("GET /hub/home after logging in: %d %v (want 200 naming %s)", status, err, good)
	}
	// Without the session the same page sends a browser to the login form.
	if st, _, err := (&Session{base: s.base, hc: &http.Client{CheckRedirect: s.hc.CheckRedirect}}).Get(ctx, "/hub/home"); err != nil || st != 302 {
		t.Errorf("GET /hub/home without a session: %d %v, want 302 to the login page", st, err)
	}

	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", good, "wrong horse"},
		{"locked account", locked, "also right"},
		{"no such account", unknown, "anything"},
	} {
		_, err := c.Login(ctx, tc.user, tc.password)
		var refused *LoginRefusedError
		if !errors.As(err, &refused) || refused.Message != "Invalid username or password" {
			t.Errorf("%s: %v, want the hub's refusal \"Invalid username or password\"", tc.name, err)
		}
	}
}

package hubsys

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// pamScenario logs in with real Unix accounts through the hub's
// PAMAuthenticator: the right password, a wrong one, a locked account
// and a user without an account, and a browser login.
const pamScenario = `name: hub-pam-login
timeout: 2m
topology: {hosts: []}
system:
  hub:
    users: [jsp-alice, jsp-bob, jsp-nobody]
    accounts:
      - {name: jsp-alice, password: right horse battery}
      - {name: jsp-bob, password: also right, locked: true}
timeline:
  - do: start
  - login: {as: jsp-alice, password: right horse battery}
  - login: {as: jsp-alice, password: wrong horse}
  - login: {as: jsp-bob, password: also right}
  - login: {as: jsp-nobody, password: anything}
  - browser: {as: jsp-alice, password: right horse battery, visit: /hub/home, wait_text: Start My Server}
expect:
  - id: alice-in
    events: {kind: hub.login, fields: {as: ^jsp-alice$, result: ^logged_in$}, count: 1}
  - id: three-refused-in-the-hubs-words
    events: {kind: hub.login, fields: {result: ^refused$, message: ^Invalid username or password$}, count: 3}
  - {id: browser-home, page_shows: jsp-alice, as: jsp-alice, at: /hub/home}
`

// TestPAMLoginSteps runs pamScenario (as root; skipped otherwise with
// the reason) and checks the accounts are gone after the run.
func TestPAMLoginSteps(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("system.hub.accounts needs root (useradd, PAM reading /etc/shadow)")
	}
	for _, n := range []string{"jsp-alice", "jsp-bob"} {
		if _, err := user.Lookup(n); err == nil {
			t.Skipf("account %s exists on this machine: not the test's to create", n)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pam.yaml"), []byte(pamScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(scenarioDir)
	rel, err := filepath.Rel(abs, filepath.Join(dir, "pam.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runScenario(t, noHosts{}, rel)
	for _, n := range []string{"jsp-alice", "jsp-bob"} {
		if _, err := user.Lookup(n); err == nil {
			t.Errorf("account %s is left after the run", n)
		}
	}
}

// TestAccountsErrors: accounts and login steps are checked at load.
func TestAccountsErrors(t *testing.T) {
	for _, tc := range []struct{ name, replace, with, want string }{
		{"not a hub user", "{name: jsp-bob,", "{name: jsp-eve,", "pam.yaml:9:16: account jsp-eve is not one of the hub users"},
		{"not a unix name", "{name: jsp-bob,", "{name: Bob,", "pam.yaml:9:16: account \"Bob\": a Unix user name"},
		{"no password", "password: also right, locked", "locked", "pam.yaml:9:9: account jsp-bob: password: required"},
		{"login without accounts", "    accounts:\n      - {name: jsp-alice, password: right horse battery}\n      - {name: jsp-bob, password: also right, locked: true}\n", "",
			"step 2: login: the hub logs users in with PAM only when system.hub.accounts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(pamScenario, tc.replace, tc.with, 1)
			if src == pamScenario {
				t.Fatalf("replacing %q changed nothing", tc.replace)
			}
			_, err := testVocabulary.Parse("pam.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

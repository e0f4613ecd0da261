package hubsys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// LoginEvent is a login step's answer from the hub's login form. Fields:
// as, result (logged_in, refused), status, message (the hub's, on a
// refusal: "Invalid username or password").
const LoginEvent events.Kind = "hub.login"

// AccountSpec is one entry of system.hub.accounts: a real Unix account
// the run creates (and removes after it, also on failure) so that the hub
// logs its user in with PAM (PAMAuthenticator).
type AccountSpec struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	// Locked accounts have their password locked: PAM refuses them.
	Locked bool `yaml:"locked"`
}

// unixName is what useradd takes portably (hub.CreateAccounts checks the
// same).
var unixName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// validateAccounts checks system.hub.accounts: each a hub user with a
// portable Unix name and a password, named once.
func validateAccounts(h *Config, at scenario.Where) error {
	seen := map[string]bool{}
	for i, a := range h.Accounts {
		w := at.Key("accounts").Index(i)
		if !unixName.MatchString(a.Name) {
			return w.Key("name").Errorf("account %q: a Unix user name (lower case letters, digits, '_', '-'; 32 at most)", a.Name)
		}
		if !slices.Contains(h.Users, a.Name) {
			return w.Key("name").Errorf("account %s is not one of the hub users %v (the hub lets in only those)", a.Name, h.Users)
		}
		if seen[a.Name] {
			return w.Key("name").Errorf("account %s is named twice", a.Name)
		}
		seen[a.Name] = true
		if a.Password == "" {
			return w.Errorf("account %s: password: required", a.Name)
		}
	}
	return nil
}

// Login is a login step: a user fills in the hub's login form.
type Login struct {
	As       string `yaml:"as"`
	Password string `yaml:"password"`
}

func (l Login) String() string { return "login as " + l.As }

func parseLogin(h *Config, v scenario.Value) (scenario.Action, error) {
	var l Login
	if err := v.Decode(&l); err != nil {
		return nil, err
	}
	if l.As == "" {
		return nil, v.Where().Errorf("login: as: required, the user who logs in")
	}
	if len(h.Accounts) == 0 {
		return nil, v.Where().Errorf("login: the hub logs users in with PAM only when system.hub.accounts lists the Unix accounts to create")
	}
	return l, nil
}

// checkAccounts makes a scenario with accounts skip, with the reason,
// where accounts cannot be created.
func checkAccounts(h *Config) error {
	if len(h.Accounts) > 0 && os.Geteuid() != 0 {
		return &runner.SkipError{Reason: "system.hub.accounts: creating Unix accounts and checking passwords with PAM (/etc/shadow) needs root"}
	}
	return nil
}

// createAccounts makes the scenario's Unix accounts.
func (s *System) createAccounts(ctx context.Context) error {
	if len(s.spec.Accounts) == 0 {
		return nil
	}
	var accs []hub.Account
	for _, a := range s.spec.Accounts {
		accs = append(accs, hub.Account{Name: a.Name, Password: a.Password, Locked: a.Locked})
	}
	made, err := hub.CreateAccounts(ctx, accs...)
	if err != nil {
		if errors.Is(err, hub.ErrAccountsNeedRoot) {
			return &runner.SkipError{Reason: err.Error()}
		}
		return fmt.Errorf("hubsys: accounts: %w", err)
	}
	s.mu.Lock()
	s.accounts = made
	s.mu.Unlock()
	return nil
}

// removeAccounts deletes the accounts the run made.
func (s *System) removeAccounts(ctx context.Context) error {
	s.mu.Lock()
	a := s.accounts
	s.accounts = nil
	s.mu.Unlock()
	if a == nil {
		return nil
	}
	if err := a.Remove(ctx); err != nil {
		return fmt.Errorf("hubsys: remove the accounts: %w", err)
	}
	return nil
}

// login performs a login step; a refusal is recorded, for expectations.
func (s *System) login(ctx context.Context, c *hub.Client, l Login) error {
	_, err := c.Login(ctx, l.As, l.Password)
	var refused *hub.LoginRefusedError
	switch {
	case err == nil:
		s.log.Record(events.Event{Kind: LoginEvent, Msg: fmt.Sprintf("%s logged in", l.As),
			Fields: map[string]any{"as": l.As, "result": "logged_in"}})
	case errors.As(err, &refused):
		s.log.Record(events.Event{Kind: LoginEvent, Msg: fmt.Sprintf("login as %s refused (%d): %s", l.As, refused.Status, refused.Message),
			Fields: map[string]any{"as": l.As, "result": "refused", "status": refused.Status, "message": refused.Message}})
	default:
		return fmt.Errorf("login as %s: %w", l.As, err)
	}
	return nil
}

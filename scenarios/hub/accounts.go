package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Account is a real Unix account a run creates so that its users can log
// in to a hub through PAM (PAMAuthenticator checks the password with
// pam_unix against /etc/shadow).
type Account struct {
	Name     string
	Password string
	// Locked accounts have their password locked (usermod --lock): PAM
	// refuses them whatever the password.
	Locked bool
}

// Accounts are the Unix accounts one run created; Remove deletes them,
// home directories included. The comment field of each says it is
// jobsim's (AccountComment), so that leftovers of a killed run can be told
// from a site's accounts.
type Accounts struct {
	mu    sync.Mutex
	names []string
}

// AccountComment is the GECOS field of the accounts jobsim creates.
const AccountComment = "jobsim test account"

// accountName is what CreateAccounts accepts: a portable Unix user name.
var accountName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// ErrAccountsNeedRoot says that accounts can be made by root only.
var ErrAccountsNeedRoot = errors.New("hub: creating Unix accounts needs root (useradd, chpasswd)")

// CreateAccounts creates the accounts with useradd (a home directory, bash)
// and sets their passwords with chpasswd. It refuses a name that already
// exists (it would not be its to remove) and, when one step fails, removes
// what it created before returning the error.
func CreateAccounts(ctx context.Context, accounts ...Account) (*Accounts, error) {
	if os.Geteuid() != 0 {
		return nil, ErrAccountsNeedRoot
	}
	for _, tool := range []string{"useradd", "userdel", "chpasswd", "usermod"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("hub: Unix accounts: %s: %w (Debian's passwd package)", tool, err)
		}
	}
	a := &Accounts{}
	for _, acc := range accounts {
		if err := a.create(ctx, acc); err != nil {
			if rerr := a.Remove(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return nil, err
		}
	}
	return a, nil
}

func (a *Accounts) create(ctx context.Context, acc Account) error {
	if !accountName.MatchString(acc.Name) {
		return fmt.Errorf("hub: account name %q: want lower-case letters, digits, '_' or '-', at most 32", acc.Name)
	}
	if acc.Password == "" || strings.ContainsAny(acc.Password, ":\n") {
		return fmt.Errorf("hub: account %s: the password must be non-empty, without ':' or a newline", acc.Name)
	}
	if _, err := user.Lookup(acc.Name); err == nil {
		return fmt.Errorf("hub: account %s exists already: not creating (or later removing) it", acc.Name)
	}
	if err := run(ctx, "", "useradd", "--create-home", "--shell", "/bin/bash", "--comment", AccountComment, acc.Name); err != nil {
		return err
	}
	a.mu.Lock()
	a.names = append(a.names, acc.Name)
	a.mu.Unlock()
	if err := run(ctx, acc.Name+":"+acc.Password+"\n", "chpasswd"); err != nil {
		return fmt.Errorf("%w (for %s)", err, acc.Name)
	}
	if acc.Locked {
		return run(ctx, "", "usermod", "--lock", acc.Name)
	}
	return nil
}

// Names are the accounts created, in order.
func (a *Accounts) Names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.names...)
}

// Remove deletes every account created, with its home directory; it is
// safe to call more than once and reports every account it could not
// remove.
func (a *Accounts) Remove(ctx context.Context) error {
	a.mu.Lock()
	names := a.names
	a.names = nil
	a.mu.Unlock()
	var errs []error
	for _, n := range names {
		if err := run(ctx, "", "userdel", "--remove", n); err != nil {
			// userdel exits 12 when only the home could not be removed.
			if _, lerr := user.Lookup(n); lerr == nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// run runs a command with input on stdin, bounded by ctx and a minute.
func run(ctx context.Context, input, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hub: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

package hubsys

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jobsim/jobsim/scenarios/scenario"
)

// ServerRef names one server of a hub user, as a scenario writes it:
// "alice" is alice's default server, "alice/lab" her named server lab
// (JupyterHub's own spelling in proxy paths, /user/alice/lab/). Steps
// (spawn, stop_server, remove_server), server conditions and expectations
// and request steps' server all take this form.
type ServerRef struct {
	User string
	// Name is the server's name, "" for the default server.
	Name string
}

// ParseServerRef reads "USER" or "USER/NAME". It checks the form only;
// File validation checks the user and that named servers are allowed.
func ParseServerRef(s string) (ServerRef, error) {
	user, name, named := strings.Cut(s, "/")
	if !hubUserRe.MatchString(user) {
		return ServerRef{}, fmt.Errorf("server %q: want USER (the default server) or USER/NAME (a named server); user %q: use letters, digits, '.', '_', '@', '-'", s, user)
	}
	if named && !hubUserRe.MatchString(name) {
		return ServerRef{}, fmt.Errorf("server %q: the server name %q after the '/': use letters, digits, '.', '_', '@', '-'", s, name)
	}
	return ServerRef{User: user, Name: name}, nil
}

// MustServerRef is ParseServerRef for references a validated File holds.
func MustServerRef(s string) ServerRef {
	r, err := ParseServerRef(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String is the scenario spelling: "alice" or "alice/lab".
func (r ServerRef) String() string {
	if r.Name == "" {
		return r.User
	}
	return r.User + "/" + r.Name
}

// Named reports whether r is a named server (not the default one).
func (r ServerRef) Named() bool { return r.Name != "" }

// namedServerTraits are the JupyterHub configurables system.hub sets with
// fields of its own; config may not set them behind the validation's back.
var namedServerTraits = map[string]string{
	"JupyterHub.allow_named_servers":         "allow_named_servers",
	"JupyterHub.named_server_limit_per_user": "named_server_limit_per_user",
}

// validateNamedServers checks system.hub's named-server fields.
func validateNamedServers(h *Config, at scenario.Where) error {
	for k := range h.Config {
		if field, ok := namedServerTraits[k]; ok {
			return at.Key("config").Key(k).Errorf("config %s: set system.hub.%s instead (the scenario's steps are checked against it)", k, field)
		}
	}
	if h.NamedServerLimitPerUser < 0 {
		return at.Key("named_server_limit_per_user").Errorf("named_server_limit_per_user %d: want 0 (no limit) or more", h.NamedServerLimitPerUser)
	}
	if h.NamedServerLimitPerUser > 0 && !h.AllowNamedServers {
		return at.Key("named_server_limit_per_user").Errorf("named_server_limit_per_user needs allow_named_servers: true")
	}
	return nil
}

// validateServerRef checks a server reference of the scenario: its form,
// that its user is a hub user, and that a named server is allowed by
// system.hub.allow_named_servers. removing: the reference is to be
// removed, which only a named server can be.
func validateServerRef(h *Config, s string, removing bool) error {
	r, err := ParseServerRef(s)
	if err != nil {
		return err
	}
	if !slices.Contains(h.Users, r.User) {
		return fmt.Errorf("%q is not one of the hub users %v", r.User, h.Users)
	}
	if r.Named() && !h.AllowNamedServers {
		return fmt.Errorf("%s is a named server (%s of %s), but system.hub.allow_named_servers is not true", s, r.Name, r.User)
	}
	if removing && !r.Named() {
		return fmt.Errorf("%s is a default server, which cannot be removed (name a named server, USER/NAME, or use stop_server)", s)
	}
	return nil
}

package hub

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/jobsim/jobsim/internal/runreg"
)

// Import strings of the classes the driver knows by name.
const (
	// LocalProcessSpawner runs each server as the Unix user of the same
	// name (the users must exist; the hub must be root to switch to them).
	LocalProcessSpawner = "jupyterhub.spawner.LocalProcessSpawner"
	// SimpleLocalProcessSpawner runs each server as the hub's own user,
	// with HOME under a template directory: no Unix users needed.
	SimpleLocalProcessSpawner = "jupyterhub.spawner.SimpleLocalProcessSpawner"
	// DummyAuthenticator lets any user in, with a shared password if one
	// is set. For tests only.
	DummyAuthenticator = "jupyterhub.auth.DummyAuthenticator"
)

// DriverService is the name of the API-only service through which the
// driver talks to a hub it started.
const DriverService = "driver"

// DriverScopes are the scopes granted to the driver service: those of
// JupyterHub's built-in admin role, without the admin web UI.
var DriverScopes = []string{
	"admin:users", "admin:servers", "tokens", "admin:groups",
	"list:services", "read:services", "read:hub", "proxy",
	"access:services", "access:servers", "read:roles", "read:metrics",
}

// Config is what a started hub is configured with. The driver turns it
// into a JSON spec read by a static jupyterhub_config.py; fields left zero
// get the defaults documented on each.
type Config struct {
	// Authenticator decides who may log in (default: DummyAuthenticator
	// with no password).
	Authenticator Authenticator
	// Spawner decides how per-user servers start. Its Cmd is required.
	Spawner Spawner
	// Users are created at startup (Authenticator.allowed_users).
	Users []string
	// Admins are created at startup with the admin flag.
	Admins []string
	// Roles are JupyterHub's load_roles; users and services named in them
	// are created at startup.
	Roles []Role
	// Services are extra services, API-only or hub-managed (Command set);
	// the driver's own is added.
	Services []Service
	// LogLevel of the hub: DEBUG, INFO (default), WARN, ERROR.
	LogLevel string
	// AllowNamedServers lets users run named servers besides their
	// default one (JupyterHub.allow_named_servers), as sites do with one
	// server on the login node and another as a batch job.
	AllowNamedServers bool
	// NamedServerLimitPerUser caps how many named servers a user may have
	// (JupyterHub.named_server_limit_per_user; 0: no limit). Stopped named
	// servers count until they are removed. Needs AllowNamedServers.
	NamedServerLimitPerUser int
	// Traits sets any other configurable: "Class.trait" to a JSON value,
	// for example {"JupyterHub.tornado_settings": {"slow_spawn_timeout": 0}}.
	Traits map[string]any
	// Imports are Python modules the configuration imports before the hub
	// starts, as a site's jupyterhub_config.py does with `import
	// batchspawner` (whose import adds the hub's /hub/api/batchspawner
	// handler).
	Imports []string
}

// Authenticator is the hub's authenticator class and its shared password.
type Authenticator struct {
	// Class is an import string (default DummyAuthenticator).
	Class string
	// Password is DummyAuthenticator's shared password ("" = any).
	Password string
}

// Spawner configures how the hub starts per-user servers.
type Spawner struct {
	// Class is an import string (default SimpleLocalProcessSpawner).
	Class string
	// Cmd is the server command, e.g. {"/tmp/jobsim", "uiserver"} or
	// {"jupyterhub-singleuser"}.
	Cmd []string
	// Args are extra arguments the hub appends (Spawner.args), e.g.
	// "--allow-root" for the real single-user server run as root.
	Args []string
	// StartTimeout is how long Spawner.start may take (default 60 s).
	StartTimeout time.Duration
	// HTTPTimeout is how long the hub waits for the started server to
	// answer its readiness check (default 30 s).
	HTTPTimeout time.Duration
	// PollInterval is how often the hub checks that a running server is
	// still alive (default 30 s).
	PollInterval time.Duration
	// Environment is added to every server's environment.
	Environment map[string]string
	// UserEnvironment is added to the environment of one user's server,
	// by user name (through a pre_spawn_hook).
	UserEnvironment map[string]map[string]string
	// HomeDirTemplate is SimpleLocalProcessSpawner's home directory, with
	// {username} (default <hub dir>/home/{username}).
	HomeDirTemplate string
	// Traits sets other traits of the spawner class, e.g.
	// {"interrupt_timeout": 2}.
	Traits map[string]any
	// OptionsForm is the spawn form a site offers (Spawner.options_form),
	// one field after another; the hub checks the answers
	// (options_from_form) and they become the spawner's user_options,
	// keyed by field name (batchspawner puts them into its job script:
	// queue, runtime, memory, nprocs). An answer a field refuses renders
	// the form again with the field's Message, and nothing is spawned.
	OptionsForm []FormField
	// UserTraits sets traits of each user's spawner when it starts (in the
	// pre_spawn_hook), from a template with {username}: for traits that are
	// not configurable, e.g. batchspawner's req_homedir
	// ("/home/{username}"), whose default reads the hub machine's passwd.
	UserTraits map[string]string
}

// FormField is one field of a spawn form: a choice (Choices: a select
// whose answer must be one of them) or a text (Pattern: the whole answer
// must match it, a Python regular expression).
type FormField struct {
	Name    string   `json:"name"`
	Label   string   `json:"label,omitempty"`
	Choices []string `json:"choices,omitempty"`
	Pattern string   `json:"pattern,omitempty"`
	Default string   `json:"default,omitempty"`
	// Message is what the form shows when the answer is refused
	// (default: "<label>: <answer> is not allowed").
	Message string `json:"message,omitempty"`
}

// Role is one entry of JupyterHub's load_roles.
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Scopes      []string `json:"scopes"`
	Users       []string `json:"users,omitempty"`
	Services    []string `json:"services,omitempty"`
	Groups      []string `json:"groups,omitempty"`
}

// Service is one of the hub's services (JupyterHub.services): API-only
// (a name and the token it uses) or, with Command, hub-managed: the hub
// starts Command with the service's environment (JUPYTERHUB_SERVICE_URL,
// _PREFIX, JUPYTERHUB_API_URL, _API_TOKEN and its OAuth client), proxies
// URL at /services/<name>/ and logs users into it with OAuth, as a site
// runs its own services.
type Service struct {
	Name string `json:"name"`
	// APIToken is the service's token; a managed service may leave it
	// empty (the hub makes one).
	APIToken string `json:"api_token,omitempty"`
	// Command starts a managed service.
	Command []string `json:"command,omitempty"`
	// URL is where a managed service listens (default: the driver picks
	// http://127.0.0.1:<free port>).
	URL string `json:"url,omitempty"`
	// Environment is added to a managed service's environment.
	Environment map[string]string `json:"environment,omitempty"`
	// OAuthNoConfirm skips the hub's "authorize access" page when a user
	// logs in to the service (oauth_no_confirm), as for a site's own
	// services.
	OAuthNoConfirm bool `json:"oauth_no_confirm,omitempty"`
}

//go:embed jupyterhub_config.py
var configLoader []byte

// spec is the JSON read by jupyterhub_config.py.
type spec struct {
	Hub           hubSpec           `json:"hub"`
	Authenticator authenticatorSpec `json:"authenticator"`
	Spawner       spawnerSpec       `json:"spawner"`
	Roles         []Role            `json:"roles"`
	Services      []Service         `json:"services"`
	Traits        map[string]any    `json:"traits,omitempty"`
	Imports       []string          `json:"imports,omitempty"`
}

type hubSpec struct {
	BindURL          string `json:"bind_url"`
	HubBindURL       string `json:"hub_bind_url"`
	DBURL            string `json:"db_url"`
	CookieSecretFile string `json:"cookie_secret_file"`
	PIDFile          string `json:"pid_file"`
	LogLevel         string `json:"log_level"`
	ProxyAPIURL      string `json:"proxy_api_url"`
	ProxyAuthToken   string `json:"proxy_auth_token"`
	ProxyPIDFile     string `json:"proxy_pid_file"`
	// AllowNamedServers and NamedServerLimitPerUser are JupyterHub's
	// allow_named_servers and named_server_limit_per_user.
	AllowNamedServers       bool `json:"allow_named_servers"`
	NamedServerLimitPerUser int  `json:"named_server_limit_per_user"`
}

type authenticatorSpec struct {
	Class        string   `json:"class"`
	Password     string   `json:"password,omitempty"`
	AllowedUsers []string `json:"allowed_users"`
	AdminUsers   []string `json:"admin_users"`
}

type spawnerSpec struct {
	Class           string                       `json:"class"`
	Cmd             []string                     `json:"cmd"`
	Args            []string                     `json:"args"`
	StartTimeout    int                          `json:"start_timeout"`
	HTTPTimeout     int                          `json:"http_timeout"`
	PollInterval    int                          `json:"poll_interval"`
	Environment     map[string]string            `json:"environment"`
	UserEnvironment map[string]map[string]string `json:"user_environment,omitempty"`
	HomeDirTemplate string                       `json:"home_dir_template,omitempty"`
	Traits          map[string]any               `json:"traits,omitempty"`
	UserTraits      map[string]string            `json:"user_traits,omitempty"`
	OptionsForm     []FormField                  `json:"options_form,omitempty"`
}

// validName is what the driver accepts as a user, role or service name: it
// keeps names usable in URL paths and Unix user names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]*$`)

// moduleName is a dotted Python module name; pyIdent a Python name.
var (
	moduleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	pyIdent    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// traitKey is a "Class.trait" key.
var traitKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$`)

// validate reports the first problem with c, naming the field.
func (c Config) validate() error {
	if len(c.Spawner.Cmd) == 0 {
		return fmt.Errorf("config: Spawner.Cmd is empty: name the server command, e.g. {\"/path/to/jobsim\", \"uiserver\"}")
	}
	for field, d := range map[string]time.Duration{
		"Spawner.StartTimeout": c.Spawner.StartTimeout,
		"Spawner.HTTPTimeout":  c.Spawner.HTTPTimeout,
		"Spawner.PollInterval": c.Spawner.PollInterval,
	} {
		if d < 0 {
			return fmt.Errorf("config: %s is negative (%v)", field, d)
		}
		if d > 0 && d < time.Second {
			return fmt.Errorf("config: %s is %v: JupyterHub counts whole seconds, use at least 1s", field, d)
		}
	}
	if c.NamedServerLimitPerUser < 0 {
		return fmt.Errorf("config: NamedServerLimitPerUser is negative (%d): use 0 for no limit", c.NamedServerLimitPerUser)
	}
	if c.NamedServerLimitPerUser > 0 && !c.AllowNamedServers {
		return fmt.Errorf("config: NamedServerLimitPerUser is %d but AllowNamedServers is false: the limit would have nothing to limit", c.NamedServerLimitPerUser)
	}
	for _, k := range []string{"JupyterHub.allow_named_servers", "JupyterHub.named_server_limit_per_user"} {
		if _, ok := c.Traits[k]; ok {
			return fmt.Errorf("config: Traits key %q: set Config.AllowNamedServers / Config.NamedServerLimitPerUser instead", k)
		}
	}
	check := func(field string, names []string) error {
		for _, n := range names {
			if !validName.MatchString(n) {
				return fmt.Errorf("config: %s: name %q: use letters, digits, '.', '_', '@', '-'", field, n)
			}
		}
		return nil
	}
	if err := check("Users", c.Users); err != nil {
		return err
	}
	if err := check("Admins", c.Admins); err != nil {
		return err
	}
	if err := check("Spawner.UserEnvironment", slices.Collect(maps.Keys(c.Spawner.UserEnvironment))); err != nil {
		return err
	}
	for i, r := range c.Roles {
		if !validName.MatchString(r.Name) {
			return fmt.Errorf("config: Roles[%d]: name %q: use letters, digits, '.', '_', '@', '-'", i, r.Name)
		}
		if err := check(fmt.Sprintf("Roles[%d] (%s).Users", i, r.Name), r.Users); err != nil {
			return err
		}
	}
	for i, s := range c.Services {
		if !validName.MatchString(s.Name) {
			return fmt.Errorf("config: Services[%d]: name %q: use letters, digits, '.', '_', '@', '-'", i, s.Name)
		}
		if s.Name == DriverService {
			return fmt.Errorf("config: Services[%d]: the name %q is the driver's own service", i, s.Name)
		}
		if len(s.APIToken) < 8 && !(len(s.Command) > 0 && s.APIToken == "") {
			return fmt.Errorf("config: Services[%d] (%s): APIToken shorter than 8 characters (JupyterHub refuses it)", i, s.Name)
		}
	}
	for _, m := range c.Imports {
		if !moduleName.MatchString(m) {
			return fmt.Errorf("config: Imports: %q is not a Python module name", m)
		}
	}
	seen := map[string]bool{}
	for i, f := range c.Spawner.OptionsForm {
		switch {
		case !pyIdent.MatchString(f.Name):
			return fmt.Errorf("config: Spawner.OptionsForm[%d]: name %q: want a Python name (it keys user_options)", i, f.Name)
		case seen[f.Name]:
			return fmt.Errorf("config: Spawner.OptionsForm[%d]: field %q twice", i, f.Name)
		case (len(f.Choices) > 0) == (f.Pattern != ""):
			return fmt.Errorf("config: Spawner.OptionsForm[%d] (%s): give either Choices or a Pattern", i, f.Name)
		case len(f.Choices) > 0 && f.Default != "" && !slices.Contains(f.Choices, f.Default):
			return fmt.Errorf("config: Spawner.OptionsForm[%d] (%s): default %q is not one of the choices %v", i, f.Name, f.Default, f.Choices)
		}
		seen[f.Name] = true
	}
	for k := range c.Spawner.UserTraits {
		if !pyIdent.MatchString(k) {
			return fmt.Errorf("config: Spawner.UserTraits key %q: want a trait name", k)
		}
	}
	for k := range c.Traits {
		if !traitKey.MatchString(k) {
			return fmt.Errorf("config: Traits key %q: want \"Class.trait\"", k)
		}
	}
	if err := jsonable("Traits", c.Traits); err != nil {
		return err
	}
	return jsonable("Spawner.Traits", c.Spawner.Traits)
}

func jsonable(field string, v map[string]any) error {
	if _, err := json.Marshal(v); err != nil {
		return fmt.Errorf("config: %s: not representable in JSON: %w", field, err)
	}
	return nil
}

// seconds rounds d up to whole seconds, or returns def for zero.
func seconds(d time.Duration, def int) int {
	if d == 0 {
		return def
	}
	return int((d + time.Second - 1) / time.Second)
}

// runtime holds what Start chooses for one hub: paths, ports, secrets.
type runtime struct {
	dir            string
	publicURL      string
	hubURL         string
	proxyAPIURL    string
	proxyAuthToken string
	driverToken    string
	marker         string // value of MarkerEnv
}

// buildSpec merges c with the runtime choices into the loader's spec.
func buildSpec(c Config, rt runtime, join func(...string) string) spec {
	auth := c.Authenticator
	if auth.Class == "" {
		auth.Class = DummyAuthenticator
	}
	sp := c.Spawner
	if sp.Class == "" {
		sp.Class = SimpleLocalProcessSpawner
	}
	env := map[string]string{}
	maps.Copy(env, sp.Environment)
	env[MarkerEnv] = rt.marker
	if run := os.Getenv(runreg.EnvVar); run != "" {
		// Spawners pass servers only the environment they are given: the
		// jobsim run's watcher finds the servers by this if the run dies.
		env[runreg.EnvVar] = run
	}
	home := sp.HomeDirTemplate
	if home == "" && sp.Class == SimpleLocalProcessSpawner {
		home = join(rt.dir, "home", "{username}")
	}
	level := c.LogLevel
	if level == "" {
		level = "INFO"
	}
	roles := append([]Role{{
		Name:        "jobsim-driver",
		Description: "jobsim's hub driver (admin scopes)",
		Scopes:      DriverScopes,
		Services:    []string{DriverService},
	}}, c.Roles...)
	services := []Service{{Name: DriverService, APIToken: rt.driverToken}}
	for _, s := range c.Services {
		if len(s.Command) > 0 {
			// The driver finds what a managed service leaves behind by
			// the hub's marker, as for servers.
			env := map[string]string{MarkerEnv: rt.marker}
			maps.Copy(env, s.Environment)
			s.Environment = env
		}
		services = append(services, s)
	}
	return spec{
		Hub: hubSpec{
			BindURL:          rt.publicURL,
			HubBindURL:       rt.hubURL,
			DBURL:            "sqlite:///" + join(rt.dir, "jupyterhub.sqlite"),
			CookieSecretFile: join(rt.dir, "jupyterhub_cookie_secret"),
			PIDFile:          join(rt.dir, "jupyterhub.pid"),
			LogLevel:         level,
			ProxyAPIURL:      rt.proxyAPIURL,
			ProxyAuthToken:   rt.proxyAuthToken,
			ProxyPIDFile:     join(rt.dir, "jupyterhub-proxy.pid"),

			AllowNamedServers:       c.AllowNamedServers,
			NamedServerLimitPerUser: c.NamedServerLimitPerUser,
		},
		Authenticator: authenticatorSpec{
			Class:        auth.Class,
			Password:     auth.Password,
			AllowedUsers: nonNil(c.Users),
			AdminUsers:   nonNil(c.Admins),
		},
		Spawner: spawnerSpec{
			Class:           sp.Class,
			Cmd:             sp.Cmd,
			Args:            nonNil(sp.Args),
			StartTimeout:    seconds(sp.StartTimeout, 60),
			HTTPTimeout:     seconds(sp.HTTPTimeout, 30),
			PollInterval:    seconds(sp.PollInterval, 30),
			Environment:     env,
			UserEnvironment: sp.UserEnvironment,
			HomeDirTemplate: home,
			Traits:          sp.Traits,
			UserTraits:      sp.UserTraits,
			OptionsForm:     sp.OptionsForm,
		},
		Roles:    roles,
		Services: services,
		Traits:   c.Traits,
		Imports:  c.Imports,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

package hubsys

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/uiserver"
)

// Config configures a JupyterHub run against the topology: a scenario's
// system.hub.
type Config struct {
	// Spawner is local (SimpleLocalProcessSpawner: any user names, servers
	// run as the hub's user), local-unix (LocalProcessSpawner: the users are
	// Unix accounts, the hub runs as root), batch-pbs (a PBS batch spawner
	// submitting through the fake host's qsub over ssh), ssh (an ssh
	// spawner starting the server on the fake host through an ssh tunnel),
	// batch-slurm (batchspawner's SlurmSpawner, on a host with Slurm)
	// or ssh-nersc (NERSC's sshspawner: asyncssh, the server started in the
	// background by `bash -s`, polled and stopped with kill).
	Spawner string `yaml:"spawner"`
	// Host is the topology host batch-pbs and ssh spawners reach (default:
	// the only host).
	Host  string   `yaml:"host"`
	Users []string `yaml:"users"`
	Roles []Role   `yaml:"roles"`
	// Config sets other configurables: "Class.trait" to a value in JSON or
	// Python literal syntax (true/True, 3, "text", [1, 2]).
	Config map[string]string `yaml:"config"`
	// Server are faults of the stand-in UI server (jobsim uiserver) for
	// every user: slow_start, never_ready (http|nobind), crash_after,
	// exit_code, status (a 5xx answered...), status_after (...after this
	// many requests). See ServerFaults.
	Server map[string]string `yaml:"server"`
	// ServerFor are per-user stand-in server faults, by user; they replace
	// the keys they name in Server for that user.
	ServerFor map[string]map[string]string `yaml:"server_for"`
	// Timeout is the spawner's start_timeout (default 60s).
	Timeout scenario.Duration `yaml:"start_timeout"`
	// HTTPTimeout is how long the hub waits for a started server to answer
	// (default 30s).
	HTTPTimeout scenario.Duration `yaml:"http_timeout"`
	// PollInterval is how often the hub checks that running servers are
	// alive (default 30s).
	PollInterval scenario.Duration `yaml:"poll_interval"`
	// AllowNamedServers lets users run named servers besides their default
	// one (JupyterHub.allow_named_servers); steps and conditions name them
	// USER/NAME (see ServerRef).
	AllowNamedServers bool `yaml:"allow_named_servers"`
	// NamedServerLimitPerUser caps each user's named servers
	// (JupyterHub.named_server_limit_per_user; 0: no limit). Stopped named
	// servers count until removed (remove_server).
	NamedServerLimitPerUser int `yaml:"named_server_limit_per_user"`
	// Services are hub-managed site-authorization services: jobsim's
	// stand-in reading a site file, or a site's own command (ServiceSpec).
	Services []ServiceSpec `yaml:"services"`
	// Accounts are real Unix accounts the run creates (root only): with
	// them the hub logs users in with PAM (PAMAuthenticator).
	Accounts []AccountSpec `yaml:"accounts"`
	// Form is the site's spawn form (Spawner.options_form): its answers
	// become the spawner's user_options. spawn_form steps fill it in.
	Form []FormField `yaml:"form"`
}

// Hub spawner kinds.
const (
	SpawnerLocal     = "local"
	SpawnerLocalUnix = "local-unix"
	SpawnerBatchPBS  = "batch-pbs"
	// SpawnerBatchSlurm is batchspawner's SlurmSpawner: the server is a
	// Slurm job (sbatch, squeue, scancel) on a host with a slurm: block.
	SpawnerBatchSlurm = "batch-slurm"
	SpawnerSSH        = "ssh"
	SpawnerSSHNERSC   = "ssh-nersc"
)

// HubSpawners lists the spawner kinds a hub scenario may name.
var HubSpawners = []string{SpawnerLocal, SpawnerLocalUnix, SpawnerBatchPBS, SpawnerBatchSlurm, SpawnerSSH, SpawnerSSHNERSC}

// NeedsHost reports whether the spawner starts servers on a topology host.
func (h *Config) NeedsHost() bool {
	return h.batch() || h.Spawner == SpawnerSSH || h.Spawner == SpawnerSSHNERSC
}

// batch reports whether the spawner submits servers as batch jobs
// (batchspawner's PBSSpawner or SlurmSpawner).
func (h *Config) batch() bool {
	return h.Spawner == SpawnerBatchPBS || h.Spawner == SpawnerBatchSlurm
}

// serverFaultKeys maps the scenario's stand-in server fault keys to the
// keys of `jobsim uiserver`'s fault spec (JOBSIM_UISERVER_FAULT).
var serverFaultKeys = map[string]string{
	"slow_start":   "slow-start",
	"never_ready":  "never-ready",
	"crash_after":  "crash-after",
	"exit_code":    "exit-code",
	"status":       "http-error",
	"status_after": "http-error-after",
}

// ServerFaults returns the stand-in server's fault spec for user (the
// JOBSIM_UISERVER_FAULT value, "" for none): Server overlaid with
// ServerFor[user], keys in a stable order. Unknown keys are an error.
func (h *Config) ServerFaults(user string) (string, error) {
	merged := map[string]string{}
	for k, v := range h.Server {
		merged[k] = v
	}
	for k, v := range h.ServerFor[user] {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		if _, ok := serverFaultKeys[k]; !ok {
			return "", fmt.Errorf("server fault %q: want one of %s", k, strings.Join(sortedKeys(serverFaultKeys), ", "))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := strings.TrimSpace(merged[k])
		if strings.ContainsAny(v, ",=") {
			return "", fmt.Errorf("server fault %s: value %q may not contain ',' or '='", k, v)
		}
		parts = append(parts, serverFaultKeys[k]+"="+v)
	}
	return strings.Join(parts, ","), nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Role is a JupyterHub role.
type Role struct {
	Name   string   `yaml:"name"`
	Users  []string `yaml:"users"`
	Scopes []string `yaml:"scopes"`
}

// Request is one request a hub user makes with a token of their own:
// either to the hub API (API: "METHOD /path" under /hub/api) or through
// the proxy to a user's server (Server, USER or USER/NAME, and Path, a
// GET). Want is the status the scenario expects; the hub.request event
// records it with the status seen and ok, and expectations judge (the step
// itself does not fail).
type Request struct {
	As     string `yaml:"as"`
	API    string `yaml:"api"`
	Server string `yaml:"server"`
	Path   string `yaml:"path"`
	Want   int    `yaml:"want"`
	Note   string `yaml:"note"`
}

// hubUserRe is what JupyterHub and the hub driver accept as a user name.
var hubUserRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]*$`)

// traitKeyRe is a "Class.trait" configurable.
var traitKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$`)

// ParseSystem implements scenario.SystemParser: it checks system.hub and
// fills in its defaults; a host the spawner starts servers on gets the hub
// users as its users and, for batch-pbs, a PBS server.
func (Plugin) ParseSystem(f *scenario.File, v scenario.Value) (any, error) {
	h := &Config{}
	if err := v.Decode(h); err != nil {
		return nil, err
	}
	if h.NeedsHost() {
		if err := f.RequireHosts(); err != nil {
			return nil, err
		}
	}
	if err := validate(f, h, v.Where()); err != nil {
		return nil, err
	}
	return h, nil
}

func validate(f *scenario.File, h *Config, at scenario.Where) error {
	if h.Spawner == "" {
		h.Spawner = SpawnerLocal
	}
	if !slices.Contains(HubSpawners, h.Spawner) {
		return at.Key("spawner").Errorf("spawner %q: want %s", h.Spawner, strings.Join(HubSpawners, ", "))
	}
	if len(h.Users) == 0 {
		return at.Errorf("system.hub.users: required, the hub users whose servers the scenario starts")
	}
	for i, u := range h.Users {
		if !hubUserRe.MatchString(u) {
			return at.Key("users").Index(i).Errorf("user %q: use letters, digits, '.', '_', '@', '-'", u)
		}
	}
	for i, r := range h.Roles {
		if !scenario.ValidName(r.Name) {
			return at.Key("roles").Index(i).Errorf("role name %q: use letters, digits, '.', '_' and '-'", r.Name)
		}
		if len(r.Scopes) == 0 {
			return at.Key("roles").Index(i).Errorf("role %s: scopes: required, e.g. [\"read:servers!user=bob\"]", r.Name)
		}
	}
	for k, v := range h.Config {
		if !traitKeyRe.MatchString(k) {
			return at.Key("config").Key(k).Errorf("config key %q: want \"Class.trait\", e.g. JupyterHub.log_level", k)
		}
		if strings.TrimSpace(v) == "" {
			return at.Key("config").Key(k).Errorf("config %s: empty value", k)
		}
	}
	for u := range h.ServerFor {
		if !slices.Contains(h.Users, u) {
			return at.Key("server_for").Key(u).Errorf("server_for: %q is not one of the hub users %v", u, h.Users)
		}
	}
	for _, u := range append([]string{""}, h.Users...) {
		spec, err := h.ServerFaults(u)
		if err == nil {
			_, err = uiserver.ParseFaults(spec)
		}
		if err != nil {
			where := at.Key("server")
			if _, ok := h.ServerFor[u]; ok {
				where = at.Key("server_for").Key(u)
			}
			return where.Errorf("%v", err)
		}
	}
	for _, d := range []struct {
		name string
		v    scenario.Duration
	}{{"start_timeout", h.Timeout}, {"http_timeout", h.HTTPTimeout}, {"poll_interval", h.PollInterval}} {
		if d.v != 0 && d.v.D() < 1e9 {
			return at.Key(d.name).Errorf("%s %s: JupyterHub counts whole seconds, use at least 1s", d.name, d.v.D())
		}
	}
	if err := validateNamedServers(h, at); err != nil {
		return err
	}
	if err := validateServices(f, h, at); err != nil {
		return err
	}
	if err := validateAccounts(h, at); err != nil {
		return err
	}
	if err := validateForm(h, at); err != nil {
		return err
	}
	if !h.NeedsHost() {
		if h.Host != "" {
			return at.Key("host").Errorf("host: only batch-pbs, batch-slurm, ssh and ssh-nersc spawners start servers on a topology host")
		}
		return nil
	}
	if h.Host == "" && len(f.Topology.Hosts) == 1 {
		h.Host = f.Topology.Hosts[0].Name
	}
	host, ok := f.Host(h.Host)
	if !ok {
		return at.Key("host").Errorf("system.hub.host %q is not a topology host (have %s)", h.Host, strings.Join(f.HostNames(), ", "))
	}
	if host.Executor != "real" {
		return at.Key("host").Errorf("host %q starts the hub's servers as processes and needs executor: real", host.Name)
	}
	if len(host.Users) == 0 {
		host.Users = slices.Clone(h.Users)
	}
	for i, u := range h.Users {
		if !slices.Contains(host.Users, u) {
			return at.Key("users").Index(i).Errorf("hub user %q is not a user of host %s (%v)", u, host.Name, host.Users)
		}
	}
	if h.Spawner == SpawnerBatchPBS && host.PBS == nil {
		if host.Slurm != nil {
			return at.Key("spawner").Errorf("spawner batch-pbs submits to PBS, but host %s runs Slurm (slurm:): use spawner batch-slurm", host.Name)
		}
		host.PBS = &scenario.PBS{}
	}
	if h.Spawner == SpawnerBatchSlurm && host.Slurm == nil {
		if host.PBS != nil {
			return at.Key("spawner").Errorf("spawner batch-slurm submits to Slurm, but host %s runs PBS (pbs:): use spawner batch-pbs", host.Name)
		}
		host.Slurm = &scenario.Slurm{}
	}
	return nil
}

var apiRequestRe = regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE) /\S*$`)

func validateRequest(h *Config, r Request) error {
	users := h.Users
	if !slices.Contains(users, r.As) {
		return fmt.Errorf("as %q: want one of the hub users %v", r.As, users)
	}
	if (r.API == "") == (r.Server == "") {
		return errors.New("give api: \"METHOD /path\" (under /hub/api), or server: USER (or USER/NAME) and path: /PATH")
	}
	if r.API != "" && !apiRequestRe.MatchString(r.API) {
		return fmt.Errorf("api %q: want \"METHOD /path\", e.g. \"GET /users/bob\"", r.API)
	}
	if r.Server != "" {
		if err := validateServerRef(h, r.Server, false); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	if r.Want < 100 || r.Want > 599 {
		return fmt.Errorf("want: the expected HTTP status (100..599), got %d", r.Want)
	}
	return nil
}

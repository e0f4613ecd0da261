package hub

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// dumpConfig loads a generated jupyterhub_config.py with traitlets, as
// jupyterhub does, and prints the values it set as JSON.
const dumpConfig = `
import json, sys, types
from traitlets.config.loader import PyFileConfigLoader
cfg = PyFileConfigLoader("jupyterhub_config.py", path=sys.argv[1]).load_config()
sp = cfg.JupyterHub.spawner_class.rpartition(".")[2]
section = cfg[sp]
def hook(name):
    hook = section.get("pre_spawn_hook")
    s = types.SimpleNamespace(user=types.SimpleNamespace(name=name), environment={"BASE": "1"})
    if hook:
        hook(s)
    return s
def hook_env(name):
    return hook(name).environment
print(json.dumps({
    "bind_url": cfg.JupyterHub.bind_url,
    "hub_bind_url": cfg.JupyterHub.hub_bind_url,
    "db_url": cfg.JupyterHub.db_url,
    "proxy_api_url": cfg.ConfigurableHTTPProxy.api_url,
    "authenticator_class": cfg.JupyterHub.authenticator_class,
    "password": cfg.DummyAuthenticator.password,
    "allowed_users": sorted(cfg.Authenticator.allowed_users),
    "admin_users": sorted(cfg.Authenticator.admin_users),
    "spawner_class": cfg.JupyterHub.spawner_class,
    "cmd": section.cmd,
    "args": section.args,
    "start_timeout": section.start_timeout,
    "http_timeout": section.http_timeout,
    "poll_interval": section.poll_interval,
    "environment": section.environment,
    "home_dir_template": section.get("home_dir_template"),
    "interrupt_timeout": section.get("interrupt_timeout"),
    "alice_env": hook_env("alice"),
    "bob_env": hook_env("bob"),
    "bob_homedir": getattr(hook("bob"), "req_homedir", None),
    "imported": "jobsim_test_import" in sys.modules,
    "roles": cfg.JupyterHub.load_roles,
    "services": cfg.JupyterHub.services,
    "tornado_settings": cfg.JupyterHub.tornado_settings,
    "allow_named_servers": cfg.JupyterHub.allow_named_servers,
    "named_server_limit_per_user": cfg.JupyterHub.named_server_limit_per_user,
}))
`

func TestGeneratedConfigLoads(t *testing.T) {
	if err := exec.Command("python3", "-c", "import traitlets").Run(); err != nil {
		t.Skip("python3 with traitlets missing (it comes with jupyterhub): " + installHint)
	}
	c := Config{
		Authenticator: Authenticator{Password: "s3cret"},
		Spawner: Spawner{
			Cmd:             []string{"/opt/jobsim", "uiserver"},
			Args:            []string{"--allow-root"},
			StartTimeout:    5 * time.Second,
			HTTPTimeout:     1500 * time.Millisecond, // rounds up to 2
			Environment:     map[string]string{"A": "it's \"quoted\"\n"},
			UserEnvironment: map[string]map[string]string{"alice": {"JOBSIM_UISERVER_FAULT": "crash-after=1s"}},
			Traits:          map[string]any{"interrupt_timeout": 2},
			UserTraits:      map[string]string{"req_homedir": "/home/{username}"},
		},
		Imports:  []string{"jobsim_test_import"},
		Users:    []string{"bob", "alice"},
		Admins:   []string{"root-user"},
		Roles:    []Role{{Name: "r", Scopes: []string{"read:users!user=bob"}, Users: []string{"alice"}}},
		Services: []Service{{Name: "other", APIToken: "0123456789abcdef"}},
		Traits:   map[string]any{"JupyterHub.tornado_settings": map[string]any{"slow_spawn_timeout": 0}},

		AllowNamedServers:       true,
		NamedServerLimitPerUser: 3,
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rt := runtime{dir: dir, publicURL: "http://127.0.0.1:1001", hubURL: "http://127.0.0.1:1002", proxyAPIURL: "http://127.0.0.1:1003",
		proxyAuthToken: "p", driverToken: "d", marker: "m"}
	b, err := json.Marshal(buildSpec(c, rt, filepath.Join))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jobsim-hub.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jupyterhub_config.py"), configLoader, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-c", dumpConfig, dir)
	// A module the config must import, as a site's `import batchspawner`.
	mod := t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "jobsim_test_import.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "JOBSIM_HUB_SPEC=", "PYTHONPATH="+mod) // use the file next to the loader
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("loading the generated config: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]any{
		"bind_url":            "http://127.0.0.1:1001",
		"hub_bind_url":        "http://127.0.0.1:1002",
		"db_url":              "sqlite:///" + filepath.Join(dir, "jupyterhub.sqlite"),
		"proxy_api_url":       "http://127.0.0.1:1003",
		"authenticator_class": DummyAuthenticator,
		"password":            "s3cret",
		"allowed_users":       []any{"alice", "bob"},
		"admin_users":         []any{"root-user"},
		"spawner_class":       SimpleLocalProcessSpawner,
		"cmd":                 []any{"/opt/jobsim", "uiserver"},
		"args":                []any{"--allow-root"},
		"start_timeout":       5.0,
		"http_timeout":        2.0,
		"poll_interval":       30.0,
		"environment":         map[string]any{"A": "it's \"quoted\"\n", MarkerEnv: "m"},
		"home_dir_template":   filepath.Join(dir, "home", "{username}"),
		"interrupt_timeout":   2.0,
		"alice_env":           map[string]any{"BASE": "1", "JOBSIM_UISERVER_FAULT": "crash-after=1s"},
		"bob_env":             map[string]any{"BASE": "1"},
		"bob_homedir":         "/home/bob",
		"imported":            true,
		"tornado_settings":    map[string]any{"slow_spawn_timeout": 0.0},

		"allow_named_servers":         true,
		"named_server_limit_per_user": 3.0,
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	roles, _ := json.Marshal(got["roles"])
	if !strings.Contains(string(roles), `"services":["driver"]`) || !strings.Contains(string(roles), `"name":"r"`) {
		t.Errorf("roles %s: want the driver's role and role r", roles)
	}
	services, _ := json.Marshal(got["services"])
	if string(services) != `[{"api_token":"d","name":"driver"},{"api_token":"0123456789abcdef","name":"other"}]` {
		t.Errorf("services %s", services)
	}
}

// TestNamedServerConfigValidation: a limit without named servers, a
// negative limit, or the same settings smuggled in as raw traits are
// refused before a hub starts.
func TestNamedServerConfigValidation(t *testing.T) {
	base := Config{Spawner: Spawner{Cmd: []string{"/bin/true"}}}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"limit without allow": {func(c *Config) { c.NamedServerLimitPerUser = 2 }, "AllowNamedServers is false"},
		"negative limit":      {func(c *Config) { c.AllowNamedServers, c.NamedServerLimitPerUser = true, -1 }, "negative"},
		"allow as a trait": {func(c *Config) { c.Traits = map[string]any{"JupyterHub.allow_named_servers": true} },
			"AllowNamedServers"},
		"limit as a trait": {func(c *Config) { c.Traits = map[string]any{"JupyterHub.named_server_limit_per_user": 2} },
			"NamedServerLimitPerUser"},
		"allowed, no limit": {func(c *Config) { c.AllowNamedServers = true }, ""},
		// Imports and per-user traits become Python names: only names.
		"import not a module": {func(c *Config) { c.Imports = []string{"os; import shutil"} }, "not a Python module name"},
		"import dotted":       {func(c *Config) { c.Imports = []string{"batchspawner.api"} }, ""},
		"user trait not a name": {func(c *Config) { c.Spawner.UserTraits = map[string]string{"a.b": "x"} },
			"Spawner.UserTraits key"},
		// A spawn form's fields are choices or patterns, named once.
		"form field both": {func(c *Config) {
			c.Spawner.OptionsForm = []FormField{{Name: "q", Choices: []string{"a"}, Pattern: "a"}}
		}, "either Choices or a Pattern"},
		"form default not a choice": {func(c *Config) {
			c.Spawner.OptionsForm = []FormField{{Name: "q", Choices: []string{"a"}, Default: "b"}}
		}, "not one of the choices"},
		"form field twice": {func(c *Config) {
			c.Spawner.OptionsForm = []FormField{{Name: "q", Pattern: "a"}, {Name: "q", Pattern: "b"}}
		}, "twice"},
		"form ok": {func(c *Config) {
			c.Spawner.OptionsForm = []FormField{{Name: "queue", Choices: []string{"a", "b"}, Default: "b"}, {Name: "runtime", Pattern: "[0-9]+"}}
		}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			err := c.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSSEData(t *testing.T) {
	stream := "\n\n: comment\ndata: {\"progress\": 10}\n\nevent: x\ndata: line1\ndata: line2\r\n\r\n\n\ndata: last"
	var got []string
	for d, err := range sseData(strings.NewReader(stream)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
	}
	want := []string{`{"progress": 10}`, "line1\nline2", "last"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

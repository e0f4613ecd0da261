package cylc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestISODuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Second:         "PT5S",
		1500 * time.Millisecond: "PT1.5S",
		2 * time.Minute:         "PT120S",
	} {
		if got := ISODuration(d); got != want {
			t.Errorf("ISODuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestGlobalConfigRender(t *testing.T) {
	g := GlobalConfig{
		ProcessPoolTimeout: 5 * time.Second,
		StallTimeout:       10 * time.Second,
		Events:             map[string]string{"abort on stall timeout": "False"},
		Platforms: []Platform{{
			Name:                       "fakehpc",
			JobRunner:                  "pbs",
			CylcPath:                   "/opt/cylc/bin",
			CommunicationMethod:        CommsPoll,
			SubmissionPollingIntervals: []time.Duration{2 * time.Second, 5 * time.Second},
			ExecutionPollingIntervals:  []time.Duration{2 * time.Second},
			Directives:                 map[string]string{"-q": "workq"},
			Settings:                   map[string]string{"retrieve job logs": "True"},
		}},
	}
	text, err := g.Render("/tmp/x/ssh_config")
	if err != nil {
		t.Fatal(err)
	}
	got := string(text)
	for _, want := range []string{
		"[scheduler]\n    process pool timeout = PT5S\n",
		"    [[events]]\n        abort on stall timeout = False\n        stall timeout = PT10S\n",
		"[platforms]\n    [[fakehpc]]\n",
		"        hosts = fakehpc\n",
		"        install target = fakehpc\n",
		"        job runner = pbs\n",
		"        ssh command = ssh -F /tmp/x/ssh_config -oBatchMode=yes -oConnectTimeout=10\n",
		"        cylc path = /opt/cylc/bin\n",
		"        communication method = poll\n",
		"        submission polling intervals = PT2S, PT5S\n",
		"        execution polling intervals = PT2S\n",
		"        retrieve job logs = True\n",
		"        [[[directives]]]\n            -q = workq\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered global.cylc lacks %q:\n%s", want, got)
		}
	}
}

func TestGlobalConfigRenderRejectsBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		g    GlobalConfig
		want string
	}{
		"bad platform name": {GlobalConfig{Platforms: []Platform{{Name: "a b"}}}, `platform name "a b"`},
		"duplicate":         {GlobalConfig{Platforms: []Platform{{Name: "x"}, {Name: "x"}}}, `platform "x" defined twice`},
		"bad comms":         {GlobalConfig{Platforms: []Platform{{Name: "x", CommunicationMethod: "carrier-pigeon"}}}, `platform "x": communication method "carrier-pigeon"`},
		"bad host":          {GlobalConfig{Platforms: []Platform{{Name: "x", Hosts: []string{"a;rm"}}}}, `platform "x": host "a;rm"`},
		"negative timeout":  {GlobalConfig{ProcessPoolTimeout: -time.Second}, "process pool timeout = -1s: negative"},
		"newline value":     {GlobalConfig{Scheduler: map[string]string{"UTC mode": "True\n[evil]"}}, `setting "UTC mode": value contains a newline`},
		"zero interval":     {GlobalConfig{Platforms: []Platform{{Name: "x", ExecutionPollingIntervals: []time.Duration{0}}}}, "execution polling intervals[0] = 0s"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.g.Render("")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSSHCommandQuotesPaths(t *testing.T) {
	if got := SSHCommand("/tmp/a b/ssh_config"); got != "ssh -F '/tmp/a b/ssh_config' -oBatchMode=yes -oConnectTimeout=10" {
		t.Errorf("SSHCommand = %q", got)
	}
}

func TestSSHConfigRejectsBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		s    SSHConfig
		want string
	}{
		"localhost alias": {SSHConfig{Hosts: []SSHHost{{Alias: "localhost-x", Port: 22}}}, `alias "localhost-x"`},
		"no port":         {SSHConfig{Hosts: []SSHHost{{Alias: "fakehpc"}}}, `host "fakehpc": port 0`},
		"duplicate":       {SSHConfig{Hosts: []SSHHost{{Alias: "a", Port: 1}, {Alias: "a", Port: 2}}}, `alias "a" defined twice`},
		"bad option":      {SSHConfig{Hosts: []SSHHost{{Alias: "a", Port: 1, Options: map[string]string{"Proxy Command": "x"}}}}, `option "Proxy Command"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.s.Render()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// The real OpenSSH client must resolve the alias as the config says.
func TestSSHConfigAcceptedByOpenSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("OpenSSH client not installed: apt-get install openssh-client")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id key")
	text, err := SSHConfig{Hosts: []SSHHost{
		{Alias: "fakehpc", Port: 2222, User: "alice", IdentityFile: key},
		{Alias: "login2", HostName: "127.0.0.2", Port: 2223, Options: map[string]string{"ServerAliveInterval": "7"}},
	}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(cfg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resolve := func(alias string) string {
		out, err := exec.CommandContext(ctx, "ssh", "-G", "-F", cfg, alias).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh -G %s: %v\n%s\nconfig:\n%s", alias, err, out, text)
		}
		return string(out)
	}
	got := resolve("fakehpc")
	for _, want := range []string{"hostname 127.0.0.1\n", "port 2222\n", "user alice\n", "identityfile " + key + "\n",
		"identitiesonly yes\n", "stricthostkeychecking false\n", "userknownhostsfile /dev/null\n", "batchmode yes\n"} {
		contains(t, "ssh -G fakehpc", got, want)
	}
	got = resolve("login2")
	for _, want := range []string{"hostname 127.0.0.2\n", "port 2223\n", "serveraliveinterval 7\n"} {
		contains(t, "ssh -G login2", got, want)
	}
}

// The real Cylc must read the generated global.cylc back as written.
func TestGlobalConfigAcceptedByCylc(t *testing.T) {
	c := locateOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := newTestEnv(t, c,
		WithSSHConfig(SSHConfig{Hosts: []SSHHost{{Alias: "fakehpc", Port: 2222}}}),
		WithGlobalConfig(GlobalConfig{
			ProcessPoolTimeout:     5 * time.Second,
			StallTimeout:           10 * time.Second,
			HostSelfIdentification: "harness.example",
			Platforms: []Platform{{
				Name:                      "fakehpc",
				JobRunner:                 "pbs",
				CylcPath:                  c.BinDir(),
				CommunicationMethod:       CommsPoll,
				ExecutionPollingIntervals: []time.Duration{2 * time.Second},
				Directives:                map[string]string{"-q": "workq"},
			}},
		}))
	for item, want := range map[string]string{
		"[scheduler]process pool timeout":                 "PT5S",
		"[scheduler][events]stall timeout":                "PT10S",
		"[scheduler][events]abort on stall timeout":       "True",
		"[scheduler][host self-identification]method":     "hardwired",
		"[scheduler][host self-identification]host":       "harness.example",
		"[platforms][fakehpc]job runner":                  "pbs",
		"[platforms][fakehpc]hosts":                       "fakehpc",
		"[platforms][fakehpc]install target":              "fakehpc",
		"[platforms][fakehpc]communication method":        "poll",
		"[platforms][fakehpc]cylc path":                   c.BinDir(),
		"[platforms][fakehpc]ssh command":                 SSHCommand(env.SSHConfigPath()),
		"[platforms][fakehpc]execution polling intervals": "PT2S",
		"[platforms][fakehpc][directives]-q":              "workq",
	} {
		res, err := env.Run(ctx, "config", "-i", item)
		if err != nil {
			t.Errorf("cylc config -i %s: %v", item, err)
			continue
		}
		if got := strings.TrimSpace(res.Stdout); got != want {
			t.Errorf("cylc config -i %s = %q, want %q", item, got, want)
		}
	}
}

// Nothing from the user's own Cylc set-up may leak in: neither a
// CYLC_CONF_PATH in the caller's environment nor a ~/.cylc/flow/global.cylc
// under the Env's HOME is read; only the Env's own global.cylc.
func TestEnvIsolation(t *testing.T) {
	c := locateOrSkip(t)
	leak := t.TempDir()
	writeGlobal := func(dir, size string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		text := "[scheduler]\n    process pool size = " + size + "\n"
		if err := os.WriteFile(filepath.Join(dir, "global.cylc"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeGlobal(leak, "99")
	t.Setenv("CYLC_CONF_PATH", leak)
	t.Setenv("CYLC_SITE_CONF_PATH", leak)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(t, c, WithEnvVar("JOBSIM_TEST_VAR", "x"))
	writeGlobal(filepath.Join(env.Home(), ".cylc", "flow"), "98")

	vars := map[string]string{}
	for _, kv := range env.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	if vars["HOME"] != env.Home() || vars["CYLC_CONF_PATH"] != env.ConfDir() || vars[MarkerVar] != env.Marker() || vars["JOBSIM_TEST_VAR"] != "x" {
		t.Errorf("Environ: HOME=%q CYLC_CONF_PATH=%q marker=%q JOBSIM_TEST_VAR=%q", vars["HOME"], vars["CYLC_CONF_PATH"], vars[MarkerVar], vars["JOBSIM_TEST_VAR"])
	}
	if _, ok := vars["CYLC_SITE_CONF_PATH"]; ok {
		t.Error("CYLC_SITE_CONF_PATH leaked into the Env")
	}
	res, err := env.Run(ctx, "config", "-d", "-i", "[scheduler]process pool size")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(res.Stdout); got != "4" {
		t.Errorf("process pool size = %q, want Cylc's default 4 (99: caller's CYLC_CONF_PATH leaked, 98: ~/.cylc read)", got)
	}
	// The Env's own file is what counts.
	if err := env.WriteGlobalConfig(GlobalConfig{ProcessPoolSize: 7}); err != nil {
		t.Fatal(err)
	}
	if res, err = env.Run(ctx, "config", "-d", "-i", "[scheduler]process pool size"); err != nil || strings.TrimSpace(res.Stdout) != "7" {
		t.Errorf("after WriteGlobalConfig: process pool size = %q, %v; want 7", res.Stdout, err)
	}
	if _, err := c.NewEnv(ctx, t.TempDir(), WithEnvVar("HOME", "/root")); err == nil || !strings.Contains(err.Error(), "HOME is set by the Env") {
		t.Errorf("overriding HOME: err = %v", err)
	}
	if _, err := c.NewEnv(ctx, filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "must be an existing directory") {
		t.Errorf("missing dir: err = %v", err)
	}
}

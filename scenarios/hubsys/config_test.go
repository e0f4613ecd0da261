package hubsys

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
	"github.com/jobsim/jobsim/sim/events"
)

func TestPythonLiteral(t *testing.T) {
	for in, want := range map[string]any{
		`3`:              float64(3),
		`True`:           true,
		`false`:          false,
		`None`:           nil,
		`"DEBUG"`:        "DEBUG",
		`[1, "a", True]`: []any{float64(1), "a", true},
		`{"k": False}`:   map[string]any{"k": false},
		` {"slow": 0} `:  map[string]any{"slow": float64(0)},
		`"True is text"`: "True is text",
	} {
		got, err := pythonLiteral(in)
		if err != nil {
			t.Errorf("pythonLiteral(%q): %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pythonLiteral(%q) = %#v, want %#v", in, got, want)
		}
	}
	if _, err := pythonLiteral(`'single'`); err == nil || !strings.Contains(err.Error(), "JSON or Python literal") {
		t.Errorf("single quotes: %v, want an error naming the accepted forms", err)
	}
}

// fakeHost is a runner.Host with an ssh endpoint and nothing else.
type fakeHost struct{ name string }

func (h fakeHost) Name() string { return h.name }
func (h fakeHost) SSH(user string) (runner.SSHEndpoint, error) {
	return runner.SSHEndpoint{Addr: "127.0.0.1:2222", User: user, KeyFile: "/keys/" + user}, nil
}
func (h fakeHost) Control() *control.Client           { return nil }
func (h fakeHost) Notes() []string                    { return nil }
func (h fakeHost) ProcessPath(hostPath string) string { return hostPath }

type oneHost struct{ h fakeHost }

func (t oneHost) Hosts() []runner.Host { return []runner.Host{t.h} }
func (t oneHost) Host(name string) (runner.Host, bool) {
	return t.h, name == t.h.name
}
func (oneHost) Close(context.Context) error { return nil }

func parse(t *testing.T, src string) *scenario.File {
	t.Helper()
	f, err := scenario.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fakeJobsim(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jobsim")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlanBatchPBS(t *testing.T) {
	f := parse(t, `name: p
topology: {hosts: [{name: fakehpc}]}
system:
  hub:
    spawner: batch-pbs
    users: [alice, bob]
    server_for: {bob: {crash_after: 2s}}
    config: {JupyterHub.log_level: '"DEBUG"'}
timeline: [{do: start}]
`)
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog()}
	s, err := New(context.Background(), f, oneHost{fakeHost{"fakehpc"}}, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand("true"))
	if err != nil {
		t.Fatal(err)
	}
	sp := s.plan.spawner
	if sp.Class != StandInPBSSpawner {
		t.Errorf("class %q", sp.Class)
	}
	prefix, _ := sp.Traits["exec_prefix"].(string)
	if !strings.HasPrefix(prefix, "ssh -F "+filepath.Join(s.dir, "ssh_config")) || !strings.HasSuffix(prefix, "-l {username} fakehpc") {
		t.Errorf("exec_prefix %q: want ssh with the generated config, the user from batchspawner's {username}, the host alias", prefix)
	}
	if got := sp.Traits["env_keep"]; !reflect.DeepEqual(got, []string{}) {
		t.Errorf("env_keep %v: want none, so that every #PBS -v variable travels through ssh", got)
	}
	if sp.UserEnvironment["bob"]["JOBSIM_UISERVER_FAULT"] != "crash-after=2s" || sp.UserEnvironment["alice"] != nil {
		t.Errorf("per-user faults %v", sp.UserEnvironment)
	}
	if s.plan.traits["JupyterHub.log_level"] != "DEBUG" {
		t.Errorf("config traits %v", s.plan.traits)
	}
	if err := s.plan.write(); !errors.Is(err, os.ErrNotExist) {
		// The fake key files do not exist: write must say so.
		t.Fatalf("write with missing keys: %v, want a not-exist error", err)
	}
	cfg, err := s.plan.sshConfigText("/k")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Host fakehpc\n", "HostName 127.0.0.1\n", "Port 2222\n", "IdentityFile /k/%r\n", "SendEnv JUPYTERHUB_* JPY_* JOBSIM_*\n", "BatchMode yes\n"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("ssh config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestNewWithoutJupyterHubSkips(t *testing.T) {
	f := parse(t, `name: p
topology: {hosts: []}
system: {hub: {users: [alice]}}
timeline: [{do: start}]
`)
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog()}
	_, err := New(context.Background(), f, oneHost{}, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand("/nonexistent/jupyterhub"))
	var skip *runner.SkipError
	if !errors.As(err, &skip) || !strings.Contains(skip.Reason, "scripts/setup-hub.sh") {
		t.Errorf("New without jupyterhub: %v, want a SkipError naming scripts/setup-hub.sh", err)
	}
	_, err = New(context.Background(), f, oneHost{}, env, env.Log, WithJobsim(filepath.Join(t.TempDir(), "missing")), WithHubCommand("true"))
	if err == nil || errors.As(err, &skip) || !strings.Contains(err.Error(), "go build") {
		t.Errorf("New with a missing jobsim binary: %v, want an error saying how to build it", err)
	}
}

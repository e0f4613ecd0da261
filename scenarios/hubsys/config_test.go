package hubsys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/sim/control"
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
	f, err := testVocabulary.Parse("test.yaml", []byte(src))
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
	if sp.Traits["ip"] != "127.0.0.1" || sp.Traits["state_exechost_exp"] != "127.0.0.1" || sp.Traits["hub_connect_url"] != nil {
		t.Errorf("traits %v: an in-process host's servers run on the test machine (127.0.0.1, no hub_connect_url)", sp.Traits)
	}
	if _, ok := s.plan.traits["JupyterHub.hub_bind_url"]; ok || !reflect.DeepEqual(sp.Cmd[1:], []string{"uiserver"}) || sp.Environment["JOBSIM_UISERVER_RECORD"] == "" {
		t.Errorf("in-process host: hub traits %v, cmd %v, env %v: want the driver's loopback hub and the harness's jobsim with its record", s.plan.traits, sp.Cmd, sp.Environment)
	}
	if sp.UserEnvironment["bob"]["JOBSIM_UISERVER_FAULT"] != "crash-after=2s" || sp.UserEnvironment["alice"] != nil {
		t.Errorf("per-user faults %v", sp.UserEnvironment)
	}
	if s.plan.traits["JupyterHub.log_level"] != "DEBUG" {
		t.Errorf("config traits %v", s.plan.traits)
	}
	if err := s.plan.write(context.Background()); !errors.Is(err, os.ErrNotExist) {
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

// remoteHost is a job host that is not the test machine (as a container
// is): it names the test machine and carries its own jobsim binary.
type remoteHost struct {
	fakeHost
}

func (remoteHost) HarnessHost() string { return "testbox" }

// remoteTopo is one remoteHost whose machines have addresses of their own.
type remoteTopo struct {
	h     runner.Host
	addrs map[string]string
}

func (t remoteTopo) Hosts() []runner.Host { return []runner.Host{t.h} }
func (t remoteTopo) Host(name string) (runner.Host, bool) {
	return t.h, name == t.h.Name()
}
func (remoteTopo) Close(context.Context) error { return nil }
func (t remoteTopo) Address(_ context.Context, name string) (string, error) {
	if a, ok := t.addrs[name]; ok {
		return a, nil
	}
	return "", errors.New("no machine " + name)
}

// carrier is a remoteHost with its own jobsim binary.
type carrier struct{ remoteHost }

func (carrier) JobsimPath() string { return "/opt/jobsim/jobsim" }

func TestPlanOnRemoteHost(t *testing.T) {
	const src = `name: p
topology: {hosts: [{name: fakehpc, pbs: {nodes: [{name: cn1, ncpus: 2}, {name: cn2, ncpus: 2}]}}]}
system:
  hub:
    spawner: %s
    users: [alice]
timeline: [{do: start}]
`
	topo := remoteTopo{h: carrier{remoteHost{fakeHost: fakeHost{"fakehpc"}}},
		addrs: map[string]string{"fakehpc": "10.0.0.2", "cn1": "10.0.0.3", "cn2": "10.0.0.4"}}
	for _, spawner := range []string{"batch-pbs", "ssh"} {
		t.Run(spawner, func(t *testing.T) {
			f := parse(t, strings.Replace(src, "%s", spawner, 1))
			env := runner.Env{Dir: t.TempDir(), Log: events.NewLog()}
			s, err := New(context.Background(), f, topo, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand("true"))
			if err != nil {
				t.Fatal(err)
			}
			sp := s.plan.spawner
			if !reflect.DeepEqual(sp.Cmd, []string{"/opt/jobsim/jobsim", "uiserver"}) {
				t.Errorf("cmd %v: want the host's own jobsim", sp.Cmd)
			}
			if _, ok := sp.Environment["JOBSIM_UISERVER_RECORD"]; ok {
				t.Errorf("environment %v: the record path is the test machine's, not the host's", sp.Environment)
			}
			bind, _ := s.plan.traits["JupyterHub.hub_bind_url"].(string)
			port, ok := strings.CutPrefix(bind, "http://0.0.0.0:")
			if !ok || port == "" {
				t.Fatalf("hub_bind_url %q: want every address of the test machine", bind)
			}
			if got := sp.Traits["hub_connect_url"]; got != "http://testbox:"+port {
				t.Errorf("hub_connect_url %v: want the host's name for the test machine and the hub's port %s", got, port)
			}
			if spawner != "batch-pbs" {
				if _, ok := sp.Traits["exechost_addresses"]; ok {
					t.Errorf("ssh spawner got node addresses: %v", sp.Traits)
				}
				return
			}
			if sp.Traits["ip"] != "0.0.0.0" {
				t.Errorf("ip %v: the server must bind an address the hub reaches", sp.Traits["ip"])
			}
			if _, ok := sp.Traits["state_exechost_exp"]; ok {
				t.Errorf("state_exechost_exp %v: the node name must reach the address map", sp.Traits["state_exechost_exp"])
			}
			if got := sp.Traits["exechost_addresses"]; !reflect.DeepEqual(got, topo.addrs) {
				t.Errorf("exechost_addresses %v, want %v", got, topo.addrs)
			}
		})
	}

	// A host that is not the test machine and has no jobsim of its own,
	// or nodes without addresses, are errors that say so.
	f := parse(t, strings.Replace(src, "%s", "batch-pbs", 1))
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog()}
	bare := remoteTopo{h: remoteHost{fakeHost: fakeHost{"fakehpc"}}, addrs: topo.addrs}
	if _, err := New(context.Background(), f, bare, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand("true")); err == nil || !strings.Contains(err.Error(), "no jobsim binary") {
		t.Errorf("remote host without jobsim: %v, want an error saying so", err)
	}
	partial := remoteTopo{h: topo.h, addrs: map[string]string{"fakehpc": "10.0.0.2"}}
	if _, err := New(context.Background(), f, partial, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand("true")); err == nil || !strings.Contains(err.Error(), "cn1") {
		t.Errorf("node without an address: %v, want an error naming cn1", err)
	}
}

// TestPlanBatchPBSReal: without server faults, batch-pbs runs the real
// batchspawner.PBSSpawner, configured as a site would (docs/hub-spawners.md);
// without the package it skips, naming the install command.
func TestPlanBatchPBSReal(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian's python3 missing: " + InstallHint)
	}
	f := parse(t, `name: p
topology: {hosts: [{name: fakehpc}]}
system:
  hub:
    spawner: batch-pbs
    users: [alice]
timeline: [{do: start}]
`)
	cache := t.TempDir()
	t.Setenv(hub.EnvCache, cache)
	jh := filepath.Join(t.TempDir(), "jupyterhub")
	if err := os.WriteFile(jh, []byte("#!"+python+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog()}
	_, err := New(context.Background(), f, oneHost{fakeHost{"fakehpc"}}, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand(jh))
	var skip *runner.SkipError
	if !errors.As(err, &skip) || !strings.Contains(skip.Reason, "batchspawner") || !strings.Contains(skip.Reason, "scripts/setup-hub.sh") {
		t.Fatalf("batch-pbs without batchspawner: %v, want a skip naming the install command", err)
	}

	pkg := fakeBatchspawner(t, cache)
	s, err := New(context.Background(), f, oneHost{fakeHost{"fakehpc"}}, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand(jh))
	if err != nil {
		t.Fatal(err)
	}
	sp := s.plan.spawner
	if sp.Class != RealPBSSpawner || s.plan.standIn != "" {
		t.Fatalf("class %q (stand-in because %q), want %s", sp.Class, s.plan.standIn, RealPBSSpawner)
	}
	if !reflect.DeepEqual(s.plan.imports, []string{"batchspawner"}) {
		t.Errorf("imports %v: the hub's config must import batchspawner for /hub/api/batchspawner", s.plan.imports)
	}
	if !slices.Contains(s.plan.env, "PYTHONPATH="+pkg) {
		t.Errorf("hub env %v: want batchspawner's folder on PYTHONPATH", s.plan.env)
	}
	if !reflect.DeepEqual(sp.Cmd, []string{"jupyterhub-singleuser"}) || sp.Args[0] != "--ip=127.0.0.1" {
		t.Errorf("cmd %v args %v: want the real single-user server bound to the loopback address", sp.Cmd, sp.Args)
	}
	if _, ok := sp.Environment["JOBSIM_UISERVER_RECORD"]; ok {
		t.Errorf("environment %v: no stand-in server, no record", sp.Environment)
	}
	wantPrologue := "export PATH=" + filepath.Join(pkg, "bin") + ":$PATH PYTHONPATH=" + pkg
	if sp.Traits["req_prologue"] != wantPrologue {
		t.Errorf("req_prologue %q, want %q", sp.Traits["req_prologue"], wantPrologue)
	}
	if sp.UserTraits["req_homedir"] != "/home/{username}" {
		t.Errorf("user traits %v: req_homedir must not come from the hub's passwd", sp.UserTraits)
	}
	for k, want := range map[string]any{"req_runtime": "01:00:00", "req_nprocs": "1", "req_memory": "1gb", "state_exechost_exp": "127.0.0.1"} {
		if sp.Traits[k] != want {
			t.Errorf("%s = %v, want %v", k, sp.Traits[k], want)
		}
	}
	// Asked for, the stand-in runs instead, and says why.
	s, err = New(context.Background(), f, oneHost{fakeHost{"fakehpc"}}, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand(jh), WithStandIns())
	if err != nil || s.plan.spawner.Class != StandInPBSSpawner || s.plan.standIn == "" {
		t.Errorf("WithStandIns: %v, class %q, reason %q", err, s.plan.spawner.Class, s.plan.standIn)
	}
}

// fakeBatchspawner installs an empty batchspawner package where setup
// puts it (below cache) and returns its folder.
func fakeBatchspawner(t *testing.T, cache string) string {
	t.Helper()
	pkg := filepath.Join(cache, "spawners", "batchspawner")
	for _, name := range []string{"__init__.py", "batchspawner.py", "singleuser.py"} {
		p := filepath.Join(pkg, "batchspawner", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return pkg
}

// spawnerCarrier is a container-like host that carries batchspawner.
type spawnerCarrier struct{ carrier }

func (spawnerCarrier) SpawnerPackage(name string) (dir, bin string, ok bool) {
	return "/opt/jobsim/spawners/" + name, "/opt/jobsim/spawners/" + name + "/bin", name == hub.PackageBatchspawner
}

// TestPlanBatchOnContainers: on a job host whose compute nodes are
// machines of their own, batch-pbs and batch-slurm run the real
// batchspawner when the host carries it (the job finds it there, the
// server binds every address, the hub resolves the nodes' names through
// nss_wrapper's hosts file); without it batch-pbs runs the stand-in and
// batch-slurm skips, each saying why.
func TestPlanBatchOnContainers(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian's python3 missing: " + InstallHint)
	}
	const src = `name: p
topology: {hosts: [{name: fakehpc, %s}]}
system:
  hub:
    spawner: %s
    users: [alice]
timeline: [{do: start}]
`
	pbs := fmt.Sprintf(src, "pbs: {nodes: [{name: cn1, ncpus: 2}, {name: cn2, ncpus: 2}]}", "batch-pbs")
	slurm := fmt.Sprintf(src, "slurm: {nodes: [{name: cn1, cpus: 2}, {name: cn2, cpus: 2}]}", "batch-slurm")
	t.Setenv(hub.EnvCache, t.TempDir())
	fakeBatchspawner(t, os.Getenv(hub.EnvCache))
	jh := filepath.Join(t.TempDir(), "jupyterhub")
	if err := os.WriteFile(jh, []byte("#!"+python+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(t.TempDir(), "libnss_wrapper.so")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvNSSWrapper, lib)
	addrs := map[string]string{"fakehpc": "10.0.0.2", "cn1": "10.0.0.3", "cn2": "10.0.0.4"}
	withBS := remoteTopo{h: spawnerCarrier{carrier{remoteHost{fakeHost: fakeHost{"fakehpc"}}}}, addrs: addrs}
	without := remoteTopo{h: carrier{remoteHost{fakeHost: fakeHost{"fakehpc"}}}, addrs: addrs}
	plan := func(topo runner.Topology, text string) (*System, error) {
		env := runner.Env{Dir: t.TempDir(), Log: events.NewLog()}
		return New(context.Background(), parse(t, text), topo, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand(jh))
	}
	for text, class := range map[string]string{pbs: RealPBSSpawner, slurm: RealSlurmSpawner} {
		s, err := plan(withBS, text)
		if err != nil {
			t.Fatal(err)
		}
		sp := s.plan.spawner
		if sp.Class != class || s.plan.standIn != "" {
			t.Fatalf("class %q (stand-in because %q), want %s", sp.Class, s.plan.standIn, class)
		}
		want := "export PATH=/opt/jobsim/spawners/batchspawner/bin:$PATH PYTHONPATH=/opt/jobsim/spawners/batchspawner"
		if sp.Traits["req_prologue"] != want {
			t.Errorf("%s: req_prologue %q, want the host's copy: %q", class, sp.Traits["req_prologue"], want)
		}
		if sp.Args[0] != "--ip=0.0.0.0" {
			t.Errorf("%s: args %v: the server must bind an address the hub reaches", class, sp.Args)
		}
		if v, ok := sp.Traits["state_exechost_exp"]; ok {
			t.Errorf("%s: state_exechost_exp %v: the node's name must reach the hub", class, v)
		}
		if got := sp.Traits["hub_connect_url"]; !strings.HasPrefix(fmt.Sprint(got), "http://testbox:") {
			t.Errorf("%s: hub_connect_url %v: want the test machine as the host names it", class, got)
		}
		if !slices.Contains(s.plan.env, "LD_PRELOAD="+lib) || !slices.Contains(s.plan.env, "NSS_WRAPPER_HOSTS="+filepath.Join(s.plan.dir, "nss", "hosts")) {
			t.Fatalf("%s: hub env %v: want nss_wrapper with a hosts file", class, s.plan.env)
		}
		hosts, err := os.ReadFile(filepath.Join(s.plan.dir, "nss", "hosts"))
		if err != nil || string(hosts) != "10.0.0.3 cn1\n10.0.0.4 cn2\n10.0.0.2 fakehpc\n" {
			t.Errorf("%s: hosts file %q (%v): want each machine's address by name", class, hosts, err)
		}
	}

	s, err := plan(without, pbs)
	if err != nil || s.plan.spawner.Class != StandInPBSSpawner || !strings.Contains(s.plan.standIn, "does not carry batchspawner") {
		t.Errorf("batch-pbs on a host without batchspawner: %v, class %q, reason %q: want the stand-in saying why", err, s.plan.spawner.Class, s.plan.standIn)
	}
	var skip *runner.SkipError
	if _, err := plan(without, slurm); !errors.As(err, &skip) || !strings.Contains(skip.Reason, "does not carry batchspawner") {
		t.Errorf("batch-slurm on a host without batchspawner: %v, want a skip saying why", err)
	}
	t.Setenv(EnvNSSWrapper, filepath.Join(t.TempDir(), "none.so"))
	s, err = plan(withBS, pbs)
	if err != nil || s.plan.spawner.Class != StandInPBSSpawner || !strings.Contains(s.plan.standIn, "libnss-wrapper") {
		t.Errorf("batch-pbs without nss_wrapper: %v, class %q, reason %q: want the stand-in naming libnss-wrapper", err, s.plan.spawner.Class, s.plan.standIn)
	}
}

// TestPlanSSHNERSC: spawner ssh-nersc runs NERSC's sshspawner with the
// site settings it needs; without the package it skips naming the install
// command.
func TestPlanSSHNERSC(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian's python3 missing: " + InstallHint)
	}
	f := parse(t, `name: p
topology: {hosts: [{name: fakehpc}]}
system: {hub: {spawner: ssh-nersc, users: [alice]}}
timeline: [{do: start}]
`)
	cache := t.TempDir()
	t.Setenv(hub.EnvCache, cache)
	jh := filepath.Join(t.TempDir(), "jupyterhub")
	if err := os.WriteFile(jh, []byte("#!"+python+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog()}
	_, err := New(context.Background(), f, oneHost{fakeHost{"fakehpc"}}, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand(jh))
	var skip *runner.SkipError
	if !errors.As(err, &skip) || !strings.Contains(skip.Reason, "nersc-sshspawner") || !strings.Contains(skip.Reason, "scripts/setup-hub.sh") {
		t.Fatalf("ssh-nersc without the package: %v, want a skip naming the install command", err)
	}
	pkg := filepath.Join(cache, "spawners", "nersc-sshspawner", "sshspawner")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pkg, "__init__.py"), nil, 0o644)
	os.WriteFile(filepath.Join(pkg, "sshspawner.py"), []byte("class SSHSpawner:\n    remote_port_command = ''\n"), 0o644)
	s, err := New(context.Background(), f, oneHost{fakeHost{"fakehpc"}}, env, env.Log, WithJobsim(fakeJobsim(t)), WithHubCommand(jh))
	if err != nil {
		t.Fatal(err)
	}
	sp := s.plan.spawner
	bind, _ := s.plan.traits["JupyterHub.hub_bind_url"].(string)
	if sp.Class != RealNERSCSSHSpawner || sp.Traits["hub_api_url"] != bind+"/hub/api" || !strings.HasPrefix(bind, "http://127.0.0.1:") {
		t.Errorf("class %q, hub_api_url %v, hub_bind_url %q: want NERSC's spawner told the hub's API URL", sp.Class, sp.Traits["hub_api_url"], bind)
	}
	if !slices.Contains(sp.Args, "--port=0") || !reflect.DeepEqual(sp.Traits["remote_hosts"], []string{"fakehpc"}) ||
		sp.Traits["ssh_keyfile"] != filepath.Join(s.dir, "keys", "{username}") {
		t.Errorf("args %v traits %v: want a --port placeholder, the host, the users' keys", sp.Args, sp.Traits)
	}
	if !slices.Contains(s.plan.env, "HOME="+filepath.Join(s.dir, "nersc-home")) {
		t.Errorf("hub env %v: asyncssh reads the port from the hub account's ~/.ssh/config", s.plan.env)
	}
}

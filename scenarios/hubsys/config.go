package hubsys

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/sim/uiserver"
)

//go:embed jobsim_spawners.py
var spawnersModule []byte

// Import strings of the stand-in spawners (jobsim_spawners.py).
const (
	StandInPBSSpawner = "jobsim_spawners.PBSSpawner"
	StandInSSHSpawner = "jobsim_spawners.SSHSpawner"
)

// SendEnv are the variables the spawners' ssh passes to the job host
// (OpenSSH SendEnv patterns): what the hub gives a server, and jobsim's
// own (the stand-in's faults and record file, the hub's process marker).
var SendEnv = []string{"JUPYTERHUB_*", "JPY_*", "JOBSIM_*"}

// plan is what a scenario's hub section turns into: the hub driver's
// configuration and the files written next to it.
type plan struct {
	s       *System
	dir     string
	spawner hub.Spawner
	traits  map[string]any
	record  string // the stand-in servers' request record (JSON lines)
	env     []string

	// batch-pbs and ssh: the job host and how its ssh is reached.
	host      runner.Host
	sshConfig string
	keys      map[string]string // user -> key file given by the backend
	// local-unix: the stand-in binary copied where every user can run it.
	binCopy string
	// batch-pbs on hosts with addresses of their own (containers): the IP
	// the hub reaches each PBS node at, by node name.
	nodeAddrs map[string]string
}

// placeOnHost adapts the spawner to a job host that is not the test machine
// (a container: runner.HarnessAddresser): the UI server is the host's own
// jobsim binary (runner.JobsimCarrier), the hub's API listens on every
// address of the test machine and the servers call it by the name the
// host knows the test machine by (Spawner.hub_connect_url, so that
// JUPYTERHUB_API_URL carries it), the request record is not kept (it
// would be a path on the test machine), and for batch-pbs the hub reaches
// the PBS nodes at their own addresses (runner.Addresser). On in-process
// hosts, whose processes run on the test machine, it changes nothing.
func (p *plan) placeOnHost(ctx context.Context, sp *hub.Spawner) error {
	ha, ok := p.host.(runner.HarnessAddresser)
	if !ok {
		return nil
	}
	harness := ha.HarnessHost()
	if harness == "" {
		return fmt.Errorf("hubsys: job host %s names no address for the test machine (HarnessHost is empty)", p.host.Name())
	}
	jc, ok := p.host.(runner.JobsimCarrier)
	if !ok {
		return fmt.Errorf("hubsys: job host %s is not the test machine and carries no jobsim binary for the UI server", p.host.Name())
	}
	sp.Cmd = []string{jc.JobsimPath(), "uiserver"}
	delete(sp.Environment, uiserver.EnvRecord)
	if _, set := p.traits["JupyterHub.hub_bind_url"]; !set {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("hubsys: a port for the hub's API: %w", err)
		}
		p.traits["JupyterHub.hub_bind_url"] = fmt.Sprintf("http://0.0.0.0:%d", port)
		sp.Traits["hub_connect_url"] = fmt.Sprintf("http://%s:%d", harness, port)
	}
	if p.s.spec.Spawner != SpawnerBatchPBS {
		return nil
	}
	addr, ok := p.s.topo.(runner.Addresser)
	if !ok {
		return fmt.Errorf("hubsys: job host %s is not the test machine, but the topology gives no addresses for its PBS nodes", p.host.Name())
	}
	nodes := []string{p.host.Name()}
	for _, h := range p.s.f.Topology.Hosts {
		if h.Name == p.host.Name() && h.PBS != nil {
			for _, n := range h.PBS.Nodes {
				nodes = append(nodes, n.Name)
			}
		}
	}
	p.nodeAddrs = map[string]string{}
	for _, n := range nodes {
		ip, err := addr.Address(ctx, n)
		if err != nil {
			return fmt.Errorf("hubsys: address of PBS node %s: %w", n, err)
		}
		p.nodeAddrs[n] = ip
	}
	return nil
}

// freePort is a TCP port free on every address of the test machine now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// makePlan derives the hub's configuration from the scenario, checking
// what it needs (Unix users for local-unix, the ssh client and the host
// for batch-pbs and ssh).
func makePlan(ctx context.Context, s *System) (*plan, error) {
	h := s.spec
	p := &plan{s: s, dir: s.dir, traits: map[string]any{}, record: filepath.Join(s.dir, "uiserver-requests.jsonl"), keys: map[string]string{}}
	cmd := []string{s.o.jobsim, "uiserver"}
	sp := hub.Spawner{
		Cmd:          cmd,
		StartTimeout: h.Timeout.D(),
		HTTPTimeout:  h.HTTPTimeout.D(),
		PollInterval: h.PollInterval.D(),
		Environment:  map[string]string{uiserver.EnvRecord: p.record},
	}
	for _, u := range h.Users {
		spec, err := h.ServerFaults(u)
		if err != nil {
			return nil, fmt.Errorf("hubsys: %s: system.hub: %w", s.f.Path, err)
		}
		if spec == "" {
			continue
		}
		if sp.UserEnvironment == nil {
			sp.UserEnvironment = map[string]map[string]string{}
		}
		sp.UserEnvironment[u] = map[string]string{uiserver.EnvFault: spec}
	}
	for k, v := range h.Config {
		val, err := pythonLiteral(v)
		if err != nil {
			return nil, fmt.Errorf("hubsys: %s: system.hub.config.%s: %w", s.f.Path, k, err)
		}
		p.traits[k] = val
	}

	switch h.Spawner {
	case SpawnerLocal:
		sp.Class = hub.SimpleLocalProcessSpawner
	case SpawnerLocalUnix:
		sp.Class = hub.LocalProcessSpawner
		if os.Geteuid() != 0 {
			return nil, &runner.SkipError{Reason: "spawner local-unix (LocalProcessSpawner) switches to the users' uids: run as root"}
		}
		for _, u := range h.Users {
			if _, err := user.Lookup(u); err != nil {
				return nil, &runner.SkipError{Reason: fmt.Sprintf("spawner local-unix needs a Unix account for hub user %s (%v): name existing accounts (e.g. daemon, bin, sys) or use spawner: local", u, err)}
			}
		}
		p.binCopy = filepath.Join(s.dir, "bin", "jobsim")
		sp.Cmd = []string{p.binCopy, "uiserver"}
	case SpawnerBatchPBS, SpawnerSSH:
		for _, tool := range []string{"ssh", "scp"} {
			if _, err := exec.LookPath(tool); err != nil {
				return nil, &runner.SkipError{Reason: fmt.Sprintf("spawner %s runs the OpenSSH client: %s not found (apt-get install openssh-client)", h.Spawner, tool)}
			}
		}
		host, ok := s.topo.Host(h.Host)
		if !ok {
			return nil, fmt.Errorf("hubsys: system.hub.host %q is not a started host", h.Host)
		}
		p.host = host
		// Only JupyterHub's own variables (and jobsim's) go to the job:
		// every variable the spawner names must reach qsub through ssh.
		sp.Traits = map[string]any{"env_keep": []string{}}
		if err := p.placeOnHost(ctx, &sp); err != nil {
			return nil, err
		}
		for _, u := range h.Users {
			ep, err := host.SSH(u)
			if err != nil {
				return nil, fmt.Errorf("hubsys: ssh to %s as %s: %w", host.Name(), u, err)
			}
			p.keys[u] = ep.KeyFile
		}
		p.sshConfig = filepath.Join(s.dir, "ssh_config")
		p.env = append(p.env, "PYTHONPATH="+filepath.Join(s.dir, "python"))
		if h.Spawner == SpawnerBatchPBS {
			sp.Class = StandInPBSSpawner
			sp.Traits["exec_prefix"] = fmt.Sprintf("ssh -F %s -l {username} %s", p.sshConfig, host.Name())
			sp.Traits["req_runtime"] = "01:00:00"
			sp.Traits["req_nprocs"] = "1"
			sp.Traits["req_memory"] = "1gb"
			if p.nodeAddrs == nil {
				sp.Traits["ip"] = "127.0.0.1"
				// The fake host's nodes are not names the hub can resolve; the
				// jobs run on this machine. batchspawner's own knob maps them.
				sp.Traits["state_exechost_exp"] = "127.0.0.1"
			} else {
				// The job runs on a node container: the server binds every
				// address there (as batchspawner's does) and the hub reaches
				// it at the node's IP, the stand-in's DNS.
				sp.Traits["ip"] = "0.0.0.0"
				sp.Traits["exechost_addresses"] = p.nodeAddrs
			}
		} else {
			sp.Class = StandInSSHSpawner
			sp.Traits["ssh_host"] = host.Name()
			sp.Traits["ssh_config"] = p.sshConfig
			sp.Traits["control_dir"] = filepath.Join(s.dir, "cm")
		}
	default:
		return nil, fmt.Errorf("hubsys: spawner %q: want %s", h.Spawner, strings.Join(HubSpawners, ", "))
	}
	p.spawner = sp
	return p, ctx.Err()
}

// write creates the hub directory and the files the configuration names.
func (p *plan) write() error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return fmt.Errorf("hubsys: hub dir: %w", err)
	}
	// The servers append to the record whatever user they run as.
	if err := os.WriteFile(p.record, nil, 0o666); err != nil {
		return fmt.Errorf("hubsys: record file: %w", err)
	}
	if err := os.Chmod(p.record, 0o666); err != nil {
		return fmt.Errorf("hubsys: record file: %w", err)
	}
	if p.binCopy != "" {
		// LocalProcessSpawner runs servers as other users: they must reach
		// the hub directory and run the binary.
		if err := os.Chmod(p.s.env.Dir, 0o711); err != nil {
			return fmt.Errorf("hubsys: scratch dir: %w", err)
		}
		if err := copyFile(p.s.o.jobsim, p.binCopy, 0o755); err != nil {
			return fmt.Errorf("hubsys: stand-in binary: %w", err)
		}
	}
	if p.host == nil {
		return nil
	}
	pyDir := filepath.Join(p.dir, "python")
	if err := os.MkdirAll(pyDir, 0o755); err != nil {
		return fmt.Errorf("hubsys: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pyDir, "jobsim_spawners.py"), spawnersModule, 0o644); err != nil {
		return fmt.Errorf("hubsys: spawner module: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(p.dir, "cm"), 0o700); err != nil {
		return fmt.Errorf("hubsys: ssh control dir: %w", err)
	}
	keyDir := filepath.Join(p.dir, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return fmt.Errorf("hubsys: keys: %w", err)
	}
	for u, k := range p.keys {
		if err := copyFile(k, filepath.Join(keyDir, u), 0o600); err != nil {
			return fmt.Errorf("hubsys: key of %s: %w", u, err)
		}
	}
	cfg, err := p.sshConfigText(keyDir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.sshConfig, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("hubsys: ssh config: %w", err)
	}
	return nil
}

// sshConfigText is the OpenSSH client config the spawners use: the host
// alias, each user's key by the remote user name (%r), and SendEnv.
func (p *plan) sshConfigText(keyDir string) (string, error) {
	var addr string
	for _, u := range p.s.spec.Users {
		ep, err := p.host.SSH(u)
		if err != nil {
			return "", fmt.Errorf("hubsys: ssh to %s as %s: %w", p.host.Name(), u, err)
		}
		addr = ep.Addr
		break
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("hubsys: ssh address %q of %s: %w", addr, p.host.Name(), err)
	}
	return fmt.Sprintf(`# Written by jobsim's hub system: how the spawners reach job host %[1]s.
Host %[1]s
  HostName %[2]s
  Port %[3]s
  IdentityFile %[4]s/%%r
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ConnectTimeout 10
  SendEnv %[5]s
`, p.host.Name(), host, port, keyDir, strings.Join(SendEnv, " ")), nil
}

// hubOptions are the hub driver's options for this plan.
func (p *plan) hubOptions(o options) []hub.Option {
	s := p.s
	var roles []hub.Role
	for _, r := range s.spec.Roles {
		roles = append(roles, hub.Role{Name: r.Name, Scopes: r.Scopes, Users: r.Users})
	}
	opts := []hub.Option{
		hub.WithDir(p.dir),
		hub.WithCommand(o.command...),
		hub.WithSpawner(p.spawner),
		hub.WithUsers(s.spec.Users...),
		hub.WithRoles(roles...),
		hub.WithEnv(p.env...),
		hub.WithLogger(o.logger),
		hub.WithStartTimeout(o.startLimit),
	}
	if s.spec.AllowNamedServers {
		opts = append(opts, hub.WithNamedServers(s.spec.NamedServerLimitPerUser))
	}
	for k, v := range p.traits {
		opts = append(opts, hub.WithTrait(k, v))
	}
	return opts
}

// pythonLiteral reads a config value written as JSON or as a Python
// literal of the same shape: True/False/None are read when the value is
// not JSON already (a list mixing the word "True" in a string with a bare
// True has both replaced); single-quoted strings are not accepted.
func pythonLiteral(v string) (any, error) {
	t := strings.TrimSpace(v)
	var out any
	if err := json.Unmarshal([]byte(t), &out); err == nil {
		return out, nil
	}
	// Python's True/False/None, outside of anything JSON already read.
	py := regexp.MustCompile(`\b(True|False|None)\b`)
	j := py.ReplaceAllStringFunc(t, func(m string) string {
		switch m {
		case "True":
			return "true"
		case "False":
			return "false"
		}
		return "null"
	})
	if err := json.Unmarshal([]byte(j), &out); err != nil {
		return nil, fmt.Errorf("value %q: want a JSON or Python literal (3, 2.5, true, \"text\", [1, 2], {\"k\": 1}): %v", v, err)
	}
	return out, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

package hubsys

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakepbs/remote"
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
	imports []string // Python modules the hub's configuration imports
	// standIn says why a stand-in spawner runs instead of the real one
	// ("" when the real one runs, or the spawner has no stand-in).
	standIn string
	// nersc: NERSC's sshspawner's site files (its key certificates, the
	// hub account's ssh config, the job host's scripts).
	nerscSite bool
	// pbsConf, for a hub on the PBS login node (batch-pbs with an empty
	// exec_prefix), is the host's pbs.conf, which the hub sees as its
	// /etc/pbs.conf (a private mount namespace with an overlay on /etc).
	pbsConf string
	record  string // the stand-in servers' request record (JSON lines)
	env     []string

	// batch-pbs and ssh: the job host and how its ssh is reached.
	host      runner.Host
	sshConfig string
	keys      map[string]string // user -> key file given by the backend
	// local-unix: the stand-in binary copied where every user can run it.
	binCopy string
	// batch-pbs and batch-slurm on hosts with addresses of their own
	// (containers): the IP the hub reaches each compute node at, by name.
	nodeAddrs map[string]string
	// authz is the site-authorization service, if the system has one.
	authz *hub.SiteAuthz
	// services are system.hub.services.
	services []*hub.SiteAuthz
}

// placeOnHost adapts the spawner to a job host that is not the test machine
// (a container: runner.HarnessAddresser): the UI server is the host's own
// jobsim binary (runner.JobsimCarrier), the hub's API listens on every
// address of the test machine and the servers call it by the name the
// host knows the test machine by (Spawner.hub_connect_url, so that
// JUPYTERHUB_API_URL carries it), the request record is not kept (it
// would be a path on the test machine), and for batch-pbs and batch-slurm
// the hub reaches the compute nodes at their own addresses
// (runner.Addresser). On in-process
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
	if p.s.spec.Spawner != SpawnerBatchPBS && p.s.spec.Spawner != SpawnerBatchSlurm {
		return nil
	}
	addr, ok := p.s.topo.(runner.Addresser)
	if !ok {
		return fmt.Errorf("hubsys: job host %s is not the test machine, but the topology gives no addresses for its compute nodes", p.host.Name())
	}
	nodes := []string{p.host.Name()}
	for _, h := range p.s.f.Topology.Hosts {
		if h.Name != p.host.Name() {
			continue
		}
		if h.PBS != nil {
			for _, n := range h.PBS.Nodes {
				nodes = append(nodes, n.Name)
			}
		}
		if h.Slurm != nil {
			for _, n := range h.Slurm.Nodes {
				nodes = append(nodes, n.Name)
			}
		}
	}
	p.nodeAddrs = map[string]string{}
	for _, n := range nodes {
		ip, err := addr.Address(ctx, n)
		if err != nil {
			return fmt.Errorf("hubsys: address of compute node %s: %w", n, err)
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
	authz, err := siteAuthz(s.o, h.Users)
	if err != nil {
		return nil, err
	}
	p.authz = authz
	if p.services, err = p.scenarioServices(s.o, h); err != nil {
		return nil, err
	}
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
	case SpawnerBatchPBS, SpawnerBatchSlurm, SpawnerSSH, SpawnerSSHNERSC:
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
		switch h.Spawner {
		case SpawnerBatchPBS:
			if err := p.batchPBS(ctx, &sp); err != nil {
				return nil, err
			}
		case SpawnerBatchSlurm:
			if err := p.batchSlurm(ctx, &sp); err != nil {
				return nil, err
			}
		case SpawnerSSHNERSC:
			if err := p.nersc(ctx, &sp); err != nil {
				return nil, err
			}
		default:
			sp.Class = StandInSSHSpawner
			sp.Traits["ssh_host"] = host.Name()
			sp.Traits["ssh_config"] = p.sshConfig
			sp.Traits["control_dir"] = filepath.Join(s.dir, "cm")
		}
	default:
		return nil, fmt.Errorf("hubsys: spawner %q: want %s", h.Spawner, strings.Join(HubSpawners, ", "))
	}
	sp.OptionsForm = append(slices.Clone(s.o.form), h.hubForm()...)
	p.spawner = sp
	return p, ctx.Err()
}

// RealPBSSpawner is the import string of the real batchspawner's PBS
// spawner.
const RealPBSSpawner = "batchspawner.PBSSpawner"

// batchPBS configures spawner batch-pbs as a site configures batchspawner
// on a hub that reaches the PBS login node by ssh (docs/hub-spawners.md):
// the real batchspawner.PBSSpawner where it is installed and can run, the
// stand-in (with its reason in p.standIn) where it cannot.
func (p *plan) batchPBS(ctx context.Context, sp *hub.Spawner) error {
	s, host := p.s, p.host
	sp.Traits["exec_prefix"] = fmt.Sprintf("ssh -F %s -l {username} %s", p.sshConfig, host.Name())
	sp.Traits["req_runtime"] = "01:00:00"
	sp.Traits["req_nprocs"] = "1"
	sp.Traits["req_memory"] = "1gb"
	if p.onLoginNode() {
		if p.nodeAddrs != nil {
			return &runner.SkipError{Reason: fmt.Sprintf("a hub on the PBS login node (exec_prefix empty): job host %s is a container, the hub runs on the test machine", host.Name())}
		}
		if err := p.loginNode(ctx, sp); err != nil {
			return err
		}
	}
	switch {
	case s.o.standIns:
		p.standIn = "asked for (hubsys.WithStandIns)"
	case s.hasServerFaults():
		p.standIn = "the scenario sets server faults, which only jobsim's stand-in UI server serves; batchspawner-singleuser runs Python programs only"
	case p.nodeAddrs != nil:
		p.standIn = p.cannotRunRealOnNodes()
	}
	if p.standIn != "" {
		sp.Class = StandInPBSSpawner
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
		return nil
	}
	sp.Class = RealPBSSpawner
	if err := p.realBatchspawner(ctx, sp); err != nil {
		return err
	}
	if p.nodeAddrs != nil {
		env, err := p.nssWrapper("", p.nodeAddrs)
		if err != nil {
			return err
		}
		p.env = append(p.env, env...)
	}
	return nil
}

// cannotRunRealOnNodes says why the real batchspawner cannot run with a
// job host whose compute nodes are machines of their own (containers), ""
// when it can: the host must carry batchspawner for the job's
// batchspawner-singleuser (runner.SpawnerCarrier), and the hub resolves
// the nodes' names through nss_wrapper.
func (p *plan) cannotRunRealOnNodes() string {
	if _, _, ok := p.jobPackage(); !ok {
		return fmt.Sprintf("job host %s does not carry batchspawner for the job's batchspawner-singleuser (the job-host image carries it when scripts/setup-hub.sh installed it)", p.host.Name())
	}
	if _, tried := findNSSWrapper(); tried != nil {
		return fmt.Sprintf("the hub resolves the compute nodes' names through nss_wrapper: apt-get install libnss-wrapper (or set $%s; tried %s)", EnvNSSWrapper, strings.Join(tried, ", "))
	}
	return ""
}

// jobPackage is where the job host's processes find batchspawner: where
// the host carries its own (runner.SpawnerCarrier); on hosts whose jobs
// run on the test machine (no node addresses), the hub's copy (dir "").
// ok is false when the job cannot find it.
func (p *plan) jobPackage() (dir, bin string, ok bool) {
	if c, carrier := p.host.(runner.SpawnerCarrier); carrier {
		dir, bin, ok = c.SpawnerPackage(hub.PackageBatchspawner)
		return dir, bin, ok && dir != ""
	}
	return "", "", p.nodeAddrs == nil
}

// realBatchspawner configures the real batchspawner class sp.Class as a
// site installs it (docs/hub-spawners.md): its package on the hub's
// PYTHONPATH and imported by the configuration (for the hub's
// /hub/api/batchspawner handler), the job's batchspawner-singleuser found
// through the prologue, the home directory of the host's user, and the
// nodes' names mapped to this machine.
func (p *plan) realBatchspawner(ctx context.Context, sp *hub.Spawner) error {
	s := p.s
	pkg, err := hub.FindPackage(ctx, hub.PackageBatchspawner, s.o.command[0])
	if err != nil {
		var missing *hub.PackageMissingError
		if errors.As(err, &missing) {
			return &runner.SkipError{Reason: fmt.Sprintf("spawner %s runs the real %s: %v", p.s.spec.Spawner, sp.Class, err)}
		}
		return fmt.Errorf("hubsys: %w", err)
	}
	p.imports = append(p.imports, "batchspawner")
	if pkg.Dir != "" {
		p.env = append(p.env, "PYTHONPATH="+pkg.Dir)
	}
	// The job runs batchspawner-singleuser jupyterhub-singleuser, which
	// picks a port and POSTs it to /hub/api/batchspawner; the real
	// single-user server (Debian's) needs no UI-server record or faults.
	sp.Cmd = []string{"jupyterhub-singleuser"}
	delete(sp.Environment, uiserver.EnvRecord)
	// batchspawner resets ip to 0.0.0.0 at start: the server binds the
	// loopback address only through its own option (in-process jobs run
	// on this machine); on compute nodes of their own (containers) it
	// binds every address, the hub connecting from outside. Jobs run as
	// root here: the server must be told.
	sp.Args = []string{"--ip=127.0.0.1"}
	if p.nodeAddrs != nil {
		sp.Args = []string{"--ip=0.0.0.0"}
	}
	if os.Geteuid() == 0 {
		sp.Args = append(sp.Args, "--allow-root")
	}
	// The job side finds batchspawner-singleuser and its package where
	// setup installed them (or where the job host carries them), as a
	// site's prologue loads its module.
	jobDir, jobBin := pkg.Dir, pkg.Bin
	if dir, bin, ok := p.jobPackage(); ok && dir != "" {
		jobDir, jobBin = dir, bin
	} else if !ok {
		return fmt.Errorf("hubsys: job host %s carries no batchspawner for the job's batchspawner-singleuser", p.host.Name())
	}
	if strings.ContainsAny(jobBin+jobDir, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
		return fmt.Errorf("hubsys: batchspawner's folder %s has characters a job script's prologue would have to quote: install it under a plain path ($%s)", jobBin, hub.EnvCache)
	}
	prologue := "export PATH=" + jobBin + ":$PATH"
	if jobDir != "" {
		prologue += " PYTHONPATH=" + jobDir
	}
	sp.Traits["req_prologue"] = prologue
	// req_homedir's default reads the hub machine's passwd (getpwnam): the
	// fake host's users have none there. Not configurable: set per spawn.
	sp.UserTraits = map[string]string{"req_homedir": "/home/{username}"}
	if p.nodeAddrs == nil {
		// The fake host's nodes are not names the hub can resolve; the
		// jobs run on this machine. (Nodes of their own are resolved by
		// name: nssWrapper's hosts file.)
		sp.Traits["state_exechost_exp"] = "127.0.0.1"
	}
	return nil
}

// RealSlurmSpawner is the import string of the real batchspawner's Slurm
// spawner.
const RealSlurmSpawner = "batchspawner.SlurmSpawner"

// batchSlurm configures spawner batch-slurm as a site configures
// batchspawner's SlurmSpawner on a hub that reaches the Slurm login node by
// ssh (docs/hub-spawners.md). There is no stand-in: it runs the real one or
// the scenario skips.
func (p *plan) batchSlurm(ctx context.Context, sp *hub.Spawner) error {
	if p.s.o.standIns {
		return &runner.SkipError{Reason: "spawner batch-slurm has no stand-in (hubsys.WithStandIns): it runs the real batchspawner.SlurmSpawner only"}
	}
	if p.nodeAddrs != nil {
		if why := p.cannotRunRealOnNodes(); why != "" {
			return &runner.SkipError{Reason: fmt.Sprintf("spawner batch-slurm runs the real batchspawner.SlurmSpawner only (no stand-in): %s", why)}
		}
	}
	sp.Traits["exec_prefix"] = fmt.Sprintf("ssh -F %s -l {username} %s", p.sshConfig, p.host.Name())
	// A site's limits for an interactive server: SlurmSpawner renders
	// only the req_* that are set (#SBATCH --time, --cpus-per-task).
	sp.Traits["req_runtime"] = "01:00:00"
	sp.Traits["req_nprocs"] = "1"
	// ssh joins its arguments into one command line for the host's shell:
	// the default `squeue -h -j {job_id} -o '%T %B'` arrives as -o %T %B
	// ("squeue: error: Unrecognized option: %B"). The format is quoted
	// once more for the remote shell.
	sp.Traits["batch_query_cmd"] = `squeue -h -j {job_id} -o "'%T %B'"`
	// The users' homes as the host's processes see them (in-process:
	// below the host's root on disk): the job's --chdir and --output.
	homes := p.host.ProcessPath("/home")
	// SlurmSpawner's UserEnvMixin reads the hub machine's passwd for the
	// job's USER, HOME and SHELL: the hub machine must know the host's
	// users, as a site's directory service makes it.
	sp.Class = RealSlurmSpawner
	if err := p.realBatchspawner(ctx, sp); err != nil {
		return err
	}
	nss, err := p.nssWrapper(homes, p.nodeAddrs)
	if err != nil {
		return err
	}
	p.env = append(p.env, nss...)
	sp.UserTraits["req_homedir"] = homes + "/{username}"
	return nil
}

// loginNodeTrait is the scenario config key that puts the hub on the PBS
// login node: an empty exec_prefix, as a site whose hub runs there sets it.
const loginNodeTrait = "PBSSpawner.exec_prefix"

// onLoginNode reports whether the scenario's hub runs on the PBS host.
func (p *plan) onLoginNode() bool {
	v, ok := p.traits[loginNodeTrait]
	return ok && v == ""
}

// loginNode configures a hub on the PBS login node, as a site runs one:
// batchspawner runs qsub itself, with only env_keep's variables (JupyterHub's
// default list: PATH, LANG, ...), so the client finds its server the way a
// login node's clients do, in /etc/pbs.conf; qsub is on PATH from PBS_EXEC,
// as OpenPBS's profile script puts it. The hub sees the host's pbs.conf as
// its /etc/pbs.conf through a private mount namespace (root, unshare and an
// overlay mount; the scenario skips without them), and $JOBSIM_PBS_SERVER is
// emptied so that nothing but the file can route the commands.
func (p *plan) loginNode(ctx context.Context, sp *hub.Spawner) error {
	conf := p.host.ProcessPath(remote.DefaultConfFile)
	sc, err := remote.LoadConf(func(k string) (string, bool) {
		if k == remote.EnvConfFile {
			return conf, true
		}
		return "", false
	}, os.ReadFile)
	if err != nil || sc.File == "" || sc.Exec == "" {
		return fmt.Errorf("hubsys: a hub on PBS host %s reads the host's pbs.conf %s: %v (PBS_EXEC %q)", p.host.Name(), conf, err, sc.Exec)
	}
	if err := overlayWorks(ctx, p.s.env.Dir); err != nil {
		return &runner.SkipError{Reason: "a hub on the PBS login node (exec_prefix empty) needs the host's pbs.conf as its /etc/pbs.conf, through a private mount namespace with an overlay on /etc (run as root with unshare from util-linux): " + err.Error()}
	}
	p.pbsConf = conf
	delete(sp.Traits, "env_keep")
	p.env = append(p.env,
		"PATH="+p.host.ProcessPath(sc.Exec+"/bin")+":"+os.Getenv("PATH"),
		remote.EnvJobsimServer+"=")
	return nil
}

// etcOverlay is the shell line that lays dir (upper) over /etc in the
// current mount namespace, with work as overlayfs's work directory.
func etcOverlay(upper, work string) string {
	return fmt.Sprintf("mount -t overlay jobsim-etc -o lowerdir=/etc,upperdir=%s,workdir=%s /etc", upper, work)
}

// overlayWorks tries what loginCommand does, on a scratch directory below
// dir, and says why it cannot be done.
func overlayWorks(ctx context.Context, dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, "etc-overlay-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	upper, work := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(upper, "jobsim-check"), []byte("ok\n"), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
		etcOverlay(upper, work)+" && cat /etc/jobsim-check").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		return fmt.Errorf("unshare + overlay on /etc: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hasServerFaults reports whether the scenario sets stand-in server faults
// for any user.
func (s *System) hasServerFaults() bool {
	for _, u := range s.spec.Users {
		if spec, err := s.spec.ServerFaults(u); err == nil && spec != "" {
			return true
		}
	}
	return false
}

// write creates the hub directory and the files the configuration names.
func (p *plan) write(ctx context.Context) error {
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
	if err := p.writeServices(); err != nil {
		return err
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
	if p.pbsConf != "" {
		// The login node's /etc/pbs.conf, laid over the hub's /etc.
		for _, d := range []string{"etc-upper", "etc-work"} {
			if err := os.MkdirAll(filepath.Join(p.dir, d), 0o755); err != nil {
				return fmt.Errorf("hubsys: %w", err)
			}
		}
		if err := copyFile(p.pbsConf, filepath.Join(p.dir, "etc-upper", "pbs.conf"), 0o644); err != nil {
			return fmt.Errorf("hubsys: the login node's pbs.conf: %w", err)
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
	if p.nerscSite {
		if err := p.writeNERSC(ctx, keyDir); err != nil {
			return err
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

// sshHostPort is where the spawners reach the job host's ssh server (the
// same for every user: the first one's endpoint).
func (p *plan) sshHostPort() (host, port string, err error) {
	users := p.s.spec.Users
	if len(users) == 0 {
		return "", "", fmt.Errorf("hubsys: ssh to %s: the scenario has no hub users", p.host.Name())
	}
	ep, err := p.host.SSH(users[0])
	if err != nil {
		return "", "", fmt.Errorf("hubsys: ssh to %s as %s: %w", p.host.Name(), users[0], err)
	}
	host, port, err = net.SplitHostPort(ep.Addr)
	if err != nil {
		return "", "", fmt.Errorf("hubsys: ssh address %q of %s: %w", ep.Addr, p.host.Name(), err)
	}
	return host, port, nil
}

// sshConfigText is the OpenSSH client config the spawners use: the host
// alias, each user's key by the remote user name (%r), and SendEnv.
func (p *plan) sshConfigText(keyDir string) (string, error) {
	host, port, err := p.sshHostPort()
	if err != nil {
		return "", err
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
	command := o.command
	if p.pbsConf != "" {
		// The hub in a mount namespace of its own whose /etc holds the
		// login node's pbs.conf; unshare and sh exec the hub, so it keeps
		// the process the driver started.
		command = append([]string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
			etcOverlay(filepath.Join(p.dir, "etc-upper"), filepath.Join(p.dir, "etc-work")) + ` && exec "$@"`, "jobsim-login-node"}, o.command...)
	}
	opts := []hub.Option{
		hub.WithDir(p.dir),
		hub.WithCommand(command...),
		hub.WithSpawner(p.spawner),
		hub.WithUsers(s.spec.Users...),
		hub.WithRoles(roles...),
		hub.WithEnv(p.env...),
		hub.WithLogger(o.logger),
		hub.WithStartTimeout(o.startLimit),
	}
	if len(p.imports) > 0 {
		opts = append(opts, hub.WithImports(p.imports...))
	}
	if s.spec.AllowNamedServers {
		opts = append(opts, hub.WithNamedServers(s.spec.NamedServerLimitPerUser))
	}
	for k, v := range p.traits {
		opts = append(opts, hub.WithTrait(k, v))
	}
	if p.authz != nil {
		opts = append(opts, hub.WithSiteAuthz(*p.authz))
	}
	for _, a := range p.services {
		opts = append(opts, hub.WithSiteAuthz(*a))
	}
	if len(s.spec.Accounts) > 0 {
		opts = append(opts, hub.WithAuthenticator(hub.Authenticator{Class: hub.PAMAuthenticator}))
	}
	return opts
}

// siteAuthz completes the site-authorization service of o, if any: the
// stand-in's command, the owners, a token.
func siteAuthz(o options, users []string) (*hub.SiteAuthz, error) {
	if o.authz == nil {
		return nil, nil
	}
	a := *o.authz
	if len(a.Command) == 0 {
		if o.authzFile == "" {
			return nil, fmt.Errorf("hub: site authorization: give the stand-in a site file, or the site's own command")
		}
		a.Command = []string{o.jobsim, "authz-service", "--config", o.authzFile}
	}
	if a.Owners == nil {
		a.Owners = users
	}
	if a.Token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("hub: site authorization token: %w", err)
		}
		a.Token = hex.EncodeToString(b)
	}
	return &a, nil
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

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/jobsim/jobsim/backend/containers"
	"github.com/jobsim/jobsim/backend/containers/cluster"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/internal/yamlfile"
	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// quietTestcontainers sends testcontainers-go's own log lines to slog at
// debug level instead of stderr.
func quietTestcontainers(l *slog.Logger) { tclog.SetDefault(tcSlog{l}) }

type tcSlog struct{ l *slog.Logger }

func (t tcSlog) Printf(format string, v ...any) {
	t.l.Debug("testcontainers: " + fmt.Sprintf(format, v...))
}

// upFile is what `jobsim up FILE` reads: a scenario file (its topology is
// used) or a file holding just the topology block.
type upFile struct {
	Topology *scenario.Topology `yaml:"topology"`
	Hosts    []scenario.Host    `yaml:"hosts"`
}

func loadTopology(path string) (scenario.Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return scenario.Topology{}, err
	}
	root, err := yamlfile.Parse(path, data)
	if err != nil {
		return scenario.Topology{}, err
	}
	if yamlfile.Child(root, "system") != nil || yamlfile.Child(root, "timeline") != nil {
		// A scenario file: its own errors say best what is wrong.
		f, err := vocabulary().Parse(path, data)
		if err != nil {
			return scenario.Topology{}, err
		}
		return f.Topology, nil
	}
	var uf upFile
	if err := yamlfile.Decode(path, root, &uf); err != nil {
		return scenario.Topology{}, err
	}
	switch {
	case uf.Topology != nil:
		return *uf.Topology, nil
	case len(uf.Hosts) > 0:
		return scenario.Topology{Hosts: uf.Hosts}, nil
	}
	return scenario.Topology{}, fmt.Errorf("%s: no topology: want a scenario file, a `topology:` block or a `hosts:` list (docs/scenarios.md)", path)
}

func newUpCommand() *cobra.Command {
	var (
		name     string
		users    []string
		nodes    []string
		cylcPath string
		faults   []string
		userland string
		requeue  time.Duration
		output   string
		debug    bool
		sshFile  string
		slurm    bool
	)
	cmd := &cobra.Command{
		Use:   "up [TOPOLOGY.yaml]",
		Short: "Start a fake cluster as containers, print an ssh config and the control URLs, tear it down on Ctrl-C",
		Long: `Start job-host containers for a person to use: the topology of a scenario
file (or a file with a topology: block or a hosts: list), or one host (and
its compute nodes) from flags. It builds the job-host image if the engine
does not have it, prints an ssh config with one Host entry per machine
and user, the control URL and token of each machine, and serves until
Ctrl-C, when it removes every container and network it made.

A host with PBS nodes is a cluster: its compute nodes are containers on a
private network sharing /home with it, jobs run on the node PBS chose.
With --slurm (or a topology's slurm: block) the host runs a Slurm
controller instead of a PBS server: sbatch, squeue, sacct, ... work on it,
and with nodes its jobs run on the compute node Slurm chose
(SLURM_JOB_NODELIST names it); without nodes they run on the host.`,
		Example: `  # A login node with two compute nodes; ssh reads the config from the file (needs Docker)
  jobsim up --name fakehpc --users alice --nodes cn1,cn2 --ssh-config cluster.ssh > cluster.txt &
  until [ -e cluster.ssh ]; do sleep 1; done   # written once every machine is up
  ssh -F cluster.ssh fakehpc 'echo hostname | qsub; pbsnodes -a'

  # A Slurm login node with two compute nodes (needs Docker)
  jobsim up --slurm --name slurmhpc --users alice --nodes scn1,scn2 --ssh-config slurm.ssh > slurm.txt &
  until [ -e slurm.ssh ]; do sleep 1; done
  ssh -F slurm.ssh slurmhpc 'sbatch --wrap hostname; sinfo; squeue'

  # The machines of a scenario (needs Docker, until Ctrl-C)
  jobsim up fixtures/scenarios/cylc/unlistable-lib.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			quietTestcontainers(logger)
			var topo scenario.Topology
			if len(args) == 1 {
				t, err := loadTopology(args[0])
				if err != nil {
					return exitError{code: 2, err: err}
				}
				topo = t
				if slurm {
					return exitError{code: 2, err: fmt.Errorf("--slurm is for a host from flags: %s says each host's batch system (its slurm: block)", args[0])}
				}
			} else {
				topo.Hosts = []scenario.Host{flagHost(name, users, nodes, cylcPath, faults, slurm)}
			}
			if output != "text" && output != "json" {
				return exitError{code: 2, err: fmt.Errorf("--output %q: want text or json", output)}
			}
			end, _, err := ownRun(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer end() // after up has removed its containers
			o := upOptions{userland: image.Userland(userland), requeue: requeue, json: output == "json", logger: logger}
			if sshFile != "" {
				if o.sshConfigFile, err = filepath.Abs(sshFile); err != nil {
					return exitError{code: 2, err: fmt.Errorf("--ssh-config: %w", err)}
				}
			}
			return up(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), topo, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "fakehpc", "without a file: the host (login node) name")
	f.StringSliceVar(&users, "users", nil, "without a file: the users (default: you)")
	f.StringSliceVar(&nodes, "nodes", nil, "without a file: compute nodes (PBS nodes, or Slurm nodes with --slurm) of the host, e.g. cn1,cn2")
	f.BoolVar(&slurm, "slurm", false, "without a file: the host runs a Slurm controller instead of a PBS server")
	f.StringVar(&cylcPath, "cylc", "", "without a file: install the Cylc overlay at this host path (e.g. /opt/cylc)")
	f.StringSliceVar(&faults, "fault-mount", nil, "without a file: host paths under the FUSE fault layer")
	f.StringVar(&userland, "userland", string(image.BindMounts), "how containers get their programs: bind (the test machine's /usr) or rootfs")
	f.DurationVar(&requeue, "node-fail-requeue", 0, "node_fail_requeue of clusters (default OpenPBS's 310s)")
	f.StringVarP(&output, "output", "o", "text", "what to print once up: text or json")
	f.BoolVar(&debug, "debug", false, "log at debug level")
	f.StringVar(&sshFile, "ssh-config", "", "also write the ssh config to this file once every machine is up, for ssh -F FILE or an Include line (removed on exit)")
	return cmd
}

// flagHost is the one host `jobsim up` starts from flags: a PBS server or
// a Slurm controller, whose nodes (if any) are compute nodes.
func flagHost(name string, users, nodes []string, cylcPath string, faults []string, slurm bool) scenario.Host {
	h := scenario.Host{Name: name, Executor: "real", Users: users, FaultMounts: faults, Cylc: cylcPath}
	if slurm {
		h.Slurm = &scenario.Slurm{}
		for _, n := range nodes {
			h.Slurm.Nodes = append(h.Slurm.Nodes, scenario.SlurmNode{Name: n})
		}
		return h
	}
	h.PBS = &scenario.PBS{}
	for _, n := range nodes {
		h.PBS.Nodes = append(h.PBS.Nodes, scenario.Node{Name: n})
	}
	return h
}

type upOptions struct {
	userland image.Userland
	requeue  time.Duration
	json     bool
	logger   *slog.Logger
	// sshConfigFile (absolute) gets the ssh config once all is up.
	sshConfigFile string
}

// up builds the image, starts the topology, prints how to reach it and
// waits for ctx (Ctrl-C) before removing everything.
func up(ctx context.Context, out, errOut io.Writer, topo scenario.Topology, o upOptions) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if p := os.Getenv("JOBSIM_BIN"); p != "" {
		self = p
	}
	imgOpts := []image.Option{image.WithJobsimBinary(self), image.WithUserland(o.userland), image.WithLogger(o.logger)}
	for _, h := range topo.Hosts {
		if h.Cylc == "" {
			continue
		}
		in, err := cylcsys.LocateInstall(ctx)
		if err != nil || in.Overlay == "" {
			return fmt.Errorf("host %s wants Cylc at %s: containers carry the overlay make setup-cylc builds, and none was found (%v)", h.Name, h.Cylc, err)
		}
		imgOpts = append(imgOpts, image.WithCylcOverlay(in.Overlay))
		break
	}
	bctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	img, err := image.Build(bctx, imgOpts...)
	cancel()
	if err != nil {
		return err
	}
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	hosts, err := containers.ClusterHosts(topo)
	if err != nil {
		cancel()
		return err
	}
	tp, err := cluster.Start(sctx, img, hosts, cluster.WithLogger(o.logger), cluster.WithNodeFailRequeue(o.requeue))
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := tp.Close(cctx); err != nil {
			fmt.Fprintf(errOut, "jobsim up: teardown: %v\n", err)
		}
	}()
	info := upInfo{Run: tp.Run(), Image: img.Ref, Network: tp.Network(), StartedIn: time.Since(start).Round(time.Millisecond).String()}
	var sshConfig bytes.Buffer
	slurmHosts := map[string]bool{}
	for _, h := range topo.Hosts {
		slurmHosts[h.Name] = h.Slurm != nil
	}
	for _, m := range tp.Machines() {
		mi := upMachine{Name: m.Name(), Host: m.Host, Role: string(m.Role()), SSH: m.SSHAddr(), Control: m.ControlURL(), Token: m.Token(), Notes: m.Notes(), KeyFiles: map[string]string{}}
		if slurmHosts[m.Host] {
			mi.SlurmNode = m.PBSNode
		} else {
			mi.PBSNode = m.PBSNode
		}
		for i, u := range m.Users() {
			alias := m.Name()
			if i > 0 {
				alias = m.Name() + "-" + u
			}
			block, err := m.SSHConfig(alias, u)
			if err != nil {
				return err
			}
			sshConfig.WriteString(block)
			mi.KeyFiles[u], _ = m.KeyFile(u)
		}
		info.Machines = append(info.Machines, mi)
	}
	info.SSHConfig = sshConfig.String()
	info.SSHConfigFile = o.sshConfigFile
	if o.json {
		if err := writeJSON(out, info); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "# jobsim up: %d machines ready in %s (run %s, image %s); Ctrl-C removes them.\n", len(info.Machines), info.StartedIn, info.Run, info.Image)
		for _, m := range info.Machines {
			role := m.Role
			if m.PBSNode != "" || m.SlurmNode != "" {
				role += " of " + m.Host
			}
			fmt.Fprintf(out, "# %-10s %-8s control %s token %s\n", m.Name, role, m.Control, m.Token)
			for _, n := range m.Notes {
				fmt.Fprintf(out, "#   note: %s\n", n)
			}
		}
		if len(info.Machines) > 0 {
			fmt.Fprintf(out, "# e.g. export JOBSIM_CONTROL=%s JOBSIM_TOKEN=%s; jobsim fault add ...\n", info.Machines[0].Control, info.Machines[0].Token)
		}
		if f := info.SSHConfigFile; f != "" && len(info.Machines) > 0 {
			fmt.Fprintf(out, "# ssh config in %s: ssh -F %s %s (or Include %s in ~/.ssh/config)\n", f, f, info.Machines[0].Name, f)
		}
		fmt.Fprintf(out, "\n%s", info.SSHConfig)
	}
	if info.SSHConfigFile != "" {
		remove, err := writeSSHConfig(info.SSHConfigFile, info.SSHConfig)
		if err != nil {
			return err
		}
		defer remove()
	}
	<-ctx.Done()
	fmt.Fprintln(errOut, "jobsim up: removing the containers")
	return nil
}

type upInfo struct {
	Run       string      `json:"run"`
	Image     string      `json:"image"`
	Network   string      `json:"network,omitempty"`
	StartedIn string      `json:"started_in"`
	Machines  []upMachine `json:"machines"`
	SSHConfig string      `json:"ssh_config"`
	// SSHConfigFile holds SSHConfig when --ssh-config names it.
	SSHConfigFile string `json:"ssh_config_file,omitempty"`
}

type upMachine struct {
	Name    string `json:"name"`
	Host    string `json:"host"`
	PBSNode string `json:"pbs_node,omitempty"`
	// SlurmNode is a compute node's Slurm node name.
	SlurmNode string            `json:"slurm_node,omitempty"`
	Role      string            `json:"role"`
	SSH       string            `json:"ssh"`
	Control   string            `json:"control"`
	Token     string            `json:"token"`
	KeyFiles  map[string]string `json:"key_files"`
	Notes     []string          `json:"notes,omitempty"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/internal/yamlfile"
	"github.com/jobsim/jobsim/sim"
	"github.com/jobsim/jobsim/sim/sshd"
)

// hostConfig is the file `jobsim host --config` reads; flags override it.
type hostConfig struct {
	Name           string              `yaml:"name" json:"name"`
	Executor       string              `yaml:"executor" json:"executor"`
	Users          []string            `yaml:"users" json:"users"`
	AuthorizedKeys map[string][]string `yaml:"authorized_keys" json:"authorized_keys"`
	PBS            bool                `yaml:"pbs" json:"pbs"`
	PBSHistory     bool                `yaml:"pbs_history" json:"pbs_history"`
	// Slurm runs a Slurm controller (fakeslurm) instead of PBS.
	Slurm       bool     `yaml:"slurm" json:"slurm"`
	Root        string   `yaml:"root" json:"root"`
	FaultMounts []string `yaml:"fault_mounts" json:"fault_mounts"`
	SSHAddr     string   `yaml:"ssh_addr" json:"ssh_addr"`
	ControlAddr string   `yaml:"control_addr" json:"control_addr"`
	Token       string   `yaml:"token" json:"token"`
	Clock       string   `yaml:"clock" json:"clock"`
	Seed        int64    `yaml:"seed" json:"seed"`
	// TrustedUserCAKeys is a file of CA public keys whose user certificates
	// the ssh server accepts (sshd's TrustedUserCAKeys).
	TrustedUserCAKeys string `yaml:"trusted_user_ca_keys" json:"trusted_user_ca_keys"`
}

// hostInfo is what `jobsim host` prints once the host is healthy.
type hostInfo struct {
	Name      string            `json:"name"`
	SSH       string            `json:"ssh"`
	Control   string            `json:"control"`
	Token     string            `json:"token"`
	Root      string            `json:"root,omitempty"`
	KeyFiles  map[string]string `json:"key_files"`
	SSHConfig string            `json:"ssh_config"`
	Notes     []string          `json:"notes,omitempty"`
	PBSServer string            `json:"pbs,omitempty"`
	// SlurmCluster is the Slurm cluster's name (ClusterName) when the host runs Slurm.
	SlurmCluster string `json:"slurm,omitempty"`
	StartedFor   string `json:"started_in"`

	// SSHConfigFile holds SSHConfig when --ssh-config names it.
	SSHConfigFile string `json:"ssh_config_file,omitempty"`
}

func newHostCommand() *cobra.Command {
	var (
		cfg        hostConfig
		configFile string
		output     string
		sshFile    string
	)
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Run one fake job host (ssh, PBS, faulty filesystem, control API) until interrupted",
		Long: `Run one fake job host in the foreground. It prints an ssh config block for
each user (the private keys are generated for this run), the control URL and
its token, then serves until Ctrl-C, when it stops every job, process and
mount it started.

With --executor virtual (default) commands run in an embedded shell over an
in-memory filesystem; with --executor real they are real processes (bash,
rsync, python, cylc) whose homes live below --root.`,
		Example: `  # A throwaway PBS login node; ssh reads the config from the file
  jobsim host --pbs --users alice --ssh-config host.ssh > host.txt &
  until [ -e host.ssh ]; do sleep 0.1; done   # written once the host is up
  ssh -F host.ssh fakehpc 'echo sleep 1 | qsub; qstat'

  # Make qsub fail while it runs (the exports are in host.txt)
  eval "$(grep ^export host.txt)"
  jobsim fault add pbs exit --ops qsub --exit-code 38 --stderr 'qsub: Job rejected by all possible destinations'
  ssh -F host.ssh fakehpc 'echo sleep 1 | qsub' || echo "qsub failed with $?"

  # Real processes, the library directory under the FUSE fault layer (needs FUSE, until Ctrl-C)
  jobsim host --executor real --pbs --root hpc --fault-mount /opt/lib

  # A Slurm login node instead
  jobsim host --slurm --users alice --name slurmhpc --ssh-config slurm.ssh > slurm.txt &
  until [ -e slurm.ssh ]; do sleep 0.1; done
  ssh -F slurm.ssh slurmhpc 'sbatch --wrap "sleep 1"; squeue'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configFile != "" {
				var fileCfg hostConfig
				data, err := os.ReadFile(configFile)
				if err != nil {
					return err
				}
				if err := yamlfile.Unmarshal(configFile, data, &fileCfg); err != nil {
					return err
				}
				mergeHostConfig(&fileCfg, cfg, cmd)
				cfg = fileCfg
			}
			opts, err := hostOptions(cfg)
			if err != nil {
				return err
			}
			end, _, err := ownRun(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer end() // last: after the host is closed
			start := time.Now()
			h, err := sim.NewHost(cmd.Context(), opts...)
			if err != nil {
				return err
			}
			defer h.Close()
			info := hostInfo{Name: h.Name(), SSH: h.SSHAddr(), Control: h.ControlURL(), Token: h.Token(), Root: h.Root(), KeyFiles: map[string]string{}, Notes: h.Notes(), StartedFor: time.Since(start).Round(time.Millisecond).String()}
			for _, u := range h.Users() {
				key, _ := h.KeyFile(u)
				info.KeyFiles[u] = key
				block, _ := h.SSHConfig(h.Name(), u)
				if len(h.Users()) > 1 {
					block, _ = h.SSHConfig(h.Name()+"-"+u, u)
				}
				info.SSHConfig += block
			}
			if h.PBS() != nil {
				info.PBSServer = h.PBS().Info(cmd.Context()).Name
			}
			if h.Slurm() != nil {
				info.SlurmCluster = h.Slurm().Info(cmd.Context()).ClusterName
			}
			if sshFile != "" {
				if info.SSHConfigFile, err = filepath.Abs(sshFile); err != nil {
					return fmt.Errorf("--ssh-config: %w", err)
				}
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(info); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "# jobsim host %s is up (%s); Ctrl-C stops it.\n", info.Name, info.StartedFor)
				fmt.Fprintf(out, "export JOBSIM_CONTROL=%s JOBSIM_TOKEN=%s\n", info.Control, info.Token)
				for _, n := range info.Notes {
					fmt.Fprintf(out, "# note: %s\n", n)
				}
				if f := info.SSHConfigFile; f != "" {
					fmt.Fprintf(out, "# ssh config in %s: ssh -F %s %s (or Include %s in ~/.ssh/config)\n", f, f, info.Name, f)
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
			<-cmd.Context().Done()
			fmt.Fprintf(cmd.ErrOrStderr(), "jobsim host %s: stopping\n", info.Name)
			return h.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "read the host configuration from this YAML file (flags override it)")
	f.StringVar(&cfg.Name, "name", "fakehpc", "host name (also the ssh alias printed)")
	f.StringVar(&cfg.Executor, "executor", "virtual", "virtual (embedded shell) or real (real processes)")
	f.StringSliceVar(&cfg.Users, "users", nil, "host users (default: you)")
	f.BoolVar(&cfg.PBS, "pbs", false, "run a PBS server on the host")
	f.BoolVar(&cfg.PBSHistory, "pbs-history", false, "keep finished jobs (job_history_enable), for qstat -x")
	f.BoolVar(&cfg.Slurm, "slurm", false, "run a Slurm controller on the host (sbatch, squeue, scancel, sacct, sinfo, scontrol, srun); not with --pbs")
	f.StringVar(&cfg.Root, "root", "", "real executor: the host root directory (default: a temporary one)")
	f.StringSliceVar(&cfg.FaultMounts, "fault-mount", nil, "real executor: host paths to put under the FUSE fault layer")
	f.StringVar(&cfg.SSHAddr, "ssh-addr", "127.0.0.1:0", "ssh listen address")
	f.StringVar(&cfg.ControlAddr, "control-addr", "127.0.0.1:0", "control API listen address")
	f.StringVar(&cfg.Token, "token", "", "control API token (default: random)")
	f.StringVar(&cfg.Clock, "clock", "real", "real, or virtual (jumps to the next event when all waits; virtual executor only)")
	f.Int64Var(&cfg.Seed, "seed", 1, "seed of fault probability draws")
	f.StringVar(&cfg.TrustedUserCAKeys, "trusted-user-ca-keys", "", "accept ssh user certificates signed by the CA keys in this file (sshd's TrustedUserCAKeys)")
	f.StringVarP(&output, "output", "o", "text", "what to print at start: text or json")
	f.StringVar(&sshFile, "ssh-config", "", "also write the ssh config to this file once the host is up, for ssh -F FILE or an Include line (removed on exit)")
	return cmd
}

// mergeHostConfig lets flags given on the command line win over the file.
func mergeHostConfig(file *hostConfig, flags hostConfig, cmd *cobra.Command) {
	fl := cmd.Flags()
	set := func(name string, apply func()) {
		if fl.Changed(name) {
			apply()
		}
	}
	set("name", func() { file.Name = flags.Name })
	set("executor", func() { file.Executor = flags.Executor })
	set("users", func() { file.Users = flags.Users })
	set("pbs", func() { file.PBS = flags.PBS })
	set("pbs-history", func() { file.PBSHistory = flags.PBSHistory })
	set("slurm", func() { file.Slurm = flags.Slurm })
	set("root", func() { file.Root = flags.Root })
	set("fault-mount", func() { file.FaultMounts = flags.FaultMounts })
	set("ssh-addr", func() { file.SSHAddr = flags.SSHAddr })
	set("control-addr", func() { file.ControlAddr = flags.ControlAddr })
	set("token", func() { file.Token = flags.Token })
	set("clock", func() { file.Clock = flags.Clock })
	set("seed", func() { file.Seed = flags.Seed })
	set("trusted-user-ca-keys", func() { file.TrustedUserCAKeys = flags.TrustedUserCAKeys })
	for _, d := range []struct {
		p   *string
		def string
	}{{&file.Name, "fakehpc"}, {&file.Executor, "virtual"}, {&file.SSHAddr, "127.0.0.1:0"}, {&file.ControlAddr, "127.0.0.1:0"}, {&file.Clock, "real"}} {
		if *d.p == "" {
			*d.p = d.def
		}
	}
}

func hostOptions(cfg hostConfig) ([]sim.Option, error) {
	opts := []sim.Option{sim.WithName(cfg.Name), sim.WithSSHAddr(cfg.SSHAddr), sim.WithControlAddr(cfg.ControlAddr), sim.WithSeed(cfg.Seed)}
	switch cfg.Executor {
	case "virtual":
		opts = append(opts, sim.WithExecutor(sim.Virtual))
	case "real":
		opts = append(opts, sim.WithExecutor(sim.Real), sim.WithFaultMounts(cfg.FaultMounts...))
		if cfg.Root != "" {
			opts = append(opts, sim.WithRoot(cfg.Root))
		}
	default:
		return nil, fmt.Errorf("--executor %q: want virtual or real", cfg.Executor)
	}
	switch cfg.Clock {
	case "real":
	case "virtual":
		if cfg.Executor != "virtual" {
			return nil, fmt.Errorf("--clock virtual needs --executor virtual (real processes sleep in real time)")
		}
		opts = append(opts, sim.WithClock(clock.NewVirtual(time.Now(), clock.AutoAdvance())))
	default:
		return nil, fmt.Errorf("--clock %q: want real or virtual", cfg.Clock)
	}
	if len(cfg.Users) > 0 {
		opts = append(opts, sim.WithUsers(cfg.Users...))
	}
	if cfg.PBS {
		opts = append(opts, sim.WithPBS(fakepbs.WithHistory(cfg.PBSHistory, 0)))
	}
	if cfg.Slurm {
		if cfg.PBS {
			return nil, fmt.Errorf("--slurm and --pbs: a host runs one batch system")
		}
		opts = append(opts, sim.WithSlurm())
	}
	if cfg.Token != "" {
		opts = append(opts, sim.WithToken(cfg.Token))
	}
	if cfg.TrustedUserCAKeys != "" {
		opts = append(opts, sim.WithSSH(sshd.WithTrustedUserCAKeysFile(cfg.TrustedUserCAKeys)))
	}
	for user, keys := range cfg.AuthorizedKeys {
		for _, k := range keys {
			pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k))
			if err != nil {
				return nil, fmt.Errorf("authorized_keys of %s: %w", user, err)
			}
			opts = append(opts, sim.WithAuthorizedKeys(user, pk))
		}
	}
	return opts, nil
}

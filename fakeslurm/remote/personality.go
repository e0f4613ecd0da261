package remote

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jobsim/jobsim/fakeslurm/cli"
)

// ServerEnv names the controller the Slurm personalities call
// ("unix:/path/to/socket" or "tcp:host:port"); without it they look for a
// "#JobsimController=ADDR" line in $SLURM_CONF (default
// /etc/slurm/slurm.conf).
const ServerEnv = "JOBSIM_SLURM_SERVER"

// TokenEnv holds the token for a TCP controller (without it: a
// "#JobsimToken=TOKEN" line in slurm.conf).
const TokenEnv = "JOBSIM_SLURM_TOKEN"

// DefaultConf is where Slurm's clients find slurm.conf without SLURM_CONF.
const DefaultConf = "/etc/slurm/slurm.conf"

// Personality runs a process as a Slurm client when args[0] names a Slurm
// command (sbatch, squeue, ...), so that `ln -s jobsim sbatch` gives a
// working client of the fake controller. srun inside a job runs its
// command in place (exec). It reports false when the program name is not
// a Slurm command.
func Personality(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, bool) {
	if len(args) == 0 || !cli.IsCommand(args[0]) {
		return 0, false
	}
	cmd := filepath.Base(args[0])
	if cmd == "srun" {
		argv, err := cli.SrunCommand(args[1:], os.Environ())
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1, true
		}
		bin, err := exec.LookPath(argv[0])
		if err != nil {
			fmt.Fprintf(stderr, "srun: error: %s: %v\n", argv[0], err)
			return 2, true
		}
		err = syscall.Exec(bin, argv, os.Environ())
		fmt.Fprintf(stderr, "srun: error: execve(): %s: %v\n", argv[0], err)
		return 1, true
	}
	confPath := os.Getenv("SLURM_CONF")
	if confPath == "" {
		confPath = DefaultConf
	}
	conf := Conf{ControlHost: "localhost"}
	var confErr error
	if f, err := os.Open(confPath); err == nil {
		conf, confErr = ReadConf(f)
		_ = f.Close()
	}
	addr := os.Getenv(ServerEnv)
	if addr == "" {
		addr = conf.Controller
	}
	if confErr != nil {
		fmt.Fprintf(stderr, "%s: error: %s: %v\n%s: fatal: Unable to process configuration file\n", cmd, confPath, confErr, cmd)
		return 1, true
	}
	if addr == "" {
		// What Slurm's clients print without a configuration, then why.
		fmt.Fprintf(stderr, "%s: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n%s: fatal: Could not establish a configuration source\n", cmd, cmd)
		fmt.Fprintf(stderr, "%s: jobsim: neither %s nor a #JobsimController= line in %s names the controller\n", cmd, ServerEnv, confPath)
		return 1, true
	}
	inv := cli.Invocation{Command: cmd, Args: args[1:], Env: os.Environ(), UID: os.Getuid(), GID: os.Getgid()}
	inv.User = os.Getenv("USER")
	if inv.User == "" {
		if u, err := user.Current(); err == nil {
			inv.User = u.Username
		}
	}
	inv.Cwd, _ = os.Getwd()
	inv.Host, _ = os.Hostname()
	inv.Host, _, _ = strings.Cut(inv.Host, ".")
	opts := []CallOption{CallStdin(stdin), CallConf(conf)}
	tok := os.Getenv(TokenEnv)
	if tok == "" {
		tok = conf.Token
	}
	if tok != "" {
		opts = append(opts, CallToken(tok))
	}
	res, _ := Call(ctx, addr, inv, opts...)
	_, _ = stdout.Write(res.Stdout)
	_, _ = stderr.Write(res.Stderr)
	return res.ExitCode, true
}

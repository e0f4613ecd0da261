package remote

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
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
		return srun(ctx, args, stdout, stderr), true
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

// srun runs a job step's tasks on this host: one task replaces srun
// (exec), as batchspawner's `srun <server>` wants signals to reach the
// server; several run as children that get srun's SIGTERM and SIGINT.
// Step ids come from a per-job counter file in the temp directory.
func srun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	st, err := cli.ParseSrun(args[1:], os.Environ())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cli.SrunExitCode(err)
	}
	st.Step = nextStep(os.Getenv("SLURM_JOB_ID"))
	bin, err := exec.LookPath(st.Argv[0])
	if err != nil {
		// Each task's slurmstepd fails to exec it; the tasks exit 2.
		codes := make([]int, st.Tasks)
		for i := range codes {
			fmt.Fprintf(stderr, "slurmstepd-%s: error: execve(): %s: No such file or directory\n", os.Getenv("SLURMD_NODENAME"), st.Argv[0])
			codes[i] = 2
		}
		return st.Finish(codes, os.Getenv("SLURMD_NODENAME"), stderr)
	}
	if st.Tasks == 1 && !st.Label {
		err = syscall.Exec(bin, st.Argv, st.TaskEnv(0, os.Getpid()))
		fmt.Fprintf(stderr, "srun: error: execve(): %s: %v\n", st.Argv[0], err)
		return 1
	}
	outputs, flush := st.Outputs(stdout, stderr)
	cmds := make([]*exec.Cmd, st.Tasks)
	codes := make([]int, st.Tasks)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for i := range cmds {
		c := exec.CommandContext(ctx, bin, st.Argv[1:]...)
		c.Args[0] = st.Argv[0]
		c.Env = st.TaskEnv(i, os.Getpid()+1+i) // the pid a child is likely to get
		c.Stdout, c.Stderr = outputs(i)
		if err := c.Start(); err != nil {
			fmt.Fprintf(stderr, "srun: error: task %d: %v\n", i, err)
			codes[i] = 1
			continue
		}
		cmds[i] = c
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				for _, c := range cmds {
					if c != nil && c.Process != nil {
						_ = c.Process.Signal(sig)
					}
				}
			case <-done:
				return
			}
		}
	}()
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if err := c.Wait(); err != nil {
			codes[i] = 1
			if ee, ok := err.(*exec.ExitError); ok {
				codes[i] = ee.ExitCode()
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					codes[i] = 128 + int(ws.Signal())
				}
			}
		}
	}
	close(done)
	flush()
	return st.Finish(codes, os.Getenv("SLURMD_NODENAME"), stderr)
}

// nextStep takes the job's next step id: the size of a counter file that
// each srun appends one byte to (successive sruns get successive ids;
// two started at the same instant may share one).
func nextStep(job string) int {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "jobsim-srun-steps-"+job), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Write([]byte{'.'}); err != nil {
		return 0
	}
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return int(fi.Size()) - 1
}

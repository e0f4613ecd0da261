package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/fakepbs/remote"
	"golang.org/x/sys/unix"
)

// runPersonality runs jobsim as a PBS client when argv[0] names a PBS
// command (qsub, qstat, qdel, qsig, qhold, qrls, pbsnodes), so that
// `ln -s jobsim qsub` on PATH gives a working PBS client. It finds its
// server as an OpenPBS client does (remote.LoadConf): $JOBSIM_PBS_SERVER
// ("unix:/path/to/socket" or "tcp:host:port") when set, else the pbs.conf
// named by $PBS_CONF_FILE or /etc/pbs.conf, with $PBS_SERVER winning over
// the file's PBS_SERVER. It reports false when the program name is not one
// of them.
func runPersonality(ctx context.Context, args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	cmd := filepath.Base(args[0])
	if !cli.IsCommand(cmd) {
		return 0, false
	}
	conf, err := remote.LoadConf(os.LookupEnv, os.ReadFile)
	if err != nil {
		if errors.Is(err, remote.ErrNoServer) {
			// What OpenPBS prints without a server to talk to, then why.
			fmt.Fprintf(os.Stderr, "No default server name.\n%s: cannot connect to server  (errno=15010)\n", cmd)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", cmd, err)
		return 15010 & 0xff, true
	}
	inv := cli.Invocation{
		Command:   cmd,
		Args:      args[1:],
		StdinTTY:  isTerminal(os.Stdin),
		StdoutTTY: isTerminal(os.Stdout),
		Env:       os.Environ(),
		User:      currentUser(),
	}
	inv.Cwd, _ = os.Getwd()
	if inv.Cwd == "" {
		inv.Cwd = os.Getenv("PWD")
	}
	inv.Host, _ = os.Hostname()
	opts := []remote.CallOption{remote.CallStdin(os.Stdin), remote.CallPrompt(os.Stdout)}
	if conf.Token != "" {
		opts = append(opts, remote.CallToken(conf.Token))
	}
	if conf.Name != "" {
		opts = append(opts, remote.CallServerName(conf.Name))
	}
	res, _ := remote.Call(ctx, conf.Addr, inv, opts...)
	_, _ = os.Stdout.Write(res.Stdout)
	_, _ = os.Stderr.Write(res.Stderr)
	return res.ExitCode, true
}

// currentUser is $USER, else the name of the process's uid.
func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprint(os.Getuid())
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/fakepbs/remote"
	"golang.org/x/sys/unix"
)

// pbsServerEnv names the server the PBS personalities call:
// "unix:/path/to/socket" or "tcp:host:port".
const pbsServerEnv = "JOBSIM_PBS_SERVER"

// runPersonality runs jobsim as a PBS client when argv[0] names a PBS
// command (qsub, qstat, qdel, qsig, qhold, qrls, pbsnodes), so that
// `ln -s jobsim qsub` on PATH gives a working PBS client of the server
// named by $JOBSIM_PBS_SERVER. It reports false when the program name is
// not one of them.
func runPersonality(ctx context.Context, args []string) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	cmd := filepath.Base(args[0])
	if !cli.IsCommand(cmd) {
		return 0, false
	}
	addr := os.Getenv(pbsServerEnv)
	if addr == "" {
		// What OpenPBS prints without a server to talk to, then why.
		fmt.Fprintf(os.Stderr, "No default server name.\n%s: cannot connect to server  (errno=15010)\n", cmd)
		fmt.Fprintf(os.Stderr, "%s: %s is not set (jobsim: want unix:/path/to/socket or tcp:host:port)\n", cmd, pbsServerEnv)
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
	if tok := pbsToken(); tok != "" {
		opts = append(opts, remote.CallToken(tok))
	}
	res, _ := remote.Call(ctx, addr, inv, opts...)
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

// pbsToken is the token for a TCP server: $JOBSIM_PBS_TOKEN, or the first
// line of the file $JOBSIM_PBS_TOKEN_FILE.
func pbsToken() string {
	if t := os.Getenv("JOBSIM_PBS_TOKEN"); t != "" {
		return t
	}
	if f := os.Getenv("JOBSIM_PBS_TOKEN_FILE"); f != "" {
		if b, err := os.ReadFile(f); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

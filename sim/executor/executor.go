// Package executor runs commands and scripts on a simulated job host. Two
// kinds sit behind one interface: a virtual executor (an embedded POSIX shell
// whose file access goes through the host filesystem, so faults apply, and
// whose commands are Go builtins) and a real one (real processes in the
// host's root and home). The ssh server, the PBS server and the control API
// all run commands through it.
package executor

import (
	"context"
	"io"
	"syscall"

	"github.com/jobsim/jobsim/sim/batch"
)

// Executor starts commands on a host.
type Executor interface {
	// Start begins running cmd. The returned Process must be waited for.
	// Cancelling ctx kills the command (SIGKILL to its process group).
	Start(ctx context.Context, cmd Command) (Process, error)
}

// Command is one thing to run, as an ssh exec request, a login shell or a
// PBS job script describes it.
type Command struct {
	User string // the host user to run as; their home is the default Dir
	// Script is a shell command line (what `ssh host CMD` sends) or a whole
	// script. Empty with Login set means an interactive login shell.
	Script string
	// Shell runs Script when set (e.g. "/bin/bash"); empty means the user's
	// shell (bash) with -c.
	Shell  string
	Login  bool     // run as a login shell (profile read, PATH with the PBS client)
	Env    []string // KEY=value added on top of the user's base environment
	Dir    string   // working directory on the host; empty means the user's home
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// TTY, when set, gives the command a pseudo-terminal of that size; Stdout
	// then carries both output streams, as with a real pty.
	TTY *Window
}

// Window is a terminal size.
type Window struct {
	Term          string
	Width, Height int
}

// Process is a started command.
type Process interface {
	// Signal delivers sig to the command's process group.
	Signal(sig syscall.Signal) error
	// Resize changes the pty size; a no-op without a pty.
	Resize(w Window) error
	// Wait blocks until the command ends and its output is flushed.
	Wait() Status
}

// Status is how a command ended.
type Status struct {
	Code   int            // exit code; 128+n when killed by signal n, as a shell reports it
	Signal syscall.Signal // the signal that killed it, when one did
	Err    error          // a failure to run at all (not a non-zero exit)
	Usage  batch.Usage    // CPU time and peak memory, where the executor measures them (real processes)
}

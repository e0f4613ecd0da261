// Package cmdrun is the run harness every in-process batch-system command
// shares (fakepbs/cli and fakeslurm/cli): a command writes into two
// buffers and returns an error; the harness turns that error into an exit
// status, lets a fired garbage fault replace the output, and reports the
// finished command to the log and the event recorder. What the commands
// do, their messages and their fault layer stay with each batch system.
package cmdrun

import (
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// Result is what a command wrote and how it exited.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// IsCommand reports whether name (a program name or path) is one of
// commands.
func IsCommand(name string, commands []string) bool {
	return slices.Contains(commands, path.Base(name))
}

// ExitError ends a command with a status after its messages were written.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Exit ends a command with status code & 0xff, as exit(3) does.
func Exit(code int) error { return ExitError{Code: code & 0xff} }

// Status is the exit status of a command that returned err: 0 for nil, an
// ExitError's code, else 1 after writing prefix, err and a newline to
// stderr (the command's own style of last-resort message).
func Status(err error, stderr io.Writer, prefix string) int {
	var ee ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	default:
		fmt.Fprintf(stderr, "%s%v\n", prefix, err)
		return 1
	}
}

// CommandLine is prog and its arguments joined by spaces, as fault rules
// match commands and events show them.
func CommandLine(prog string, args []string) string {
	if len(args) == 0 {
		return prog
	}
	return prog + " " + strings.Join(args, " ")
}

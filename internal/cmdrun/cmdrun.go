// Package cmdrun is the run harness every in-process batch-system command
// shares (fakepbs/cli and fakeslurm/cli): a command writes into two
// buffers and returns an error; the harness turns that error into an exit
// status, lets a fired garbage fault replace the output, and reports the
// finished command to the log and the event recorder. What the commands
// do, their messages and their fault layer stay with each batch system.
package cmdrun

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

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

// Reject applies the first exit rule among fired, if any: it writes the
// rule's Effect.Stderr and reports its exit status (default 1), for a
// command that must then not run.
func Reject(fired []fault.Rule, stderr io.Writer) (int, bool) {
	x, ok := fault.First(fired, fault.Exit)
	if !ok {
		return 0, false
	}
	code := 1
	if x.Effect.ExitCode != nil {
		code = *x.Effect.ExitCode
	}
	_, _ = io.WriteString(stderr, x.Effect.StderrLine())
	return code & 0xff, true
}

// Garble replaces stdout with the output of the first garbage rule among
// fired: its Effect.Stdout, else random bytes fixed by the rule's seed and
// id (the same rule garbles the same way every time).
func Garble(fired []fault.Rule, stdout *bytes.Buffer) {
	g, ok := fault.First(fired, fault.Garbage)
	if !ok {
		return
	}
	stdout.Reset()
	if g.Effect.Stdout != "" {
		stdout.WriteString(g.Effect.Stdout)
		return
	}
	stdout.Write(garbage(g))
}

func garbage(rule fault.Rule) []byte {
	seed := uint64(rule.Seed)
	for _, c := range rule.ID {
		seed = seed*131 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	b := make([]byte, 16+rng.IntN(240))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// CommandLine is prog and its arguments joined by spaces, as fault rules
// match commands and events show them.
func CommandLine(prog string, args []string) string {
	if len(args) == 0 {
		return prog
	}
	return prog + " " + strings.Join(args, " ")
}

// Done is a finished command, to report.
type Done struct {
	// Kind is the event recorded for it (events.PBSCall, fakeslurm.SlurmCall).
	Kind events.Kind
	// LogMsg is the debug log line's message ("pbs command").
	LogMsg         string
	Log            *slog.Logger    // nil: no log line
	Rec            events.Recorder // nil or events.Discard: no event
	Prog           string          // the command's name
	Args           []string        // its arguments
	User           string          // who ran it
	Start          time.Time       // when it started
	Stdout, Stderr *bytes.Buffer
	Code           int // its exit status
}

// Finish logs and records d and returns copies of its output (never nil).
func (d Done) Finish() (stdout, stderr []byte) {
	stdout, stderr = bytes.Clone(d.Stdout.Bytes()), bytes.Clone(d.Stderr.Bytes())
	if stdout == nil {
		stdout = []byte{}
	}
	if stderr == nil {
		stderr = []byte{}
	}
	dur := time.Since(d.Start)
	if d.Log != nil {
		d.Log.Debug(d.LogMsg, "cmd", d.Prog, "args", d.Args, "exit", d.Code, "duration", dur)
	}
	if _, discard := d.Rec.(events.Discard); d.Rec != nil && !discard {
		d.Rec.Record(events.Event{
			Kind: d.Kind,
			Msg:  fmt.Sprintf("%s → exit %d", CommandLine(d.Prog, d.Args), d.Code),
			Fields: map[string]any{
				"command": d.Prog, "args": d.Args, "user": d.User, "exit": d.Code,
				"stdout": string(stdout), "stderr": string(stderr),
				"duration_ms": float64(dur.Microseconds()) / 1000,
			},
		})
	}
	return stdout, stderr
}

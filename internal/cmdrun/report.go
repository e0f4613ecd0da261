package cmdrun

import (
	"bytes"
	"fmt"
	"log/slog"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

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

// Run runs a command (exec writes into d.Stdout and d.Stderr and returns
// its exit status), then reports it as d, timed from the call, and returns
// what it wrote and its status.
func (d Done) Run(exec func() int) Result {
	d.Start = time.Now()
	d.Code = exec()
	stdout, stderr := d.Finish()
	return Result{Stdout: stdout, Stderr: stderr, ExitCode: d.Code}
}

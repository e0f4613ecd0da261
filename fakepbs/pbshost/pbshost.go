// Package pbshost makes a PBS server (package fakepbs) with its command
// front end (fakepbs/cli) the batch system of a job host: a batch.System.
// The host, its control API and its executors reach PBS through that
// interface; only the PBS-specific wiring (the server's construction, the
// socket real client processes call, a cluster's MoM dispatcher) uses the
// Server itself.
package pbshost

import (
	"context"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/sim/batch"
)

// Kind is the batch system's kind, also its fault layer's name.
const Kind = "pbs"

// System is a PBS server as a host's batch system.
type System struct {
	srv  *fakepbs.Server
	host string
	fs   afero.Fs
	opts []cli.Option
}

var _ batch.System = (*System)(nil)

// Option configures a System.
type Option func(*System)

// WithHost is the host the commands run on (PBS_O_HOST, Job_Owner).
func WithHost(name string) Option { return func(s *System) { s.host = name } }

// WithFS is where qsub reads script files (default the operating system's).
func WithFS(fs afero.Fs) Option { return func(s *System) { s.fs = fs } }

// WithCLIOptions configures the command front end (faults, recorder, clock, logger).
func WithCLIOptions(opts ...cli.Option) Option {
	return func(s *System) { s.opts = append(s.opts, opts...) }
}

// New returns srv as a batch system.
func New(srv *fakepbs.Server, opts ...Option) *System {
	s := &System{srv: srv}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Server is the PBS server itself, for PBS-specific wiring.
func (s *System) Server() *fakepbs.Server { return s.srv }

// Kind implements batch.System.
func (s *System) Kind() string { return Kind }

// Commands implements batch.System: the PBS client commands.
func (s *System) Commands() []string { return cli.Commands }

// Run implements batch.System: one PBS command, as the host's shells run it.
func (s *System) Run(ctx context.Context, inv batch.Invocation) batch.Result {
	res := cli.Run(ctx, s.srv, cli.Invocation{
		Command: inv.Command, Args: inv.Args, Stdin: inv.Stdin, Env: inv.Env, Cwd: inv.Cwd,
		User: inv.User, Host: s.host, FS: s.fs,
	}, s.opts...)
	return batch.Result{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}
}

// Jobs implements batch.System: every job, with its PBS record as Native.
func (s *System) Jobs(ctx context.Context, history bool) []batch.Job {
	js := s.srv.Jobs(ctx, history)
	out := make([]batch.Job, len(js))
	for i, j := range js {
		out[i] = batch.Job{ID: j.ID, Name: j.Name, User: j.User, Queue: j.Queue, State: j.State.String(), Native: j}
	}
	return out
}

// Restart implements batch.System.
func (s *System) Restart(ctx context.Context, o batch.RestartOptions) error {
	return s.srv.Restart(ctx, fakepbs.RestartOptions{Down: o.Down, LoseJobs: o.LoseJobs})
}

// Down implements batch.System.
func (s *System) Down() bool { return s.srv.Down() }

// Close implements batch.System.
func (s *System) Close() error { return s.srv.Close() }

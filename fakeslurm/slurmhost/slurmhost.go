// Package slurmhost makes a Slurm controller (package fakeslurm) with its
// command front end (fakeslurm/cli) the batch system of a job host: a
// batch.System, as fakepbs/pbshost does for PBS. The host, its control API
// and its executors reach Slurm through that interface; only the
// Slurm-specific wiring (the server's construction, the socket the real
// client executables call) uses the Server itself.
package slurmhost

import (
	"context"
	"strconv"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/sim/batch"
)

// Kind is the batch system's kind, also its fault layer's name.
const Kind = "slurm"

// System is a Slurm controller as a host's batch system.
type System struct {
	srv  *fakeslurm.Server
	host string
	fs   afero.Fs
	ids  func(user string) (uid, gid int)
	opts []cli.Option
}

var _ batch.System = (*System)(nil)

// Option configures a System.
type Option func(*System)

// WithHost is the host the commands run on (SLURM_SUBMIT_HOST, AllocNode).
func WithHost(name string) Option { return func(s *System) { s.host = name } }

// WithFS is where sbatch reads script files (default the operating system's).
func WithFS(fs afero.Fs) Option { return func(s *System) { s.fs = fs } }

// WithIDs gives the uid and gid of a host user, which Slurm records with
// each job (squeue %U, sacct UID, "CANCELLED by UID"). Default: 0 for
// root, 1000 for everyone else.
func WithIDs(f func(user string) (uid, gid int)) Option { return func(s *System) { s.ids = f } }

// WithCLIOptions configures the command front end (faults, recorder, clock, logger).
func WithCLIOptions(opts ...cli.Option) Option {
	return func(s *System) { s.opts = append(s.opts, opts...) }
}

// New returns srv as a batch system.
func New(srv *fakeslurm.Server, opts ...Option) *System {
	s := &System{srv: srv, ids: defaultIDs}
	for _, o := range opts {
		o(s)
	}
	return s
}

func defaultIDs(user string) (int, int) {
	if user == "root" {
		return 0, 0
	}
	return 1000, 1000
}

// Server is the Slurm controller itself, for Slurm-specific wiring.
func (s *System) Server() *fakeslurm.Server { return s.srv }

// Kind implements batch.System.
func (s *System) Kind() string { return Kind }

// Commands implements batch.System: the Slurm client commands.
func (s *System) Commands() []string { return cli.Commands }

// Run implements batch.System: one Slurm command, as the host's shells run it.
func (s *System) Run(ctx context.Context, inv batch.Invocation) batch.Result {
	uid, gid := s.ids(inv.User)
	res := cli.Run(ctx, s.srv, cli.Invocation{
		Command: inv.Command, Args: inv.Args, Stdin: inv.Stdin, Env: inv.Env, Cwd: inv.Cwd,
		User: inv.User, UID: uid, GID: gid, Host: s.host, FS: s.fs,
	}, s.opts...)
	return batch.Result{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}
}

// Jobs implements batch.System: the jobs slurmctld holds (squeue -t all:
// finished ones until MinJobAge), or with history every job the
// accounting database has seen (sacct; slurmctld's when accounting is
// off), with its Slurm record as Native and the long state name (PENDING,
// RUNNING, COMPLETED, ...). A controller that is down reports none.
func (s *System) Jobs(ctx context.Context, history bool) []batch.Job {
	var js []fakeslurm.Job
	var err error
	if history {
		js, err = s.srv.History(ctx)
	}
	if !history || err != nil {
		js, err = s.srv.Jobs(ctx)
	}
	if err != nil {
		return nil
	}
	out := make([]batch.Job, 0, len(js))
	for _, j := range js {
		out = append(out, batch.Job{ID: strconv.Itoa(j.ID), Name: j.Name, User: j.User, Queue: j.Partition, State: j.State.String(), Native: j})
	}
	return out
}

// Restart implements batch.System.
func (s *System) Restart(ctx context.Context, o batch.RestartOptions) error {
	return s.srv.Restart(ctx, fakeslurm.RestartOptions{Down: o.Down, LoseJobs: o.LoseJobs})
}

// Down implements batch.System.
func (s *System) Down() bool { return s.srv.Down() }

// Close implements batch.System.
func (s *System) Close() error { return s.srv.Close() }

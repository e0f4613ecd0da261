// Package batchserver is the plumbing every in-process batch server
// (fakepbs, fakeslurm) shares: the settings that connect a server to its
// job host (clock, executor, filesystem, fault set, event recorder, logger)
// with their options and defaults, the checks of configured names, times
// and directories, and the life of the server's goroutines and timers.
// What a server models (queues or partitions, states, messages) and its
// own options stay with it.
package batchserver

import (
	"log/slog"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// Plumbing is what connects a batch server to the host it runs on. A
// server's config embeds it; E is the server's executor type.
type Plumbing[E any] struct {
	Clock  clock.Clock
	Exec   E // nil: jobs are accepted but never run
	FS     afero.Fs
	Faults *fault.Set // nil: no faults
	Rec    events.Recorder
	Log    *slog.Logger
}

// Shared is the plumbing of a config that embeds it, for the options.
func (p *Plumbing[E]) Shared() *Plumbing[E] { return p }

// Defaults fills what no option set: the real clock, an in-memory
// filesystem, no recording and no logging.
func (p *Plumbing[E]) Defaults() {
	if p.Clock == nil {
		p.Clock = clock.Real{}
	}
	if p.FS == nil {
		p.FS = afero.NewMemMapFs()
	}
	if p.Rec == nil {
		p.Rec = events.Discard{}
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
}

// Config is a server's config: it embeds a Plumbing.
type Config[E any] interface{ Shared() *Plumbing[E] }

// WithClock sets the clock.
func WithClock[C Config[E], E any](cl clock.Clock) func(C) error {
	return func(c C) error { c.Shared().Clock = cl; return nil }
}

// WithExecutor sets the executor that runs job scripts.
func WithExecutor[C Config[E], E any](e E) func(C) error {
	return func(c C) error { c.Shared().Exec = e; return nil }
}

// WithFS sets the filesystem the server writes to.
func WithFS[C Config[E], E any](fs afero.Fs) func(C) error {
	return func(c C) error { c.Shared().FS = fs; return nil }
}

// WithFaults sets the fault set the server consults.
func WithFaults[C Config[E], E any](set *fault.Set) func(C) error {
	return func(c C) error { c.Shared().Faults = set; return nil }
}

// WithRecorder sets the recorder of job state changes.
func WithRecorder[C Config[E], E any](rec events.Recorder) func(C) error {
	return func(c C) error { c.Shared().Rec = rec; return nil }
}

// WithLogger sets the logger.
func WithLogger[C Config[E], E any](l *slog.Logger) func(C) error {
	return func(c C) error { c.Shared().Log = l; return nil }
}

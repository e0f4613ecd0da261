package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/internal/reaper"
	"github.com/jobsim/jobsim/internal/runreg"
)

// ownRun makes this process a jobsim run that nothing outlives (for run,
// up and host): it registers the run (its lock held until the process
// ends, package internal/runreg), points $TMPDIR at the run's folder and
// sets $JOBSIM_RUN to its id, so that every temporary folder, process,
// container and network the run makes carries the id, then starts the
// watcher: `jobsim watch`, in a session of its own, which waits for the
// lock and removes what is left once the run is gone, however it ended
// (SIGKILL included). end is deferred by the caller first, so that it
// runs after the command's own cleanup: it removes the run's folder and
// releases the lock, waking the watcher.
func ownRun(stderr io.Writer) (end func(), id string, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	r, err := runreg.Start("")
	if err != nil {
		return nil, "", err
	}
	// The watcher gets the caller's environment, not the run's: it is not
	// one of the run's processes (it would kill itself), and its $TMPDIR
	// is not the folder it removes.
	w := exec.Command(self, "watch", "--run", r.ID())
	w.Env = append(withoutVar(os.Environ(), runreg.EnvVar), runreg.DirEnv+"="+r.RegistryDir())
	w.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf, err := os.OpenFile(runreg.WatchLog(r.RegistryDir(), r.ID()), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		r.Close()
		return nil, "", fmt.Errorf("watcher log: %w", err)
	}
	w.Stdout, w.Stderr = logf, logf
	err = w.Start()
	logf.Close()
	if err != nil {
		r.Close()
		return nil, "", fmt.Errorf("start the watcher: %w", err)
	}
	_ = w.Process.Release() // it outlives us; init reaps it
	os.Setenv(runreg.EnvVar, r.ID())
	os.Setenv("TMPDIR", r.TempDir())
	return func() {
		if err := r.Close(); err != nil {
			fmt.Fprintf(stderr, "jobsim: end of run %s: %v\n", r.ID(), err)
		}
	}, r.ID(), nil
}

func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// newWatchCommand is the hidden watcher of one run (see ownRun).
func newWatchCommand() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:    "watch --run ID",
		Short:  "Wait for a jobsim run to end, then remove what it left (started by the run itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("run", id)
			dir := runreg.Dir()
			// The lock, taken in the background: a SIGTERM to the watcher
			// still ends it.
			type result struct {
				dead *runreg.Dead
				err  error
			}
			got := make(chan result, 1)
			go func() {
				d, err := runreg.WaitDead(dir, id)
				got <- result{d, err}
			}()
			// Meanwhile, what other dead runs of the registry left (their
			// watchers died too): a later run cleans after earlier ones.
			others := make(chan struct{})
			go func() {
				defer close(others)
				octx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
				defer cancel()
				ids, _ := deadRuns(octx, dir, true)
				ids = slices.DeleteFunc(ids, func(s string) bool { return s == id })
				var b strings.Builder
				_ = reapRuns(octx, dir, ids, reaper.Options{Docker: true}, &b)
				if b.Len() > 0 {
					log.Info("removed what earlier dead runs left:\n" + b.String())
				}
				log.Info("earlier dead runs checked", "dead", len(ids))
			}()
			defer func() { <-others }()
			var res result
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
		wait:
			for {
				select {
				case res = <-got:
					break wait
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-tick.C:
					// Killed, but a thread stuck on the run's own FUSE
					// mount keeps it (and the lock) from going.
					if stuck, err := reaper.Unstick(dir, id); stuck {
						log.Warn("the run was killed but is stuck exiting on its FUSE mount; aborted the connection", "err", err)
					}
				}
			}
			if res.err != nil && !errors.Is(res.err, os.ErrNotExist) {
				return res.err
			}
			// The lock is ours (or the run had ended and removed it before
			// we looked): the run is over.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 2*time.Minute)
			defer cancel()
			start := time.Now()
			t, err := reaper.Reap(ctx, dir, id, reaper.Options{Docker: true})
			for _, l := range t.Lines() {
				log.Info("removed " + l)
			}
			if err != nil {
				log.Error("not everything could be removed; jobsim sweep retries", "err", err)
				if res.dead != nil {
					res.dead.Close()
				}
				return err
			}
			log.Info("run over, nothing left", "took", time.Since(start))
			if res.dead != nil {
				err = res.dead.Done()
			} else {
				_ = os.Remove(runreg.WatchLog(dir, id))
			}
			// A container or network the engine finished creating after
			// the run died and we looked.
			if t.UsedDocker {
				if late, lerr := reaper.LateContainers(ctx, id, 2*time.Second); len(late) > 0 || lerr != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "jobsim watch: run %s: removed late %v: %v\n", id, late, lerr)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&id, "run", "", "the run id to watch")
	_ = cmd.MarkFlagRequired("run")
	return cmd
}

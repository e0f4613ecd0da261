package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/internal/reaper"
	"github.com/jobsim/jobsim/internal/runreg"
)

func newSweepCommand() *cobra.Command {
	var (
		run  string
		list bool
		all  bool
	)
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Remove what dead jobsim runs left: processes, FUSE mounts, temporary folders, containers, networks",
		Long: `Every jobsim run (run, up, host) registers itself under ` + "`/tmp/jobsim-<uid>`" + `
($JOBSIM_RUNS_DIR) with a lock it holds while it lives, and marks what it
creates with its run id: processes carry JOBSIM_RUN=<id> in their
environment, its temporary folders and FUSE mounts lie in its folder
<dir>/<id>/, its containers and networks carry the label
org.jobsim.owner=<id>. A run's watcher removes all of it when the run ends,
however it ended; sweep does the same for runs whose lock is free but whose
things are still there (the watcher was killed too, or could not finish).

A run whose lock is held is alive and never touched, whatever its pid;
nothing that does not carry a registered run's id is touched either.
With --list, print the leftovers (and the cached job-host images) and
remove nothing. --run ID sweeps one run: a registered run id, or the
org.jobsim.run label of containers and networks (a topology).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			quietTestcontainers(slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			out := cmd.OutOrStdout()
			docker := container.DockerAvailable(ctx) == nil
			opts := reaper.Options{Docker: docker}
			dir := runreg.Dir()
			if all {
				if !list {
					return exitError{code: 2, err: fmt.Errorf("--all goes with --list: sweep removes the things of dead runs only")}
				}
				return listAll(ctx, out, dir, docker)
			}
			if run != "" && !runreg.ValidID(run) {
				return sweepTopology(ctx, out, dir, run, list)
			}
			var ids []string
			var errs []error
			if run != "" {
				if runreg.Alive(dir, run) {
					return fmt.Errorf("run %s is alive (its lock is held): not touched", run)
				}
				ids = []string{run}
			} else {
				ids, errs = deadRuns(ctx, dir, !list)
			}
			if list {
				for _, id := range ids {
					t, err := reaper.Find(ctx, dir, id, opts)
					errs = append(errs, err)
					for _, l := range t.Lines() {
						fmt.Fprintln(out, l)
					}
				}
			} else {
				errs = append(errs, reapRuns(ctx, dir, ids, opts, out)...)
			}
			if list && docker {
				objs, err := container.List(ctx)
				errs = append(errs, err)
				for _, o := range objs {
					if o.Kind == "image" {
						fmt.Fprintf(out, "image %s (%s)\n", o.Name, o.State)
					}
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&run, "run", "", "sweep only this run: a run id (r and 8 hex digits), or a topology's org.jobsim.run label")
	cmd.Flags().BoolVar(&list, "list", false, "remove nothing: list the leftovers of dead runs, and the cached job-host images")
	cmd.Flags().BoolVar(&all, "all", false, "with --list: list the things of live runs too (each line says alive or dead), and labelled containers and networks of no registered run")
	return cmd
}

// sweepTopology removes (or lists) the containers and networks labelled
// org.jobsim.run=run, unless a live run owns any of them.
func sweepTopology(ctx context.Context, out io.Writer, dir, run string, list bool) error {
	objs, err := container.List(ctx)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if o.Run == run && o.Owner != "" && runreg.Alive(dir, o.Owner) {
			return fmt.Errorf("%s %s of %s belongs to run %s, which is alive: not touched", o.Kind, o.Name, run, o.Owner)
		}
	}
	if list {
		for _, o := range objs {
			if o.Run == run {
				fmt.Fprintf(out, "%s %s run=%s\n", o.Kind, o.Name, run)
			}
		}
		return nil
	}
	rep, err := container.Sweep(ctx, run)
	for _, c := range rep.Containers {
		fmt.Fprintf(out, "removed container %s\n", strings.TrimPrefix(c, "/"))
	}
	for _, n := range rep.Networks {
		fmt.Fprintf(out, "removed network %s\n", n)
	}
	return err
}

// listAll prints what every registered run has (alive or dead), then the
// labelled containers and networks no registered run owns, then the
// cached images.
func listAll(ctx context.Context, out io.Writer, dir string, docker bool) error {
	entries, err := runreg.List(dir)
	if err != nil {
		return err
	}
	var errs []error
	known := map[string]bool{}
	for _, e := range entries {
		known[e.ID] = true
		t, err := reaper.Find(ctx, dir, e.ID, reaper.Options{Docker: docker})
		errs = append(errs, err)
		state := " (dead)"
		if e.Alive {
			state = " (alive)"
		}
		for _, l := range t.Lines() {
			fmt.Fprintln(out, l+state)
		}
	}
	if !docker {
		return errors.Join(errs...)
	}
	objs, err := container.List(ctx)
	errs = append(errs, err)
	for _, o := range objs {
		switch {
		case o.Kind == "image":
			fmt.Fprintf(out, "image %s (%s)\n", o.Name, o.State)
		case !known[o.Owner]:
			fmt.Fprintf(out, "%s %s topology=%s (no registered run)\n", o.Kind, o.Name, o.Run)
		}
	}
	return errors.Join(errs...)
}

// waitUnlocked waits a few seconds for run id's lock to be released.
func waitUnlocked(ctx context.Context, dir, id string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for runreg.Alive(dir, id) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// deadRuns lists the dead runs of registry dir; with unstick, also those
// alive by their lock but killed and stuck exiting on their own FUSE
// mount, which it frees first (reaper.Unstick).
func deadRuns(ctx context.Context, dir string, unstick bool) ([]string, []error) {
	entries, err := runreg.List(dir)
	if err != nil {
		return nil, []error{err}
	}
	var ids []string
	var errs []error
	for _, e := range entries {
		if !e.Alive {
			ids = append(ids, e.ID)
			continue
		}
		if !unstick {
			continue
		}
		if stuck, err := reaper.Unstick(dir, e.ID); stuck {
			errs = append(errs, err)
			if waitUnlocked(ctx, dir, e.ID) {
				ids = append(ids, e.ID)
			}
		}
	}
	return ids, errs
}

// reapRuns removes what the dead runs ids left, each under its lock (a run
// another cleaner holds is skipped), and says what it removed on out.
func reapRuns(ctx context.Context, dir string, ids []string, opts reaper.Options, out io.Writer) []error {
	var errs []error
	for _, id := range ids {
		dead, err := runreg.TryDead(dir, id)
		if errors.Is(err, runreg.ErrAlive) {
			continue // another sweep or the watcher is at it
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t, err := reaper.Reap(ctx, dir, id, opts)
		for _, l := range t.Lines() {
			fmt.Fprintln(out, "removed "+l)
		}
		if err != nil {
			errs = append(errs, err)
			dead.Close()
			continue
		}
		errs = append(errs, dead.Done())
	}
	return errs
}

// Package reaper finds and removes what a jobsim run left on this machine:
// its processes (they carry the run id in $JOBSIM_RUN), the FUSE mounts
// under its folder, its containers and networks (labelled with the run id
// as owner) and its folder, which holds every temporary folder of the run
// ($TMPDIR). It is what the watcher (`jobsim watch`) does when its run
// dies, and what `jobsim sweep` does for runs whose watcher died too.
//
// It never decides whether a run is dead: callers take the run's lock
// first (package internal/runreg).
package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/internal/procmark"
	"github.com/jobsim/jobsim/internal/runreg"
	"github.com/jobsim/jobsim/sim/fsys/fusefs"
)

// Things is what a run left.
type Things struct {
	Run        string
	Processes  []procmark.Process
	Mounts     []string           // FUSE mountpoints under the run's folder
	Folder     string             // the run's folder, "" when gone
	Containers []container.Object // its containers and networks
	// UsedDocker says the run was making containers: they were found, or
	// its folder holds what the container backend makes first (a
	// topology's or a container's key folder, an image build context,
	// the containers folder of a scenario run).
	UsedDocker bool
}

// Empty reports whether nothing is left.
func (t Things) Empty() bool {
	return len(t.Processes) == 0 && len(t.Mounts) == 0 && t.Folder == "" && len(t.Containers) == 0
}

// Lines describe the things one per line ("process 123 cylc play ...",
// "mount /tmp/...", "folder /tmp/...", "container NAME", "network NAME"),
// each ending with run=<id>.
func (t Things) Lines() []string {
	var out []string
	sfx := " run=" + t.Run
	for _, p := range t.Processes {
		out = append(out, fmt.Sprintf("process %d %s%s", p.PID, p.Command, sfx))
	}
	for _, m := range t.Mounts {
		out = append(out, "mount "+m+sfx)
	}
	if t.Folder != "" {
		out = append(out, "folder "+t.Folder+sfx)
	}
	for _, o := range t.Containers {
		out = append(out, o.Kind+" "+o.Name+sfx)
	}
	return out
}

// Options says where to look.
type Options struct {
	// Docker looks for containers and networks too (skipped when no
	// engine answers).
	Docker bool
}

// LateContainers looks once more for containers and networks of run id,
// after wait, and removes them: the engine may finish creating one the
// run asked for just before it died, after Reap looked. The watcher calls
// it once the rest is clean.
func LateContainers(ctx context.Context, id string, wait time.Duration) ([]container.Object, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(wait):
	}
	objs, err := containersOf(ctx, id)
	if err != nil || len(objs) == 0 {
		return nil, err
	}
	_, err = container.SweepOwner(ctx, id)
	return objs, err
}

// Find lists what run id of registry dir left, touching nothing.
func Find(ctx context.Context, dir, id string, o Options) (Things, error) {
	t := Things{Run: id}
	var errs []error
	procs, err := procmark.Marked(runreg.EnvVar, id)
	errs = append(errs, err)
	t.Processes = procs
	t.Mounts, err = mountsOf(runreg.TempDir(dir, id), id)
	errs = append(errs, err)
	if _, err := os.Lstat(runreg.TempDir(dir, id)); err == nil {
		t.Folder = runreg.TempDir(dir, id)
	}
	if o.Docker {
		objs, err := containersOf(ctx, id)
		errs = append(errs, err)
		t.Containers = objs
	}
	return t, errors.Join(errs...)
}

// Reap removes what run id left, in the order that lets each step work:
// processes first (no one then holds the FUSE connections or uses the
// containers), then mounts (lazily), containers and networks, and the
// folder last. It returns what it found. The caller holds the run's lock.
func Reap(ctx context.Context, dir, id string, o Options) (Things, error) {
	t := Things{Run: id}
	var errs []error
	killCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	procs, err := procmark.KillMarked(killCtx, runreg.EnvVar, id)
	cancel()
	t.Processes = procs
	errs = append(errs, err)

	folder := runreg.TempDir(dir, id)
	mounts, err := mountsOf(folder, id)
	errs = append(errs, err)
	// Deepest first: a mount inside another goes before it.
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := fusefs.LazyUnmount(mounts[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		t.Mounts = append(t.Mounts, mounts[i])
	}
	if o.Docker {
		objs, err := containersOf(ctx, id)
		errs = append(errs, err)
		if len(objs) > 0 {
			_, err := container.SweepOwner(ctx, id)
			errs = append(errs, err)
			t.Containers = objs
		}
	}
	t.UsedDocker = len(t.Containers) > 0 || usedDocker(folder)
	if _, err := os.Lstat(folder); err == nil {
		t.Folder = folder
		if err := os.RemoveAll(folder); err != nil {
			errs = append(errs, fmt.Errorf("remove the folder of run %s: %w", id, err))
		}
	}
	return t, errors.Join(errs...)
}

// Unstick frees run id if it is killed but stuck exiting (see AbortFUSE
// and runreg.Exiting), and says whether it was: the lock is released as
// soon as the process has finished exiting.
func Unstick(dir, id string) (bool, error) {
	pid := runreg.Holder(dir, id)
	if pid == 0 || !runreg.Exiting(pid) {
		return false, nil
	}
	_, err := AbortFUSE(runreg.TempDir(dir, id), id)
	return true, err
}

// AbortFUSE aborts the FUSE connections of run id's jobsimfs mounts (see
// mountsOf), so that every request waiting on them fails at once. It is what
// frees a killed run stuck exiting: a thread of it waits for an answer
// from its own FUSE server, which died with it, and holds the run's lock
// meanwhile. As root a forced unmount aborts the connection (the kernel
// aborts, then finds the mount busy: it stays, for Reap to detach);
// otherwise the connection's abort file under /sys/fs/fuse/connections
// (when fusectl is mounted). It returns the mountpoints it aborted.
func AbortFUSE(folder, id string) ([]string, error) {
	mounts, err := mountsOf(folder, id)
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for _, mp := range mounts {
		err := syscall.Unmount(mp, syscall.MNT_FORCE)
		if err == nil || errors.Is(err, syscall.EBUSY) {
			done = append(done, mp)
			continue
		}
		if aerr := abortConnection(mp); aerr != nil {
			errs = append(errs, fmt.Errorf("abort the FUSE connection of %s: forced unmount: %w; %w", mp, err, aerr))
			continue
		}
		done = append(done, mp)
	}
	return done, errors.Join(errs...)
}

// abortConnection writes to the fusectl abort file of the mount at mp.
func abortConnection(mp string) error {
	ms, err := fusefs.ListMounts()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Mountpoint == mp && m.Dev != "" {
			_, minor, _ := strings.Cut(m.Dev, ":")
			return os.WriteFile(filepath.Join("/sys/fs/fuse/connections", minor, "abort"), []byte("1"), 0)
		}
	}
	return fmt.Errorf("%s: not in the mount table", mp)
}

// usedDocker reports whether folder holds what the container backend
// makes before it asks the engine for anything.
func usedDocker(folder string) bool {
	for _, pat := range []string{"jobsim-topology-*", "jobsim-keys-*", "jobsim-image-context-*", "jobsim-run-*/containers"} {
		if m, _ := filepath.Glob(filepath.Join(folder, pat)); len(m) > 0 {
			return true
		}
	}
	return false
}

// mountsOf lists the jobsimfs mounts of run id: those it made (their
// source names it) and any at or below its folder, in mount-table order
// (parents before children).
func mountsOf(folder, id string) ([]string, error) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		return nil, nil
	}
	ms, err := fusefs.ListMounts()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.Run == id || m.Mountpoint == folder || strings.HasPrefix(m.Mountpoint, folder+"/") {
			out = append(out, m.Mountpoint)
		}
	}
	return out, nil
}

// containersOf lists the containers and networks owned by run id, or
// nothing when no Docker engine answers.
func containersOf(ctx context.Context, id string) ([]container.Object, error) {
	if container.DockerAvailable(ctx) != nil {
		return nil, nil
	}
	objs, err := container.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []container.Object
	for _, o := range objs {
		if o.Owner == id && o.Kind != "image" {
			out = append(out, o)
		}
	}
	return out, nil
}

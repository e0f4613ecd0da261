// Package runreg is the registry of live jobsim runs: each run (a `jobsim
// run`, `up` or `host`, or a Go process that creates containers) has an
// id, a lock file it holds with flock(2) for as long as it lives, and a
// folder that is its temporary directory ($TMPDIR of the run and of
// everything it starts).
//
// A dead run cannot keep holding its lock: the kernel releases it with the
// process, whatever killed it, and a reused pid cannot take it over. So
// "is run X alive" is "is X's lock held", never "does a pid exist", and
// whatever a run creates carries its id (containers and networks a label,
// processes the JOBSIM_RUN environment variable, temporary folders and
// FUSE mounts their place under the run's folder). The watcher (`jobsim
// watch`) and `jobsim sweep` find a dead run's things by that id.
//
// Layout of the registry directory (Dir):
//
//	<id>.lock   the lock file, held by the live run (removed last)
//	<id>/       the run's temporary directory (its $TMPDIR)
//	<id>.watch.log  what its watcher did (kept when it could not finish)
package runreg

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// EnvVar is set to the run id in the environment of everything a run
// starts (and of the run itself), so that its processes can be found by
// reading /proc/<pid>/environ.
const EnvVar = "JOBSIM_RUN"

// DirEnv overrides the registry directory (tests give each run its own).
const DirEnv = "JOBSIM_RUNS_DIR"

// idPattern is what a run id looks like: r and 8 hex digits. Short, so that
// Unix socket paths under a run's folder stay under the 108-byte limit.
var idPattern = regexp.MustCompile(`^r[0-9a-f]{8}$`)

// ValidID reports whether id has the form of a run id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Dir is the registry directory: $JOBSIM_RUNS_DIR, else
// /tmp/jobsim-<uid>. It does not follow $TMPDIR, which a run points at
// its own folder.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return filepath.Join("/tmp", "jobsim-"+strconv.Itoa(os.Getuid()))
}

// Run is a registered, live run: this process holds its lock.
type Run struct {
	id   string
	dir  string // registry directory
	lock *os.File
}

// Start registers a new run in the registry directory dir ("" for Dir()):
// it creates and locks <id>.lock and creates the run's folder. The lock is
// held until Close or until the process dies. The lock file is opened
// close-on-exec, so no child keeps it held after the run is gone.
func Start(dir string) (*Run, error) {
	if dir == "" {
		dir = Dir()
	}
	// Traversable by everyone (hosts run commands as other users under
	// the run's folder), listable by the owner only.
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("run registry %s: %w", dir, err)
	}
	// The lock file is locked before it gets its name, so that no sweep
	// ever sees it unlocked and takes the starting run for a dead one.
	f, err := os.CreateTemp(dir, ".new-*")
	if err != nil {
		return nil, fmt.Errorf("run registry %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("run registry: lock %s: %w", f.Name(), err)
	}
	fmt.Fprintf(f, "pid %d\ncommand %s\n", os.Getpid(), strings.Join(os.Args, " "))
	for range 10 {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id := "r" + hex.EncodeToString(b)
		if err := os.Link(f.Name(), lockPath(dir, id)); errors.Is(err, os.ErrExist) {
			continue
		} else if err != nil {
			f.Close()
			return nil, fmt.Errorf("run registry %s: %w", dir, err)
		}
		r := &Run{id: id, dir: dir, lock: f}
		if err := os.Mkdir(r.TempDir(), 0o711); err != nil {
			r.Close()
			return nil, fmt.Errorf("run registry: folder of run %s: %w", id, err)
		}
		return r, nil
	}
	f.Close()
	return nil, errors.New("run registry: no free run id after 10 tries")
}

// ID is the run id.
func (r *Run) ID() string { return r.id }

// RegistryDir is the registry directory the run is registered in.
func (r *Run) RegistryDir() string { return r.dir }

// TempDir is the run's folder, the $TMPDIR of the run and its children.
func (r *Run) TempDir() string { return TempDir(r.dir, r.id) }

// LockPath is the run's lock file.
func (r *Run) LockPath() string { return lockPath(r.dir, r.id) }

// Close ends a run that has cleaned up after itself: it removes the run's
// folder (what is left in it) and the lock file, then releases the lock.
func (r *Run) Close() error {
	err := os.RemoveAll(r.TempDir())
	if rerr := os.Remove(r.LockPath()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return errors.Join(err, r.lock.Close())
}

// TempDir is the folder of run id in registry dir.
func TempDir(dir, id string) string { return filepath.Join(dir, id) }

func lockPath(dir, id string) string { return filepath.Join(dir, id+".lock") }

// WatchLog is where the watcher of run id logs; it is removed with the
// registry entry once the run's things are all gone, and kept otherwise.
func WatchLog(dir, id string) string { return filepath.Join(dir, id+".watch.log") }

// Dead is the lock of a dead run, taken: while it is held, no one else
// (another sweep, a watcher) cleans the same run. Release it with Done
// once the run's things are gone, or Close to give up.
type Dead struct {
	ID   string
	dir  string
	lock *os.File
}

// ErrAlive is returned by TryDead for a run whose lock is held.
var ErrAlive = errors.New("run is alive")

// TryDead takes the lock of run id if its holder is gone (a folder whose
// lock file is gone is taken with a new lock file). It returns
// ErrAlive (wrapped) when the run is alive or another cleaner holds it,
// and an error wrapping os.ErrNotExist when no such run is registered.
func TryDead(dir, id string) (*Dead, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("run id %q: want r and 8 hex digits", id)
	}
	flags := os.O_RDWR
	if _, err := os.Stat(TempDir(dir, id)); err == nil {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(lockPath(dir, id), flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("run %s: %w", id, ErrAlive)
		}
		return nil, fmt.Errorf("run %s: lock: %w", id, err)
	}
	return &Dead{ID: id, dir: dir, lock: f}, nil
}

// WaitDead blocks until run id's lock is free (the run has ended, however
// it ended) and takes it. It is how the watcher learns of the run's death.
// A run that is not registered is dead already.
func WaitDead(dir, id string) (*Dead, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("run id %q: want r and 8 hex digits", id)
	}
	f, err := os.OpenFile(lockPath(dir, id), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("run %s: lock: %w", id, err)
		}
	}
	return &Dead{ID: id, dir: dir, lock: f}, nil
}

// TempDir is the dead run's folder.
func (d *Dead) TempDir() string { return TempDir(d.dir, d.ID) }

// Done removes the dead run from the registry (its folder must be clean
// by now: it is removed with what is left; and its watcher's log) and
// releases the lock.
func (d *Dead) Done() error {
	if err := os.RemoveAll(d.TempDir()); err != nil {
		// Kept in the registry, for sweep to try again.
		return errors.Join(fmt.Errorf("run %s: remove its folder: %w", d.ID, err), d.lock.Close())
	}
	var err error
	if rerr := os.Remove(WatchLog(d.dir, d.ID)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if rerr := os.Remove(lockPath(d.dir, d.ID)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return errors.Join(err, d.lock.Close())
}

// Close releases the lock and leaves the registry entry.
func (d *Dead) Close() error { return d.lock.Close() }

// Entry is a registered run.
type Entry struct {
	ID    string
	Alive bool
}

// List returns the runs registered in dir, sorted by id, with whether each
// is alive (its lock held). A missing directory holds no runs.
func List(dir string) ([]Entry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run registry %s: %w", dir, err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		id := strings.TrimSuffix(e.Name(), ".lock")
		if ValidID(id) {
			seen[id] = true
		}
	}
	var out []Entry
	for id := range seen {
		out = append(out, Entry{ID: id, Alive: Alive(dir, id)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Alive reports whether run id's lock is held. A run folder without its
// lock file (the lock removed, the folder not) is dead.
func Alive(dir, id string) bool {
	f, err := os.OpenFile(lockPath(dir, id), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// Holder is the pid of the process holding run id's lock, from
// /proc/locks (0 when the lock is free or the table cannot be read). A pid
// is not freed while its process holds a lock, so it names that process.
func Holder(dir, id string) int {
	var st syscall.Stat_t
	if err := syscall.Stat(lockPath(dir, id), &st); err != nil {
		return 0
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	// 1: FLOCK  ADVISORY  WRITE 17734 fe:00:9994529 0 EOF
	// (a waiter's line has "->" after the number: the watcher's)
	want := ":" + strconv.FormatUint(st.Ino, 10)
	for _, line := range strings.Split(string(locks), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" || !strings.HasSuffix(f[5], want) {
			continue
		}
		maj, min := st.Dev>>8&0xfff, st.Dev&0xff|(st.Dev>>12)&0xfff00
		if f[5] != fmt.Sprintf("%02x:%02x%s", maj, min, want) {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err == nil {
			return pid
		}
	}
	return 0
}

// Exiting reports whether process pid has been killed but not yet
// finished exiting: it is a zombie whose other threads still run, or its
// kernel flags say it is exiting (PF_EXITING), typically stuck in a FUSE
// request that its own, now dead, FUSE server would have answered (closing
// a file of its mount). Such a process still holds its lock, so the
// cleaner must free what it is stuck on.
func Exiting(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags ...: the
	// fields after the last ")"
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	if f[0] == "Z" || f[0] == "X" {
		return true
	}
	const pfExiting = 0x4
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&pfExiting != 0
}

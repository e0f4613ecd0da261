package real

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WithHidden hides directories of the test machine from the executor's
// processes: each one looks like an empty read-only directory to them,
// while the rest of the machine stays as it is. It is how a host's
// userland shows only what the host is meant to have, such as a Python
// without the machine's own copy of the Cylc under test (which Python
// would otherwise import, silently, when the host's Cylc library cannot be
// listed). Hiding needs a private mount namespace (root, or CAP_SYS_ADMIN);
// where none can be had the executor runs its processes unhidden and
// Isolation says why.
func WithHidden(dirs ...string) Option {
	return func(e *Executor) { e.hidden = append(e.hidden, dirs...) }
}

// Isolation reports whether the directories given to WithHidden are hidden
// from the executor's processes: nil when they are (or none were given),
// else why not.
func (e *Executor) Isolation() error { return e.isoErr }

// Hidden returns the directories hidden from the executor's processes
// (none when Isolation fails).
func (e *Executor) Hidden() []string {
	if e.ns == nil {
		return nil
	}
	return slices.Clone(e.ns.hidden)
}

// mountNS is a private mount namespace held by one OS thread: processes
// forked from that thread start in it. The thread is locked to its
// goroutine and never unlocked, so the Go runtime neither schedules other
// goroutines on it nor clones new threads from it, and it dies when the
// goroutine returns (which frees the namespace once its processes are
// gone too).
type mountNS struct {
	hidden []string
	ino    uint64 // inode of the namespace (/proc/PID/ns/mnt)
	reqs   chan nsReq
	done   chan struct{}

	mu     sync.Mutex
	closed bool
}

type nsReq struct {
	fn   func() error
	errc chan error
}

// hideable checks the directories to hide and keeps those that exist
// (a missing one has nothing to hide).
func hideable(dirs []string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("hidden directory %q: want an absolute path", d)
		}
		fi, err := os.Stat(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("hidden directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("hidden directory %s: not a directory", d)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// newMountNS starts the namespace thread: a private mount namespace with an
// empty read-only tmpfs over each directory of hide (see hideable).
func newMountNS(hide []string) (*mountNS, error) {
	ns := &mountNS{hidden: hide, reqs: make(chan nsReq), done: make(chan struct{})}
	ready := make(chan error, 1)
	go ns.run(ready)
	if err := <-ready; err != nil {
		<-ns.done
		return nil, err
	}
	return ns, nil
}

func (ns *mountNS) run(ready chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	if unix.Gettid() == unix.Getpid() {
		// The main thread: its namespace is the process's own (what
		// /proc/self shows), and the runtime keeps it wedged rather than
		// ending it. Hold it while another goroutine locks a thread of its
		// own, then let it go.
		locked := make(chan struct{})
		go func() {
			runtime.LockOSThread() // not the main thread: that is held
			close(locked)
			ns.serve(ready)
		}()
		<-locked
		runtime.UnlockOSThread()
		return
	}
	ns.serve(ready)
}

// serve runs on the locked thread.
func (ns *mountNS) serve(ready chan<- error) {
	defer close(ns.done)
	if err := ns.setup(); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for r := range ns.reqs {
		r.errc <- r.fn()
	}
}

// setup runs on the locked thread.
func (ns *mountNS) setup() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("private mount namespace: unshare: %w (needs root or CAP_SYS_ADMIN)", err)
	}
	// Nothing mounted here may reach the machine's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private mount namespace: make mounts private: %w", err)
	}
	for _, d := range ns.hidden {
		if err := unix.Mount("jobsim-hidden", d, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0755"); err != nil {
			return fmt.Errorf("hide %s: mount an empty tmpfs over it: %w", d, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/mnt", unix.Gettid()), &st); err != nil {
		return fmt.Errorf("private mount namespace: %w", err)
	}
	ns.ino = st.Ino
	return nil
}

// do runs fn on the namespace thread, so that processes it forks start in
// the namespace.
func (ns *mountNS) do(fn func() error) error {
	errc := make(chan error, 1)
	ns.mu.Lock()
	if ns.closed {
		ns.mu.Unlock()
		return errors.New("real executor: closed")
	}
	ns.reqs <- nsReq{fn: fn, errc: errc}
	ns.mu.Unlock()
	return <-errc
}

// close ends the namespace thread, then kills whatever still runs in the
// namespace (processes that left their command's process group), so that
// the namespace, and the copies of the machine's mounts it holds (a FUSE
// fault mount among them), go away with the executor. It returns the
// processes still there after 5s.
func (ns *mountNS) close() []int {
	ns.mu.Lock()
	if !ns.closed {
		ns.closed = true
		close(ns.reqs)
	}
	ns.mu.Unlock()
	<-ns.done
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := ns.members()
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// members lists the live processes in the namespace.
func (ns *mountNS) members() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, d := range entries {
		var pid int
		if _, err := fmt.Sscanf(d.Name(), "%d", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+d.Name()+"/ns/mnt", &st) != nil || st.Ino != ns.ino {
			continue
		}
		if f := procStat(d.Name()); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
			continue // a zombie holds no namespace
		}
		pids = append(pids, pid)
	}
	return pids
}

// PythonPackageDirs finds where the test machine's Python interpreters
// carry the top-level package pkg: for each python3 on path (a PATH-style
// list, default DefaultPath), the directories <entry>/<pkg> of its
// sys.path (as `python3 -I` sees it: no PYTHONPATH, no user site). A
// host whose Cylc comes from its own library directory hides these
// (WithHidden), as the machine's copy is not the host's.
func PythonPackageDirs(ctx context.Context, pkg, path string) ([]string, error) {
	if path == "" {
		path = DefaultPath
	}
	var dirs, seen []string
	for _, bin := range filepath.SplitList(path) {
		py, err := filepath.EvalSymlinks(filepath.Join(bin, "python3"))
		if err != nil || slices.Contains(seen, py) {
			continue
		}
		seen = append(seen, py)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(ctx, py, "-I", "-c", "import sys; print('\\n'.join(sys.path))").Output()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("sys.path of %s: %w", py, err)
		}
		for _, entry := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if entry == "" || !filepath.IsAbs(entry) {
				continue
			}
			d, err := filepath.EvalSymlinks(filepath.Join(entry, pkg))
			if err != nil || slices.Contains(dirs, d) {
				continue
			}
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs, nil
}

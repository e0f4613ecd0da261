// Package fusefs mounts the filesystem fault layer with FUSE over a real
// directory, so that real processes (ls, cat, python imports, rsync, cylc)
// meet the same fault rules as the in-process afero layer of package fsys.
//
// It is go-fuse's loopback filesystem with hooks: each operation first asks
// the fault.Set which "fs" rules fire for the path the user sees (under the
// mountpoint), waits out latencies and hangs, fails with the rule's errno or
// reports a perm rule's permission bits, then does the real operation on
// the backing directory. The kernel's entry, attribute and negative caches
// are off, so that a rule takes effect on the next system call.
//
// Operation names as in fsys: LOOKUP is "lstat" (of the child), GETATTR and
// STATX are "stat", OPEN is "open", CREATE/MKNOD/TMPFILE are "create",
// OPENDIR is "opendir", READDIR is "readdir" (checked once per listing, when
// it starts), READ "read", WRITE "write", FSYNC "sync", MKDIR "mkdir",
// UNLINK and RMDIR "remove", RENAME "rename" (by either path), SYMLINK
// "symlink", READLINK "readlink", and SETATTR "chmod", "chown", "truncate"
// or "chtimes" by what it changes. Not hooked: hard links, xattrs, statfs,
// locks, flush. The user of a rule is the caller's user name (by uid).
//
// Caveat: a file's data already in the page cache of an open file is read
// without asking the filesystem; rules apply from the next open on.
package fusefs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/runreg"
)

// fsType is the name after "fuse." in /proc/self/mountinfo; stale mounts
// are recognised by it.
const fsType = "jobsimfs"

// FS is one FUSE mount of the fault layer. Unmount it when done; it is
// also unmounted when the context given to Mount ends.
type FS struct {
	mountpoint string
	backing    string
	visible    string
	set        *fault.Set
	log        *slog.Logger
	lookupUser func(uid uint32) string

	ctx    context.Context // ends hangs and latencies at unmount
	cancel context.CancelFunc
	server *fuse.Server
	hold   *os.File // the backing directory, when mounted over itself

	users sync.Map // uid -> name

	unmountOnce sync.Once
	unmountErr  error
}

// Option configures Mount.
type Option func(*config)

type config struct {
	visible    string
	log        *slog.Logger
	lookupUser func(uid uint32) string
	timeout    time.Duration
	debug      bool
}

// WithVisiblePath sets the path that rule paths are relative to, when the
// processes see the mount elsewhere than at the mountpoint (inside a
// container or a chroot). Default: the mountpoint.
func WithVisiblePath(p string) Option { return func(c *config) { c.visible = p } }

// WithLogger logs mounting, unmounting and go-fuse's messages to l.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithUserLookup names the user of a caller's uid for rules with User
// (default: the host's user database, else the uid in decimal).
func WithUserLookup(f func(uid uint32) string) Option { return func(c *config) { c.lookupUser = f } }

// WithCacheTimeout lets the kernel cache entries and attributes for d
// (default 0: every system call reaches the rules; raise it for speed when
// rules change rarely). With caching, an errno or perm rule added or
// cleared reaches what the kernel holds only when that times out; hangs
// and latencies are still released at once.
func WithCacheTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithDebug logs every FUSE request (to the logger, at debug level).
func WithDebug() Option { return func(c *config) { c.debug = true } }

// Mount mounts the fault layer of set over backingDir at mountpoint, which
// must be an existing directory. It may be backingDir itself: the faults
// then appear in place. A stale mount of an earlier crashed run at
// mountpoint is lazily unmounted first. The mount lives until Unmount or
// until ctx ends.
func Mount(ctx context.Context, backingDir, mountpoint string, set *fault.Set, opts ...Option) (*FS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	c := config{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	if set == nil {
		set = fault.NewSet()
	}
	backing, err := realDir("backing directory", backingDir)
	if err != nil {
		return nil, err
	}
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return nil, fmt.Errorf("fuse mountpoint %s: %w", mountpoint, err)
	}
	// A stale mountpoint cannot be resolved itself ("Transport endpoint is
	// not connected"): find it in the mount table by its resolved parent.
	if parent, err := filepath.EvalSymlinks(filepath.Dir(mp)); err == nil {
		mp = filepath.Join(parent, filepath.Base(mp))
	}
	if err := cleanStale(mp, c.log); err != nil {
		return nil, err
	}
	if mp, err = realDir("fuse mountpoint", mp); err != nil {
		return nil, err
	}
	if mp != backing && strings.HasPrefix(mp+"/", backing+"/") {
		return nil, fmt.Errorf("fuse mountpoint %s is inside the backing directory %s: the mount would contain itself", mp, backing)
	}
	m := &FS{mountpoint: mp, backing: backing, visible: mp, set: set, log: c.log.With("mountpoint", mp)}
	if c.visible != "" {
		if !filepath.IsAbs(c.visible) {
			return nil, fmt.Errorf("fuse visible path %q must be absolute", c.visible)
		}
		m.visible = filepath.Clean(c.visible)
	}
	m.lookupUser = c.lookupUser
	if m.lookupUser == nil {
		m.lookupUser = systemUser
	}

	rootPath := backing
	if mp == backing {
		// Mounted over itself: reach the directory underneath through a
		// descriptor opened before mounting.
		m.hold, err = os.Open(backing)
		if err != nil {
			return nil, fmt.Errorf("fuse backing directory %s: %w", backing, err)
		}
		rootPath = fmt.Sprintf("/proc/self/fd/%d", m.hold.Fd())
	}
	root, err := gofs.NewLoopbackRoot(rootPath)
	if err != nil {
		m.closeHold()
		return nil, fmt.Errorf("fuse backing directory %s: %w", backing, err)
	}
	rootNode := &node{LoopbackNode: root.(*gofs.LoopbackNode), m: m}

	timeout := c.timeout
	fopts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:  true,
			FsName:      fsName(backing),
			Name:        fsType,
			DirectMount: true,
			Options:     []string{"default_permissions"},
			Debug:       c.debug,
			Logger:      slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		Logger:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	server, err := mountNoInherit(mp, rootNode, fopts)
	if err != nil {
		m.cancel()
		m.closeHold()
		return nil, fmt.Errorf("fuse mount of %s at %s: %w", backing, mp, err)
	}
	m.server = server
	m.log.Info("fuse fault layer mounted", "backing", backing, "visible", m.visible)
	go func() {
		select {
		case <-ctx.Done():
			if err := m.Unmount(); err != nil {
				m.log.Error("unmount when the context ended", "err", err)
			}
		case <-m.ctx.Done():
		}
	}()
	return m, nil
}

// mountNoInherit mounts so that no child process inherits /dev/fuse: a
// child holding it keeps the FUSE connection open after this process
// dies, and every access to the mountpoint then hangs for ever. go-fuse
// (v2.12) opens /dev/fuse without O_CLOEXEC, and on its direct-mount path
// never sets close-on-exec at all (fuse/mount_linux.go returns before
// CloseOnExec). So the mount is made holding syscall.ForkLock for reading,
// the runtime's rule for descriptors made without O_CLOEXEC (no fork
// happens meanwhile), and every /dev/fuse descriptor of this process is
// then marked close-on-exec before the lock is released. As root the
// mount is direct only (no fallback on fusermount, which forks and so
// cannot run under the lock); otherwise go-fuse runs fusermount, which
// hands the descriptor over, and it is marked right after.
func mountNoInherit(mp string, root gofs.InodeEmbedder, o *gofs.Options) (*fuse.Server, error) {
	// gofs.Mount, with the descriptor made under the lock.
	direct := os.Geteuid() == 0
	if direct {
		o.MountOptions.DirectMountStrict = true
		syscall.ForkLock.RLock()
	}
	server, err := fuse.NewServer(gofs.NewNodeFS(root, o), mp, &o.MountOptions)
	cerr := devFuseCloseOnExec()
	if direct {
		syscall.ForkLock.RUnlock()
	}
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		_ = server.Unmount()
		return nil, cerr
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, err
	}
	return server, nil
}

// devFuseCloseOnExec marks every /dev/fuse descriptor of this process
// close-on-exec.
func devFuseCloseOnExec() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("fuse: list descriptors: %w", err)
	}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || l != "/dev/fuse" {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		syscall.CloseOnExec(fd)
	}
	return nil
}

func realDir(what, p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, p, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, p, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, p, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s %s: not a directory", what, p)
	}
	return real, nil
}

// Mountpoint is where the mount is.
func (m *FS) Mountpoint() string { return m.mountpoint }

// Backing is the directory whose contents the mount shows.
func (m *FS) Backing() string { return m.backing }

// Unmount takes the mount down: hanging and delayed operations are
// released first, then the filesystem is unmounted, lazily if a process
// still uses it. Calling it again returns the first result.
func (m *FS) Unmount() error {
	m.unmountOnce.Do(func() {
		m.cancel()
		err := m.server.Unmount()
		if err != nil {
			m.log.Warn("unmount busy; detaching lazily", "err", err)
			if lerr := LazyUnmount(m.mountpoint); lerr != nil {
				m.unmountErr = fmt.Errorf("unmount %s: %w; lazy unmount: %w", m.mountpoint, err, lerr)
			}
		} else {
			m.server.Wait()
		}
		m.closeHold()
		m.log.Info("fuse fault layer unmounted")
	})
	return m.unmountErr
}

func (m *FS) closeHold() {
	if m.hold != nil {
		m.hold.Close()
	}
}

// LazyUnmount detaches the mount at mp even while in use (as root by
// umount2(MNT_DETACH), else with fusermount3 -u -z). The watcher and
// `jobsim sweep` use it on the mounts of dead runs.
func LazyUnmount(mp string) error {
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err == nil {
			return nil
		}
	}
	bin, err := fusermount()
	if err != nil {
		return err
	}
	out, err := exec.Command(bin, "-u", "-z", mp).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -u -z %s: %w: %s", bin, mp, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cleanStale lazily unmounts every jobsimfs mount at mp, left by a run
// that crashed (the mountpoint then answers "Transport endpoint is not
// connected").
func cleanStale(mp string, log *slog.Logger) error {
	mounts, err := ListMounts()
	if err != nil {
		return err
	}
	for _, e := range mounts {
		if e.Mountpoint != mp {
			continue
		}
		log.Warn("removing a stale fuse mount", "mountpoint", mp, "source", e.Source)
		if err := LazyUnmount(mp); err != nil {
			return fmt.Errorf("stale fuse mount at %s: %w", mp, err)
		}
	}
	return nil
}

// MountEntry is one jobsimfs mount in the mount table.
type MountEntry struct {
	Mountpoint string
	Source     string // the backing directory
	Dev        string // major:minor; the minor names the connection under /sys/fs/fuse/connections
	// Run is the jobsim run whose process mounted it ($JOBSIM_RUN then,
	// package internal/runreg), so that its watcher finds it wherever it
	// is; "" for a mount made outside a run.
	Run string
}

// runSourcePrefix starts the mount source of a mount made by a jobsim run:
// jobsim-run:<id>:<backing directory>.
const runSourcePrefix = "jobsim-run:"

// fsName is the mount source: the backing directory, with the run id in
// front under a jobsim run.
func fsName(backing string) string {
	if run := os.Getenv(runreg.EnvVar); run != "" {
		return runSourcePrefix + run + ":" + backing
	}
	return backing
}

// ListMounts lists the jobsimfs mounts of this mount namespace, from
// /proc/self/mountinfo.
func ListMounts() ([]MountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

func parseMountinfo(r io.Reader) ([]MountEntry, error) {
	var out []MountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - fuse.jobsimfs /src rw,...
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 2 || qf[0] != "fuse."+fsType {
			continue
		}
		e := MountEntry{Mountpoint: unescape(pf[4]), Source: unescape(qf[1]), Dev: pf[2]}
		if rest, ok := strings.CutPrefix(e.Source, runSourcePrefix); ok {
			if run, backing, ok := strings.Cut(rest, ":"); ok {
				e.Run, e.Source = run, backing
			}
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return out, nil
}

// unescape decodes the octal escapes (\040 for a space) of mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// systemUser names uid from the user database, or gives the number.
func systemUser(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

func (m *FS) userOf(ctx context.Context) string {
	caller, ok := fuse.FromContext(ctx)
	if !ok {
		return ""
	}
	if v, ok := m.users.Load(caller.Uid); ok {
		return v.(string)
	}
	name := m.lookupUser(caller.Uid)
	m.users.Store(caller.Uid, name)
	return name
}

// outcome is what the rules firing for one operation decided.
type outcome struct {
	errno syscall.Errno
	perm  *uint32
}

// check asks the rules about op on the visible path p for the caller of
// ctx, waiting out latencies and hangs (until the caller is interrupted or
// the mount goes away: EINTR).
func (m *FS) check(ctx context.Context, op, p string) outcome {
	fired := m.set.Check(fault.Op{Layer: fault.FS, Name: op, Path: p, User: m.userOf(ctx)})
	if len(fired) == 0 {
		return outcome{}
	}
	if _, ok := fault.First(fired, fault.Latency, fault.Hang); ok {
		wctx, cancel := context.WithCancel(m.ctx)
		stop := context.AfterFunc(ctx, cancel)
		err := m.set.Wait(wctx, fired)
		stop()
		cancel()
		if err != nil {
			return outcome{errno: syscall.EINTR}
		}
	}
	var out outcome
	if r, ok := fault.First(fired, fault.Errno); ok {
		e, err := fault.ParseErrno(r.Effect.Errno)
		if err != nil {
			e = syscall.EIO
		}
		out.errno = e
	}
	if r, ok := fault.First(fired, fault.Perm); ok {
		out.perm = r.Effect.Mode
	}
	return out
}

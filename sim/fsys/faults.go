package fsys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/fault"
)

// FaultFs is an afero.Fs whose every operation first asks a fault.Set which
// "fs" rules fire, then waits out latencies and hangs, fails with the rule's
// errno, or (for stat) reports the rule's permission bits, before or instead
// of calling the wrapped filesystem. Files it opens are wrapped the same way,
// so reading, writing and listing through an open handle fail too. With no
// rule firing it behaves exactly like the wrapped filesystem.
//
// Names are made absolute and clean before anything else (Abs): a relative
// name (afero.NewIOFS passes "opt/lib") is taken relative to "/", as on a
// host whose working directory is the root. Rules match that path and the
// wrapped filesystem receives it, so afero.NewIOFS works over a MemMapFs.
//
// Perm rules change what Stat, Lstat and File.Stat report; the entries of a
// directory listing (Readdir) keep their real modes. A rule fires, and is
// recorded as an activation, on every operation it selects, so give a perm
// rule the ops stat and lstat.
//
// A FaultFs is safe for concurrent use when the wrapped filesystem is.
type FaultFs struct {
	base afero.Fs
	set  *fault.Set
	user string
	ctx  context.Context
}

// Option configures a FaultFs.
type Option func(*FaultFs)

// WithUser attaches the user on whose behalf operations run, so that rules
// with a User selector select them. See also ForUser.
func WithUser(name string) Option { return func(f *FaultFs) { f.user = name } }

// WithContext sets the context that latency and hang effects wait under: a
// hang ends when its rule is cleared or when ctx ends (the host closing, or
// the ssh session that made the call going away). The default never ends.
func WithContext(ctx context.Context) Option { return func(f *FaultFs) { f.ctx = ctx } }

var (
	_ afero.Fs        = (*FaultFs)(nil)
	_ afero.Symlinker = (*FaultFs)(nil)
)

// WithFaults wraps base so that the fs rules of set apply to every operation.
// A nil set gives an empty one (nothing ever fires).
func WithFaults(base afero.Fs, set *fault.Set, opts ...Option) afero.Fs {
	return newFaultFs(base, set, opts...)
}

func newFaultFs(base afero.Fs, set *fault.Set, opts ...Option) *FaultFs {
	if set == nil {
		set = fault.NewSet()
	}
	f := &FaultFs{base: base, set: set, ctx: context.Background()}
	for _, o := range opts {
		o(f)
	}
	return f
}

// ForUser returns a view of f whose operations run on behalf of user (rules
// with User select by it). It shares the base filesystem and the rule set.
func (f *FaultFs) ForUser(user string) *FaultFs {
	g := *f
	g.user = user
	return &g
}

// WithContext returns a view of f whose latencies and hangs wait under ctx,
// for example the context of one ssh session, so that closing the session
// releases its hanging calls.
func (f *FaultFs) WithContext(ctx context.Context) *FaultFs {
	g := *f
	g.ctx = ctx
	return &g
}

// User is the user attached to f ("" when none).
func (f *FaultFs) User() string { return f.user }

// Base is the wrapped filesystem.
func (f *FaultFs) Base() afero.Fs { return f.base }

// ForUser returns fsys viewed as user when it is (or wraps nothing but) a
// FaultFs, and fsys unchanged otherwise, so that callers holding a plain
// afero.Fs can attach the user of a session without knowing what it is.
func ForUser(fsys afero.Fs, user string) afero.Fs {
	if f, ok := fsys.(*FaultFs); ok {
		return f.ForUser(user)
	}
	return fsys
}

// ForContext returns fsys whose latencies and hangs wait under ctx when it
// is a FaultFs (see FaultFs.WithContext), and fsys unchanged otherwise.
func ForContext(fsys afero.Fs, ctx context.Context) afero.Fs {
	if f, ok := fsys.(*FaultFs); ok {
		return f.WithContext(ctx)
	}
	return fsys
}

// Abs turns a name as given to an afero.Fs into the absolute clean path that
// rule paths are matched against: relative names are taken relative to "/".
func Abs(name string) string {
	if name == "" {
		return "/"
	}
	if name[0] != '/' {
		name = "/" + name
	}
	return path.Clean(name)
}

// outcome is what the rules firing for one operation decided.
type outcome struct {
	err  error   // an errno, or the wait's interruption; nil: go on
	perm *uint32 // permission bits stat should report
}

// check asks the set which rules fire for the operation op on the absolute
// path p, waits out latencies and hangs, and reports what to do.
func (f *FaultFs) check(op, p string) outcome {
	fired := f.set.Check(fault.Op{Layer: fault.FS, Name: op, Path: p, User: f.user})
	if len(fired) == 0 {
		return outcome{}
	}
	if err := f.set.Wait(f.ctx, fired); err != nil {
		return outcome{err: interrupted(err)}
	}
	var out outcome
	if r, ok := fault.First(fired, fault.Errno); ok {
		e, err := fault.ParseErrno(r.Effect.Errno)
		if err != nil { // Set.Add validated it; keep a clear error anyway
			e = syscall.EIO
		}
		out.err = e
	}
	if r, ok := fault.First(fired, fault.Perm); ok {
		out.perm = r.Effect.Mode
	}
	return out
}

// interrupted is the error of an operation whose latency or hang was cut
// short by the context ending: it is EINTR and also the context's error.
func interrupted(ctxErr error) error {
	return fmt.Errorf("%w (fault wait: %w)", syscall.EINTR, ctxErr)
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// errOnly checks op on the absolute name and returns the path error to
// fail with, or nil.
func (f *FaultFs) errOnly(op, name string) error {
	if o := f.check(op, name); o.err != nil {
		return pathErr(op, name, o.err)
	}
	return nil
}

// Name implements afero.Fs.
func (f *FaultFs) Name() string { return "FaultFs(" + f.base.Name() + ")" }

// Create implements afero.Fs. Creating a file that does not exist is the
// operation "create"; truncating one that does is "open".
func (f *FaultFs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open implements afero.Fs: "open", or "opendir" when name is a directory.
func (f *FaultFs) Open(name string) (afero.File, error) {
	name = Abs(name)
	file, err := f.base.Open(name)
	if err != nil {
		return nil, err
	}
	return f.afterOpen(name, file)
}

// afterOpen applies the open or opendir rules to a file opened without side
// effects, closing it when a rule fails the open.
func (f *FaultFs) afterOpen(name string, file afero.File) (afero.File, error) {
	op := "open"
	if fi, err := file.Stat(); err == nil && fi.IsDir() {
		op = "opendir"
	}
	if o := f.check(op, name); o.err != nil {
		file.Close()
		return nil, pathErr("open", name, o.err)
	}
	return f.wrapFile(file, name), nil
}

// OpenFile implements afero.Fs. A read-only open is "open" or "opendir"; an
// open that may write, truncate or create consults the rules before touching
// the file: "create" when O_CREATE makes a new file, "open" otherwise.
func (f *FaultFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	name = Abs(name)
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) == 0 {
		file, err := f.base.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return f.afterOpen(name, file)
	}
	fi, statErr := f.base.Stat(name)
	var op string
	switch {
	case statErr == nil && fi.IsDir():
		op = "opendir"
	case statErr == nil:
		op = "open"
	case flag&os.O_CREATE != 0 && errors.Is(statErr, fs.ErrNotExist):
		op = "create"
	}
	if op != "" {
		if o := f.check(op, name); o.err != nil {
			return nil, pathErr("open", name, o.err)
		}
	}
	file, err := f.base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f.wrapFile(file, name), nil
}

// Mkdir implements afero.Fs.
func (f *FaultFs) Mkdir(name string, perm os.FileMode) error {
	name = Abs(name)
	if err := f.errOnly("mkdir", name); err != nil {
		return err
	}
	return f.base.Mkdir(name, perm)
}

// MkdirAll implements afero.Fs. Each directory it would create is a "mkdir":
// when a rule fails one, the parents above it exist, as after mkdir -p.
func (f *FaultFs) MkdirAll(name string, perm os.FileMode) error {
	name = Abs(name)
	var missing []string
	for p := name; ; p = path.Dir(p) {
		if _, err := f.base.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if p == "/" {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if o := f.check("mkdir", missing[i]); o.err != nil {
			if i+1 < len(missing) {
				if err := f.base.MkdirAll(missing[i+1], perm); err != nil {
					return err
				}
			}
			return pathErr("mkdir", missing[i], o.err)
		}
	}
	return f.base.MkdirAll(name, perm)
}

// Remove implements afero.Fs.
func (f *FaultFs) Remove(name string) error {
	name = Abs(name)
	if err := f.errOnly("remove", name); err != nil {
		return err
	}
	return f.base.Remove(name)
}

// RemoveAll implements afero.Fs the way rm -r works: it lists each directory
// (readdir) and removes each entry (remove), so rules on any of them apply
// and what was removed before a failure stays removed.
func (f *FaultFs) RemoveAll(name string) error {
	name = Abs(name)
	fi, _, err := f.lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		dir, err := f.Open(name)
		if err != nil {
			return err
		}
		names, err := dir.Readdirnames(-1)
		dir.Close()
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := f.RemoveAll(path.Join(name, n)); err != nil {
				return err
			}
		}
	}
	err = f.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Rename implements afero.Fs: "rename" selected by either name.
func (f *FaultFs) Rename(oldname, newname string) error {
	oldname, newname = Abs(oldname), Abs(newname)
	o := f.check("rename", oldname)
	if o.err == nil {
		o = f.check("rename", newname)
	}
	if o.err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: o.err}
	}
	return f.base.Rename(oldname, newname)
}

// Stat implements afero.Fs; a perm rule replaces the permission bits.
func (f *FaultFs) Stat(name string) (os.FileInfo, error) {
	name = Abs(name)
	o := f.check("stat", name)
	if o.err != nil {
		return nil, pathErr("stat", name, o.err)
	}
	fi, err := f.base.Stat(name)
	if err != nil {
		return nil, err
	}
	return withPerm(fi, o.perm), nil
}

// LstatIfPossible implements afero.Lstater ("lstat"). When the wrapped
// filesystem has no Lstat it stats instead and reports false, as afero does.
func (f *FaultFs) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	return f.lstat(name)
}

func (f *FaultFs) lstat(name string) (os.FileInfo, bool, error) {
	name = Abs(name)
	o := f.check("lstat", name)
	if o.err != nil {
		return nil, true, pathErr("lstat", name, o.err)
	}
	var (
		fi  os.FileInfo
		ok  bool
		err error
	)
	if l, isL := f.base.(afero.Lstater); isL {
		fi, ok, err = l.LstatIfPossible(name)
	} else {
		fi, err = f.base.Stat(name)
	}
	if err != nil {
		return nil, ok, err
	}
	return withPerm(fi, o.perm), ok, nil
}

// SymlinkIfPossible implements afero.Linker ("symlink", selected by the new
// link's path).
func (f *FaultFs) SymlinkIfPossible(oldname, newname string) error {
	newname = Abs(newname)
	if o := f.check("symlink", newname); o.err != nil {
		return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: o.err}
	}
	l, ok := f.base.(afero.Linker)
	if !ok {
		return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: afero.ErrNoSymlink}
	}
	return l.SymlinkIfPossible(oldname, newname)
}

// ReadlinkIfPossible implements afero.LinkReader ("readlink").
func (f *FaultFs) ReadlinkIfPossible(name string) (string, error) {
	name = Abs(name)
	if err := f.errOnly("readlink", name); err != nil {
		return "", err
	}
	l, ok := f.base.(afero.LinkReader)
	if !ok {
		return "", pathErr("readlink", name, afero.ErrNoReadlink)
	}
	return l.ReadlinkIfPossible(name)
}

// Chmod implements afero.Fs.
func (f *FaultFs) Chmod(name string, mode os.FileMode) error {
	name = Abs(name)
	if err := f.errOnly("chmod", name); err != nil {
		return err
	}
	return f.base.Chmod(name, mode)
}

// Chown implements afero.Fs.
func (f *FaultFs) Chown(name string, uid, gid int) error {
	name = Abs(name)
	if err := f.errOnly("chown", name); err != nil {
		return err
	}
	return f.base.Chown(name, uid, gid)
}

// Chtimes implements afero.Fs.
func (f *FaultFs) Chtimes(name string, atime, mtime time.Time) error {
	name = Abs(name)
	if err := f.errOnly("chtimes", name); err != nil {
		return err
	}
	return f.base.Chtimes(name, atime, mtime)
}

// withPerm returns fi with its permission bits (rwx for all, setuid, setgid,
// sticky) replaced by mode, keeping the file type; fi itself when mode is nil.
func withPerm(fi os.FileInfo, mode *uint32) os.FileInfo {
	if mode == nil || fi == nil {
		return fi
	}
	return permInfo{FileInfo: fi, mode: fi.Mode()&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | unixPerm(*mode)}
}

// unixPerm converts Unix permission bits (0o4755) to an fs.FileMode.
func unixPerm(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

type permInfo struct {
	os.FileInfo
	mode fs.FileMode
}

func (p permInfo) Mode() fs.FileMode { return p.mode }

package virtual

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/afero"
	"mvdan.cc/sh/v3/interp"

	"github.com/jobsim/jobsim/base/clock"
)

// sysError is an error shown with the C library's wording ("No such file or
// directory") that still matches its errno with errors.Is.
type sysError struct{ err error }

func (e sysError) Error() string { return errText(e.err) }
func (e sysError) Unwrap() error { return e.err }

// strerror overrides where Go's wording of an errno differs from glibc's
// beyond the first letter.
var strerror = map[syscall.Errno]string{
	syscall.ESTALE:  "Stale file handle",
	syscall.ENOTSUP: "Operation not supported",
	syscall.EDQUOT:  "Disk quota exceeded",
	syscall.ENXIO:   "No such device or address",
}

// errText words err as GNU tools print it after "name: ".
func errText(err error) string {
	var se sysError
	if errors.As(err, &se) && se.err != err {
		return errText(se.err)
	}
	var en syscall.Errno
	switch {
	case errors.As(err, &en):
		if s, ok := strerror[en]; ok {
			return s
		}
		return capitalize(en.Error())
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied"
	case errors.Is(err, fs.ErrExist):
		return "File exists"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return capitalize(pe.Err.Error())
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return capitalize(le.Err.Error())
	}
	return capitalize(err.Error())
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOENT)
}

func absPath(dir, name string) string {
	if name == "" {
		return ""
	}
	if !path.IsAbs(name) {
		name = path.Join(dir, name)
	}
	return path.Clean(name)
}

// fileOwner returns who owns fi. A file without owner information, or owned
// by the uid the simulator runs as, counts as the calling user's.
func (p *process) fileOwner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return int(st.Uid), int(st.Gid)
	}
	return p.user.UID, p.user.GID
}

// access checks mode against the file's permission bits for the process's
// user, as access(2) does; root may read and write anything and execute
// anything with an execute bit.
func (p *process) access(name string, mode interp.AccessMode) error {
	fi, err := p.fs.Stat(name)
	if err != nil {
		return err
	}
	return p.accessInfo(name, fi, mode)
}

func (p *process) accessInfo(name string, fi fs.FileInfo, mode interp.AccessMode) error {
	perm := fi.Mode().Perm()
	if p.user.UID == 0 {
		if mode&interp.AccessExec != 0 && !fi.IsDir() && perm&0o111 == 0 {
			return &fs.PathError{Op: "access", Path: name, Err: syscall.EACCES}
		}
		return nil
	}
	uid, gid := p.fileOwner(fi)
	var bits fs.FileMode
	switch {
	case uid == p.user.UID:
		bits = perm >> 6
	case gid == p.user.GID:
		bits = perm >> 3
	default:
		bits = perm
	}
	if fs.FileMode(mode)&bits&7 != fs.FileMode(mode) {
		return &fs.PathError{Op: "access", Path: name, Err: syscall.EACCES}
	}
	return nil
}

// openFile opens name on the host filesystem after the permission checks
// the kernel would make.
func (p *process) openFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if f, ok := p.openPsub(name, flag); ok {
		return f, nil
	}
	if p.user.UID != 0 {
		write := flag&(os.O_WRONLY|os.O_RDWR) != 0
		fi, err := p.fs.Stat(name)
		switch {
		case err == nil:
			var m interp.AccessMode
			if write {
				m |= interp.AccessWrite
			}
			if flag&os.O_WRONLY == 0 {
				m |= interp.AccessRead
			}
			if err := p.accessInfo(name, fi, m); err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
			}
		case flag&os.O_CREATE != 0 && isNotExist(err):
			if err := p.access(path.Dir(name), interp.AccessWrite|interp.AccessExec); err != nil && !isNotExist(err) {
				return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
			}
		}
	}
	if flag&os.O_CREATE != 0 {
		perm &^= 0o022 // the default umask
		// Some filesystems (afero's MemMapFs) create files in missing
		// directories; the kernel does not.
		if _, err := p.fs.Stat(name); err != nil && isNotExist(err) {
			dfi, derr := p.fs.Stat(path.Dir(name))
			switch {
			case derr != nil:
				return nil, &fs.PathError{Op: "open", Path: name, Err: derr}
			case !dfi.IsDir():
				return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOTDIR}
			}
		}
	}
	f, err := p.fs.OpenFile(name, flag, perm)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return f, err
	}
	if _, real := p.e.clock.(clock.Real); real {
		return f, nil
	}
	// The filesystem stamps writes with the wall clock; a host on a virtual
	// clock stamps them with its own time.
	return &stampedFile{File: f, p: p, name: name}, nil
}

// stampedFile sets the file's times to the host clock when it is closed
// after a write.
type stampedFile struct {
	afero.File
	p    *process
	name string
}

func (f *stampedFile) Close() error {
	err := f.File.Close()
	if err == nil {
		now := f.p.e.clock.Now()
		_ = f.p.fs.Chtimes(f.name, now, now)
	}
	return err
}

// stat is Stat on the host filesystem; a process substitution's /dev/fd/N
// is a pipe.
func (p *process) stat(name string) (fs.FileInfo, error) {
	if p.isPsub(name) {
		return psubInfo{name: path.Base(name)}, nil
	}
	return p.fs.Stat(name)
}

func (p *process) readFile(name string) ([]byte, error) {
	f, err := p.openFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func afReadFile(fsys afero.Fs, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// openHandler opens files for redirections and source.
func (p *process) openHandler(ctx context.Context, name string, flag int, perm os.FileMode) (io.ReadWriteCloser, error) {
	hc := interp.HandlerCtx(ctx)
	abs := absPath(hc.Dir, name)
	switch abs {
	case "/dev/null":
		return devNull{}, nil
	case "/dev/zero":
		return devZero{}, nil
	case "/dev/stdout", "/dev/fd/1":
		return writeOnly{hc.Stdout}, nil
	case "/dev/stderr", "/dev/fd/2":
		return writeOnly{hc.Stderr}, nil
	case "/dev/stdin", "/dev/fd/0":
		return readOnly{hc.Stdin}, nil
	case "/dev/tty":
		return nil, &fs.PathError{Op: redirPrefix(ctx, name), Path: name, Err: sysError{syscall.ENXIO}}
	}
	f, err := p.openFile(abs, flag, perm)
	if err != nil {
		// Printed by the interpreter as "bash: line N: NAME: No such file or directory".
		return nil, &fs.PathError{Op: redirPrefix(ctx, name), Path: name, Err: sysError{err}}
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() && flag&(os.O_WRONLY|os.O_RDWR) != 0 {
		f.Close()
		return nil, &fs.PathError{Op: redirPrefix(ctx, name), Path: name, Err: sysError{syscall.EISDIR}}
	}
	return f, nil
}

// redirPrefix is bash's message prefix for a failed redirection to name,
// without its last space (the error adds it): the line comes from the
// script's text when the target is a literal word, else from the last
// command run.
func redirPrefix(ctx context.Context, name string) string {
	var line uint
	if f := frameOf(ctx); f != nil {
		f.p.mu.Lock()
		l, ok := f.redirLines[name]
		f.p.mu.Unlock()
		if ok {
			line = uint(l)
		} else {
			line = uint(f.lastLine.Load())
		}
	}
	return strings.TrimSuffix(msgPrefix(ctx, line), " ")
}

// readDirHandler lists directories for globbing.
func (p *process) readDirHandler(ctx context.Context, name string) ([]fs.DirEntry, error) {
	infos, err := p.readDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		out[i] = fs.FileInfoToDirEntry(fi)
	}
	return out, nil
}

// readDir lists a directory sorted by name, failing as GNU tools tell apart:
// opening it (opendir) or reading it (readdir).
func (p *process) readDir(name string) ([]fs.FileInfo, error) {
	if p.user.UID != 0 {
		if err := p.access(name, interp.AccessRead); err != nil {
			return nil, &dirError{op: "open", err: err}
		}
	}
	f, err := p.fs.Open(name)
	if err != nil {
		return nil, &dirError{op: "open", err: err}
	}
	defer f.Close()
	infos, err := f.Readdir(-1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, &dirError{op: "read", err: err}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name() < infos[j].Name() })
	return infos, nil
}

// dirError says whether opening or reading a directory failed.
type dirError struct {
	op  string // "open" or "read"
	err error
}

func (e *dirError) Error() string { return e.op + " directory: " + e.err.Error() }
func (e *dirError) Unwrap() error { return e.err }

func (p *process) statHandler(ctx context.Context, name string, follow bool) (fs.FileInfo, error) {
	if follow {
		return p.stat(name)
	}
	return p.lstat(name)
}

func (p *process) lstat(name string) (fs.FileInfo, error) {
	if p.isPsub(name) {
		return psubInfo{name: path.Base(name)}, nil
	}
	if l, ok := p.fs.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(name)
		return fi, err
	}
	return p.fs.Stat(name)
}

func (p *process) accessHandler(ctx context.Context, name string, mode interp.AccessMode) error {
	return p.access(name, mode)
}

type devNull struct{}

func (devNull) Read([]byte) (int, error)    { return 0, io.EOF }
func (devNull) Write(b []byte) (int, error) { return len(b), nil }
func (devNull) Close() error                { return nil }

type devZero struct{}

func (devZero) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
func (devZero) Write(b []byte) (int, error) { return len(b), nil }
func (devZero) Close() error                { return nil }

type writeOnly struct{ w io.Writer }

func (w writeOnly) Read([]byte) (int, error)    { return 0, syscall.EBADF }
func (w writeOnly) Write(b []byte) (int, error) { return w.w.Write(b) }
func (w writeOnly) Close() error                { return nil }

type readOnly struct{ r io.Reader }

func (r readOnly) Read(b []byte) (int, error) {
	if r.r == nil {
		return 0, io.EOF
	}
	if f, ok := r.r.(*os.File); ok && f == nil {
		return 0, io.EOF
	}
	return r.r.Read(b)
}
func (r readOnly) Write([]byte) (int, error) { return 0, syscall.EBADF }
func (r readOnly) Close() error              { return nil }

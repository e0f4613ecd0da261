package sshd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// subsystem returns the runner for a subsystem request, or nil to refuse
// it (unknown subsystem, or no filesystem for this user).
func (ss *session) subsystem(name string) func() {
	if name != "sftp" {
		return nil
	}
	u, _ := ss.s.lookupUser(ss.user)
	fs := u.FS
	if fs == nil {
		fs = ss.s.cfg.fs
	}
	if fs == nil {
		return nil
	}
	home := u.Home
	if home == "" {
		home = "/"
		if fi, err := fs.Stat("/home/" + ss.user); err == nil && fi.IsDir() {
			home = "/home/" + ss.user
		}
	}
	return func() { ss.runSFTP(fs, path.Clean("/"+home)) }
}

// runSFTP serves the sftp subsystem over fs until the client closes it.
func (ss *session) runSFTP(fs afero.Fs, home string) {
	s := ss.s
	start := time.Now()
	f := map[string]any{"user": ss.user, "conn": ss.cs.id, "home": home}
	done := func(code int, errText string) {
		f["exit"] = code
		f["duration_ms"] = float64(time.Since(start).Microseconds()) / 1000
		msg := fmt.Sprintf("sftp session of %s: exit %d", ss.user, code)
		if errText != "" {
			f["error"] = errText
			msg += " (" + errText + ")"
		}
		s.record(events.SSHSFTP, msg, f)
	}
	fired, over := ss.preFaults(fault.Op{Layer: fault.SSH, Name: opSFTP, User: ss.user}, f,
		"client went away while a fault held the sftp session", nil, done)
	if over {
		return
	}
	var drop *dropper
	if r, ok := fault.First(fired, fault.Drop); ok {
		drop = &dropper{limit: r.Effect.AfterBytes, closer: ss.conn}
		if drop.limit == 0 {
			drop.drop()
			f["dropped"] = true
			done(-1, "connection dropped by fault")
			return
		}
	}

	h := newSFTPHandler(fs, home, ss.user)
	out := &countWriter{w: ss.ch, drop: drop}
	// The request server closes its connection when done; the channel
	// must stay open for the exit status, so it gets a no-op Close.
	rwc := struct {
		io.Reader
		io.Writer
		io.Closer
	}{ss.ch, out, nopCloser{}}
	rs := sftp.NewRequestServer(rwc, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h},
		sftp.WithStartDirectory(home))
	err := rs.Serve()
	_ = rs.Close()
	f["bytes_read"] = h.read.Load()
	f["bytes_written"] = h.written.Load()
	f["files"] = h.files.Load()
	if drop.dropped() {
		f["dropped"] = true
	}
	// Exit status 0 before closing, or scp and sftp exit 1 after a good transfer.
	ss.exit(0)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		done(0, err.Error())
		return
	}
	done(0, "")
}

// sftpHandler serves pkg/sftp's request server from an afero filesystem.
// Paths are the filesystem's own: "/" is its root and ".." there stays
// there. Symbolic links are resolved here, inside the filesystem (an
// absolute target is taken from the filesystem's root, as in a chroot),
// and a relative target that climbs above the root is refused with
// "permission denied", so no path through sftp leaves the filesystem.
type sftpHandler struct {
	fs     afero.Fs
	home   string
	lstat  afero.Lstater
	rlink  afero.LinkReader
	linker afero.Linker
	owners *owners

	read, written, files atomic.Int64
}

func newSFTPHandler(fs afero.Fs, home, user string) *sftpHandler {
	h := &sftpHandler{fs: fs, home: home, owners: newOwners(fs, user)}
	h.lstat, _ = fs.(afero.Lstater)
	h.rlink, _ = fs.(afero.LinkReader)
	h.linker, _ = fs.(afero.Linker)
	return h
}

const maxSymlinkHops = 40

func pathErr(op, p string, err error) error { return &os.PathError{Op: op, Path: p, Err: err} }

// resolve maps a clean absolute sftp path to a path of the filesystem free
// of symbolic links, following the last element too when follow is set.
// Elements that do not exist are kept as they are.
func (h *sftpHandler) resolve(p string, follow bool) (string, error) {
	p = path.Clean("/" + p)
	if h.lstat == nil || h.rlink == nil {
		return p, nil
	}
	parts := splitPath(p)
	cur := "/"
	hops := 0
	for i := 0; i < len(parts); i++ {
		next := path.Join(cur, parts[i])
		if i == len(parts)-1 && !follow {
			return next, nil
		}
		fi, ok, err := h.lstat.LstatIfPossible(next)
		if err != nil || !ok || fi.Mode()&os.ModeSymlink == 0 {
			if err != nil {
				return path.Join(append([]string{next}, parts[i+1:]...)...), nil
			}
			cur = next
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", pathErr("resolve", p, syscall.ELOOP)
		}
		target, err := h.rlink.ReadlinkIfPossible(next)
		if err != nil {
			return "", pathErr("readlink", next, err)
		}
		var np string
		if path.IsAbs(target) {
			np = path.Clean(target)
		} else {
			if escapes(cur, target) {
				// A link leading outside the filesystem (pkg/sftp maps
				// only a bare Errno to "permission denied").
				return "", pathErr("resolve", p, syscall.EACCES)
			}
			np = path.Join(cur, target)
		}
		parts = append(splitPath(np), parts[i+1:]...)
		cur, i = "/", -1
	}
	return cur, nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// escapes reports whether the relative path rel, taken from directory dir,
// climbs above the root.
func escapes(dir, rel string) bool {
	depth := len(splitPath(dir))
	for _, e := range strings.Split(rel, "/") {
		switch e {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// lockedFile serialises ReadAt and WriteAt (pkg/sftp calls them
// concurrently, which afero's MemMapFs files do not survive) and counts bytes.
type lockedFile struct {
	mu sync.Mutex
	f  afero.File
	h  *sftpHandler
}

func (l *lockedFile) ReadAt(p []byte, off int64) (int, error) {
	return l.at(l.f.ReadAt, p, off, &l.h.read)
}

func (l *lockedFile) WriteAt(p []byte, off int64) (int, error) {
	return l.at(l.f.WriteAt, p, off, &l.h.written)
}

// at runs op (the file's ReadAt or WriteAt) under the lock and adds the
// bytes it moved to count.
func (l *lockedFile) at(op func([]byte, int64) (int, error), p []byte, off int64, count *atomic.Int64) (int, error) {
	l.mu.Lock()
	n, err := op(p, off)
	l.mu.Unlock()
	count.Add(int64(n))
	return n, err
}

func (l *lockedFile) Close() error { return l.f.Close() }

// Fileread implements sftp.FileReader.
func (h *sftpHandler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	p, err := h.resolve(r.Filepath, true)
	if err != nil {
		return nil, err
	}
	f, err := h.fs.Open(p)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, pathErr("open", r.Filepath, syscall.EISDIR)
	}
	h.files.Add(1)
	return &lockedFile{f: f, h: h}, nil
}

func (h *sftpHandler) openWrite(r *sftp.Request, flag int) (*lockedFile, error) {
	p, err := h.resolve(r.Filepath, true)
	if err != nil {
		return nil, err
	}
	pf := r.Pflags()
	if pf.Creat {
		flag |= os.O_CREATE
	}
	if pf.Trunc {
		flag |= os.O_TRUNC
	}
	if pf.Excl {
		flag |= os.O_EXCL
	}
	// Append is not passed on: WriteAt with O_APPEND fails, and the client
	// sends the offsets it means.
	mode := os.FileMode(0o644)
	if perm, ok := openPerm(r); ok {
		mode = perm
	}
	f, err := h.fs.OpenFile(p, flag, mode)
	if err != nil {
		return nil, err
	}
	h.files.Add(1)
	return &lockedFile{f: f, h: h}, nil
}

// Filewrite implements sftp.FileWriter.
func (h *sftpHandler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return h.openWrite(r, os.O_WRONLY)
}

// OpenFile implements sftp.OpenFileWriter (read and write on one handle).
func (h *sftpHandler) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	return h.openWrite(r, os.O_RDWR)
}

// Filecmd implements sftp.FileCmder.
func (h *sftpHandler) Filecmd(r *sftp.Request) error {
	switch r.Method {
	case "Setstat":
		return h.setstat(r)
	case "Rename":
		return h.rename(r, false)
	case "Rmdir", "Remove":
		// rmdir removes only directories, remove everything else.
		p, err := h.resolve(r.Filepath, false)
		if err != nil {
			return err
		}
		fi, err := h.stat(p, false)
		if err != nil {
			return err
		}
		switch rmdir := r.Method == "Rmdir"; {
		case rmdir && !fi.IsDir():
			return pathErr("rmdir", r.Filepath, syscall.ENOTDIR)
		case !rmdir && fi.IsDir():
			return pathErr("remove", r.Filepath, syscall.EISDIR)
		}
		return h.fs.Remove(p)
	case "Mkdir":
		p, err := h.resolve(r.Filepath, false)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o755)
		if r.AttrFlags().Permissions {
			mode = r.Attributes().FileMode().Perm()
		}
		return h.fs.Mkdir(p, mode)
	case "Symlink":
		return h.symlink(r)
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename implements sftp.PosixRenameFileCmder: rename, replacing the target.
func (h *sftpHandler) PosixRename(r *sftp.Request) error { return h.rename(r, true) }

func (h *sftpHandler) rename(r *sftp.Request, replace bool) error {
	from, err := h.resolve(r.Filepath, false)
	if err != nil {
		return err
	}
	to, err := h.resolve(r.Target, false)
	if err != nil {
		return err
	}
	if !replace {
		// SFTP v3 rename does not replace (OpenSSH's sftp-server neither).
		if _, err := h.stat(to, false); err == nil {
			return pathErr("rename", r.Target, syscall.EEXIST)
		}
	}
	return h.fs.Rename(from, to)
}

func (h *sftpHandler) symlink(r *sftp.Request) error {
	if h.linker == nil {
		return sftp.ErrSSHFxOpUnsupported
	}
	// pkg/sftp: Filepath is the link's target as sent, Target the new link.
	target, link := r.Filepath, r.Target
	lp, err := h.resolve(link, false)
	if err != nil {
		return err
	}
	if target == "" {
		return pathErr("symlink", link, syscall.EINVAL)
	}
	if !path.IsAbs(target) && escapes(path.Dir(lp), target) {
		return pathErr("symlink", link, syscall.EACCES) // the target leads outside the filesystem
	}
	return h.linker.SymlinkIfPossible(target, lp)
}

func (h *sftpHandler) setstat(r *sftp.Request) error {
	p, err := h.resolve(r.Filepath, true)
	if err != nil {
		return err
	}
	fl, at := r.AttrFlags(), r.Attributes()
	if fl.Size {
		f, err := h.fs.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(at.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if fl.Permissions {
		if err := h.fs.Chmod(p, at.FileMode().Perm()|at.FileMode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
	}
	if fl.UidGid {
		if err := h.fs.Chown(p, int(at.UID), int(at.GID)); err != nil {
			return err
		}
	}
	if fl.Acmodtime {
		if err := h.fs.Chtimes(p, time.Unix(int64(at.Atime), 0), time.Unix(int64(at.Mtime), 0)); err != nil {
			return err
		}
	}
	return nil
}

func (h *sftpHandler) stat(p string, follow bool) (os.FileInfo, error) {
	if !follow && h.lstat != nil {
		fi, _, err := h.lstat.LstatIfPossible(p)
		return fi, err
	}
	return h.fs.Stat(p)
}

// Filelist implements sftp.FileLister (List and Stat).
func (h *sftpHandler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p, err := h.resolve(r.Filepath, true)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		d, err := h.fs.Open(p)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		fis, err := d.Readdir(-1)
		if err != nil {
			return nil, err
		}
		for i, fi := range fis {
			fis[i] = h.owners.own(fi)
		}
		return listerAt(fis), nil
	case "Stat":
		fi, err := h.fs.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{h.owners.own(fi)}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat implements sftp.LstatFileLister.
func (h *sftpHandler) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	p, err := h.resolve(r.Filepath, false)
	if err != nil {
		return nil, err
	}
	fi, err := h.stat(p, false)
	if err != nil {
		return nil, err
	}
	return listerAt{h.owners.own(fi)}, nil
}

// Readlink implements sftp.ReadlinkFileLister.
func (h *sftpHandler) Readlink(p string) (string, error) {
	if h.rlink == nil {
		return "", sftp.ErrSSHFxOpUnsupported
	}
	rp, err := h.resolve(p, false)
	if err != nil {
		return "", err
	}
	return h.rlink.ReadlinkIfPossible(rp)
}

// RealPath implements sftp.RealPathFileLister: relative paths start at the
// user's home, and symbolic links are resolved within the filesystem.
func (h *sftpHandler) RealPath(p string) (string, error) {
	if !path.IsAbs(p) {
		p = path.Join(h.home, p)
	}
	return h.resolve(p, true)
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) || off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// openPerm reads the permissions an SSH_FXP_OPEN asks a new file to have.
// pkg/sftp (v1.13.12) keeps the open flags in Request.Flags and drops the
// attribute flags, so AttrFlags() is wrong for opens; what is left is the
// attribute bytes. OpenSSH's sftp and scp send the permissions alone: four
// bytes, which no other single attribute has (size, ids and times take eight).
func openPerm(r *sftp.Request) (os.FileMode, bool) {
	if len(r.Attrs) != 4 {
		return 0, false
	}
	return os.FileMode(binary.BigEndian.Uint32(r.Attrs)).Perm(), true
}

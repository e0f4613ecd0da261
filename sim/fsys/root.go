package fsys

import (
	"fmt"
	"os"
	"path"
	"time"

	"github.com/spf13/afero"
)

// RootFs is the root filesystem of a real-executor host: a directory on the
// real disk seen as "/", confined with os.Root so that no name reaches
// outside it, neither through ".." nor through a symbolic link (absolute
// link targets are refused when followed; relative ones may not climb out).
// It is what the host's sftp server serves.
//
// Absolute names are cleaned first, as in a chroot: "/../etc/passwd" is the
// root's own /etc/passwd. The cleaning is lexical, like afero's and
// path.Clean's: in "/home/link/../x" the ".." removes "link" before any
// link is followed. Relative names are resolved from the root and may not
// climb above it: "../../etc/passwd" fails.
//
// Limits: os.Root follows symbolic links only when they stay inside; a host
// tree whose links are absolute (/opt/lib -> /usr/lib) cannot be followed
// through a RootFs. Chmod, Chown and Chtimes have a race (see os.Root).
type RootFs struct {
	root *os.Root
	dir  string
}

var (
	_ afero.Fs        = (*RootFs)(nil)
	_ afero.Symlinker = (*RootFs)(nil)
)

// NewRootFs opens dir as the root of a confined filesystem. Close releases it.
func NewRootFs(dir string) (*RootFs, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("host root %s: %w", dir, err)
	}
	return &RootFs{root: r, dir: dir}, nil
}

// Close releases the root directory.
func (r *RootFs) Close() error { return r.root.Close() }

// Dir is the directory on the real disk that is the root.
func (r *RootFs) Dir() string { return r.dir }

// rel turns a name into the form os.Root takes: absolute names are cleaned
// ("/.." is "/") and made relative to the root; relative names are kept so
// that os.Root rejects those climbing out.
func rel(name string) string {
	if name == "" {
		return "."
	}
	if name[0] == '/' {
		c := path.Clean(name)
		if c == "/" {
			return "."
		}
		return c[1:]
	}
	return name
}

// fixErr names the path in an error from os.Root the way the caller did.
func fixErr(err error, name string) error {
	if e, ok := err.(*os.PathError); ok {
		e.Path = name
	}
	return err
}

// rootFile is an *os.File opened through a RootFs, named by the path the
// caller used rather than its place on the real disk.
type rootFile struct {
	*os.File
	name string
}

// Name implements afero.File.
func (f *rootFile) Name() string { return f.name }

func (r *RootFs) wrap(f *os.File, name string, err error) (afero.File, error) {
	if err != nil {
		return nil, fixErr(err, name)
	}
	return &rootFile{File: f, name: name}, nil
}

// Name implements afero.Fs.
func (r *RootFs) Name() string { return "RootFs" }

// Create implements afero.Fs.
func (r *RootFs) Create(name string) (afero.File, error) {
	f, err := r.root.Create(rel(name))
	return r.wrap(f, name, err)
}

// Open implements afero.Fs.
func (r *RootFs) Open(name string) (afero.File, error) {
	f, err := r.root.Open(rel(name))
	return r.wrap(f, name, err)
}

// OpenFile implements afero.Fs.
func (r *RootFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	f, err := r.root.OpenFile(rel(name), flag, perm)
	return r.wrap(f, name, err)
}

// Mkdir implements afero.Fs.
func (r *RootFs) Mkdir(name string, perm os.FileMode) error {
	return fixErr(r.root.Mkdir(rel(name), perm), name)
}

// MkdirAll implements afero.Fs.
func (r *RootFs) MkdirAll(name string, perm os.FileMode) error {
	if rel(name) == "." {
		return nil
	}
	return fixErr(r.root.MkdirAll(rel(name), perm), name)
}

// Remove implements afero.Fs.
func (r *RootFs) Remove(name string) error { return fixErr(r.root.Remove(rel(name)), name) }

// RemoveAll implements afero.Fs. Removing the root itself empties it.
func (r *RootFs) RemoveAll(name string) error {
	if rel(name) == "." {
		d, err := r.root.Open(".")
		if err != nil {
			return fixErr(err, name)
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return fixErr(err, name)
		}
		for _, n := range names {
			if err := r.root.RemoveAll(n); err != nil {
				return fixErr(err, path.Join("/", n))
			}
		}
		return nil
	}
	return fixErr(r.root.RemoveAll(rel(name)), name)
}

// Rename implements afero.Fs.
func (r *RootFs) Rename(oldname, newname string) error {
	err := r.root.Rename(rel(oldname), rel(newname))
	if e, ok := err.(*os.LinkError); ok {
		e.Old, e.New = oldname, newname
	}
	return err
}

// Stat implements afero.Fs.
func (r *RootFs) Stat(name string) (os.FileInfo, error) {
	fi, err := r.root.Stat(rel(name))
	return fi, fixErr(err, name)
}

// LstatIfPossible implements afero.Lstater.
func (r *RootFs) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	fi, err := r.root.Lstat(rel(name))
	return fi, true, fixErr(err, name)
}

// SymlinkIfPossible implements afero.Linker. The link is created inside the
// root whatever its target; following it later is confined like any name.
func (r *RootFs) SymlinkIfPossible(oldname, newname string) error {
	err := r.root.Symlink(oldname, rel(newname))
	if e, ok := err.(*os.LinkError); ok {
		e.New = newname
	}
	return err
}

// ReadlinkIfPossible implements afero.LinkReader.
func (r *RootFs) ReadlinkIfPossible(name string) (string, error) {
	s, err := r.root.Readlink(rel(name))
	return s, fixErr(err, name)
}

// Chmod implements afero.Fs.
func (r *RootFs) Chmod(name string, mode os.FileMode) error {
	return fixErr(r.root.Chmod(rel(name), mode), name)
}

// Chown implements afero.Fs.
func (r *RootFs) Chown(name string, uid, gid int) error {
	return fixErr(r.root.Chown(rel(name), uid, gid), name)
}

// Chtimes implements afero.Fs.
func (r *RootFs) Chtimes(name string, atime, mtime time.Time) error {
	return fixErr(r.root.Chtimes(rel(name), atime, mtime), name)
}

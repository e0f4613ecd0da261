package fsys

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/afero"
)

// Rebase returns a view of a host filesystem (whose paths are host paths,
// "/home/alice") that accepts the paths processes of an in-process real
// host use: their files live below root on the test machine, so they name
// "<root>/home/alice". Such paths are mapped back to host paths; others are
// taken as host paths already. Fault rules below the view keep seeing host
// paths.
func Rebase(fs afero.Fs, root string) afero.Fs {
	return &rebased{fs: fs, root: filepath.Clean(root)}
}

type rebased struct {
	fs   afero.Fs
	root string
}

func (r *rebased) host(name string) string {
	if !filepath.IsAbs(name) {
		return name
	}
	name = filepath.Clean(name)
	if name == r.root {
		return "/"
	}
	if rest, ok := strings.CutPrefix(name, r.root+"/"); ok {
		return "/" + rest
	}
	return name
}

func (r *rebased) Name() string { return "Rebase(" + r.fs.Name() + ")" }

func (r *rebased) Create(name string) (afero.File, error) { return r.fs.Create(r.host(name)) }
func (r *rebased) Mkdir(name string, perm os.FileMode) error {
	return r.fs.Mkdir(r.host(name), perm)
}
func (r *rebased) MkdirAll(path string, perm os.FileMode) error {
	return r.fs.MkdirAll(r.host(path), perm)
}
func (r *rebased) Open(name string) (afero.File, error) { return r.fs.Open(r.host(name)) }
func (r *rebased) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	return r.fs.OpenFile(r.host(name), flag, perm)
}
func (r *rebased) Remove(name string) error              { return r.fs.Remove(r.host(name)) }
func (r *rebased) RemoveAll(path string) error           { return r.fs.RemoveAll(r.host(path)) }
func (r *rebased) Rename(o, n string) error              { return r.fs.Rename(r.host(o), r.host(n)) }
func (r *rebased) Stat(name string) (os.FileInfo, error) { return r.fs.Stat(r.host(name)) }
func (r *rebased) Chmod(name string, mode os.FileMode) error {
	return r.fs.Chmod(r.host(name), mode)
}
func (r *rebased) Chown(name string, uid, gid int) error {
	return r.fs.Chown(r.host(name), uid, gid)
}
func (r *rebased) Chtimes(name string, atime, mtime time.Time) error {
	return r.fs.Chtimes(r.host(name), atime, mtime)
}

func (r *rebased) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	if l, ok := r.fs.(afero.Lstater); ok {
		return l.LstatIfPossible(r.host(name))
	}
	fi, err := r.fs.Stat(r.host(name))
	return fi, false, err
}

package fsys

import (
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/spf13/afero"
)

// faultFile is an open file of a FaultFs: its reads ("read"), writes
// ("write"), listings ("readdir"), stat ("stat"), sync ("sync") and truncate
// ("truncate") consult the rules under the path it was opened by.
//
// Handles of in-memory filesystems (afero.MemMapFs) keep one offset that
// ReadAt and WriteAt move and restore, so concurrent ReadAt/WriteAt calls
// (pkg/sftp makes them) would read or write at each other's offsets: for
// every handle that is not an *os.File the offset-using calls are
// serialised by a mutex.
type faultFile struct {
	f    *FaultFs
	file afero.File
	path string      // absolute clean path matched against rules
	mu   *sync.Mutex // nil for files whose positional I/O is safe concurrently
}

var (
	_ afero.File      = (*faultFile)(nil)
	_ fs.ReadDirFile  = (*faultFile)(nil)
	_ io.ReaderAt     = (*faultFile)(nil)
	_ io.StringWriter = (*faultFile)(nil)
)

func (f *FaultFs) wrapFile(file afero.File, abs string) afero.File {
	ff := &faultFile{f: f, file: file, path: abs}
	switch file.(type) {
	case *os.File, *rootFile:
	default:
		ff.mu = new(sync.Mutex)
	}
	return ff
}

func (ff *faultFile) lock() func() {
	if ff.mu == nil {
		return func() {}
	}
	ff.mu.Lock()
	return ff.mu.Unlock
}

func (ff *faultFile) fail(op string) error {
	if o := ff.f.check(op, ff.path); o.err != nil {
		return pathErr(op, ff.file.Name(), o.err)
	}
	return nil
}

// Close implements afero.File. Closing never fails by a rule.
func (ff *faultFile) Close() error { return ff.file.Close() }

// Name implements afero.File.
func (ff *faultFile) Name() string { return ff.file.Name() }

// Read implements afero.File.
func (ff *faultFile) Read(p []byte) (int, error) {
	if err := ff.fail("read"); err != nil {
		return 0, err
	}
	defer ff.lock()()
	return ff.file.Read(p)
}

// ReadAt implements afero.File. It keeps the io.ReaderAt contract (a short
// read returns an error) even where the wrapped handle does not.
func (ff *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := ff.fail("read"); err != nil {
		return 0, err
	}
	defer ff.lock()()
	n, err := ff.file.ReadAt(p, off)
	if n < len(p) && err == nil {
		err = io.EOF
	}
	return n, err
}

// Seek implements afero.File.
func (ff *faultFile) Seek(offset int64, whence int) (int64, error) {
	defer ff.lock()()
	return ff.file.Seek(offset, whence)
}

// Write implements afero.File.
func (ff *faultFile) Write(p []byte) (int, error) {
	if err := ff.fail("write"); err != nil {
		return 0, err
	}
	defer ff.lock()()
	return ff.file.Write(p)
}

// WriteAt implements afero.File.
func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := ff.fail("write"); err != nil {
		return 0, err
	}
	defer ff.lock()()
	return ff.file.WriteAt(p, off)
}

// WriteString implements afero.File.
func (ff *faultFile) WriteString(s string) (int, error) {
	if err := ff.fail("write"); err != nil {
		return 0, err
	}
	defer ff.lock()()
	return ff.file.WriteString(s)
}

// Readdir implements afero.File ("readdir").
func (ff *faultFile) Readdir(count int) ([]os.FileInfo, error) {
	if err := ff.fail("readdir"); err != nil {
		return nil, err
	}
	return ff.file.Readdir(count)
}

// Readdirnames implements afero.File ("readdir").
func (ff *faultFile) Readdirnames(n int) ([]string, error) {
	if err := ff.fail("readdir"); err != nil {
		return nil, err
	}
	return ff.file.Readdirnames(n)
}

// ReadDir implements fs.ReadDirFile ("readdir"), so that afero.NewIOFS and
// fs.ReadDir list through the rules too.
func (ff *faultFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if err := ff.fail("readdir"); err != nil {
		return nil, err
	}
	if rd, ok := ff.file.(fs.ReadDirFile); ok {
		return rd.ReadDir(n)
	}
	infos, err := ff.file.Readdir(n)
	out := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		out[i] = fs.FileInfoToDirEntry(fi)
	}
	return out, err
}

// Stat implements afero.File ("stat"; a perm rule replaces the bits).
func (ff *faultFile) Stat() (os.FileInfo, error) {
	o := ff.f.check("stat", ff.path)
	if o.err != nil {
		return nil, pathErr("stat", ff.file.Name(), o.err)
	}
	fi, err := ff.file.Stat()
	if err != nil {
		return nil, err
	}
	return withPerm(fi, o.perm), nil
}

// Sync implements afero.File ("sync").
func (ff *faultFile) Sync() error {
	if err := ff.fail("sync"); err != nil {
		return err
	}
	return ff.file.Sync()
}

// Truncate implements afero.File ("truncate").
func (ff *faultFile) Truncate(size int64) error {
	if err := ff.fail("truncate"); err != nil {
		return err
	}
	defer ff.lock()()
	return ff.file.Truncate(size)
}

// Package artifact writes the files a scenario run leaves for people to
// read (job logs, scheduler logs, databases), each bounded so that a
// runaway job.out cannot fill the disk of a CI machine.
package artifact

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxFile is the usual bound on one artifact file.
const MaxFile = 8 << 20

// Write writes at most limit bytes of r to name, creating its directory; a
// longer stream is cut with a note saying so.
func Write(r io.Reader, name string, limit int64) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, limit))
	if err == nil && n == limit {
		_, err = fmt.Fprintf(f, "\n[jobsim: cut at %d bytes]\n", limit)
	}
	return errors.Join(err, f.Close())
}

// CopyFile copies src to dst with Write.
func CopyFile(src, dst string, limit int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := Write(in, dst, limit); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// CopyTree copies the regular files below src into dst with CopyFile,
// following symbolic links to files (Cylc's log/scheduler/log) and leaving
// out links to directories (Cylc's log/job/.../NN, whose target is copied
// anyway). A missing src is fs.ErrNotExist; errors on single files are
// returned joined after the rest was copied.
func CopyTree(src, dst string, limit int64) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	var errs []error
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(p)
			if err != nil || st.IsDir() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		if err := CopyFile(p, target, limit); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

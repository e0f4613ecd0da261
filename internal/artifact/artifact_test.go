package artifact

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A job log tree comes over whole, a runaway file cut with a note, the NN
// link to a submit directory left out and a link to a file followed.
func TestCopyTreeBoundsFilesAndFollowsFileLinks(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "job")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "1/foo/01"), 0o755))
	must(os.WriteFile(filepath.Join(src, "1/foo/01/job.out"), []byte("out\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "1/foo/01/big"), []byte(strings.Repeat("x", 100)), 0o644))
	must(os.Symlink("01", filepath.Join(src, "1/foo/NN")))
	must(os.Symlink("01/job.out", filepath.Join(src, "1/foo/latest.out")))
	must(CopyTree(src, dst, 10))
	for name, want := range map[string]string{
		"1/foo/01/job.out": "out\n",
		"1/foo/01/big":     "xxxxxxxxxx\n[jobsim: cut at 10 bytes]\n",
		"1/foo/latest.out": "out\n",
	} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "1/foo/NN")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link to a directory was copied: %v", err)
	}
	if err := CopyTree(filepath.Join(src, "nosuch"), dst, 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing tree: %v, want fs.ErrNotExist", err)
	}
}

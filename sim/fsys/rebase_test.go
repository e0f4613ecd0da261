package fsys

import (
	"testing"

	"github.com/spf13/afero"
)

func TestRebaseMapsProcessPathsToHostPaths(t *testing.T) {
	base := afero.NewMemMapFs()
	fs := Rebase(base, "/tmp/jobsim-host-x/root")
	if err := afero.WriteFile(fs, "/tmp/jobsim-host-x/root/home/alice/job.o1", []byte("out"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, _ := afero.Exists(base, "/home/alice/job.o1"); !ok {
		t.Fatal("a process path below the root did not land at its host path")
	}
	if err := afero.WriteFile(fs, "/home/alice/x", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, _ := afero.Exists(base, "/home/alice/x"); !ok {
		t.Fatal("a host path was not kept")
	}
	// A sibling directory that merely shares the prefix is not the root.
	if got := Rebase(base, "/r").(*rebased).host("/rx/file"); got != "/rx/file" {
		t.Fatalf("host(/rx/file) = %q", got)
	}
}

package virtual

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/sim/executor"
)

// The FIFOs of process substitution live in a directory of the executor's
// own on the real disk, emptied as each shell ends and removed by Close.
func TestTempDirRemovedOnClose(t *testing.T) {
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	e := New(WithFS(fs))
	var out bytes.Buffer
	// The second substitution is never opened: the shell must still end.
	p, err := e.Start(context.Background(), executor.Command{User: "alice", Script: "cat <(echo one); echo <(echo unread) >/dev/null; echo done", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Wait(); st.Code != 0 || out.String() != "one\ndone\n" {
		t.Fatalf("status %+v stdout %q", st, out.String())
	}
	dir := e.tmpDir
	if dir == "" {
		t.Fatal("no temporary directory was made")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("temporary directory after the shell ended: %v, %v", entries, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s left after Close: %v", dir, err)
	}
	if _, err := e.Start(context.Background(), executor.Command{User: "alice", Script: "true"}); err == nil {
		t.Error("Start after Close succeeded")
	}
}

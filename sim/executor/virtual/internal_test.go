package virtual

import (
	"bytes"
	"context"
	"testing"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/sim/executor"
)

// Process substitution needs no directory of the real disk, and a closed
// executor starts nothing.
func TestProcSubstWithoutRealDisk(t *testing.T) {
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	e := New(WithFS(fs))
	var out bytes.Buffer
	// The second substitution is never opened: the shell must still end.
	p, err := e.Start(context.Background(), executor.Command{User: "alice", Script: "cat <(echo one); echo <(echo unread); echo done", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Wait(); st.Code != 0 || out.String() != "one\n/dev/fd/63\ndone\n" {
		t.Fatalf("status %+v stdout %q", st, out.String())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Start(context.Background(), executor.Command{User: "alice", Script: "true"}); err == nil {
		t.Error("Start after Close succeeded")
	}
}

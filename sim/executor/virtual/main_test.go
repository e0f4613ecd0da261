package virtual_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/executortest"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var users = map[string]virtual.User{
	"root":  {Name: "root", Home: "/root"},
	"alice": {Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice"},
	"bob":   {Name: "bob", UID: 1001, GID: 1001, Home: "/home/bob"},
}

// newFS returns an in-memory host filesystem with the users' homes, /tmp
// and an /etc/passwd that differs from the real one.
func newFS(t testing.TB) afero.Fs {
	t.Helper()
	fs := afero.NewMemMapFs()
	for _, d := range []string{"/root", "/home/alice", "/home/bob", "/tmp", "/etc", "/opt/lib"} {
		if err := fs.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = fs.Chmod("/tmp", 0o1777|0o777)
	must(t, afero.WriteFile(fs, "/etc/passwd", []byte("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"), 0o644))
	return fs
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newExec returns a virtual executor on fs (a fresh one when nil), closed
// when the test ends.
func newExec(t testing.TB, fs afero.Fs, opts ...virtual.Option) *virtual.Executor {
	t.Helper()
	if fs == nil {
		fs = newFS(t)
	}
	base := []virtual.Option{
		virtual.WithFS(fs), virtual.WithHostname("node1.example.org"),
		virtual.WithUsers(func(name string) (virtual.User, error) {
			u, ok := users[name]
			if !ok {
				return virtual.User{}, fmt.Errorf("no such user")
			}
			return u, nil
		}),
	}
	e := virtual.New(append(base, opts...)...)
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// cmds runs the tests' commands: as alice unless they name a user, for up
// to 10 s.
var cmds = executortest.Runner{Within: 10 * time.Second, User: "alice"}

type result = executortest.Result

// sh runs script as alice.
func sh(t testing.TB, e executor.Executor, script string) result {
	t.Helper()
	return cmds.Run(t, e, executor.Command{User: "alice", Script: script})
}

func waitOutput(t testing.TB, b *testutil.SyncBuffer, want string) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("output %q (have %q)", want, b.String()), 10*time.Second, func() bool { return strings.Contains(b.String(), want) })
}

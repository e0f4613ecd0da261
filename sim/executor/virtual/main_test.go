package virtual_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor"
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

type result struct {
	stdout, stderr string
	status         executor.Status
}

// run runs cmd to its end, failing the test if it takes more than 10s.
func run(t testing.TB, e executor.Executor, cmd executor.Command) result {
	t.Helper()
	p, out, errb := start(t, e, context.Background(), cmd)
	st := wait(t, p)
	return result{out.String(), errb.String(), st}
}

// sh runs script as alice.
func sh(t testing.TB, e executor.Executor, script string) result {
	t.Helper()
	return run(t, e, executor.Command{User: "alice", Script: script})
}

func start(t testing.TB, e executor.Executor, ctx context.Context, cmd executor.Command) (executor.Process, *testutil.SyncBuffer, *testutil.SyncBuffer) {
	t.Helper()
	out, errb := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = errb
	}
	p, err := e.Start(ctx, cmd)
	if err != nil {
		t.Fatalf("start %q: %v", cmd.Script, err)
	}
	return p, out, errb
}

func wait(t testing.TB, p executor.Process) executor.Status {
	t.Helper()
	done := make(chan executor.Status, 1)
	go func() { done <- p.Wait() }()
	select {
	case st := <-done:
		return st
	case <-time.After(10 * time.Second):
		_ = p.Signal(9)
		<-done
		t.Fatal("command did not end within 10s")
		return executor.Status{}
	}
}

func waitOutput(t testing.TB, b *testutil.SyncBuffer, want string) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("output %q (have %q)", want, b.String()), 10*time.Second, func() bool { return strings.Contains(b.String(), want) })
}

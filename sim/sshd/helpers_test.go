package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/real"
	"github.com/jobsim/jobsim/sim/fsys"
)

// testHost is a server with one user (alice), a host root on the real disk
// served over sftp, a fault set, an event log, and an ssh_config for the
// real OpenSSH client.
type testHost struct {
	t      testing.TB
	srv    *Server
	root   string // host root on the real disk
	home   string // alice's home on the real disk (/home/alice in the host)
	dir    string // client side: keys, config, known_hosts
	key    string // alice's private key file
	config string // ssh_config; the host is called "fakehpc"
	faults *fault.Set
	log    *events.Log
	cmDir  string            // short directory for ControlPath sockets
	exec   executor.Executor // the real executor over root
}

func needOpenSSH(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ssh", "sftp", "scp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the real OpenSSH client (%s) is needed: apt-get install openssh-client", tool)
		}
	}
}

// newKey writes an ed25519 private key in OpenSSH format to path and
// returns its public key.
func newKey(t testing.TB, path string) gossh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	return sp
}

func newTestHost(t testing.TB, opts ...Option) *testHost {
	t.Helper()
	needOpenSSH(t)
	log := events.NewLog()
	h := &testHost{t: t, root: t.TempDir(), dir: t.TempDir(), faults: fault.NewSet(fault.WithRecorder(log)), log: log}
	h.home = filepath.Join(h.root, "home", "alice")
	if err := os.MkdirAll(h.home, 0o755); err != nil {
		t.Fatal(err)
	}
	rfs, err := fsys.NewRootFs(h.root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rfs.Close() })
	h.key = filepath.Join(h.dir, "id_alice")
	pub := newKey(t, h.key)
	rex, err := real.New(h.root, real.WithKillGrace(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rex.Close() }) // after the server's Close (cleanups run last first)
	h.exec = rex
	base := []Option{
		WithAuthorizedKey("alice", pub),
		WithExecutor(rex),
		WithFS(rfs),
		WithFaults(h.faults),
		WithRecorder(h.log),
		WithKillGrace(500 * time.Millisecond),
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, append(base, opts...)...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() {
		cancel()
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	cm, err := os.MkdirTemp("", "cm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(cm) })
	h.cmDir = cm
	h.writeConfig(h.key)
	return h
}

// hostBlock is an ssh_config Host block for alias: the server at
// host:port, logging in as user with key only, its host key checked
// against knownHosts, never prompting. extra lines come first: the first
// value of an option wins.
func hostBlock(alias, host string, port int, user, key, knownHosts string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Host %s\n", alias)
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, `  HostName %s
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
`, host, port, user, key, knownHosts)
	return b.String()
}

// writeConfig writes the client's ssh_config and known_hosts, logging in
// as alice with the given key.
func (h *testHost) writeConfig(key string, extra ...string) {
	h.t.Helper()
	kh := filepath.Join(h.dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(h.srv.KnownHostsLine()+"\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	// Extra lines go first: the first value of an option wins.
	cfg := hostBlock("fakehpc", h.srv.Host(), h.srv.Port(), "alice", key, kh, append(extra, "  ConnectTimeout 10")...)
	h.config = filepath.Join(h.dir, "ssh_config")
	if err := os.WriteFile(h.config, []byte(cfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// cmd prepares a real OpenSSH client command (ssh, scp or sftp) with the
// test's config.
func (h *testHost) cmd(ctx context.Context, tool string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, tool, append([]string{"-F", h.config}, args...)...)
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.dir}
	c.WaitDelay = 5 * time.Second
	return c
}

func (h *testHost) run(ctx context.Context, stdin io.Reader, tool string, args ...string) result {
	h.t.Helper()
	c := h.cmd(ctx, tool, args...)
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			h.t.Fatalf("%s %v: %v", tool, args, err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// ssh runs `ssh -F config fakehpc args...` with no stdin.
func (h *testHost) ssh(ctx context.Context, args ...string) result {
	h.t.Helper()
	return h.run(ctx, nil, "ssh", append([]string{"fakehpc"}, args...)...)
}

// events returns the recorded events of kind.
func (h *testHost) events(kind events.Kind) []events.Event {
	var out []events.Event
	for _, e := range h.log.All() {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits until an event of kind satisfying ok is recorded.
func (h *testHost) waitEvent(ctx context.Context, kind events.Kind, ok func(events.Event) bool) events.Event {
	h.t.Helper()
	for {
		for _, e := range h.events(kind) {
			if ok == nil || ok(e) {
				return e
			}
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("no %s event came: %v", kind, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// goClient logs in as alice with Go's ssh client, for what the OpenSSH
// client does not show (exit-signal names, window-change timing).
func (h *testHost) goClient(t testing.TB) *gossh.Client {
	t.Helper()
	b, err := os.ReadFile(h.key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", h.srv.Addr(), &gossh.ClientConfig{
		User:            "alice",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(h.srv.HostKey()),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mustPub reads the public key next to a private key file.
func mustPub(t testing.TB, key string) gossh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

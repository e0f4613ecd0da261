package sshd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

// sshKeygen runs the real ssh-keygen in dir.
func sshKeygen(ctx context.Context, t *testing.T, dir string, args ...string) {
	t.Helper()
	c := exec.CommandContext(ctx, "ssh-keygen", args...)
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
}

// TestUserCertificates: a host with TrustedUserCAKeys accepts a user
// certificate made by the real ssh-keygen and signed by its CA (the real
// client finds key-cert.pub beside the key given with -i, as the NERSC ssh
// spawner relies on), and refuses, as sshd does, an expired one, one that
// does not name the user, and one signed by another CA; ssh.auth says why.
func TestUserCertificates(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("the real ssh-keygen is needed: apt-get install openssh-client")
	}
	ctx := testCtx(t, 60*time.Second)
	dir := t.TempDir()
	sshKeygen(ctx, t, dir, "-q", "-t", "ed25519", "-N", "", "-C", "site CA", "-f", "ca")
	sshKeygen(ctx, t, dir, "-q", "-t", "ed25519", "-N", "", "-C", "other CA", "-f", "otherca")
	h := newTestHost(t, WithTrustedUserCAKeysFile(filepath.Join(dir, "ca.pub")))

	for _, tc := range []struct {
		name, ca, principals, validity string
		ok                             bool
		reason                         string
	}{
		{"valid", "ca", "alice", "+5m", true, ""},
		{"several-principals", "ca", "bob,alice", "-1m:+1h", true, ""},
		{"expired", "ca", "alice", "20200101:20200102", false, "certificate invalid: expired"},
		{"not-yet-valid", "ca", "alice", "+1d:+2d", false, "certificate invalid: not yet valid"},
		{"other-principal", "ca", "bob", "+5m", false, "certificate invalid: name is not a listed principal"},
		{"other-ca", "otherca", "alice", "+5m", false, "certificate signed by an untrusted CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A key of its own, not in authorized_keys: only the
			// certificate can let it in.
			key := filepath.Join(dir, "id_"+tc.name)
			sshKeygen(ctx, t, dir, "-q", "-t", "ed25519", "-N", "", "-f", key)
			sshKeygen(ctx, t, dir, "-q", "-s", tc.ca, "-I", "cert-"+tc.name, "-n", tc.principals, "-V", tc.validity, key+".pub")
			if _, err := os.Stat(key + "-cert.pub"); err != nil {
				t.Fatal(err)
			}
			h.writeConfig(key) // only this key (and its certificate) is offered
			c := h.cmd(ctx, "ssh", "-i", key, "fakehpc", "echo in as $USER")
			out, _ := c.Output()
			if got := string(out) == "in as alice\n"; got != tc.ok {
				t.Errorf("login with the certificate: output %q, want ok=%v", out, tc.ok)
			}
			ev := h.waitEvent(ctx, events.SSHAuth, func(e events.Event) bool { return e.Fields["cert_id"] == "cert-"+tc.name })
			if ev.Fields["ok"] != tc.ok {
				t.Errorf("ssh.auth for the certificate: %+v", ev.Fields)
			}
			if r, _ := ev.Fields["reason"].(string); !strings.HasPrefix(r, tc.reason) || (tc.reason == "") != (r == "") {
				t.Errorf("ssh.auth reason %q, want %q", r, tc.reason)
			}
		})
	}
}

// TestUserCertificateWithoutCA: a server without TrustedUserCAKeys
// refuses every certificate.
func TestUserCertificateWithoutCA(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("the real ssh-keygen is needed: apt-get install openssh-client")
	}
	ctx := testCtx(t, 30*time.Second)
	h := newTestHost(t)
	sshKeygen(ctx, t, h.dir, "-q", "-t", "ed25519", "-N", "", "-f", "ca")
	sshKeygen(ctx, t, h.dir, "-q", "-t", "ed25519", "-N", "", "-f", "id_cert")
	sshKeygen(ctx, t, h.dir, "-q", "-s", "ca", "-I", "cert-alice", "-n", "alice", "-V", "+5m", "id_cert.pub")
	h.writeConfig(filepath.Join(h.dir, "id_cert"))
	if r := h.ssh(ctx, "echo in"); r.code != 255 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("login with a certificate and no CA: %v", r)
	}
	ev := h.waitEvent(ctx, events.SSHAuth, func(e events.Event) bool { return e.Fields["cert_id"] == "cert-alice" })
	if ev.Fields["ok"] != false || ev.Fields["reason"] != "certificate given but no TrustedUserCAKeys" {
		t.Errorf("ssh.auth for the certificate: %+v", ev.Fields)
	}
}

func TestTrustedUserCAKeysFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(empty, []byte("# no keys\n"), 0o644)
	_ = os.WriteFile(bad, []byte("ssh-ed25519 AAAA-not-base64\n"), 0o644)
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "no such file",
		empty:                         "holds no key",
		bad:                           "line 1",
	} {
		if _, err := New(WithTrustedUserCAKeysFile(path)); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "WithTrustedUserCAKeysFile") {
			t.Errorf("%s: error %v, want one saying %q", path, err, want)
		}
	}
}

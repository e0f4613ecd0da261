package cylc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testutil"
)

// realSSHD is a real OpenSSH sshd on a loopback port, standing in for a
// job host until the fake hosts exist: its ForceCommand gives sessions
// their own HOME (so the "remote" cylc-run is not the Env's) and logs every
// command.
type realSSHD struct {
	port       int
	user       string
	key        string // client private key
	remoteHome string
	cmdLog     string
}

func startRealSSHD(t *testing.T, marker string) *realSSHD {
	t.Helper()
	for _, bin := range []string{"/usr/sbin/sshd", "ssh-keygen", "ssh", "rsync"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found: apt-get install openssh-server openssh-client rsync", bin)
		}
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat("/run/sshd"); err != nil {
			t.Skip("sshd as root needs its privilege separation directory: mkdir -p /run/sshd")
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &realSSHD{user: u.Username, key: filepath.Join(dir, "id"), remoteHome: filepath.Join(dir, "remote-home"), cmdLog: filepath.Join(dir, "commands.log")}
	if err := os.MkdirAll(s.remoteHome, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{filepath.Join(dir, "hostkey"), s.key} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(s.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	force := fmt.Sprintf(`#!/bin/bash
export HOME=%q %s=%q
cd "$HOME" || exit 1
printf '%%s\n' "$SSH_ORIGINAL_COMMAND" >> %q
exec bash -c "$SSH_ORIGINAL_COMMAND"
`, s.remoteHome, MarkerVar, marker, s.cmdLog)
	if err := os.WriteFile(filepath.Join(dir, "force.sh"), []byte(force), 0o755); err != nil {
		t.Fatal(err)
	}
	s.port = testutil.FreePort(t)
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
ForceCommand %s
MaxStartups 50
`, s.port, filepath.Join(dir, "hostkey"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "force.sh"))
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Fatalf("sshd did not listen on %d: %v\n%s", s.port, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The generated global.cylc and ssh config really take a workflow to a
// job host over ssh: remote-init, rsync file install, jobs-submit,
// jobs-poll, all through the real OpenSSH client and server.
func TestRemotePlatformOverRealSSHD(t *testing.T) {
	c := locateOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := newTestEnv(t, c)
	sshd := startRealSSHD(t, env.Marker())
	if err := env.WriteSSHConfig(SSHConfig{Hosts: []SSHHost{{
		Alias: "fakehpc", Port: sshd.port, User: sshd.user, IdentityFile: sshd.key,
	}}}); err != nil {
		t.Fatal(err)
	}
	g := fastGlobal
	g.ProcessPoolTimeout = 20 * time.Second
	g.Platforms = []Platform{{
		Name:                       "fakehpc",
		CylcPath:                   c.BinDir(),
		CommunicationMethod:        CommsPoll,
		SubmissionPollingIntervals: []time.Duration{time.Second},
		ExecutionPollingIntervals:  []time.Duration{time.Second},
	}}
	if err := env.WriteGlobalConfig(g); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	wf := playedWorkflow(t, ctx, env, "remote-two-task")
	snap, err := wf.WaitFor(ctx, AllTasksAre(StatusSucceeded))
	if err != nil {
		log, _ := os.ReadFile(sshd.cmdLog)
		t.Fatalf("%v\nremote commands:\n%s", err, log)
	}
	t.Logf("two-task workflow on a remote platform (poll, PT1S): all succeeded after %s", time.Since(start).Round(time.Millisecond))
	for _, j := range snap.Jobs {
		if j.Platform != "fakehpc" || j.JobRunner != "background" || j.JobID == "" {
			t.Errorf("job %s: platform %q runner %q id %q", j.ID(), j.Platform, j.JobRunner, j.JobID)
		}
	}
	if err := wf.WaitStopped(ctx); err != nil {
		t.Fatal(err)
	}

	cmds := readFile(t, sshd.cmdLog)
	for _, want := range []string{"cylc remote-init fakehpc $HOME/cylc-run/" + wf.ID(), "rsync --server",
		"cylc jobs-submit", "cylc jobs-poll", "cylc remote-tidy", c.BinDir() + "/cylc"} {
		contains(t, "remote command log", cmds, want)
	}
	remoteJob := filepath.Join(sshd.remoteHome, "cylc-run", filepath.FromSlash(wf.ID()), "log", "job", "1", "foo", "01")
	contains(t, "remote job.out", readFile(t, filepath.Join(remoteJob, "job.out")), "hello from foo, HOME="+sshd.remoteHome)
	contains(t, "remote job.status", readFile(t, filepath.Join(remoteJob, "job.status")), "CYLC_JOB_EXIT=SUCCEEDED")
	if _, err := os.Stat(filepath.Join(wf.JobLogDir("1", "foo", 1), "job.out")); err == nil {
		t.Error("job.out exists on the scheduler side: the job did not run on the job host")
	}
	if strings.Contains(cmds, env.Home()) {
		t.Errorf("remote commands name the scheduler's HOME %s:\n%s", env.Home(), cmds)
	}
}

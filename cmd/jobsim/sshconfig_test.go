package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testutil"
)

// --ssh-config hands the config to OpenSSH as a file (ssh -F cannot read a
// process substitution): it holds what is printed, the real ssh client
// reaches the host with it, and it is gone once the host stops.
func TestHostWritesTheSSHConfigFileForOpenSSH(t *testing.T) {
	testutil.NeedOpenSSH(t, "ssh")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "host.ssh")
	var info hostInfo
	stop := startServing(t, ctx, &info, syscall.SIGINT, "host", "--users", "alice", "--ssh-config", file, "-o", "json")
	if info.SSHConfigFile != file {
		t.Fatalf("ssh_config_file %q, want %q", info.SSHConfigFile, file)
	}
	var got []byte
	for {
		var err error
		if got, err = os.ReadFile(file); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never appeared: %v", file, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(got) != info.SSHConfig {
		t.Fatalf("file holds %q, printed %q", got, info.SSHConfig)
	}
	out, err := exec.CommandContext(ctx, "ssh", "-F", file, info.Name, "echo hello from $(whoami)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello from alice" {
		t.Fatalf("ssh -F %s: %v: %s", file, err, out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("%s after the host stopped: %v", file, err)
	}
}

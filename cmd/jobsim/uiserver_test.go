package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildJobsim returns the jobsim binary built once for this package's tests.
func buildJobsim(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the jobsim binary; skipped with -short")
	}
	return filepath.Join(pbsBin(t), "jobsim")
}

var listeningAddr = regexp.MustCompile(`msg=listening .*addr=(\S+)`)

// startUIServer starts `jobsim uiserver` with env and waits until it logs
// its address.
func startUIServer(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, string, <-chan error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"uiserver", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningAddr.FindStringSubmatch(sc.Text()); m != nil {
				addrCh <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case addr := <-addrCh:
		return cmd, addr, done
	case err := <-done:
		t.Fatalf("jobsim uiserver exited before listening: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("jobsim uiserver did not listen within 20 s")
	}
	return nil, "", nil
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestUIServerCommand(t *testing.T) {
	bin := buildJobsim(t)

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run("stops on "+sig.String(), func(t *testing.T) {
			cmd, addr, done := startUIServer(t, bin, []string{"JUPYTERHUB_SERVICE_PREFIX=/user/alice/"})
			resp, err := http.Get("http://" + addr + "/user/alice/api")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET api: %s", resp.Status)
			}
			cmd.Process.Signal(sig)
			select {
			case err := <-done:
				if code := exitCode(err); code != 0 {
					t.Errorf("exit status %d after %v, want 0", code, sig)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %v", sig)
			}
		})
	}

	t.Run("crash exit code from env, overridden by flag", func(t *testing.T) {
		_, _, done := startUIServer(t, bin, []string{"JOBSIM_UISERVER_FAULT=crash-after=200ms,exit-code=5"}, "--exit-code", "9")
		select {
		case err := <-done:
			if code := exitCode(err); code != 9 {
				t.Errorf("exit status %d, want 9 (--exit-code overrides the env spec)", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no crash within 10 s")
		}
	})

	t.Run("bad fault spec names its source", func(t *testing.T) {
		cmd := exec.Command(bin, "uiserver")
		cmd.Env = append(os.Environ(), "JOBSIM_UISERVER_FAULT=slow-start=forever")
		out, err := cmd.CombinedOutput()
		if exitCode(err) != 1 || !strings.Contains(string(out), "JOBSIM_UISERVER_FAULT") || !strings.Contains(string(out), "slow-start") {
			t.Errorf("exit %v, output %q: want status 1 naming JOBSIM_UISERVER_FAULT and slow-start", err, out)
		}
	})

	t.Run("help teaches by example", func(t *testing.T) {
		out, err := exec.Command(bin, "uiserver", "--help").CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Examples:", "c.Spawner.cmd", "JOBSIM_UISERVER_FAULT", "--crash-after"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("--help lacks %q", want)
			}
		}
	})
}

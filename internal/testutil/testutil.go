// Package testutil holds the few helpers the project's tests share: waiting
// for a condition with a deadline, a buffer safe for concurrent writes and
// reads, free loopback ports, and running a command for its output and
// exit status.
//
// Why: each of these used to be written again in many test files, and some
// of the copies polled with no deadline at all, so a broken test hung until
// go test's own timeout instead of failing with a message saying what it
// waited for. One copy keeps the deadline and the message in one place.
package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/syncio"
)

// maxPoll is the longest pause between two checks of a condition: short
// enough that a test does not wait long after the condition holds, long
// enough that polling an external process is cheap.
const maxPoll = 50 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test (t.Fatalf) if it
// still does not hold after within. what names the condition in the
// failure ("the job to finish"), so a timeout says what was awaited and for
// how long. The pause between checks starts at 1ms and doubles up to 50ms,
// so fast conditions are seen at once and slow ones are not polled hot.
//
// cond runs in the calling goroutine; WaitFor must be called from the test's
// goroutine, as t.Fatalf requires.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	if err := Poll(what, within, cond); err != nil {
		t.Fatal(err)
	}
}

// Poll is WaitFor's loop without a test: it returns nil once cond holds, or
// an error naming what and within when the deadline passes first. It serves
// polls that run off the test's goroutine, where t.Fatal must not be called.
func Poll(what string, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for !cond() {
		if !time.Now().Before(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(min(pause, time.Until(deadline)+time.Millisecond))
		pause = min(2*pause, maxPoll)
	}
	return nil
}

// SyncBuffer is a bytes.Buffer that is safe for concurrent use: a process
// or goroutine writes its output while the test reads what has arrived so
// far (syncio.Buffer). The zero value is an empty buffer ready to use.
type SyncBuffer = syncio.Buffer

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// a server the test starts itself (a real sshd, a hub) that must be told its
// port in advance. Another process may take it in between; tests that can
// listen on port 0 should do that instead.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago; all n are held open together while choosing, so none repeats.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// Run runs cmd to its end and returns what it wrote to stdout and stderr
// and its exit status (-1 when a signal ended it). A command that could not
// run at all (not found, not started) fails the test. cmd's Stdout and
// Stderr are replaced.
func Run(tb testing.TB, cmd *exec.Cmd) (stdout, stderr string, code int) {
	tb.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return out.String(), errb.String(), code
}

// NeedOpenSSH skips the test, saying why and how to mend it, when the
// OpenSSH client program (ssh, scp, sftp) is not installed.
func NeedOpenSSH(tb testing.TB, program string) {
	tb.Helper()
	if _, err := exec.LookPath(program); err != nil {
		tb.Skipf("the OpenSSH client's %s is not installed (make setup installs openssh-client)", program)
	}
}

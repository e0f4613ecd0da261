package testutil

import (
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatal records the message and ends
// the calling goroutine, as the real one does, without failing this test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a recorder in its own goroutine and returns the
// recorded failure message ("" when fn returned normally).
func run(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestWaitForReturnsOnceConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(5 * time.Millisecond)
			n.Add(1)
		}
	}()
	msg := run(t, func(tb testing.TB) {
		WaitFor(tb, "three ticks", 10*time.Second, func() bool { return n.Load() == 3 })
	})
	if msg != "" {
		t.Fatalf("WaitFor failed although the condition came to hold: %s", msg)
	}
}

func TestWaitForFailsNamingWhatAndHowLong(t *testing.T) {
	calls := 0
	msg := run(t, func(tb testing.TB) {
		WaitFor(tb, "the job to finish", 30*time.Millisecond, func() bool { calls++; return false })
	})
	for _, want := range []string{"the job to finish", "30ms"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q does not mention %q", msg, want)
		}
	}
	if calls < 2 {
		t.Errorf("condition checked %d times, want it polled repeatedly", calls)
	}
}

func TestPollErrorsWithoutATest(t *testing.T) {
	if err := Poll("nothing", time.Second, func() bool { return true }); err != nil {
		t.Fatalf("Poll on a true condition: %v", err)
	}
	err := Poll("never", 10*time.Millisecond, func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), "waiting for never") {
		t.Fatalf("Poll on a false condition: %v, want a timeout naming it", err)
	}
}

func TestSyncBufferConcurrentWritesAndReads(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 400 {
		t.Fatalf("buffer holds %d bytes, want 400", got)
	}
	snap := b.Bytes()
	_, _ = b.Write([]byte("y"))
	if len(snap) != 400 || strings.Contains(string(snap), "y") {
		t.Fatalf("Bytes changed after a later write: %d bytes", len(snap))
	}
}

func TestFreePortsAreDistinctAndListenable(t *testing.T) {
	ports := FreePorts(t, 3)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d returned twice in %v", p, ports)
		}
		seen[p] = true
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", FreePort(t)))
	if err != nil {
		t.Fatalf("listening on the free port: %v", err)
	}
	_ = ln.Close()
}

// Run gives a command's two outputs apart and its exit status, and fails
// the test only when the command cannot run at all.
func TestRunSeparatesOutputsAndStatus(t *testing.T) {
	out, errs, code := Run(t, exec.Command("/bin/sh", "-c", "echo out; echo err >&2; exit 3"))
	if out != "out\n" || errs != "err\n" || code != 3 {
		t.Errorf("Run = %q %q %d, want out, err, 3", out, errs, code)
	}
	if _, _, code := Run(t, exec.Command("/bin/true")); code != 0 {
		t.Errorf("true: exit %d", code)
	}
	msg := run(t, func(tb testing.TB) { Run(tb, exec.Command("/nonexistent/cmd", "arg")) })
	if !strings.Contains(msg, "/nonexistent/cmd arg: ") {
		t.Errorf("a command that cannot start: failure %q, want it to name the command", msg)
	}
}

//go:build linux

package procmark

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Processes are found by their mark however they were started (here a
// child that left its session), a different value or no mark is not
// matched, and KillMarked leaves none alive.
func TestFindAndKillByMark(t *testing.T) {
	mark := "t" + strconv.Itoa(os.Getpid()) + strconv.FormatInt(time.Now().UnixNano(), 36)
	start := func(value string, args ...string) *exec.Cmd {
		t.Helper()
		c := exec.Command(args[0], args[1:]...)
		if value != "" {
			c.Env = append(os.Environ(), "PROCMARK_TEST="+value)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		go c.Wait()
		t.Cleanup(func() { _ = c.Process.Kill() })
		return c
	}
	a := start(mark, "sleep", "30")
	start(mark, "setsid", "sleep", "31")
	start(mark+"x", "sleep", "32")
	start("", "sleep", "33")
	deadline := time.Now().Add(5 * time.Second)
	var got []Process
	for {
		var err error
		if got, err = Marked("PROCMARK_TEST", mark); err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 2 {
		t.Fatalf("marked %q: %+v", mark, got)
	}
	if !Has(a.Process.Pid, "PROCMARK_TEST", mark) || Has(a.Process.Pid, "PROCMARK_TEST", mark+"x") {
		t.Fatal("Has disagrees with the environment")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	killed, err := KillMarked(ctx, "PROCMARK_TEST", mark)
	if err != nil || len(killed) < 2 {
		t.Fatalf("killed %+v: %v", killed, err)
	}
	if left, _ := Marked("PROCMARK_TEST", mark); len(left) != 0 {
		t.Fatalf("alive after KillMarked: %+v", left)
	}
}

package runreg

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A live run's lock is held: it is alive for everyone, TryDead refuses
// it; once it ends (Close) it is gone from the registry.
func TestLiveRunIsAliveUntilClosed(t *testing.T) {
	dir := t.TempDir()
	r, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(r.ID()) {
		t.Fatalf("run id %q", r.ID())
	}
	if fi, err := os.Stat(r.TempDir()); err != nil || !fi.IsDir() {
		t.Fatalf("run folder: %v", err)
	}
	if !Alive(dir, r.ID()) {
		t.Fatal("a live run reads as dead")
	}
	if _, err := TryDead(dir, r.ID()); !errors.Is(err, ErrAlive) {
		t.Fatalf("TryDead on a live run: %v", err)
	}
	ents, err := List(dir)
	if err != nil || len(ents) != 1 || ents[0] != (Entry{ID: r.ID(), Alive: true}) {
		t.Fatalf("list %+v %v", ents, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := List(dir); len(ents) != 0 {
		t.Fatalf("after Close the registry still lists %+v", ents)
	}
}

// A run whose process was SIGKILLed is dead at once, whatever became of
// its pid; its folder is still there for the cleaner, who takes the lock
// (a second cleaner is refused) and removes the entry with Done.
func TestKilledRunIsDead(t *testing.T) {
	if os.Getenv("RUNREG_CHILD") != "" {
		r, err := Start(os.Getenv("RUNREG_CHILD"))
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(r.ID() + "\n")
		time.Sleep(time.Minute)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRunIsDead$")
	cmd.Env = append(os.Environ(), "RUNREG_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	id := string(buf[:9])
	if !Alive(dir, id) {
		t.Fatal("the child's run reads as dead")
	}
	// A child started by the run does not keep its lock (close-on-exec).
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if Alive(dir, id) {
		t.Fatal("a killed run reads as alive")
	}
	d, err := TryDead(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryDead(dir, id); !errors.Is(err, ErrAlive) {
		t.Fatalf("a second cleaner got the lock: %v", err)
	}
	if _, err := os.Stat(d.TempDir()); err != nil {
		t.Fatalf("the dead run's folder: %v", err)
	}
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := List(dir); len(ents) != 0 {
		t.Fatalf("after Done the registry lists %+v", ents)
	}
}

// The run's lock is not inherited: a process the run starts that outlives
// it does not keep the run alive.
func TestChildDoesNotHoldTheLock(t *testing.T) {
	dir := t.TempDir()
	r, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(child.Process.Pid) + "/fd")
	for _, fd := range fds {
		if l, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(child.Process.Pid), "fd", fd.Name())); l == r.LockPath() {
			t.Fatalf("the child holds the run's lock file as fd %s", fd.Name())
		}
	}
	r.lock.Close() // the run's process gone, as far as the lock goes
	if Alive(dir, r.ID()) {
		t.Fatal("the child keeps the run alive")
	}
}

func TestBadIDs(t *testing.T) {
	for _, id := range []string{"", "r123", "../etc", "jobsim-12345678", "rABCDEF12"} {
		if _, err := TryDead(t.TempDir(), id); err == nil {
			t.Errorf("TryDead(%q) accepted", id)
		}
	}
}

package hub

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MarkerEnv is the environment variable that every process of one started
// hub carries (the hub, its proxy, which inherits the hub's environment,
// and each spawned server, through Spawner.environment). Close finds
// leftovers by it.
const MarkerEnv = "JOBSIM_HUB_ID"

// Process is a live process found by its marker.
type Process struct {
	PID     int
	Cmdline string
}

func (p Process) String() string { return fmt.Sprintf("pid %d (%s)", p.PID, p.Cmdline) }

// FindMarked lists the live processes (zombies excluded) whose environment
// holds MarkerEnv=marker. It reads /proc, so it sees other users'
// processes only when run as root or as their owner.
func FindMarked(marker string) ([]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	want := []byte(MarkerEnv + "=" + marker)
	var found []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || len(env) == 0 {
			continue // gone, a zombie, or not ours to read
		}
		if !hasEnvEntry(env, want) {
			continue
		}
		if zombie(pid) {
			continue
		}
		found = append(found, Process{PID: pid, Cmdline: cmdline(pid)})
	}
	return found, nil
}

func hasEnvEntry(environ, entry []byte) bool {
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if bytes.Equal(kv, entry) {
			return true
		}
	}
	return false
}

// zombie reports whether pid is gone or a zombie.
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return stat[i+2] == 'Z' || stat[i+2] == 'X'
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// killAll sends SIGKILL to each process and waits up to timeout for all of
// them to be gone; it returns those still alive.
func killAll(procs []Process, timeout time.Duration) []Process {
	for _, p := range procs {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	deadline := time.Now().Add(timeout)
	for {
		var alive []Process
		for _, p := range procs {
			if !zombie(p.PID) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}

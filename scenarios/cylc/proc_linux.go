//go:build linux

package cylc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a live process found by its environment marker.
type Process struct {
	PID     int
	Command string // /proc/<pid>/cmdline with NULs as spaces
}

// markedProcesses scans /proc for processes whose environment holds
// MarkerVar=marker. Processes it may not read (other users) are skipped;
// zombies have an empty environment and are never matched.
func markedProcesses(marker string) ([]Process, error) {
	needle := []byte(MarkerVar + "=" + marker)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var out []Process
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		if !hasMarker(pid, needle) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		out = append(out, Process{PID: pid, Command: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))})
	}
	return out, nil
}

func hasMarker(pid int, needle []byte) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(kv, needle) {
			return true
		}
	}
	return false
}

// processAlive tells whether pid is a live (not zombie) process carrying
// the marker, so a recycled pid is not mistaken for the scheduler.
func processAlive(pid int, marker string) bool {
	if pid <= 0 {
		return false
	}
	return hasMarker(pid, []byte(MarkerVar+"="+marker))
}

// sweepMarked SIGKILLs every process carrying the marker until none is
// left (new ones may appear while their parents die) or ctx ends.
func sweepMarked(ctx context.Context, marker string) ([]int, error) {
	var killed []int
	for {
		procs, err := markedProcesses(marker)
		if err != nil {
			return killed, err
		}
		if len(procs) == 0 {
			return killed, nil
		}
		for _, p := range procs {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err == nil {
				killed = append(killed, p.PID)
			}
		}
		select {
		case <-ctx.Done():
			return killed, fmt.Errorf("processes still alive after kill: %v: %w", procs, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

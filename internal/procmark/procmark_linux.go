//go:build linux

// Package procmark finds processes by a variable of their environment,
// the mark a process keeps across fork, exec and new sessions: how jobsim
// finds what a run, a Cylc environment or a hub started, where a process
// group or a parent pid would lose track (daemons, reused pids).
package procmark

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

// Process is a live process found by a variable of its environment.
type Process struct {
	PID     int
	Command string // /proc/<pid>/cmdline with NULs as spaces
	Value   string // the variable's value
}

// Marked lists the processes whose environment (as they were started:
// /proc/<pid>/environ) sets name, with its value; only those whose value
// is value when value is not "". This process is left out; so are
// processes it may not read (other users') and zombies (their environment
// reads empty). Matching by a value the process carries, not by pid, so
// a reused pid is never mistaken for a run's process.
func Marked(name, value string) ([]Process, error) {
	prefix := []byte(name + "=")
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
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			v, ok := bytes.CutPrefix(kv, prefix)
			if !ok || (value != "" && string(v) != value) {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
			out = append(out, Process{PID: pid, Value: string(v),
				Command: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))})
			break
		}
	}
	return out, nil
}

// Has reports whether process pid's environment sets name=value (false
// for a zombie, a process gone, or one this process may not read).
func Has(pid int, name, value string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(name + "=" + value)
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(kv, want) {
			return true
		}
	}
	return false
}

// KillMarked SIGKILLs every process whose environment sets name=value
// until none is left (children may appear while their parents die) or
// ctx ends, and returns the processes it killed.
func KillMarked(ctx context.Context, name, value string) ([]Process, error) {
	var killed []Process
	for {
		procs, err := Marked(name, value)
		if err != nil {
			return killed, err
		}
		if len(procs) == 0 {
			return killed, nil
		}
		for _, p := range procs {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err == nil {
				killed = append(killed, p)
			}
		}
		select {
		case <-ctx.Done():
			return killed, fmt.Errorf("processes still alive after SIGKILL: %v: %w", procs, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

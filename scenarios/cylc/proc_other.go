//go:build !linux

package cylc

import (
	"context"
	"errors"
	"syscall"
)

// Process is a live process found by its environment marker.
type Process struct {
	PID     int
	Command string
}

var errNoProc = errors.New("finding processes by environment needs Linux /proc")

func markedProcesses(string) ([]Process, error) { return nil, errNoProc }

// processAlive falls back to signal 0: a recycled pid cannot be told apart.
func processAlive(pid int, _ string) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func sweepMarked(context.Context, string) ([]int, error) { return nil, nil }

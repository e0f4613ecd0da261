//go:build linux

package cylc

import (
	"context"

	"github.com/jobsim/jobsim/internal/procmark"
)

// Process is a live process found by its environment marker.
type Process struct {
	PID     int
	Command string // /proc/<pid>/cmdline with NULs as spaces
}

// markedProcesses lists the processes whose environment holds
// MarkerVar=marker. Processes it may not read (other users) are skipped;
// zombies have an empty environment and are never matched.
func markedProcesses(marker string) ([]Process, error) {
	procs, err := procmark.Marked(MarkerVar, marker)
	out := make([]Process, 0, len(procs))
	for _, p := range procs {
		out = append(out, Process{PID: p.PID, Command: p.Command})
	}
	return out, err
}

// processAlive tells whether pid is a live (not zombie) process carrying
// the marker, so a recycled pid is not mistaken for the scheduler.
func processAlive(pid int, marker string) bool {
	return pid > 0 && procmark.Has(pid, MarkerVar, marker)
}

// sweepMarked SIGKILLs every process carrying the marker until none is
// left (new ones may appear while their parents die) or ctx ends.
func sweepMarked(ctx context.Context, marker string) ([]int, error) {
	procs, err := procmark.KillMarked(ctx, MarkerVar, marker)
	killed := make([]int, 0, len(procs))
	for _, p := range procs {
		killed = append(killed, p.PID)
	}
	return killed, err
}

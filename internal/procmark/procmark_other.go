//go:build !linux

package procmark

import "context"

// Process is a live process found by a variable of its environment.
type Process struct {
	PID     int
	Command string
	Value   string
}

// Marked finds nothing where /proc is not Linux's.
func Marked(name, value string) ([]Process, error) { return nil, nil }

// KillMarked kills nothing where /proc is not Linux's.
func KillMarked(ctx context.Context, name, value string) ([]Process, error) { return nil, nil }

// Has is false where /proc is not Linux's.
func Has(pid int, name, value string) bool { return false }

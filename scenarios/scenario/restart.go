package scenario

import "fmt"

// Restarter is implemented by a system plug-in whose system can be started
// again after it stopped, from the same run (as `cylc play` on an existing
// run restarts a workflow). A timeline may then have `do: start` more than
// once; without it a second start is refused at load time.
type Restarter interface {
	// CheckRestart reports why the start at timeline index i, after the
	// one at prev, cannot work (nil when it can): typically that nothing
	// between them stops the system.
	CheckRestart(f *File, prev, i int) error
}

// validateRestarts checks every `do: start` after the first with the
// system plug-in.
func (f *File) validateRestarts(v *Vocabulary) error {
	prev := -1
	for i, s := range f.Timeline {
		if s.Do != coreDo {
			continue
		}
		if prev >= 0 {
			r, ok := v.systems[f.System.Name].(Restarter)
			if !ok {
				return f.pos.errorf([]any{"timeline", i, "do"}, "step %d: do: start again, but the %s system cannot be restarted (start it once)", i+1, f.System.Name)
			}
			if err := r.CheckRestart(f, prev, i); err != nil {
				return prefixed(err, fmt.Sprintf("step %d: ", i+1))
			}
		}
		prev = i
	}
	return nil
}

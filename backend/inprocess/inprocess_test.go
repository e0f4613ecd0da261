package inprocess

import (
	"testing"

	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// A host hides the machine's Cylc by default exactly when its own Cylc is a
// copy of the overlay (the library lies on the host); a wrapper exec'ing
// another Cylc may need the machine's copy, and the scenario has the last
// word.
func TestIsolateByDefaultOnlyForACylcOfItsOwn(t *testing.T) {
	on, off := true, false
	overlay := &cylc.Install{Executable: "/o/bin/cylc", Overlay: "/o"}
	wrapper := &cylc.Install{Executable: "/venv/bin/cylc"}
	for _, c := range []struct {
		name string
		spec scenario.Host
		in   *cylc.Install
		want bool
	}{
		{"overlay copy", scenario.Host{Cylc: "/opt/cylc"}, overlay, true},
		{"wrapper", scenario.Host{Cylc: "/opt/cylc"}, wrapper, false},
		{"no cylc on the host", scenario.Host{}, overlay, false},
		{"no cylc located", scenario.Host{Cylc: "/opt/cylc"}, nil, false},
		{"scenario says off", scenario.Host{Cylc: "/opt/cylc", Isolate: &off}, overlay, false},
		{"scenario says on", scenario.Host{Isolate: &on}, wrapper, true},
	} {
		if got := isolate(c.spec, c.in); got != c.want {
			t.Errorf("%s: isolate = %v, want %v", c.name, got, c.want)
		}
	}
}

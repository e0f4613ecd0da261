package cylc

// Install describes the Cylc under test so that a job host can carry it
// (a host's `cylc:` path): the runner's backends put it there, the Cylc
// system runs it. cylcsys.LocateInstall finds one.
type Install struct {
	// Executable is the cylc executable on the test machine.
	Executable string
	// Overlay, when set, is a self-contained directory (bin/cylc finding its
	// lib/ relative to itself, as scripts/setup-cylc.sh builds) that a host
	// copies to its `cylc:` path, so the library lies on the host and can be
	// put under the fault layer. Without it the host's bin/cylc only execs
	// Executable, and library faults cannot reach it.
	Overlay string
}

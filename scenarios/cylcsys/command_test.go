package cylcsys

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/runner"
)

const lateClient = `name: late-client
timeout: 2m
topology:
  hosts: [{name: fakehpc}]
system:
  cylc: {workflow: two-task}
timeline:
  - do: start
  - when: {task: 1/foo, state: preparing}
    within: 60s
    hold: [1/bar]
  - note: after the hold
  - when: {task: 1/foo, state: succeeded}
    within: 60s
    release: [bar]
expect:
  - {id: bar-done, task: 1/bar, reaches: succeeded, within: 90s}
  - id: timeline-goes-on-once-actioned
    order:
      - {kind: cylc.command, fields: {command: ^hold 1/bar$, state: ^sent$, by: ^timeline$}}
      - {kind: cylc.command, fields: {command: ^hold 1/bar$, state: ^actioned$, entry: 'Command succeeded: hold'}}
      - {kind: note, msg: ^after the hold$}
      - {kind: cylc.command, fields: {command: ^hold 1/bar$, state: ^returned$, exit: ^ok$}}
  - id: release-actioned
    events: {kind: cylc.command, fields: {command: ^release bar$, state: ^actioned$}, count: 1}
`

// A command-line client that returns late (here `cylc hold` comes back
// 10 s after Cylc 8.0.2's scheduler actioned the hold, as a client stuck
// behind a held remote init does) does not hold up the timeline: the next
// step runs once the scheduler log says "Command succeeded", and the
// client's return is in the history when it comes.
func TestTimelineGoesOnOnceTheSchedulerActioned(t *testing.T) {
	real := locateOrSkip(t)
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = hold ]; then %q \"$@\"; rc=$?; sleep 10; exit $rc; fi\nexec %q \"$@\"\n", real.Path(), real.Path())
	if err := os.WriteFile(filepath.Join(bin, "cylc"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cylc.Locate(ctx, cylc.WithExecutable(filepath.Join(bin, "cylc")), cylc.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	rep, _, _ := runLocalWith(t, parseScenario(t, "late-client", lateClient), c)
	if rep.Verdict != runner.Pass {
		t.Fatalf("verdict %s: %s %+v", rep.Verdict, rep.Reason, rep.Results)
	}
}

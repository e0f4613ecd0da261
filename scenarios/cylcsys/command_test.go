package cylcsys

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
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
  - wait: {event: {kind: cylc.command, fields: {command: ^hold 1/bar$, state: ^returned$}}, since: start, within: 30s}
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

// frozen is the Cylc system whose scheduler is stopped (SIGSTOP) right
// after it started: a scheduler that does not exit when asked to.
type frozen struct{ *System }

func (f frozen) Start(ctx context.Context) error {
	if err := f.System.Start(ctx); err != nil {
		return err
	}
	return syscall.Kill(f.Workflow().SchedulerPID(), syscall.SIGSTOP)
}

const frozenScheduler = `name: frozen-scheduler
timeout: 1m
topology:
  hosts: [{name: fakehpc}]
system:
  cylc: {workflow: long}
timeline:
  - do: start
  - wait: {for: 1s}
`

// What the harness does to a scheduler that does not exit is in the
// history: its stop request and the client's return, then SIGTERM and,
// as SIGTERM does not end a stopped process, SIGKILL, each with the pid
// and why; and the scheduler's exit after them.
func TestStopEscalationIsInTheHistory(t *testing.T) {
	c := locateOrSkip(t)
	art := t.TempDir()
	var sys *System
	factory := func(ctx context.Context, f *scenario.File, topo runner.Topology, env runner.Env, log *events.Log) (runner.System, error) {
		s, err := New(ctx, f, topo, env, log, WithCylc(c), WithLogger(testLogger()))
		if err != nil {
			return nil, err
		}
		sys = s
		return frozen{s}, nil
	}
	r, err := runner.New(runner.WithBackend(fakeBackend{}), runner.WithSystem("cylc", factory), runner.WithArtifacts(art), runner.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := parseScenario(t, "frozen-scheduler", frozenScheduler)
	rep := r.Run(ctx, f)
	if rep.Verdict != runner.Pass {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
	var got []string
	for _, e := range readEvents(t, filepath.Join(art, f.Name)) {
		switch {
		case e.Kind == CommandEvent && e.Fields["by"] == "harness":
			got = append(got, "harness "+e.Fields["command"].(string)+" "+e.Fields["state"].(string))
		case e.Kind == SchedulerEvent && e.Fields["state"] == "signalled":
			if e.Fields["pid"] == nil || !strings.Contains(e.Fields["why"].(string), "still ran") {
				t.Errorf("signal event %+v", e)
			}
			got = append(got, e.Fields["signal"].(string))
		case e.Kind == SchedulerEvent && e.Fields["state"] == "exited":
			got = append(got, "exited")
		}
	}
	want := []string{"harness stop --now --now sent", "harness stop --now --now returned", "SIGTERM", "SIGKILL", "exited"}
	if !slices.Equal(got, want) {
		t.Errorf("the harness's doings %q, want %q", got, want)
	}
	if procs, _ := sys.Env().Processes(); len(procs) > 0 {
		t.Errorf("processes left: %+v", procs)
	}
}

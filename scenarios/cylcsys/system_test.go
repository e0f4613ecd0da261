package cylcsys

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// runLocal runs a scenario whose workflow's tasks run on the scheduler's own
// machine (no platform), through the real runner and the real Cylc, over a
// fake topology. It returns the report, the system and the artifacts dir.
func runLocal(t *testing.T, f *scenario.File) (runner.Report, *System, string) {
	t.Helper()
	return runLocalWith(t, f, locateOrSkip(t))
}

// runLocalWith is runLocal with the given cylc.
func runLocalWith(t *testing.T, f *scenario.File, c *cylc.Cylc) (runner.Report, *System, string) {
	t.Helper()
	art := t.TempDir()
	var sys *System
	factory := func(ctx context.Context, f *scenario.File, topo runner.Topology, env runner.Env, log *events.Log) (runner.System, error) {
		s, err := New(ctx, f, topo, env, log, WithCylc(c), WithLogger(testLogger()))
		sys = s
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	r, err := runner.New(runner.WithBackend(fakeBackend{}), runner.WithSystem("cylc", factory), runner.WithHostPlugin(pbsbatch.Plugin{}), runner.WithArtifacts(art), runner.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep := r.Run(ctx, f)
	if rep.Verdict != runner.Pass {
		tr, _ := os.ReadFile(filepath.Join(art, f.Name, "transcript.md"))
		t.Logf("transcript of %s:\n%s", f.Name, tr)
	}
	if sys == nil {
		t.Fatalf("the system was not created: %s %s", rep.Verdict, rep.Reason)
	}
	procs, err := sys.Env().Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) > 0 {
		t.Errorf("processes left after the run: %+v", procs)
	}
	return rep, sys, filepath.Join(art, f.Name)
}

func readEvents(t *testing.T, dir string) []events.Event {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e events.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("events.jsonl: %v: %s", err, line)
		}
		out = append(out, e)
	}
	return out
}

func taskStates(evs []events.Event, task string) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == TaskState && e.Fields["task"] == task {
			out = append(out, e.Fields["state"].(string))
		}
	}
	return out
}

const localHappy = `name: local-happy
timeout: 2m
topology:
  hosts: [{name: fakehpc}]
system:
  cylc: {workflow: two-task}
timeline:
  - do: start
expect:
  - {id: foo-done, task: 1/foo, reaches: succeeded, within: 60s}
  - {id: bar-done, task: 1/bar, reaches: succeeded, within: 60s}
  - {id: not-stuck, stuck: {longer_than: 30s}}
`

// A workflow that runs to completion passes its gate, the history holds
// each task's states in order and the scheduler's exit, the artifacts hold
// the configuration and logs, and nothing is left running.
func TestLocalWorkflowThroughTheRunner(t *testing.T) {
	rep, _, dir := runLocal(t, parseScenario(t, "local-happy", localHappy))
	if rep.Verdict != runner.Pass {
		t.Fatalf("verdict %s: %s %+v", rep.Verdict, rep.Reason, rep.Results)
	}
	if rep.Version == "" {
		t.Error("no version in the report")
	}
	evs := readEvents(t, dir)
	for _, task := range []string{"1/foo", "1/bar"} {
		st := taskStates(evs, task)
		if len(st) < 2 || st[len(st)-1] != "succeeded" {
			t.Errorf("%s states %v, want a history ending in succeeded", task, st)
		}
	}
	var exited bool
	for _, e := range evs {
		if e.Kind == SchedulerEvent && e.Fields["state"] == "exited" {
			exited = true
		}
	}
	if !exited {
		t.Error("no cylc.scheduler exited event although the workflow completed")
	}
	for _, name := range []string{"global.cylc", "ssh_config", "flow.cylc", "scheduler/log", "job/1/foo/01/job", "job/1/foo/01/job.out", "job/1/foo/01/job.status", "db", "transcript.md"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("artifact %s: %v", name, err)
		}
	}
	out, _ := os.ReadFile(filepath.Join(dir, "job/1/foo/01/job.out"))
	if !strings.Contains(string(out), "hello from foo") {
		t.Errorf("job.out of 1/foo: %q", out)
	}
}

const localRetrigger = `name: local-retrigger
timeout: 2m
topology:
  hosts: [{name: fakehpc}]
system:
  cylc: {workflow: fail-once}
timeline:
  - do: start
  - when: {task: 1/flaky, state: failed}
    within: 60s
    trigger: [flaky]
expect:
  - {id: flaky-done, task: 1/flaky, reaches: succeeded, within: 60s}
  - id: flaky-failed-once
    events: {kind: cylc.task, fields: {task: ^1/flaky$, state: ^failed$}, count: 1}
`

// After a trigger the run must not end before the scheduler acted on it
// (right after the command every task may still be final: 1/flaky failed;
// Settled's grace period covers that), the retriggered job (submit 2)
// succeeds, and the completed workflow settles the run without waiting for
// any timeout.
func TestTriggerIsSeenBeforeTheRunSettles(t *testing.T) {
	start := time.Now()
	rep, _, dir := runLocal(t, parseScenario(t, "local-retrigger", localRetrigger))
	if rep.Verdict != runner.Pass {
		t.Fatalf("verdict %s: %s %+v", rep.Verdict, rep.Reason, rep.Results)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("the run took %s: it waited for a timeout instead of settling", d)
	}
	var sawLog bool
	for _, e := range readEvents(t, dir) {
		if e.Kind == LogEvent && strings.Contains(e.Msg, "1/flaky") {
			sawLog = true
		}
	}
	if !sawLog {
		t.Error("no cylc.log event about 1/flaky failing")
	}
}

const localHold = `name: local-hold
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
  - when: {task: 1/foo, state: succeeded}
    within: 60s
    wait: {for: 2s}
  - release: [bar]
expect:
  - {id: bar-done, task: 1/bar, reaches: succeeded, within: 90s}
  - id: held-until-released
    order:
      - {kind: cylc.task, fields: {task: ^1/bar$, state: ^waiting$, held: ^true$}}
      - {kind: scenario.step, msg: ^release bar$}
      - {kind: cylc.task, fields: {task: ^1/bar$, state: ^succeeded$}}
  - id: not-run-while-held
    order:
      - {kind: scenario.step, msg: ^release bar$}
      - {kind: cylc.task, fields: {task: ^1/bar$, state: ^preparing$}}
`

// A hold given before the task exists (by its full id: Cylc's globs match
// only tasks in the pool) keeps it waiting; a release by bare name
// ("bar" -> "*/bar", every cycle in the pool) lets it run.
func TestHoldAndReleaseByName(t *testing.T) {
	rep, _, _ := runLocal(t, parseScenario(t, "local-hold", localHold))
	if rep.Verdict != runner.Pass {
		t.Fatalf("verdict %s: %s %+v", rep.Verdict, rep.Reason, rep.Results)
	}
}

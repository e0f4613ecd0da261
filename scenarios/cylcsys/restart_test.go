package cylcsys

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobsim/jobsim/scenarios/runner"
)

const restartScenario = `name: restart
timeout: 3m
topology:
  hosts: [{name: fakehpc}]
system:
  cylc: {workflow: short-sleeper}
timeline:
  - do: start
  - when: {task: 1/sleeper, state: running}
    within: 60s
    do: STOP
  - do: start
expect:
  - {id: done, task: 1/sleeper, reaches: succeeded, within: 2m}
  - id: restarted-with-its-job-running
    order:
      - {kind: cylc.task, fields: {task: ^1/sleeper$, state: ^running$}}
      - {kind: cylc.scheduler, fields: {state: ^exited$}}
      - {kind: cylc.scheduler, fields: {state: ^started$, restart: ^true$}}
      - {kind: cylc.task, fields: {task: ^1/sleeper$, state: ^succeeded$}}
  - id: one-job
    events: {kind: cylc.task, fields: {task: ^1/sleeper$, state: ^running$}, count: 1}
`

// A workflow stopped (stop --now leaves its job running; kill-scheduler
// ends the scheduler as a crash does) and started again from the same run
// (Cylc 8.0.2's `cylc play` on an existing run restarts it from its
// database) picks its running job up: the job's one submission succeeds.
func TestRestartPicksUpTheRunningJob(t *testing.T) {
	for _, stop := range []string{"stop-now", "kill-scheduler"} {
		t.Run(stop, func(t *testing.T) {
			f := parseScenario(t, "restart-"+stop, strings.Replace(strings.Replace(restartScenario, "STOP", stop, 1), "name: restart", "name: restart-"+stop, 1))
			rep, _, _ := runLocal(t, f)
			if rep.Verdict != runner.Pass {
				t.Fatalf("verdict %s: %s %+v", rep.Verdict, rep.Reason, rep.Results)
			}
		})
	}
}

// A second start that cannot work is refused at load time.
func TestRestartWithoutAStopIsRefusedAtLoad(t *testing.T) {
	src := strings.Replace(restartScenario, "do: STOP", "hold: [1/foo]", 1)
	if _, err := testVocabulary.Parse(filepath.Join(repoRoot(t), "fixtures", "workflows", "x.yaml"), []byte(src)); err == nil || !strings.Contains(err.Error(), "x.yaml:12:9: step 3: do: start again needs the scheduler stopped first: a do: stop, stop-now, kill-scheduler step between steps 1 and 3") {
		t.Errorf("error %v", err)
	}
}

package scenario_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// vocab is the vocabulary of the tests: Cylc and PBS as plug-ins.
var vocab = scenario.MustVocabulary(cylcsys.Plugin{}, pbsbatch.Plugin{})

const good = `name: reload-in-flight
description: A reload while a submission is slow leaves no task in preparing.
labels: [gate, cylc, fault:pbs]
topology:
  hosts:
    - name: fakehpc
      pbs: {nodes: [{name: cn1, ncpus: 4}]}
system:
  cylc:
    workflow: wf
    platform: {comms: poll, submission_polling: 5s}
timeline:
  - do: start
  - when: {task: 1/foo, state: preparing}
    fault: {id: slow-qsub, layer: pbs, ops: [qsub], effect: {kind: latency, latency: 20s}}
  - do: reload
  - after: 25s
    clear: [slow-qsub]
  - wait: {task: 1/foo, state: succeeded, within: 2m}
expect:
  - {id: done, task: 1/foo, reaches: succeeded, within: 3m}
  - {stuck: {longer_than: 90s}}
  - {events: {kind: pbs.call, fields: {command: qsub}, count: 1}}
`

func write(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "wf"), os.DirFS("testdata/wf")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseGoodScenarioFillsDefaults(t *testing.T) {
	f, err := vocab.Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode != scenario.Gate || f.Timeout.D().Minutes() != 5 {
		t.Errorf("mode %q timeout %v", f.Mode, f.Timeout.D())
	}
	c := cylcsys.ConfigOf(f)
	if c.Platform.Host != "fakehpc" || c.Platform.Runner != "pbs" || c.Platform.Name != "fakehpc" {
		t.Errorf("platform defaults %+v", c.Platform)
	}
	if h := f.Topology.Hosts[0]; h.Executor != "real" || h.PBS == nil {
		t.Errorf("host defaults %+v", h)
	}
	if fs := f.Timeline[1].Fault; fs.Host != "fakehpc" || fs.Effect.Latency.D().Seconds() != 20 {
		t.Errorf("fault step %+v", fs)
	}
	if got := f.Expect[1].Judge.(*cylcsys.Stuck).States; strings.Join(got, ",") != "preparing,submitted" {
		t.Errorf("stuck states default %v", got)
	}
	if f.Expect[2].ID != "expect-3" {
		t.Errorf("generated id %q", f.Expect[2].ID)
	}
}

func TestMalformedScenariosSayWhereAndWhat(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown field", "  - do: reload\n", "  - do: reload\n    retries: 3\n", `s.yaml:17:5: unknown field "retries" in a step`},
		{"unknown fault kind", "kind: latency, latency: 20s", "kind: explode", "s.yaml:15:12: step 2: fault: effect.kind: \"explode\" is not a pbs effect"},
		{"bad duration", "within: 3m}", "within: soon}", "s.yaml:21:57: expectation done: duration \"soon\""},
		{"two actions", "  - do: reload\n", "  - do: reload\n    note: hi\n", "s.yaml:16:5: step 3: one action per step, found do and note"},
		{"bad task state", "state: preparing}", "state: cooking}", "s.yaml:14:32: task state \"cooking\""},
		{"unknown host", "name: fakehpc\n", "name: fakehpc\n    - name: other\n", "system.cylc.platform.host \"\" is not a topology host"},
		{"bad do", "do: reload", "do: relaod", "s.yaml:16:9: step 3: do \"relaod\""},
		{"syntax", "labels: [gate", "labels: [[gate", "s.yaml:2:1: did not find expected"},
		{"reproducer without bug", "labels:", "mode: reproducer\nlabels:", "s.yaml:3:7: a reproducer must name the bug"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := strings.Replace(good, c.from, c.to, 1)
			if body == good {
				t.Fatalf("replacement %q not found", c.from)
			}
			_, err := vocab.Load(write(t, body))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestReproducerAppliesByVersion(t *testing.T) {
	body := strings.Replace(good, "labels:", `mode: reproducer
reproduces:
  id: cylc-flow#5102
  affects: ">=8.0.0, <8.0.3"
  shows: [done]
labels:`, 1)
	f, err := vocab.Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]bool{"8.0.2": true, "8.0.3": false, "8.2.1": false, "7.8.1": false} {
		got, err := f.Applies(v)
		if err != nil || got != want {
			t.Errorf("Applies(%s) = %v, %v; want %v", v, got, err, want)
		}
	}
	bad := strings.Replace(body, "shows: [done]", "shows: [nope]", 1)
	if _, err := vocab.Load(write(t, bad)); err == nil || !strings.Contains(err.Error(), `no expectation has id "nope"`) {
		t.Fatalf("shows naming a missing expectation: %v", err)
	}
}

func TestLoadAllReportsEveryBadFile(t *testing.T) {
	p1 := write(t, good)
	p2 := write(t, strings.Replace(good, "do: reload", "do: relaod", 1))
	p3 := write(t, "name: [")
	_, err := vocab.LoadAll(p1, p2, p3)
	if err == nil || !strings.Contains(err.Error(), "relaod") || !strings.Contains(err.Error(), p3) {
		t.Fatalf("LoadAll error %v", err)
	}
}

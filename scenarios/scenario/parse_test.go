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
		{"unknown field", "  - do: reload\n", "  - do: reload\n    retries: 3\n", `s.yaml:17:5: unknown field "retries" in a step (see docs/scenarios.md)`},
		{"unknown field of an inline rule", "effect: {kind: latency", "retry: 2, effect: {kind: latency", `s.yaml:15:53: unknown field "retry" (known here: host, id, layer, ops,`},
		{"unknown fault kind", "kind: latency, latency: 20s", "kind: explode", "s.yaml:15:12: step 2: fault: effect.kind: \"explode\" is not a pbs effect"},
		{"bad duration", "within: 3m}", "within: soon}", "s.yaml:21:57: expectation done: duration \"soon\""},
		// A list where a duration belongs is named as such, at the list.
		{"list as duration", "within: 3m}", "within: [3m, 4m]}", "s.yaml:21:57: expectation done: want a duration such as 500ms, 20s or 1h, got a list"},
		{"list as duration, block", "  - do: reload\n", "  - do: reload\n  - wait:\n      for:\n        - 3m\n", "s.yaml:19:9: want a duration such as 500ms, 20s or 1h, got a list"},
		{"wrong type", "ncpus: 4}", "ncpus: [4]}", "s.yaml:7:40: want an integer, got a list"},
		{"two actions", "  - do: reload\n", "  - do: reload\n    note: hi\n", "s.yaml:16:5: step 3: one action per step, found do and note"},
		{"bad task state", "state: preparing}", "state: cooking}", "s.yaml:14:32: task state \"cooking\""},
		{"unknown host", "name: fakehpc\n", "name: fakehpc\n    - name: other\n", "system.cylc.platform.host \"\" is not a topology host"},
		{"bad do", "do: reload", "do: relaod", "s.yaml:16:9: step 3: do \"relaod\""},
		// An unclosed bracket is reported where it opens, not where the
		// parser gives up (the line below) nor the line above it.
		{"unclosed [", "labels: [gate, cylc, fault:pbs]", "labels: [[gate, cylc, fault:pbs]", `s.yaml:3:9: this "[" is never closed`},
		{"unclosed { in a step", "effect: {kind: latency, latency: 20s}}", "effect: {kind: latency, latency: 20s}", `s.yaml:15:12: this "{" is never closed`},
		{"duplicate key", "labels:", "name: again\nlabels:", `s.yaml:3:1: mapping key "name" already defined at [1:1]`},
		{"second document", "expect:\n", "---\nname: other\nexpect:\n", "s.yaml:21:1: a second YAML document"},
		{"isolate on a virtual host", "    - name: fakehpc\n", "    - name: fakehpc\n      executor: virtual\n      isolate: true\n", "s.yaml:8:16: isolate is for real executors"},
		{"reproducer without bug", "labels:", "mode: reproducer\nlabels:", "s.yaml:3:7: a reproducer must name the bug"},
	}
	checkBroken(t, cases)
}

// checkBroken loads the good scenario with each case's from replaced by
// to, and wants an error that contains want.
func checkBroken(t *testing.T, cases []struct{ name, from, to, want string }) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := strings.Replace(good, c.from, c.to, 1)
			if body == good {
				t.Fatalf("replacement %q not found", c.from)
			}
			_, err := vocab.Load(write(t, body))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, c.want)
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

// Every duration of a scenario is refused when negative, at the value,
// whichever field holds it: the check sits where durations are decoded.
func TestNegativeDurationsAreRefusedWhereTheyAre(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"timeout", "labels:", "timeout: -1m\nlabels:", "s.yaml:3:10: duration \"-1m\": must not be negative"},
		{"step within", "state: preparing}\n", "state: preparing}\n    within: -5s\n", "s.yaml:15:13: duration \"-5s\""},
		{"wait within", "within: 2m}\n", "within: -2m}\n", "s.yaml:19:51: duration \"-2m\""},
		{"wait for", "  - do: reload\n", "  - do: reload\n  - wait: {for: -1s}\n", "s.yaml:17:17: duration \"-1s\""},
		{"after", "after: 25s", "after: -25s", "s.yaml:17:12: duration \"-25s\""},
		{"at", "  - do: reload\n", "  - at: -1s\n    do: reload\n", "s.yaml:16:9: duration \"-1s\""},
		{"expectation within", "within: 3m}", "within: -3m}", "s.yaml:21:57: expectation done: duration \"-3m\""},
		{"longer_than", "longer_than: 90s", "longer_than: -90s", "s.yaml:22:27: expectation expect-2: duration \"-90s\""},
		{"fault latency", "latency: 20s", "latency: -20s", "s.yaml:15:86: duration \"-20s\""},
		{"fault for", "kind: latency, latency: 20s}", "kind: latency, latency: 20s}, for: -1h", "s.yaml:15:97: duration \"-1h\""},
		{"platform polling", "submission_polling: 5s", "submission_polling: -5s", "s.yaml:11:49: duration \"-5s\""},
		{"pbs down", "  - do: reload\n", "  - do: reload\n  - pbs: {action: restart, down: -30s}\n", "s.yaml:17:34: step 4: duration \"-30s\""},
	}
	checkBroken(t, cases)
}

// LoadAll validates every file it finds, so a bad file is reported even
// when a label filter (applied to what LoadAll returns) would not select it.
func TestLoadAllRefusesANegativeDurationInAnyFile(t *testing.T) {
	dir := filepath.Dir(write(t, good))
	bad := strings.Replace(strings.Replace(good, "name: reload-in-flight", "name: other", 1), "labels: [gate, cylc, fault:pbs]", "labels: [slow]\ntimeout: -1s", 1)
	if err := os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := vocab.LoadAll(dir)
	if err == nil || !strings.Contains(err.Error(), "t.yaml:4:10: duration \"-1s\": must not be negative") {
		t.Fatalf("LoadAll error %v", err)
	}
	if len(files) != 1 || files[0].Name != "reload-in-flight" {
		t.Fatalf("the good file is still loaded: %v", files)
	}
}

func TestNotYAMLTextHasAPlace(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"binary", "\x7fELF\x02\x01\x01\x00", "s.yaml:1:1: control character 0x7f: not YAML text (a binary file?)"},
		{"nul in line 2", "name: x\nlabels: [a\x00]\n", "s.yaml:2:11: control character 0x00"},
		{"latin-1", "name: caf\xe9\n", "s.yaml:1:10: byte 0xe9 is not UTF-8"},
		{"empty", "", "s.yaml: empty file"},
		{"comments only", "# nothing yet\n", "s.yaml: empty file"},
		{"a list", "- name: x\n", "s.yaml:1:1: sequence was used where mapping is expected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := vocab.Load(write(t, c.body))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

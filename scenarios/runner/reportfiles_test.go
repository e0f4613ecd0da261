package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// Two machines each ran a shard; their artifacts, copied side by side, make
// one index, one JUnit file and pages drawn again from the histories.
func TestReportsOfShardsMergeIntoOneIndex(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	write := func(shard, name string, v Verdict, results ...check.Result) {
		dir := filepath.Join(root, shard, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		hist := []events.Event{
			{Seq: 1, Time: t0, Kind: "scenario.step", Msg: "start", Fields: map[string]any{"step": 1}},
			{Seq: 2, Time: t0.Add(2 * time.Second), Kind: events.PBSJobState, Host: "fakehpc", Msg: "1.fakehpc -> R", Fields: map[string]any{"job": "1.fakehpc", "to": "R"}},
		}
		var b bytes.Buffer
		log := events.NewLog()
		for _, e := range hist {
			log.Record(e)
		}
		if err := log.WriteJSONLines(&b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		rep := Report{Name: name, File: name + ".yaml", Verdict: v, Mode: scenario.Gate, JudgedAs: scenario.Gate, Results: results, Started: t0, Duration: 3 * time.Second, Dir: dir}
		if v == Fail {
			rep.Reason = "expectation job-ends does not hold"
		}
		if err := writeHTMLReport(dir, &scenario.File{Name: name, Path: name + ".yaml"}, &rep, hist); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "report.html")) // the merge draws it again
	}
	write("shard1", "happy", Pass, check.Result{ID: "runs", OK: true, Detail: "ran"})
	write("shard2", "vanish", Fail, check.Result{ID: "job-ends", OK: false, Detail: "never ended"})

	reps, err := LoadReports(filepath.Join(root, "shard1"), filepath.Join(root, "shard2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || reps[0].Name != "happy" || reps[1].Verdict != Fail || reps[1].Results[0].ID != "job-ends" || reps[1].Duration != 3*time.Second {
		t.Fatalf("reports read back: %+v", reps)
	}
	for _, r := range reps {
		if err := RedrawHTML(r); err != nil {
			t.Fatal(err)
		}
		page, err := os.ReadFile(filepath.Join(r.Dir, "report.html"))
		if err != nil || !bytes.Contains(page, []byte(`data-name="1.fakehpc"`)) {
			t.Errorf("%s: redrawn page without the job's lane (err %v)", r.Name, err)
		}
	}
	if err := WriteHTMLIndex(root, reps); err != nil {
		t.Fatal(err)
	}
	idx, _ := os.ReadFile(filepath.Join(root, "index.html"))
	for _, want := range []string{`href="shard1/happy/report.html"`, `href="shard2/vanish/report.html"`, "1 passed, 1 failed"} {
		if !strings.Contains(string(idx), want) {
			t.Errorf("index lacks %q", want)
		}
	}
	var junit bytes.Buffer
	if err := WriteJUnit(&junit, "jobsim", reps); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `tests="2"`) || !strings.Contains(junit.String(), `failures="1"`) {
		t.Errorf("merged JUnit: %s", junit.String())
	}
	if _, err := LoadReports(filepath.Join(root, "nothing-here")); err == nil {
		t.Error("LoadReports of a missing folder succeeded")
	}
	if _, err := LoadReports(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not the artifacts of a jobsim run") {
		t.Errorf("LoadReports of an empty folder: %v", err)
	}
}

// The transcript reads as the incident: sequence numbers to cite, a fault
// that fires again and again as one line with its count, failed calls with
// their exit status first, log entries whole, and the progress a driver
// marks.
func TestTranscriptReadsAsTheIncident(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	long := `env CYLC_VERSION=8.0.2 bash --login -c 'exec "$0" "$@"' /opt/cylc/bin/cylc jobs-submit --remote-mode -- '$HOME/cylc-run/wf/log/job' 1/foo/01 ` + strings.Repeat("x", 200)
	hist := []events.Event{
		{Seq: 1, Time: at(0), Kind: "scenario.step", Msg: "start"},
		{Seq: 2, Time: at(1), Kind: "cylc.log", Msg: "INFO platform: fakehpc - remote init (on fakehpc)", Fields: map[string]any{"level": "INFO", "progress": true, "text": "INFO - platform: fakehpc - remote init (on fakehpc)"}},
		{Seq: 3, Time: at(1.5), Kind: "cylc.log", Msg: "INFO [1/foo waiting job:01] => waiting", Fields: map[string]any{"level": "INFO", "text": "INFO - [1/foo] => waiting"}},
		{Seq: 4, Time: at(2), Kind: events.FaultAdded, Host: "fakehpc", Msg: "lib fs errno", Fields: map[string]any{"rule": fault.Rule{ID: "lib", Layer: fault.FS}}},
		{Seq: 5, Time: at(3), Kind: events.FaultActivate, Host: "fakehpc", Msg: "lib fired on fs readdir /opt/cylc/lib", Fields: map[string]any{"rule": "lib"}},
		{Seq: 6, Time: at(3), Kind: events.SSHExec, Host: "fakehpc", Msg: `exec "` + long + `" by alice: exit 1`, Fields: map[string]any{"exit": 1}},
		{Seq: 7, Time: at(4), Kind: events.FaultActivate, Host: "fakehpc", Msg: "lib fired on fs readdir /opt/cylc/lib", Fields: map[string]any{"rule": "lib"}},
		{Seq: 8, Time: at(5), Kind: events.FaultActivate, Host: "fakehpc", Msg: "lib fired on fs readdir /opt/cylc/lib", Fields: map[string]any{"rule": "lib"}},
		{Seq: 9, Time: at(5), Kind: "cylc.log", Msg: "ERROR platform: fakehpc - initialisation did not complete", Fields: map[string]any{"level": "ERROR",
			"text": "2026-12-06T10:00:05Z ERROR - platform: fakehpc - initialisation did not complete\n    REMOTE INIT FAILED\n    ls: cannot open directory '/opt/cylc/lib'"}},
		{Seq: 10, Time: at(6), Kind: events.FaultCleared, Host: "fakehpc", Msg: "lib", Fields: map[string]any{"id": "lib"}},
		{Seq: 11, Time: at(7), Kind: events.SSHExec, Host: "fakehpc", Msg: `exec "true" by alice: exit 0`, Fields: map[string]any{"exit": 0}},
	}
	rep := Report{Name: "lib", Verdict: Pass, Started: t0, Duration: 8 * time.Second}
	writeTranscript(dir, &scenario.File{Name: "lib", Path: "lib.yaml"}, &rep, hist, []events.Kind{"cylc.task"})
	b, err := os.ReadFile(filepath.Join(dir, "transcript.md"))
	if err != nil {
		t.Fatal(err)
	}
	tr := string(b)
	for _, want := range []string{
		"#2 ", "remote init (on fakehpc)", // progress, with its seq
		"lib fired on fs readdir /opt/cylc/lib (fired 3 times, until +5s)",
		"exit 1: exec \"env CYLC_VERSION",
		"|     REMOTE INIT FAILED", "|     ls: cannot open directory '/opt/cylc/lib'",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	if n := strings.Count(tr, "fired on fs readdir"); n != 1 {
		t.Errorf("the repeated activation is on %d lines, want 1:\n%s", n, tr)
	}
	for _, absent := range []string{"=> waiting", `exec "true"`} {
		if strings.Contains(tr, absent) {
			t.Errorf("transcript holds %q (neither progress nor a failure)", absent)
		}
	}
}

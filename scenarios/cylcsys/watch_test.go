package cylcsys

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/cylc"
)

func TestCurrentTasksPicksTheLatestFlowRowAndItsJob(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	snap := cylc.Snapshot{
		Tasks: []cylc.TaskState{
			{Cycle: "1", Name: "foo", Status: "failed", SubmitNum: 1, FlowNums: "[1]", Updated: t0},
			{Cycle: "1", Name: "foo", Status: "submitted", SubmitNum: 2, FlowNums: "[2]", Updated: t0.Add(time.Second)},
			{Cycle: "1", Name: "bar", Status: "waiting", Held: true, Updated: t0},
		},
		Jobs: []cylc.Job{
			{Cycle: "1", Name: "foo", SubmitNum: 1, JobID: "1.fakehpc", Platform: "fakehpc"},
			{Cycle: "1", Name: "foo", SubmitNum: 2, JobID: "2.fakehpc", Platform: "hpc2"},
		},
	}
	got := currentTasks(snap, "fakehpc")
	want := map[string]taskObs{
		"1/foo": {state: "submitted", submitNum: 2, jobID: "2.fakehpc", platform: "hpc2"},
		"1/bar": {state: "waiting", held: true, platform: "fakehpc"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// The events are what the checkers and the transcript read: their fields
// and messages are the contract.
func TestDiffTasksEvents(t *testing.T) {
	before := map[string]taskObs{
		"1/foo": {state: "preparing", submitNum: 1, platform: "fakehpc"},
		"1/bar": {state: "waiting", held: true, platform: "fakehpc"},
		"1/baz": {state: "succeeded", submitNum: 1, platform: "fakehpc"},
	}
	now := map[string]taskObs{
		"1/foo": {state: "submitted", submitNum: 1, jobID: "3.fakehpc", platform: "fakehpc"},
		"1/bar": {state: "waiting", platform: "fakehpc"},
		"1/baz": {state: "succeeded", submitNum: 1, platform: "fakehpc"},
		"2/foo": {state: "waiting", platform: "fakehpc"},
	}
	cs := diffTasks(before, now)
	var msgs []string
	for _, c := range cs {
		msgs = append(msgs, c.event().Msg)
	}
	wantMsgs := []string{
		"1/bar waiting → waiting (released)",
		"1/foo preparing → submitted (job 3.fakehpc)",
		"2/foo → waiting",
	}
	if !reflect.DeepEqual(msgs, wantMsgs) {
		t.Fatalf("messages %q, want %q", msgs, wantMsgs)
	}
	f := cs[1].event().Fields
	for k, v := range map[string]any{"task": "1/foo", "state": "submitted", "submit_num": 1, "job_id": "3.fakehpc", "platform": "fakehpc", "from": "preparing"} {
		if f[k] != v {
			t.Errorf("field %s = %v, want %v", k, f[k], v)
		}
	}
	if ev := (change{id: "1/foo", was: taskObs{state: "failed", submitNum: 1}, now: taskObs{state: "preparing", submitNum: 2}}).event(); ev.Msg != "1/foo failed → preparing (submit 2)" {
		t.Errorf("resubmission message %q", ev.Msg)
	}
}

func TestLogTailerAssemblesEntriesAcrossPartialWrites(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	tl := logTailer{path: p}
	if got := tl.read(false); len(got) != 0 {
		t.Fatalf("no file: %v", got)
	}
	appendTo := func(s string) {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	appendTo("2026-11-26T03:19:15Z INFO - one\n2026-11-26T03:19:15Z ERROR - [jobs-submit cmd] cylc jobs-submit\n    [jobs-submit ret_code] 1\n    [jobs-su")
	got := tl.read(false)
	if len(got) != 1 || got[0][0] != "2026-11-26T03:19:15Z INFO - one" {
		t.Fatalf("first read %q", got)
	}
	appendTo("bmit out] 2026|1/foo/01|1\n2026-11-26T03:19:16Z WARNING - next\n")
	got = tl.read(false)
	want := [][]string{{"2026-11-26T03:19:15Z ERROR - [jobs-submit cmd] cylc jobs-submit", "    [jobs-submit ret_code] 1", "    [jobs-submit out] 2026|1/foo/01|1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("second read %q, want %q", got, want)
	}
	got = tl.read(true)
	if len(got) != 1 || got[0][0] != "2026-11-26T03:19:16Z WARNING - next" {
		t.Fatalf("flush %q", got)
	}
}

// The INFO entries that mark progress with a job host are recorded as
// progress (the transcript keeps them); routine INFO is not; entries keep
// their continuation lines.
func TestLogEntriesMarkProgress(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	log := events.NewLog()
	w := &watcher{log: log, logTail: logTailer{path: p}}
	lines := "2026-12-06T09:23:23Z INFO - platform: fakehpc - remote init (on fakehpc)\n" +
		"2026-12-06T09:23:23Z INFO - [1/sleeper waiting job:00 flows:1] => waiting(queued)\n" +
		"2026-12-06T09:23:27Z INFO - [1/sleeper preparing job:01 flows:1] submitted to fakehpc:pbs[1.fakehpc]\n" +
		"2026-12-06T09:23:35Z INFO - Command succeeded: kill_tasks(['1/sleeper'])\n" +
		"2026-12-06T09:23:36Z ERROR - platform: fakehpc - initialisation did not complete\n    REMOTE INIT FAILED\n"
	if err := os.WriteFile(p, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	w.readLog(true)
	var progress []string
	var errText string
	for _, e := range log.All() {
		if b, _ := e.Fields["progress"].(bool); b {
			progress = append(progress, e.Msg)
		}
		if e.Fields["level"] == "ERROR" {
			errText, _ = e.Fields["text"].(string)
		}
	}
	want := []string{
		"INFO platform: fakehpc - remote init (on fakehpc)",
		"INFO [1/sleeper preparing job:01 flows:1] submitted to fakehpc:pbs[1.fakehpc]",
		"INFO Command succeeded: kill_tasks(['1/sleeper'])",
	}
	if !reflect.DeepEqual(progress, want) {
		t.Errorf("progress entries %q, want %q", progress, want)
	}
	if !strings.Contains(errText, "\n    REMOTE INIT FAILED") {
		t.Errorf("the error entry lost its continuation line: %q", errText)
	}
}

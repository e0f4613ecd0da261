package htmlreport_test

import (
	"bytes"
	"context"
	"errors"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/browser"
	"github.com/jobsim/jobsim/scenarios/htmlreport"
)

// incident is a small run as the Cylc system records it: a task whose job
// keeps running while the library is unlistable, a kill that fails, and
// the task failed while its job still runs.
func incident() htmlreport.Scenario {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	seq := int64(0)
	ev := func(s float64, kind events.Kind, host, msg string, fields map[string]any) events.Event {
		seq++
		return events.Event{Seq: seq, Time: at(s), Kind: kind, Host: host, Msg: msg, Fields: fields}
	}
	task := func(s float64, state string) events.Event {
		return ev(s, "cylc.task", "", "1/foo → "+state, map[string]any{"task": "1/foo", "state": state})
	}
	job := func(s float64, to string) events.Event {
		return ev(s, events.PBSJobState, "fakehpc", "1.fakehpc -> "+to, map[string]any{"job": "1.fakehpc", "to": to})
	}
	return htmlreport.Scenario{
		Name: "unlistable-lib", File: "fixtures/scenarios/cylc/unlistable-lib.yaml", Verdict: "fail",
		Reason: "expectation task-fails does not hold", JudgedAs: "gate", Version: "8.0.2",
		Started: t0, Duration: 40 * time.Second,
		Events: []events.Event{
			ev(0, "scenario.step", "", "start", map[string]any{"step": 1}),
			task(1, "preparing"), task(2, "submitted"), job(2, "Q"), job(3, "R"), task(3, "running"),
			ev(10, "scenario.step", "", "fault unlistable-lib on fakehpc", map[string]any{"step": 2}),
			ev(10, events.FaultAdded, "fakehpc", "unlistable-lib fs errno", map[string]any{"rule": fault.Rule{ID: "unlistable-lib", Layer: fault.FS}}),
			ev(12, events.FaultActivate, "fakehpc", "unlistable-lib fired on fs readdir /opt/cylc/lib", nil),
			ev(12, events.SSHExec, "fakehpc", `exec "cylc jobs-kill" by alice: exit 1`, map[string]any{"exit": 1}),
			ev(13, events.SSHExec, "fakehpc", `exec "true" by alice: exit 0`, map[string]any{"exit": 0}),
			task(20, "failed"),
			ev(25, events.FaultCleared, "fakehpc", "unlistable-lib", map[string]any{"id": "unlistable-lib"}),
			job(35, "F"),
		},
		Results: []htmlreport.Result{
			{ID: "job-runs", OK: true, Detail: "1.fakehpc ran"},
			{ID: "task-fails", OK: false, Detail: "1/foo failed at +20s while its job ran to +35s", At: at(20)},
		},
		Links: []htmlreport.Link{{Name: "transcript.md", Href: "transcript.md"}},
	}
}

func TestScenarioPageCarriesTheRun(t *testing.T) {
	var b bytes.Buffer
	if err := htmlreport.WriteScenario(&b, incident()); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(b.String())
	for _, want := range []string{
		"<svg", `data-name="1/foo"`, `data-name="1.fakehpc"`, `data-state="failed"`,
		`class="band"`, "fault unlistable-lib on fakehpc: +10s to +25s",
		`class="call bad"`, "cylc jobs-kill", "task-fails does not hold at +20s",
		`href="transcript.md"`, "expectation task-fails does not hold",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", `href="http`, "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q: it must open alone, without scripts or the network", bad)
		}
	}
}

func TestIndexLinksEveryScenario(t *testing.T) {
	s := incident()
	pass := s
	pass.Name, pass.Verdict, pass.Reason = "happy-poll", "pass", ""
	var b bytes.Buffer
	err := htmlreport.WriteIndex(&b, htmlreport.Index{Entries: []htmlreport.Entry{
		{Scenario: s, Href: "unlistable-lib/report.html"}, {Scenario: pass, Href: "happy-poll/report.html"},
	}, Links: []htmlreport.Link{{Name: "JUnit", Href: "../junit.xml"}}})
	if err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`href="unlistable-lib/report.html"`, `href="happy-poll/report.html"`, "1 passed, 1 failed", `href="../junit.xml"`} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %q", want)
		}
	}
}

// TestScenarioPageInChromium opens the page in Debian's Chromium and checks
// what a person sees: the verdict, the lanes, and a picture whose
// geometry says what happened when (the task failed inside the fault
// window while its job's running span goes on past it).
func TestScenarioPageInChromium(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := htmlreport.WriteScenario(f, incident()); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bctx, bcancel, err := browser.Start(ctx)
	if errors.Is(err, browser.ErrNoChromium) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer bcancel()

	type geometry struct {
		BandX, BandR, FailedX, RunX, RunR float64
		Visible                           bool
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+path), chromedp.WaitVisible(chromedp.ID("timeline"))); err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil {
		t.Fatal(err)
	}
	lanes, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('g.lane')].map(g => g.dataset.name)`))
	if err != nil {
		t.Fatal(err)
	}
	geom, err := chromedp.Run(bctx, chromedp.Evaluate[geometry](`(() => {
		const r = e => e.getBoundingClientRect();
		const band = r(document.querySelector('rect.band'));
		const failed = r(document.querySelector('g.lane[data-name="1/foo"] rect[data-state="failed"]'));
		const run = r(document.querySelector('g.lane[data-name="1.fakehpc"] rect[data-state="R"]'));
		const svg = r(document.querySelector('#timeline'));
		return {BandX: band.left, BandR: band.right, FailedX: failed.left, RunX: run.left, RunR: run.right,
			Visible: svg.width > 800 && svg.height > 100 && band.width > 0 && failed.width > 0};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(heading, "unlistable-lib") || !strings.Contains(heading, "FAIL") {
		t.Errorf("heading %q: want the scenario's name and FAIL", heading)
	}
	if strings.Join(lanes, ",") != "1/foo,1.fakehpc" {
		t.Errorf("lanes %v: want the task, then the job", lanes)
	}
	if !geom.Visible {
		t.Fatalf("the timeline is not drawn: %+v", geom)
	}
	if !(geom.BandX < geom.FailedX && geom.FailedX < geom.BandR) {
		t.Errorf("the task's failed span (x=%.0f) is not inside the fault window (%.0f..%.0f)", geom.FailedX, geom.BandX, geom.BandR)
	}
	if !(geom.RunX < geom.FailedX && geom.RunR > geom.BandR) {
		t.Errorf("the job's running span (%.0f..%.0f) does not go on past the failure (%.0f) and the window (%.0f)", geom.RunX, geom.RunR, geom.FailedX, geom.BandR)
	}
	if len(shot) < 1000 {
		t.Errorf("screenshot of %d bytes", len(shot))
	}
	if out := os.Getenv("JOBSIM_REPORT_SHOT"); out != "" {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

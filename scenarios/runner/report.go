package runner

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/htmlreport"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// WriteSummary prints the table of verdicts that ends a run.
func WriteSummary(w io.Writer, reps []Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tJUDGED AS\tVERSION\tVERDICT\tTIME\tREASON")
	counts := map[Verdict]int{}
	for _, r := range reps {
		counts[r.Verdict]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.JudgedAs, r.Version, strings.ToUpper(string(r.Verdict)), r.Duration.Round(100*time.Millisecond), oneLine(r.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nscenarios: %d passed, %d failed, %d errored, %d skipped", counts[Pass], counts[Fail], counts[Error], counts[Skip])
	if err == nil && counts[Interrupted] > 0 {
		_, err = fmt.Fprintf(w, ", %d interrupted", counts[Interrupted])
	}
	if err == nil {
		_, err = fmt.Fprintln(w)
	}
	return err
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// WriteJSON writes the reports as a JSON array.
func WriteJSON(w io.Writer, reps []Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(reps)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     float64      `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the reports as JUnit XML, one test case per scenario.
func WriteJUnit(w io.Writer, suite string, reps []Report) error {
	s := junitSuite{Name: suite}
	for _, r := range reps {
		c := junitCase{Name: r.Name, Classname: suite + "." + strings.Join(r.Labels, "."), Time: r.Duration.Seconds()}
		var body strings.Builder
		for _, res := range r.Results {
			mark := "ok  "
			if !res.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(&body, "%s %s: %s\n", mark, res.ID, res.Detail)
		}
		if r.Dir != "" {
			fmt.Fprintf(&body, "artifacts: %s\n", r.Dir)
		}
		msg := &junitMessage{Message: oneLine(r.Reason), Body: body.String()}
		switch r.Verdict {
		case Fail:
			c.Failure = msg
			s.Failures++
		case Error, Interrupted:
			c.Error = msg
			s.Errors++
		case Skip:
			c.Skipped = msg
			s.Skipped++
		default:
			c.SystemOut = body.String()
		}
		s.Tests++
		s.Time += r.Duration.Seconds()
		s.Cases = append(s.Cases, c)
	}
	all := junitSuites{Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// writeTranscript writes transcript.md: the one page a developer attaches
// to a bug report.
func writeTranscript(dir string, f *scenario.File, rep *Report, hist []events.Event, states []events.Kind) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", f.Name)
	if f.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(f.Description))
	}
	fmt.Fprintf(&b, "- file: `%s`\n- system under test: %s %s\n- judged as: %s", f.Path, systemName(f), rep.Version, rep.JudgedAs)
	if f.Reproduces != nil {
		fmt.Fprintf(&b, " (bug %s, affects %s)", f.Reproduces.ID, f.Reproduces.Affects)
	}
	fmt.Fprintf(&b, "\n- verdict: **%s**", strings.ToUpper(string(rep.Verdict)))
	if rep.Reason != "" {
		fmt.Fprintf(&b, ": %s", rep.Reason)
	}
	took := rep.Duration
	if took == 0 { // still running: the transcript is written as the run ends
		took = time.Since(rep.Started)
	}
	fmt.Fprintf(&b, "\n- started %s, took %s\n\n", rep.Started.UTC().Format(time.RFC3339), took.Round(100*time.Millisecond))

	fmt.Fprintf(&b, "## Expected and what happened\n\n")
	for _, r := range rep.Results {
		mark := "holds"
		if !r.OK {
			mark = "FAILED"
		}
		fmt.Fprintf(&b, "- `%s` %s: %s\n", r.ID, mark, r.Detail)
	}
	fmt.Fprintf(&b, "\n## Timeline\n\nWhat was injected when, what the system under test did (task and job states), and the calls it made that failed.\n\n```\n")
	var t0 time.Time
	if len(hist) > 0 {
		t0 = hist[0].Time
	}
	fired := activationCounts(hist)
	shown := map[string]bool{}
	for _, e := range hist {
		if !transcriptWorthy(e, states) {
			continue
		}
		msg := oneLine(e.Msg)
		switch e.Kind {
		case events.FaultAdded, events.FaultCleared:
			delete(shown, faultRuleID(e))
		case events.FaultActivate:
			// A rule that fires again and again is one line: the first
			// time, with how often and until when.
			id := faultRuleID(e)
			if shown[id] {
				continue
			}
			shown[id] = true
			if c := fired[e.Seq]; c.n > 1 {
				msg += fmt.Sprintf(" (fired %d times, until +%s)", c.n, c.last.Sub(t0).Round(100*time.Millisecond))
			}
		case events.SSHExec, events.PBSCall:
			msg = fmt.Sprintf("exit %v: %s", e.Fields["exit"], msg)
		}
		host := ""
		if e.Host != "" {
			host = "[" + e.Host + "] "
		}
		fmt.Fprintf(&b, "+%-8s #%-5d %-17s %s%s\n", e.Time.Sub(t0).Round(100*time.Millisecond), e.Seq, e.Kind, host, msg)
		// A log entry is kept whole: its continuation lines (a traceback,
		// 8.0.2's "REMOTE INIT FAILED") follow, indented.
		if text, ok := e.Fields["text"].(string); ok {
			if _, rest, multi := strings.Cut(text, "\n"); multi {
				for _, l := range strings.Split(strings.TrimRight(rest, "\n"), "\n") {
					fmt.Fprintf(&b, "%18s| %s\n", "", l)
				}
			}
		}
	}
	fmt.Fprintf(&b, "```\n\nThe whole history is in `events.jsonl` (one JSON event per line).\n")
	_ = os.WriteFile(filepath.Join(dir, "transcript.md"), []byte(b.String()), 0o644)
}

// writeHTMLReport writes report.html beside the transcript: the run as a
// picture (package htmlreport).
func writeHTMLReport(dir string, f *scenario.File, rep *Report, hist []events.Event) error {
	page := htmlScenario(*rep, f.Mode, hist)
	if page.Duration == 0 {
		page.Duration = time.Since(rep.Started)
	}
	for _, name := range []string{"transcript.md", "events.jsonl"} {
		page.Links = append(page.Links, htmlreport.Link{Name: name, Href: name})
	}
	rec := *rep
	rec.Duration = page.Duration
	if err := writeFile(filepath.Join(dir, ReportFile), func(w io.Writer) error { return WriteJSON(w, []Report{rec}) }); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "report.html"), func(w io.Writer) error { return htmlreport.WriteScenario(w, page) })
}

// ReportFile is the name of the file in each scenario's artifacts folder
// that keeps its Report (verdict, results, times), so that pages, indexes
// and JUnit files can be made again later, also from the artifacts of
// several machines (LoadReports).
const ReportFile = "report.json"

// LoadReports reads the Reports kept in artifacts folders: each dir is a
// scenario's folder or a run's (its subfolders are scenarios'). Dir in each
// Report is set to where it was found.
func LoadReports(dirs ...string) ([]Report, error) {
	var out []Report
	read := func(dir string) (bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, ReportFile))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var reps []Report
		if err := json.Unmarshal(b, &reps); err != nil {
			return false, fmt.Errorf("%s: %w", filepath.Join(dir, ReportFile), err)
		}
		for _, r := range reps {
			r.Dir = dir
			out = append(out, r)
		}
		return true, nil
	}
	for _, d := range dirs {
		found, err := read(d)
		if err != nil {
			return nil, err
		}
		if found {
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("runner: reports in %s: %w", d, err)
		}
		n := 0
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			ok, err := read(filepath.Join(d, e.Name()))
			if err != nil {
				return nil, err
			}
			if ok {
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("runner: no %s in %s or its subfolders: not the artifacts of a jobsim run", ReportFile, d)
		}
	}
	return out, nil
}

// RedrawHTML writes a Report's report.html again from its folder's
// events.jsonl (after LoadReports).
func RedrawHTML(rep Report) error {
	f, err := os.Open(filepath.Join(rep.Dir, "events.jsonl"))
	if err != nil {
		return fmt.Errorf("runner: redraw %s: %w", rep.Name, err)
	}
	hist, err := events.ReadJSONLines(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("runner: redraw %s: %w", rep.Name, err)
	}
	page := htmlScenario(rep, rep.Mode, hist)
	for _, name := range []string{"transcript.md", "events.jsonl"} {
		page.Links = append(page.Links, htmlreport.Link{Name: name, Href: name})
	}
	return writeFile(filepath.Join(rep.Dir, "report.html"), func(w io.Writer) error { return htmlreport.WriteScenario(w, page) })
}

func htmlScenario(rep Report, mode scenario.Mode, hist []events.Event) htmlreport.Scenario {
	s := htmlreport.Scenario{
		Name: rep.Name, File: rep.File, Labels: rep.Labels, Mode: string(mode), JudgedAs: string(rep.JudgedAs),
		Version: rep.Version, Verdict: string(rep.Verdict), Reason: rep.Reason,
		Started: rep.Started, Duration: rep.Duration, Events: hist,
	}
	for _, r := range rep.Results {
		s.Results = append(s.Results, htmlreport.Result{ID: r.ID, OK: r.OK, Detail: r.Detail})
	}
	return s
}

// WriteHTMLIndex writes index.html into the artifacts folder dir: every
// scenario of the run with its verdict, linked to its report.html. links
// are run-wide files to point at (the JUnit report), relative to dir.
func WriteHTMLIndex(dir string, reps []Report, links ...htmlreport.Link) error {
	idx := htmlreport.Index{Title: "jobsim run", Links: links}
	for i, r := range reps {
		if i == 0 || r.Started.Before(idx.Started) {
			idx.Started = r.Started
		}
		if end := r.Started.Add(r.Duration).Sub(idx.Started); end > idx.Duration {
			idx.Duration = end
		}
		e := htmlreport.Entry{Scenario: htmlScenario(r, r.Mode, nil)}
		if r.Dir != "" {
			if rel, err := filepath.Rel(dir, filepath.Join(r.Dir, "report.html")); err == nil {
				e.Href = filepath.ToSlash(rel)
			}
		}
		idx.Entries = append(idx.Entries, e)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("runner: html index: %w", err)
	}
	return writeFile(filepath.Join(dir, "index.html"), func(w io.Writer) error { return htmlreport.WriteIndex(w, idx) })
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// activationRun is how often a fault rule fired from a first activation on
// (until the rule is added again or cleared), and when last.
type activationRun struct {
	n    int
	last time.Time
}

// activationCounts maps the seq of each rule's first activation (after it
// was added) to how often it fired in that run.
func activationCounts(hist []events.Event) map[int64]activationRun {
	out := map[int64]activationRun{}
	first := map[string]int64{}
	for _, e := range hist {
		id := faultRuleID(e)
		switch e.Kind {
		case events.FaultAdded, events.FaultCleared:
			delete(first, id)
		case events.FaultActivate:
			s, ok := first[id]
			if !ok {
				s = e.Seq
				first[id] = s
			}
			c := out[s]
			c.n++
			c.last = e.Time
			out[s] = c
		}
	}
	return out
}

// faultRuleID is the rule a fault event is about: fault.activation and
// fault.cleared name it, fault.added carries the rule (live, or decoded
// from events.jsonl).
func faultRuleID(e events.Event) string {
	for _, k := range []string{"rule", "id"} {
		switch v := e.Fields[k].(type) {
		case string:
			return v
		case fault.Rule:
			return v.ID
		case map[string]any:
			if id, ok := v["id"].(string); ok {
				return id
			}
		}
	}
	return e.Msg
}

// transcriptWorthy keeps the events a reader of an incident needs: steps,
// faults, the system under test's state changes (states: its StateKinds,
// such as task or server states), job state changes, ssh or PBS calls
// that failed, the system under test starting and stopping, and its
// warnings and errors.
func transcriptWorthy(e events.Event, states []events.Kind) bool {
	if slices.Contains(states, e.Kind) {
		return true
	}
	switch e.Kind {
	case check.Step, check.Waiting, events.PBSJobState, events.FaultAdded, events.FaultCleared, events.FaultActivate, events.Note, events.HostLifecycle:
		return true
	case events.SSHExec, events.PBSCall:
		code, ok := e.Fields["exit"]
		return ok && fmt.Sprint(code) != "0"
	}
	// Drivers' own kinds: the system under test starting and stopping, and
	// the log entries it wrote at warning level or above.
	if strings.HasSuffix(string(e.Kind), ".scheduler") || strings.HasSuffix(string(e.Kind), ".lifecycle") {
		return true
	}
	// Entries a driver marks as progress (remote init done, a reload
	// completed), and its warnings and errors.
	if p, _ := e.Fields["progress"].(bool); p {
		return true
	}
	level, _ := e.Fields["level"].(string)
	return level == "WARNING" || level == "ERROR" || level == "CRITICAL"
}

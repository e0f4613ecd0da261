package runner

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
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
func writeTranscript(dir string, f *scenario.File, rep *Report, hist []events.Event) {
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
	fmt.Fprintf(&b, "\n- started %s, took %s\n\n", rep.Started.UTC().Format(time.RFC3339), time.Since(rep.Started).Round(100*time.Millisecond))

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
	for _, e := range hist {
		if !transcriptWorthy(e) {
			continue
		}
		host := ""
		if e.Host != "" {
			host = "[" + e.Host + "] "
		}
		fmt.Fprintf(&b, "+%-8s %-17s %s%s\n", e.Time.Sub(t0).Round(100*time.Millisecond), e.Kind, host, oneLine(e.Msg))
	}
	fmt.Fprintf(&b, "```\n\nThe whole history is in `events.jsonl` (one JSON event per line).\n")
	_ = os.WriteFile(filepath.Join(dir, "transcript.md"), []byte(b.String()), 0o644)
}

// transcriptWorthy keeps the events a reader of an incident needs: steps,
// faults, task and job state changes, hub server states, ssh or PBS calls
// that failed, the system under test starting and stopping, and its
// warnings and errors.
func transcriptWorthy(e events.Event) bool {
	switch e.Kind {
	case check.Step, check.TaskState, check.ServerState, events.PBSJobState, events.FaultAdded, events.FaultCleared, events.FaultActivate, events.Note, events.HostLifecycle:
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
	level, _ := e.Fields["level"].(string)
	return level == "WARNING" || level == "ERROR" || level == "CRITICAL"
}

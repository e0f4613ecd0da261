// Package htmlreport renders what a scenario run recorded as pages a person
// looks at instead of reads: one self-contained HTML page per scenario (a
// timeline picture in SVG with a lane per task, job and server, their states
// as coloured spans, fault windows as bands, ssh and batch-system calls as
// ticks, the timeline steps and each expectation's verdict), and an index
// page for a whole run. The pages carry their own styles and need no script
// or network: hover details are SVG titles, so they open from an artifacts
// folder, a CI artifact store or an e-mail attachment alike.
//
// The package knows the event kinds only through Lanes, a table of which
// events make lanes; a system or batch system that records states under a
// kind of its own adds a row.
package htmlreport

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
)

// Scenario is one scenario run as the report shows it.
type Scenario struct {
	Name     string
	File     string
	Labels   []string
	Mode     string // gate or reproducer, as written in the file
	JudgedAs string // what the run judged it as
	Version  string // of the system under test
	Verdict  string // pass, fail, error, skip, interrupted
	Reason   string
	Started  time.Time
	Duration time.Duration
	Results  []Result
	Events   []events.Event
	// Links are files beside the page (transcript.md, events.jsonl, logs),
	// by the name to show.
	Links []Link
}

// Result is one expectation's verdict. At is when it was decided; zero
// means at the end of the run, over the whole history.
type Result struct {
	ID     string
	OK     bool
	Detail string
	At     time.Time
}

// Link is a file the page points to, relative to the page.
type Link struct {
	Name string
	Href string
}

// Lane says which events make a lane of states: events of Kind, one lane per
// distinct value of the Key fields (joined with "/", empty values left
// out), the state taken from the first of the State fields that is set.
type Lane struct {
	Kind  events.Kind
	Group string // the heading lanes of this kind are shown under
	Key   []string
	State []string
}

// DefaultLanes are the lanes of the systems and batch systems jobsim ships:
// Cylc tasks, PBS and Slurm jobs, hub servers.
var DefaultLanes = []Lane{
	{Kind: "cylc.task", Group: "tasks", Key: []string{"task"}, State: []string{"state"}},
	{Kind: events.PBSJobState, Group: "jobs", Key: []string{"job"}, State: []string{"to"}},
	{Kind: "slurm.job", Group: "jobs", Key: []string{"job"}, State: []string{"to", "state"}},
	{Kind: "hub.server", Group: "servers", Key: []string{"user", "server"}, State: []string{"state"}},
}

// Option configures a page.
type Option func(*config)

type config struct {
	lanes []Lane
	width int
}

// WithLanes replaces the lane table (DefaultLanes).
func WithLanes(l []Lane) Option { return func(c *config) { c.lanes = l } }

// WithWidth sets the width of the timeline's plot area in pixels (default 1000).
func WithWidth(px int) Option { return func(c *config) { c.width = max(200, px) } }

// Layout of the picture, in pixels.
const (
	labelW   = 230 // the lane names
	laneH    = 20
	laneGap  = 4
	headH    = 22 // a group heading
	axisH    = 26
	stepRowH = 18
)

// WriteScenario writes s's page.
func WriteScenario(w io.Writer, s Scenario, opts ...Option) error {
	c := config{lanes: DefaultLanes, width: 1000}
	for _, o := range opts {
		o(&c)
	}
	s.Events = asRecorded(s.Events)
	page := scenarioPage{Scenario: s, Timeline: timeline(s, c)}
	for _, r := range s.Results {
		if r.OK {
			page.Passed++
		}
	}
	if err := pageTmpl.ExecuteTemplate(w, "scenario", page); err != nil {
		return fmt.Errorf("htmlreport: scenario %s: %w", s.Name, err)
	}
	return nil
}

// Entry is one scenario on the index page; Href is its page, relative to
// the index.
type Entry struct {
	Scenario
	Href string
}

// Index is a whole run.
type Index struct {
	Title    string
	Started  time.Time
	Duration time.Duration
	Entries  []Entry
	// Links are run-wide files (the JUnit report, the run log).
	Links []Link
}

// WriteIndex writes the run's index page.
func WriteIndex(w io.Writer, idx Index) error {
	counts := map[string]int{}
	for _, e := range idx.Entries {
		counts[e.Verdict]++
	}
	var parts []string
	for _, v := range []string{"pass", "fail", "error", "skip", "interrupted"} {
		if counts[v] > 0 || v == "pass" || v == "fail" {
			parts = append(parts, fmt.Sprintf("%d %s", counts[v], verdictWord(v)))
		}
	}
	page := indexPage{Index: idx, Counts: strings.Join(parts, ", ")}
	if err := pageTmpl.ExecuteTemplate(w, "index", page); err != nil {
		return fmt.Errorf("htmlreport: index: %w", err)
	}
	return nil
}

func verdictWord(v string) string {
	switch v {
	case "pass":
		return "passed"
	case "fail":
		return "failed"
	case "error":
		return "errored"
	case "skip":
		return "skipped"
	}
	return v
}

type scenarioPage struct {
	Scenario
	Timeline svgTimeline
	Passed   int
}

type indexPage struct {
	Index
	Counts string
}

// svgTimeline is the picture, laid out: every shape in pixels.
type svgTimeline struct {
	Width, Height int
	PlotX, PlotW  int
	Ticks         []axisTick
	Groups        []svgText // group headings
	Lanes         []svgLane
	Bands         []svgBand // fault windows, across every lane
	Steps         []svgMark // timeline steps, in the steps row
	Calls         []svgMark // ssh and batch-system calls, in the calls lane
	Activations   []svgMark // fault activations, in the faults lane
	Verdicts      []svgMark // expectations, in the expectations row
	Empty         bool
}

type axisTick struct {
	X     float64
	Label string
}

type svgText struct {
	Y    int
	Text string
}

type svgLane struct {
	Y     int
	Name  string
	Spans []svgSpan
}

type svgSpan struct {
	X, W  float64
	State string
	Class string
	Title string
	Label bool // wide enough to print the state inside
}

type svgBand struct {
	X, W  float64
	Y, H  int
	Title string
}

type svgMark struct {
	X     float64
	Y     int
	Class string
	Title string
	Label string
}

// timeline lays out s's events.
func timeline(s Scenario, c config) svgTimeline {
	t0, t1 := span(s)
	tl := svgTimeline{PlotX: labelW, PlotW: c.width, Width: labelW + c.width + 20}
	if len(s.Events) == 0 {
		tl.Empty = true
	}
	total := t1.Sub(t0).Seconds()
	if total <= 0 {
		total = 1
	}
	x := func(t time.Time) float64 {
		if t.Before(t0) {
			t = t0
		}
		return float64(labelW) + t.Sub(t0).Seconds()/total*float64(c.width)
	}
	tl.Ticks = axisTicks(total, func(sec float64) float64 { return float64(labelW) + sec/total*float64(c.width) })

	y := axisH
	// Steps row.
	tl.Groups = append(tl.Groups, svgText{Y: y + 14, Text: "timeline steps"})
	stepY := y
	y += stepRowH + laneGap

	// State lanes, grouped.
	byGroup := map[string][]*laneBuild{}
	var groupOrder []string
	lanes := map[string]*laneBuild{}
	for _, e := range s.Events {
		for _, l := range c.lanes {
			if e.Kind != l.Kind {
				continue
			}
			key := fieldsKey(e, l.Key)
			state := firstField(e, l.State)
			if key == "" || state == "" {
				continue
			}
			id := l.Group + "\x00" + key
			lb := lanes[id]
			if lb == nil {
				lb = &laneBuild{name: key}
				if e.Host != "" && l.Group == "jobs" && !strings.Contains(key, e.Host) {
					lb.name = key + " @" + e.Host
				}
				lanes[id] = lb
				if _, ok := byGroup[l.Group]; !ok {
					groupOrder = append(groupOrder, l.Group)
				}
				byGroup[l.Group] = append(byGroup[l.Group], lb)
			}
			if n := len(lb.changes); n > 0 && lb.changes[n-1].state == state {
				continue // the same state seen again: one span
			}
			lb.changes = append(lb.changes, change{at: e.Time, state: state, msg: e.Msg, seq: e.Seq})
		}
	}
	for _, g := range groupOrder {
		tl.Groups = append(tl.Groups, svgText{Y: y + 15, Text: g})
		y += headH
		for _, lb := range byGroup[g] {
			lane := svgLane{Y: y, Name: lb.name}
			for i, ch := range lb.changes {
				end := t1
				if i+1 < len(lb.changes) {
					end = lb.changes[i+1].at
				}
				x0, x1 := x(ch.at), x(end)
				w := math.Max(x1-x0, 2)
				lane.Spans = append(lane.Spans, svgSpan{
					X: x0, W: w, State: ch.state, Class: stateClass(ch.state),
					Title: fmt.Sprintf("%s: %s from +%s to +%s (#%d %s)", lb.name, ch.state, offset(t0, ch.at), offset(t0, end), ch.seq, ch.msg),
					Label: w >= float64(7*len(ch.state)+6),
				})
			}
			tl.Lanes = append(tl.Lanes, lane)
			y += laneH + laneGap
		}
	}

	// Faults lane: activations as ticks; windows as bands over every lane.
	faultY := y
	var bandsTop = axisH
	added := map[string]events.Event{}
	var windows []svgBand
	for _, e := range s.Events {
		switch e.Kind {
		case events.FaultAdded:
			added[faultID(e)] = e
		case events.FaultCleared:
			id := faultID(e)
			for _, cleared := range clearedIDs(id, added) {
				a := added[cleared]
				windows = append(windows, svgBand{X: x(a.Time), W: math.Max(x(e.Time)-x(a.Time), 2),
					Title: fmt.Sprintf("fault %s on %s: +%s to +%s (%s)", cleared, a.Host, offset(t0, a.Time), offset(t0, e.Time), a.Msg)})
				delete(added, cleared)
			}
		case events.FaultActivate:
			tl.Activations = append(tl.Activations, svgMark{X: x(e.Time), Y: faultY, Class: "act",
				Title: fmt.Sprintf("+%s #%d %s", offset(t0, e.Time), e.Seq, e.Msg)})
		}
	}
	for id, a := range added { // never cleared: to the end
		windows = append(windows, svgBand{X: x(a.Time), W: math.Max(x(t1)-x(a.Time), 2),
			Title: fmt.Sprintf("fault %s on %s: +%s to the end (%s)", id, a.Host, offset(t0, a.Time), a.Msg)})
	}
	sort.Slice(windows, func(i, j int) bool { return windows[i].X < windows[j].X })
	if len(windows) > 0 || len(tl.Activations) > 0 {
		tl.Groups = append(tl.Groups, svgText{Y: y + 15, Text: "faults"})
		y += headH
		faultY = y
		for i := range tl.Activations {
			tl.Activations[i].Y = faultY
		}
		y += laneH + laneGap
	}

	// Calls lane.
	callsY := y
	for _, e := range s.Events {
		if e.Kind != events.SSHExec && e.Kind != events.PBSCall && e.Kind != "slurm.call" {
			continue
		}
		class := "call"
		if code, ok := e.Fields["exit"].(float64); ok && code != 0 {
			class = "call bad"
		}
		tl.Calls = append(tl.Calls, svgMark{X: x(e.Time), Class: class,
			Title: fmt.Sprintf("+%s #%d %s %s", offset(t0, e.Time), e.Seq, e.Kind, e.Msg)})
	}
	if len(tl.Calls) > 0 {
		tl.Groups = append(tl.Groups, svgText{Y: y + 15, Text: "ssh and batch calls"})
		y += headH
		callsY = y
		for i := range tl.Calls {
			tl.Calls[i].Y = callsY
		}
		y += laneH + laneGap
	}

	// Expectations: a row each, the mark where it was decided.
	if len(s.Results) > 0 {
		tl.Groups = append(tl.Groups, svgText{Y: y + 15, Text: "expectations"})
		y += headH
		for _, r := range s.Results {
			at := r.At
			if at.IsZero() {
				at = t1
			}
			class, word := "verdict ok", "holds"
			if !r.OK {
				class, word = "verdict bad", "does not hold"
			}
			tl.Verdicts = append(tl.Verdicts, svgMark{X: x(at), Y: y, Class: class, Label: r.ID,
				Title: fmt.Sprintf("%s %s at +%s: %s", r.ID, word, offset(t0, at), r.Detail)})
			y += laneH + laneGap
		}
	}

	for _, e := range s.Events {
		if e.Kind != "scenario.step" {
			continue
		}
		tl.Steps = append(tl.Steps, svgMark{X: x(e.Time), Y: stepY, Class: "step",
			Title: fmt.Sprintf("+%s #%d %s", offset(t0, e.Time), e.Seq, e.Msg), Label: stepLabel(e)})
	}
	for i := range windows {
		windows[i].Y, windows[i].H = bandsTop, y-bandsTop
	}
	tl.Bands = windows
	tl.Height = y + 10
	return tl
}

// asRecorded gives events' fields the form they have in events.jsonl
// (JSON objects, numbers as float64), so that a page drawn from a live
// history and one drawn from the file later are the same.
func asRecorded(evs []events.Event) []events.Event {
	out := make([]events.Event, len(evs))
	for i, e := range evs {
		out[i] = e
		if len(e.Fields) == 0 {
			continue
		}
		b, err := json.Marshal(e.Fields)
		if err != nil {
			continue
		}
		var f map[string]any
		if json.Unmarshal(b, &f) == nil {
			out[i].Fields = f
		}
	}
	return out
}

type laneBuild struct {
	name    string
	changes []change
}

type change struct {
	at    time.Time
	state string
	msg   string
	seq   int64
}

// span is the time the picture covers: the run, or its events where the
// run's times are not known.
func span(s Scenario) (time.Time, time.Time) {
	t0, t1 := s.Started, s.Started.Add(s.Duration)
	for _, e := range s.Events {
		if t0.IsZero() || e.Time.Before(t0) {
			t0 = e.Time
		}
		if e.Time.After(t1) {
			t1 = e.Time
		}
	}
	return t0, t1
}

// axisTicks chooses round steps so that about eight ticks fit.
func axisTicks(total float64, x func(float64) float64) []axisTick {
	steps := []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200}
	step := steps[len(steps)-1]
	for _, st := range steps {
		if total/st <= 8 {
			step = st
			break
		}
	}
	var out []axisTick
	for sec := 0.0; sec <= total+1e-9; sec += step {
		out = append(out, axisTick{X: x(sec), Label: "+" + strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", sec), "0"), ".") + "s"})
	}
	return out
}

func offset(t0, t time.Time) string {
	return t.Sub(t0).Round(10 * time.Millisecond).String()
}

func fieldsKey(e events.Event, keys []string) string {
	var parts []string
	for _, k := range keys {
		if v := fieldString(e, k); v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, "/")
}

func firstField(e events.Event, keys []string) string {
	for _, k := range keys {
		if v := fieldString(e, k); v != "" {
			return v
		}
	}
	return ""
}

func fieldString(e events.Event, k string) string {
	switch v := e.Fields[k].(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strings.TrimSuffix(fmt.Sprintf("%g", v), ".0")
	default:
		return fmt.Sprint(v)
	}
}

// faultID is the rule a fault.added or fault.cleared event names.
func faultID(e events.Event) string {
	if id := fieldString(e, "id"); id != "" {
		return id
	}
	if r, ok := e.Fields["rule"].(map[string]any); ok {
		if id, ok := r["id"].(string); ok {
			return id
		}
	}
	return e.Msg
}

// clearedIDs are the open windows a clear ends: its own id, or every one
// for "all".
func clearedIDs(id string, open map[string]events.Event) []string {
	if _, ok := open[id]; ok {
		return []string{id}
	}
	if id == "all" || id == "" {
		ids := make([]string, 0, len(open))
		for k := range open {
			ids = append(ids, k)
		}
		slices.Sort(ids)
		return ids
	}
	return nil
}

func stepLabel(e events.Event) string {
	if n := fieldString(e, "step"); n != "" {
		return n
	}
	return ""
}

// stateClass maps a state, of any system, to one of a few colours: where it
// waits, where it works, where it ended well or badly.
func stateClass(state string) string {
	switch strings.ToLower(state) {
	case "waiting", "q", "pending", "h", "held", "w", "t", "preparing", "ready-to-submit", "configuring":
		return "st-wait"
	case "submitted", "spawning", "starting":
		return "st-submitted"
	case "running", "r", "e", "b", "completing", "ready", "active":
		return "st-run"
	case "succeeded", "f", "completed", "x", "stopped", "removed":
		return "st-done"
	case "failed", "submit-failed", "timeout", "node_fail", "out_of_memory", "refused", "cancelled", "boot_fail", "deadline", "expired":
		return "st-bad"
	}
	return "st-other"
}

var pageTmpl = template.Must(template.New("pages").Funcs(template.FuncMap{
	"f1": func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"dur": func(d time.Duration) string {
		return d.Round(100 * time.Millisecond).String()
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"verdictClass": func(v string) string { return "v-" + v },
	"upper":        strings.ToUpper,
	"join":         strings.Join,
	"add":          func(a, b int) int { return a + b },
}).Parse(pagesHTML))

// pagesHTML holds the two page templates, "scenario" and "index".
//
//go:embed pages.html.tmpl
var pagesHTML string

package scenario

import (
	"time"

	"github.com/jobsim/jobsim/scenarios/check"
	"strings"
	"testing"
)

// An event condition counts from the start of the run with since: start
// (a step may wait for what has happened already), from the step by
// default; only event conditions take it.
func TestEventConditionsCountSinceStartOrStep(t *testing.T) {
	v := MustVocabulary(alpha{}, beta{}, gamma{})
	src := strings.Replace(toy, "  - wait: {mood: calm, within: 1s}\n",
		"  - wait: {event: {kind: x.done}, since: start, within: 1s}\n  - when: {event: {kind: x.go}, since: start}\n    note: go\n  - wait: {event: {kind: x.go}}\n", 1)
	f, err := v.Parse("toy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c := f.Timeline[4].Wait.Condition; c.Since != SinceStart || c.Event == nil || c.Event.Kind != "x.done" {
		t.Errorf("wait condition %+v", c)
	}
	if c := f.Timeline[5].When; c.Since != SinceStart {
		t.Errorf("when condition %+v", c)
	}
	if c := f.Timeline[6].Wait.Condition; c.Since != SinceStep {
		t.Errorf("default: %+v", c)
	}
	for _, c := range []struct{ to, want string }{
		{"{event: {kind: a}, since: begin}", `toy.yaml:10:37: since "begin": want start`},
		{"{mood: calm, since: start}", "since: start is for event conditions; a mood condition is a state"},
		{"{for: 1s, since: start}", "wait takes for: or a condition with within:, not both"},
	} {
		src := strings.Replace(toy, "{mood: calm, within: 1s}", c.to, 1)
		_, err := v.Parse("toy.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v\n  want it to contain %q", c.to, err, c.want)
		}
	}
}

// during is a core expectation (no owner), checked at load time; linger
// is a duration of 0 or more.
func TestDuringExpectationAndLingerParse(t *testing.T) {
	v := MustVocabulary(alpha{}, beta{}, gamma{})
	src := strings.Replace(toy, "  - {events: {kind: x., min: 1}}\n", "  - {id: w, during: {from: {kind: a}, until: {kind: b}, happens: {kind: c}}}\n", 1)
	f, err := v.Parse("toy.yaml", []byte("linger: 30s\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := f.Expect[1].Judge.(check.During); !ok || d.Happens.Kind != "c" || f.Expect[1].Owner != "" || f.Expect[0].Owner != "alpha" {
		t.Errorf("expectations %+v", f.Expect)
	}
	if f.LingerFor() != 30*time.Second {
		t.Errorf("linger %v", f.Linger)
	}
	// Absent, the run lingers DefaultLinger; 0s is kept as 0s.
	for head, want := range map[string]time.Duration{"": DefaultLinger.D(), "linger: 0s\n": 0, "linger: 2m\n": 2 * time.Minute} {
		g, err := v.Parse("toy.yaml", []byte(head+src))
		if err != nil {
			t.Fatal(err)
		}
		if g.LingerFor() != want {
			t.Errorf("%q: linger %v, want %v", head, g.LingerFor(), want)
		}
	}
	for _, c := range []struct{ from, to, want string }{
		{"happens: {kind: c}", "happens: {kind: c}, never: {kind: d}", "toy.yaml:16:21: expectation w: during: give exactly one of happens, never and holds"},
		{"happens: {kind: c}", "happens: {kind: c}, also: 1", `unknown field "also"`},
		{"linger: 30s", "linger: -1s", `toy.yaml:1:9: duration "-1s": must not be negative`}, // refused as every duration is, where it is decoded
	} {
		bad := strings.Replace("linger: 30s\n"+src, c.from, c.to, 1)
		if _, err := v.Parse("toy.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v\n  want it to contain %q", c.to, err, c.want)
		}
	}
}

// A system plug-in that is no Restarter cannot be started twice: refused
// at load time.
func TestSecondStartNeedsARestarter(t *testing.T) {
	v := MustVocabulary(alpha{}, beta{}, gamma{})
	src := strings.Replace(toy, "  - poke: hard\n", "  - poke: hard\n  - do: start\n", 1)
	if _, err := v.Parse("toy.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "toy.yaml:8:9: step 3: do: start again, but the alpha system cannot be restarted") {
		t.Errorf("error %v", err)
	}
}

package scenario

import (
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

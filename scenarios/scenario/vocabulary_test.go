package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/scenarios/check"
)

// Two toy plug-ins, to test the core without any real system: a system
// "alpha" with a step key, a do: value, a condition and an expectation,
// and a host plug-in "beta" with a step key of its own.
type alpha struct{}

type alphaSpec struct {
	Level int `yaml:"level"`
}

type alphaAction struct{ what string }

func (a alphaAction) String() string { return a.what }

type alphaExpect struct {
	Done string `yaml:"done"`
}

func (alphaExpect) Evaluate(check.Run) check.Result   { return check.Result{OK: true} }
func (alphaExpect) Pending(check.Run, time.Time) bool { return false }

func (alpha) Name() string { return "alpha" }
func (alpha) ParseSystem(f *File, v Value) (any, error) {
	s := &alphaSpec{}
	if err := v.Decode(s); err != nil {
		return nil, err
	}
	if s.Level < 0 {
		return nil, v.Where().Key("level").Errorf("level %d: want 0 or more", s.Level)
	}
	return s, nil
}
func (alpha) StepKeys() []string  { return []string{"poke"} }
func (alpha) DoActions() []string { return []string{"nap"} }
func (alpha) ParseStep(f *File, key string, v Value) (Action, error) {
	var s string
	if err := v.Decode(&s); err != nil {
		return nil, err
	}
	return alphaAction{key + " " + s}, nil
}
func (alpha) ConditionKeys() []string { return []string{"mood"} }
func (alpha) ParseCondition(f *File, key string, v Value) (Predicate, error) {
	var c struct {
		Mood string `yaml:"mood"`
	}
	if err := v.Decode(&c); err != nil {
		return nil, err
	}
	return alphaAction{"mood " + c.Mood}, nil
}
func (alpha) ExpectationKeys() []string { return []string{"done"} }
func (alpha) ParseExpectation(f *File, key string, v Value) (check.Expectation, error) {
	e := alphaExpect{}
	return e, v.Decode(&e)
}

type beta struct{}

func (beta) Name() string        { return "beta" }
func (beta) StepKeys() []string  { return []string{"zap"} }
func (beta) DoActions() []string { return nil }
func (beta) ParseStep(f *File, key string, v Value) (Action, error) {
	return alphaAction{"zap"}, nil
}

// gamma is a second system that also names do: nap, and a step of its own.
type gamma struct{ alpha }

func (gamma) Name() string              { return "gamma" }
func (gamma) StepKeys() []string        { return []string{"prod"} }
func (gamma) ConditionKeys() []string   { return nil }
func (gamma) ExpectationKeys() []string { return nil }

const toy = `name: toy
topology: {hosts: [{name: h1}]}
system:
  alpha: {level: 2}
timeline:
  - do: start
  - poke: hard
  - do: nap
  - zap: {}
  - wait: {mood: calm, within: 1s}
  - when: {mood: happy}
    note: hi
expect:
  - {id: d, done: yes}
  - {events: {kind: x., min: 1}}
`

func TestPluginsOwnTheirKeys(t *testing.T) {
	v := MustVocabulary(alpha{}, beta{}, gamma{})
	f, err := v.Parse("toy.yaml", []byte(toy))
	if err != nil {
		t.Fatal(err)
	}
	if f.System.Name != "alpha" || f.System.Spec.(*alphaSpec).Level != 2 {
		t.Errorf("system %+v", f.System)
	}
	for i, want := range []struct{ owner, action string }{{"", ""}, {"alpha", "poke hard"}, {"alpha", "do nap"}, {"beta", "zap"}} {
		s := f.Timeline[i]
		got := ""
		if s.Action != nil {
			got = s.Action.String()
		}
		if s.Owner != want.owner || got != want.action {
			t.Errorf("step %d: owner %q action %q, want %q %q", i+1, s.Owner, got, want.owner, want.action)
		}
	}
	if c := f.Timeline[4].Wait.Condition; c.Owner != "alpha" || c.Predicate.String() != "mood calm" || f.Timeline[4].Wait.Within.D() != time.Second {
		t.Errorf("wait condition %+v within %v", c, f.Timeline[4].Wait.Within)
	}
	if c := f.Timeline[5].When; c.Owner != "alpha" || c.Predicate.String() != "mood happy" {
		t.Errorf("when condition %+v", c)
	}
	if _, ok := f.Expect[0].Judge.(alphaExpect); !ok {
		t.Errorf("plug-in expectation %T", f.Expect[0].Judge)
	}
	if _, ok := f.Expect[1].Judge.(check.Count); !ok {
		t.Errorf("core expectation %T", f.Expect[1].Judge)
	}
}

func TestPluginErrorsSayWhereAndWhat(t *testing.T) {
	v := MustVocabulary(alpha{}, beta{}, gamma{})
	for _, c := range []struct{ from, to, want string }{
		{"level: 2", "level: -1", "toy.yaml:4:18: level -1: want 0 or more"},
		{"level: 2", "lvl: 2", `toy.yaml:4:11: unknown field "lvl" in system.alpha`},
		{"alpha: {level: 2}", "delta: {}", `toy.yaml:4:3: system "delta": this jobsim knows alpha or gamma`},
		{"  - poke: hard\n", "  - prod: hard\n", "toy.yaml:7:5: step 2: prod is a gamma action but the system under test is not gamma"},
		{"  - poke: hard\n", "  - poke: [a, b]\n", "toy.yaml:7:11: step 2: want a string, got a list"},
		{"  - poke: hard\n", "  - pokey: hard\n", `toy.yaml:7:5: unknown field "pokey" in a step`},
		{"  - poke: hard\n", "  - poke:\n", `toy.yaml:7:5: step 2: poke has no value`},
		{"  - do: nap\n", "  - do: dream\n", `toy.yaml:8:9: step 3: do "dream": want one of start, nap`},
		{"  - zap: {}\n", "  - zap: {}\n    poke: x\n", "step 4: one action per step, found poke and zap"},
		{"{mood: calm, within: 1s}", "{mood: calm, tone: x}", `toy.yaml:10:24: unknown field "tone" in a mood condition`},
		{"{mood: calm, within: 1s}", "{event: {kind: a}, mood: calm}", "a condition names exactly one of event and mood"},
		{"{id: d, done: yes}", "{id: d, done: yes, events: {kind: x, min: 1}}", "expectation d: give exactly one of events, order, during and done"},
		{"{id: d, done: yes}", "{id: d, done: yes, extra: 1}", `toy.yaml:14:24: expectation d: unknown field "extra" in a done expectation`},
	} {
		src := strings.Replace(toy, c.from, c.to, 1)
		if src == toy {
			t.Fatalf("%q not found", c.from)
		}
		_, err := v.Parse("toy.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q -> %q: error %v\n  want it to contain %q", c.from, c.to, err, c.want)
		}
	}
}

func TestVocabularyRefusesClashes(t *testing.T) {
	if _, err := NewVocabulary(alpha{}, alpha{}); err == nil {
		t.Error("one plug-in name twice")
	}
	if _, err := NewVocabulary(beta{}, struct{ beta }{}); err == nil {
		t.Error("two plug-ins named beta")
	}
	if _, err := NewVocabulary(alpha{}, renamed{beta{}, "b2", []string{"poke"}}); err == nil || !strings.Contains(err.Error(), `"poke" is claimed twice`) {
		t.Errorf("a step key claimed twice: %v", err)
	}
	if _, err := NewVocabulary(renamed{beta{}, "b3", []string{"fault"}}); err == nil {
		t.Error("a plug-in claimed a core step key")
	}
	if _, err := NewVocabulary(alpha{}, gamma{}); err != nil {
		t.Errorf("two systems naming one do: value: %v", err)
	}
}

type renamed struct {
	beta
	name string
	keys []string
}

func (r renamed) Name() string       { return r.name }
func (r renamed) StepKeys() []string { return r.keys }

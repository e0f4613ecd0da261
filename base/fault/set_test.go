package fault

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
)

func ptr[T any](v T) *T { return &v }

// The site incident: the library directory cannot be listed, files inside still open.
func unlistable() Rule {
	return Rule{Layer: FS, Ops: []string{"readdir"}, Path: "/opt/cylc/lib/python3", Effect: Effect{Kind: Errno, Errno: "EIO"}}
}

func TestUnlistableDirectoryIsOneRule(t *testing.T) {
	s := NewSet()
	if _, err := s.Add(unlistable()); err != nil {
		t.Fatal(err)
	}
	if got := s.Check(Op{Layer: FS, Name: "readdir", Path: "/opt/cylc/lib/python3"}); len(got) != 1 {
		t.Fatalf("listing the directory fired %d rules, want 1", len(got))
	}
	for _, op := range []Op{
		{Layer: FS, Name: "open", Path: "/opt/cylc/lib/python3/cylc/__init__.py"},
		{Layer: FS, Name: "stat", Path: "/opt/cylc/lib/python3"},
		{Layer: FS, Name: "readdir", Path: "/opt/cylc/lib/python3/cylc"},
		{Layer: SSH, Name: "exec", Command: "ls /opt/cylc/lib/python3"},
	} {
		if got := s.Check(op); len(got) != 0 {
			t.Errorf("%+v fired %v", op, got)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := map[string]Rule{
		"layer":          {Layer: "disk", Effect: Effect{Kind: Errno, Errno: "EIO"}},
		"effect.kind":    {Layer: FS, Effect: Effect{Kind: Garbage}},
		"ops":            {Layer: FS, Ops: []string{"frobnicate"}, Effect: Effect{Kind: Errno, Errno: "EIO"}},
		"effect.errno":   {Layer: FS, Effect: Effect{Kind: Errno, Errno: "EWHATEVER"}},
		"path":           {Layer: FS, Path: "relative/x", Effect: Effect{Kind: Errno, Errno: "EIO"}},
		"command":        {Layer: SSH, Command: "(", Effect: Effect{Kind: Hang}},
		"probability":    {Layer: PBS, Probability: ptr(1.5), Effect: Effect{Kind: Hang}},
		"effect.state":   {Layer: PBS, Effect: Effect{Kind: Stuck, State: "Z"}},
		"effect.latency": {Layer: SSH, Effect: Effect{Kind: Latency}},
	}
	for field, r := range cases {
		_, err := NewSet().Add(r)
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("rule with a bad %s: error %v does not name the field", field, err)
		}
	}
}

func TestCountAfterAndProbabilityZero(t *testing.T) {
	s := NewSet()
	s.Add(Rule{ID: "third-and-fourth", Layer: PBS, Ops: []string{"qsub"}, After: 2, Count: 2, Effect: Effect{Kind: Exit, ExitCode: ptr(1)}})
	s.Add(Rule{ID: "disarmed", Layer: PBS, Probability: ptr(0.0), Effect: Effect{Kind: Hang}})
	var fired []int
	for i := 1; i <= 6; i++ {
		for _, r := range s.Check(Op{Layer: PBS, Name: "qsub"}) {
			if r.ID == "disarmed" {
				t.Fatal("a rule with probability 0 fired")
			}
			fired = append(fired, i)
		}
	}
	if len(fired) != 2 || fired[0] != 3 || fired[1] != 4 {
		t.Fatalf("fired on calls %v, want [3 4]", fired)
	}
}

func TestSameSeedSameActivations(t *testing.T) {
	run := func() []bool {
		s := NewSet(WithSeed(42))
		s.Add(Rule{Layer: FS, Probability: ptr(0.3), Effect: Effect{Kind: Errno, Errno: "EIO"}})
		var out []bool
		for i := 0; i < 200; i++ {
			out = append(out, len(s.Check(Op{Layer: FS, Name: "read", Path: "/x"})) > 0)
		}
		return out
	}
	a, b := run(), run()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("activation %d differs between two runs with the same seed", i)
		}
		if a[i] {
			n++
		}
	}
	if n < 30 || n > 90 {
		t.Fatalf("%d of 200 fired at probability 0.3", n)
	}
}

func TestTimeWindowOnVirtualClock(t *testing.T) {
	v := clock.NewVirtual(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	s := NewSet(WithClock(v))
	s.Add(Rule{Layer: SSH, Start: Duration(2 * time.Minute), For: Duration(3 * time.Minute), Effect: Effect{Kind: Exit}})
	op := Op{Layer: SSH, Name: "exec", Command: "true"}
	for _, step := range []struct {
		at   time.Duration
		want bool
	}{{0, false}, {2 * time.Minute, true}, {4 * time.Minute, true}, {5 * time.Minute, false}} {
		v.Advance(step.at - (v.Now().Sub(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))))
		if got := len(s.Check(op)) > 0; got != step.want {
			t.Errorf("at +%v fired=%v, want %v", step.at, got, step.want)
		}
	}
}

func TestHangEndsWhenRuleCleared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	log := events.NewLog()
	s := NewSet(WithRecorder(log))
	r, _ := s.Add(Rule{Layer: PBS, Ops: []string{"qsub"}, Effect: Effect{Kind: Hang}})
	done := make(chan error)
	go func() { done <- s.Wait(ctx, s.Check(Op{Layer: PBS, Name: "qsub"})) }()
	select {
	case err := <-done:
		t.Fatalf("hang returned early: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
	if n := s.Clear(PBS); n != 1 {
		t.Fatalf("cleared %d rules", n)
	}
	if err := <-done; err != nil {
		t.Fatalf("hang ended with %v after the rule %s was cleared", err, r.ID)
	}
	var kinds []events.Kind
	for _, e := range log.All() {
		kinds = append(kinds, e.Kind)
	}
	want := []events.Kind{events.FaultAdded, events.FaultActivate, events.FaultCleared}
	if len(kinds) != 3 || kinds[0] != want[0] || kinds[1] != want[1] || kinds[2] != want[2] {
		t.Fatalf("history %v, want %v", kinds, want)
	}
}

func TestRuleJSONRoundTrip(t *testing.T) {
	in := `{"layer":"fs","ops":["readdir"],"path":"/opt/**","effect":{"kind":"latency","latency":"250ms"},"for":"1m"}`
	var r Rule
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Effect.Latency.D() != 250*time.Millisecond || r.For.D() != time.Minute {
		t.Fatalf("decoded %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := r.selects(Op{Layer: FS, Name: "readdir", Path: "/opt/a/b/c"}); !got {
		t.Fatal("** did not cross directories")
	}
}

func TestCheckWhereLeavesOtherRulesUntouched(t *testing.T) {
	log := events.NewLog()
	s := NewSet(WithRecorder(log))
	s.Add(Rule{ID: "auth", Layer: SSH, Count: 1, Effect: Effect{Kind: RefuseAuth}})
	onlyAuth := func(r Rule) bool { return r.Effect.Kind == RefuseAuth }
	notAuth := func(r Rule) bool { return r.Effect.Kind != RefuseAuth }
	if got := s.CheckWhere(Op{Layer: SSH, Name: "exec"}, notAuth); len(got) != 0 {
		t.Fatalf("an exec fired %v", got)
	}
	if got := s.CheckWhere(Op{Layer: SSH, Name: "auth"}, onlyAuth); len(got) != 1 {
		t.Fatal("the login did not fire the rule: the exec used up its count")
	}
	for _, e := range log.All() {
		if e.Kind == events.FaultActivate && e.Fields["op"] == "exec" {
			t.Fatal("an activation was recorded for the exec")
		}
	}
}

// Subscribers are told of every addition, removal and clearing, before the
// call that made it returns, in order; the subscription ends with its
// context.
func TestSubscribersToldOfEveryChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := NewSet()
	var got []string
	s.Subscribe(ctx, func(c Change) {
		for _, r := range c.Added {
			got = append(got, "+"+r.ID)
		}
		for _, r := range c.Removed {
			got = append(got, "-"+r.ID)
		}
	})
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Add(Rule{ID: id, Layer: PBS, Effect: Effect{Kind: Hang}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Add(Rule{ID: "fs", Layer: FS, Effect: Effect{Kind: Hang}})
	if !s.Remove("b") || s.Remove("b") {
		t.Fatal("Remove reported the wrong outcome")
	}
	if n := s.Clear(PBS); n != 2 {
		t.Fatalf("Clear(pbs) removed %d", n)
	}
	want := "+a +b +c +fs -b -a -c"
	if strings.Join(got, " ") != want {
		t.Fatalf("subscriber saw %q, want %q", strings.Join(got, " "), want)
	}
	cancel()
	s.Clear()
	if strings.Join(got, " ") != want {
		t.Fatalf("subscriber told after its context ended: %q", strings.Join(got, " "))
	}
}

// Clearing a latency rule lets the operation it holds go on at once, as
// clearing a hang does.
func TestLatencyEndsWhenRuleCleared(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := NewSet()
	s.Add(Rule{ID: "slow", Layer: SSH, Effect: Effect{Kind: Latency, Latency: Duration(time.Hour)}})
	done := make(chan error, 1)
	go func() { done <- s.Wait(ctx, s.Check(Op{Layer: SSH, Name: "exec"})) }()
	select {
	case err := <-done:
		t.Fatalf("latency returned early: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
	s.Remove("slow")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the released operation got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("an operation waited out its latency after the rule was cleared")
	}
}

// A hang belongs to the rule that fired, not to its id: clearing the rule
// and adding another with the same id releases the hanging operation.
func TestHangReleasedThoughIDReused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := NewSet()
	s.Add(Rule{ID: "h", Layer: FS, Effect: Effect{Kind: Hang}})
	fired := s.Check(Op{Layer: FS, Name: "open", Path: "/x"})
	s.Remove("h")
	s.Add(Rule{ID: "h", Layer: FS, Effect: Effect{Kind: Hang}})
	if err := s.Wait(ctx, fired); err != nil {
		t.Fatalf("the operation of the cleared rule still hangs: %v", err)
	}
}

func TestWindowOnTheSetsClock(t *testing.T) {
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := NewSet(WithClock(clock.NewVirtual(at)))
	s.Add(Rule{ID: "w", Layer: PBS, Start: Duration(time.Minute), For: Duration(2 * time.Minute), Effect: Effect{Kind: Hang}})
	s.Add(Rule{ID: "open", Layer: PBS, Effect: Effect{Kind: Hang}})
	if from, until, ok := s.Window("w"); !ok || !from.Equal(at.Add(time.Minute)) || !until.Equal(at.Add(3*time.Minute)) {
		t.Errorf("window of w: %v %v %v", from, until, ok)
	}
	if from, until, ok := s.Window("open"); !ok || !from.Equal(at) || !until.IsZero() {
		t.Errorf("window of a rule armed until cleared: %v %v %v", from, until, ok)
	}
	if _, _, ok := s.Window("none"); ok {
		t.Error("a window for a rule that is not there")
	}
}

// A hang lasts as long as its rule's window: when "for" ends, the
// operation goes on.
func TestHangEndsWithItsWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := clock.NewVirtual(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC))
	s := NewSet(WithClock(v))
	s.Add(Rule{ID: "h", Layer: SSH, For: Duration(time.Minute), Effect: Effect{Kind: Hang}})
	done := make(chan error, 1)
	go func() { done <- s.Wait(ctx, s.Check(Op{Layer: SSH, Name: "exec"})) }()
	for v.Pending() == 0 {
		select {
		case err := <-done:
			t.Fatalf("the hang returned at once: %v", err)
		case <-ctx.Done():
			t.Fatal("the hang never waited for its window to close")
		case <-time.After(time.Millisecond):
		}
	}
	v.Advance(59 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("the hang returned before its window closed: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
	v.Advance(time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hang at the end of its window: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("still hanging after the rule's window closed")
	}
}

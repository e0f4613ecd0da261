package fault

import (
	"slices"
	"testing"

	"github.com/jobsim/jobsim/base/events"
)

// fault.added and fault.cleared carry the rule's fields one by one (the
// documented id, layer, ops, path, command, user, job, effect), not only
// the rule whole or its id.
func TestAddedAndClearedEventsCarryTheRulesFields(t *testing.T) {
	log := events.NewLog()
	s := NewSet(WithRecorder(log))
	if _, err := s.Add(Rule{ID: "lib", Layer: FS, Ops: []string{"readdir", "open"}, Path: "/opt/**", User: "alice", Effect: Effect{Kind: Errno, Errno: "EIO"}}); err != nil {
		t.Fatal(err)
	}
	if !s.Remove("lib") {
		t.Fatal("rule lib not removed")
	}
	all := log.All()
	if len(all) != 2 {
		t.Fatalf("history %v", all)
	}
	for _, e := range all {
		f := e.Fields
		if f["id"] != "lib" || f["layer"] != "fs" || f["path"] != "/opt/**" || f["user"] != "alice" || f["effect"] != "errno" ||
			!slices.Equal(f["ops"].([]string), []string{"readdir", "open"}) {
			t.Errorf("%s fields %v", e.Kind, f)
		}
		if _, ok := f["command"]; ok {
			t.Errorf("%s: a selector the rule does not set is a field: %v", e.Kind, f)
		}
		if r, ok := f["rule"].(Rule); !ok || r.ID != "lib" {
			t.Errorf("%s: rule %#v", e.Kind, f["rule"])
		}
	}
}

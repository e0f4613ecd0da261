package runner

import (
	"bytes"
	"strings"
	"testing"
)

// The matrix has a row per scenario and a column per install, with how a
// reproducer was judged on each.
func TestWriteMatrix(t *testing.T) {
	var buf bytes.Buffer
	err := WriteMatrix(&buf, []Column{
		{Label: "8.0.2", Reports: []Report{{Name: "happy", Verdict: Pass, Mode: "gate"}, {Name: "bug-5102", Verdict: Pass, Mode: "reproducer", JudgedAs: "reproducer"}}},
		{Label: "8.0.3", Reports: []Report{{Name: "happy", Verdict: Fail, Mode: "gate"}, {Name: "bug-5102", Verdict: Pass, Mode: "reproducer", JudgedAs: "gate"}, {Name: "new", Verdict: Skip}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := [][]string{
		{"SCENARIO", "8.0.2", "8.0.3"},
		{"happy", "PASS", "FAIL"},
		{"bug-5102", "PASS (as reproducer)", "PASS (as gate)"},
		{"new", "-", "SKIP"},
	}
	for i, w := range want {
		if i >= len(lines) {
			t.Fatalf("matrix:\n%s", buf.String())
		}
		cols := strings.Split(strings.Join(strings.Fields(lines[i]), " "), " ")
		got := strings.Join(cols, " ")
		if got != strings.Join(w, " ") {
			t.Errorf("row %d: %q, want %q", i, got, strings.Join(w, " "))
		}
	}
	if !strings.Contains(buf.String(), "8.0.3: 1 passed, 1 failed, 0 errored, 1 skipped") {
		t.Errorf("totals:\n%s", buf.String())
	}
}

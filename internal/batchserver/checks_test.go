package batchserver

import (
	"testing"
	"time"
)

// The messages are what a user of a server option reads; they name the
// item and what is wrong with it.
func TestCheckNames(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, "nodes: at least one node is needed"},
		{[]string{"n1", "a b"}, `nodes[1]: bad node name "a b"`},
		{[]string{"n1", ""}, `nodes[1]: bad node name ""`},
		{[]string{"n1", "n2", "n1"}, `nodes[2]: node "n1" given twice`},
	} {
		err := CheckNames("node", tc.names, " \t")
		if err == nil || err.Error() != tc.want {
			t.Errorf("CheckNames(%q) = %v, want %s", tc.names, err, tc.want)
		}
	}
	if err := CheckNames("node", []string{"n1", "n2"}, " "); err != nil {
		t.Errorf("good names: %v", err)
	}
}

func TestDurationAndAbsDir(t *testing.T) {
	d := time.Minute
	if err := Duration(&d, "kill wait", -time.Second); err == nil || err.Error() != "kill wait -1s is negative" || d != time.Minute {
		t.Errorf("negative: err %v, value %v", err, d)
	}
	if err := Duration(&d, "kill wait", 0); err != nil || d != 0 {
		t.Errorf("zero: err %v, value %v", err, d)
	}
	dir := "/var/spool"
	if err := AbsDir(&dir, "spool dir", "rel"); err == nil || err.Error() != `spool dir "rel": want an absolute path` || dir != "/var/spool" {
		t.Errorf("relative: err %v, value %v", err, dir)
	}
	if err := AbsDir(&dir, "spool dir", "/x"); err != nil || dir != "/x" {
		t.Errorf("absolute: err %v, value %v", err, dir)
	}
}

package cmdrun

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{Exit(35), 35, ""},
		{Exit(256 + 3), 3, ""},
		{fmt.Errorf("wrapped: %w", Exit(2)), 2, ""},
		{errors.New("no such job"), 1, "qdel: no such job\n"},
	} {
		var stderr bytes.Buffer
		if got := Status(c.err, &stderr, "qdel: "); got != c.code || stderr.String() != c.stderr {
			t.Errorf("Status(%v) = %d, %q; want %d, %q", c.err, got, stderr.String(), c.code, c.stderr)
		}
	}
}

func TestRejectAndGarble(t *testing.T) {
	two := 2
	fired := []fault.Rule{{ID: "g", Seed: 7, Effect: fault.Effect{Kind: fault.Garbage}}, {ID: "x", Effect: fault.Effect{Kind: fault.Exit, ExitCode: &two, Stderr: "refused\n"}}}
	var stderr bytes.Buffer
	if code, ok := Reject(fired, &stderr); !ok || code != 2 || stderr.String() != "refused\n" {
		t.Errorf("Reject = %d, %v, %q", code, ok, stderr.String())
	}
	if _, ok := Reject(fired[:1], &stderr); ok {
		t.Error("Reject fired without an exit rule")
	}
	// A message typed on a command line has no newline; the command's
	// message ends in one all the same, as a real command's does.
	stderr.Reset()
	typed := []fault.Rule{{ID: "t", Effect: fault.Effect{Kind: fault.Exit, Stderr: "qsub: Job rejected by all possible destinations"}}}
	if _, _ = Reject(typed, &stderr); stderr.String() != "qsub: Job rejected by all possible destinations\n" {
		t.Errorf("Reject wrote %q, want the message and a newline", stderr.String())
	}
	var a, b bytes.Buffer
	a.WriteString("table\n")
	Garble(fired, &a)
	Garble(fired, &b)
	if bytes.Contains(a.Bytes(), []byte("table")) || a.Len() < 16 || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("garbage must replace the output and repeat per rule: %q / %q", a.Bytes(), b.Bytes())
	}
}

type rec struct{ got []events.Event }

func (r *rec) Record(e events.Event) { r.got = append(r.got, e) }

func TestFinishRecordsTheCall(t *testing.T) {
	var out, errb bytes.Buffer
	out.WriteString("1.server\n")
	r := &rec{}
	stdout, stderr := Done{Kind: events.PBSCall, Rec: r, Prog: "qsub", Args: []string{"j.sh"}, User: "alice", Stdout: &out, Stderr: &errb}.Finish()
	if string(stdout) != "1.server\n" || stderr == nil || len(stderr) != 0 {
		t.Errorf("Finish = %q, %#v", stdout, stderr)
	}
	if len(r.got) != 1 || r.got[0].Msg != "qsub j.sh → exit 0" || r.got[0].Fields["user"] != "alice" {
		t.Errorf("recorded %+v", r.got)
	}
}

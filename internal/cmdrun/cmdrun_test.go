package cmdrun

import (
	"bytes"
	"context"
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

// Check lets a command run when no rule fires, refuses it with a rule's
// message and status, and kills it (137) when its caller gives up during a
// hang.
func TestCheckBeforeTheCommandRuns(t *testing.T) {
	op := fault.Op{Layer: fault.PBS, Name: "qstat", Command: "qstat"}
	var stderr bytes.Buffer
	if fired, code, done := Check(context.Background(), nil, op, &stderr); fired != nil || code != 0 || done {
		t.Errorf("no set: %v %d %v", fired, code, done)
	}
	set := fault.NewSet()
	if _, code, done := Check(context.Background(), set, op, &stderr); code != 0 || done {
		t.Errorf("no rule: %d %v", code, done)
	}
	three := 3
	if _, err := set.Add(fault.Rule{ID: "x", Layer: fault.PBS, Ops: []string{"qstat"}, Effect: fault.Effect{Kind: fault.Exit, ExitCode: &three, Stderr: "no\n"}}); err != nil {
		t.Fatal(err)
	}
	if fired, code, done := Check(context.Background(), set, op, &stderr); len(fired) != 1 || code != 3 || !done || stderr.String() != "no\n" {
		t.Errorf("exit rule: %v %d %v %q", fired, code, done, stderr.String())
	}
	set.Clear()
	if _, err := set.Add(fault.Rule{ID: "h", Layer: fault.PBS, Effect: fault.Effect{Kind: fault.Hang}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, code, done := Check(ctx, set, op, &stderr); code != 128+9 || !done {
		t.Errorf("hang, caller gone: %d %v", code, done)
	}
}

func TestIsCommand(t *testing.T) {
	cmds := []string{"qsub", "qstat"}
	if !IsCommand("/opt/pbs/bin/qsub", cmds) || !IsCommand("qstat", cmds) || IsCommand("qdel", cmds) || IsCommand("", cmds) {
		t.Error("IsCommand must match a command's base name against the list")
	}
}

// Run runs the command once, reports its status and output, and records
// the call with that status.
func TestDoneRunReportsTheCommand(t *testing.T) {
	var out, errb bytes.Buffer
	r := &rec{}
	calls := 0
	res := Done{Kind: events.PBSCall, Rec: r, Prog: "qdel", Args: []string{"7"}, User: "alice", Stdout: &out, Stderr: &errb}.Run(func() int {
		calls++
		errb.WriteString("qdel: Unknown Job Id 7.pbs\n")
		return 153
	})
	if calls != 1 || res.ExitCode != 153 || string(res.Stderr) != "qdel: Unknown Job Id 7.pbs\n" || res.Stdout == nil || len(res.Stdout) != 0 {
		t.Fatalf("Run = %+v after %d calls", res, calls)
	}
	if len(r.got) != 1 || r.got[0].Fields["exit"] != 153 || r.got[0].Msg != "qdel 7 → exit 153" {
		t.Fatalf("recorded %+v", r.got)
	}
}

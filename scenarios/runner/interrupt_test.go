package runner

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run stopped by a signal while a wait was under way is reported as
// interrupted (summary, transcript, JUnit), not as the system failing
// the wait or its expectations; the system and the topology are still
// taken down.
func TestSignalledRunIsInterruptedNotFailed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, b, _ := newRunner(t, "8.0.3", &sys)
	// What signal.NotifyContext does on SIGTERM.
	sigCtx, interrupt := context.WithCancelCause(ctx)
	time.AfterFunc(500*time.Millisecond, func() { interrupt(errors.New("terminated signal received")) })
	rep := r.Run(sigCtx, load(t, "cut", "", rejectQsub+"\n  - wait: {state: succeeded, within: 10s}"))
	if rep.Verdict != Interrupted || rep.Reason != "interrupted by signal: terminated signal received" {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
	if !sys.stopped || b.closed != 1 {
		t.Fatal("an interrupted run left the system or topology up")
	}
	tr, err := os.ReadFile(filepath.Join(rep.Dir, "transcript.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(tr), "- verdict: **INTERRUPTED**: interrupted by signal") {
		t.Fatalf("transcript:\n%s", tr)
	}

	var buf bytes.Buffer
	if err := WriteJUnit(&buf, "jobsim", []Report{rep}); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	c := got.Suites[0].Cases[0]
	if got.Failures != 0 || got.Errors != 1 || c.Failure != nil || c.Error == nil || !strings.HasPrefix(c.Error.Message, "interrupted by signal") {
		t.Fatalf("junit:\n%s", buf.String())
	}
	var sum bytes.Buffer
	if err := WriteSummary(&sum, []Report{rep}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "0 passed, 0 failed, 0 errored, 0 skipped, 1 interrupted") || !strings.Contains(sum.String(), "INTERRUPTED") {
		t.Fatalf("summary:\n%s", sum.String())
	}
}

// A scenario the runner had not started before the signal is interrupted
// too; one judged before it keeps its verdict.
func TestInterruptBeforeStartAndAfterJudging(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sys *fakeCylc
	r, _, _ := newRunner(t, "8.0.3", &sys)
	pass := r.Run(ctx, load(t, "whole", "", ""))
	if pass.Verdict != Pass {
		t.Fatalf("verdict %s: %s", pass.Verdict, pass.Reason)
	}
	sigCtx, interrupt := context.WithCancelCause(ctx)
	interrupt(errors.New("interrupt signal received"))
	pass.interrupt(sigCtx)
	if pass.Verdict != Pass {
		t.Fatalf("a run judged before the signal became %s", pass.Verdict)
	}
	rep := r.Run(sigCtx, load(t, "late", "", ""))
	if rep.Verdict != Interrupted || rep.Reason != "interrupted by signal: interrupt signal received" {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
}

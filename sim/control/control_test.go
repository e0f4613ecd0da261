package control

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

func newTestAPI(t *testing.T, opts ...Option) (*Client, *fault.Set, *events.Log) {
	t.Helper()
	log := events.NewLog()
	set := fault.NewSet(fault.WithRecorder(log))
	srv, err := NewServer("s3cret", append([]Option{WithName("fakehpc"), WithFaults(set), WithEvents(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return NewClient(ts.URL, "s3cret"), set, log
}

func TestTokenIsRequired(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, _ := newTestAPI(t)
	for _, token := range []string{"", "wrong", "s3cret2"} {
		bad := NewClient(c.base, token)
		_, err := bad.Faults(ctx)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
			t.Errorf("token %q: got %v, want 401", token, err)
		}
		if _, err := bad.AddFault(ctx, fault.Rule{Layer: fault.SSH, Effect: fault.Effect{Kind: fault.Hang}}); err == nil {
			t.Errorf("token %q could add a fault", token)
		}
	}
}

func TestFaultsRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, set, _ := newTestAPI(t)
	r, err := c.AddFault(ctx, fault.Rule{Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/lib", Effect: fault.Effect{Kind: fault.Errno, Errno: "EIO"}})
	if err != nil || r.ID == "" {
		t.Fatalf("add: %v %+v", err, r)
	}
	set.Check(fault.Op{Layer: fault.FS, Name: "readdir", Path: "/opt/lib"})
	st, err := c.Faults(ctx)
	if err != nil || len(st) != 1 || st[0].Activations != 1 || !st[0].Armed {
		t.Fatalf("list: %v %+v", err, st)
	}
	_, err = c.AddFault(ctx, fault.Rule{Layer: fault.FS, Effect: fault.Effect{Kind: fault.Errno, Errno: "EBOGUS"}})
	if err == nil || !strings.Contains(err.Error(), "effect.errno") {
		t.Fatalf("a bad rule gave %v, want an error naming effect.errno", err)
	}
	if err := c.RemoveFault(ctx, "nope"); err == nil {
		t.Fatal("removing an unknown rule succeeded")
	}
	c.AddFault(ctx, fault.Rule{Layer: fault.SSH, Effect: fault.Effect{Kind: fault.Hang}})
	if n, err := c.ClearFaults(ctx, fault.FS); err != nil || n != 1 {
		t.Fatalf("clear fs: %d %v", n, err)
	}
	if st, _ := c.Faults(ctx); len(st) != 1 || st[0].Layer != fault.SSH {
		t.Fatalf("after clearing fs: %+v", st)
	}
}

func TestEventsHistoryAndStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, log := newTestAPI(t)
	log.Record(events.Event{Kind: events.SSHExec, Msg: "one"})
	got := make(chan events.Event, 10)
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- c.StreamEvents(sctx, 0, func(e events.Event) error { got <- e; return nil })
	}()
	if e := <-got; e.Msg != "one" {
		t.Fatalf("first streamed event %+v", e)
	}
	if err := c.RecordEvent(ctx, events.Event{Kind: "cylc.task", Msg: "foo preparing"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Kind != "cylc.task" || e.Seq != 2 {
			t.Fatalf("live event %+v", e)
		}
	case <-ctx.Done():
		t.Fatal("no live event")
	}
	scancel()
	if err := <-done; err != nil {
		t.Fatalf("stream ended with %v", err)
	}
	hist, err := c.Events(ctx, 1)
	if err != nil || len(hist) != 1 || hist[0].Msg != "foo preparing" {
		t.Fatalf("events since 1: %v %+v", err, hist)
	}
}

func TestHealthRunsChecksAndClockAdvances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, _, _ := newTestAPI(t, WithClock(v),
		WithCheck("ssh", func(context.Context) error { return nil }),
		WithCheck("pbs", func(context.Context) error { return errors.New("qstat: cannot connect") }))
	h, err := c.Health(ctx)
	if err != nil || h.OK || !h.Checks["ssh"].OK || h.Checks["pbs"].OK || h.Host != "fakehpc" {
		t.Fatalf("health: %v %+v", err, h)
	}
	st, err := c.AdvanceClock(ctx, fault.Duration(time.Hour))
	if err != nil || !st.Virtual || st.Now.Hour() != 1 {
		t.Fatalf("advance: %v %+v", err, st)
	}
}

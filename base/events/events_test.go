package events

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLogOrdersAndStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var sink bytes.Buffer
	l := NewLog(WithSink(&sink))
	l.Record(Event{Kind: SSHExec, Msg: "first"})
	sub := l.Subscribe(ctx, 4)
	ForHost(l, "fakehpc").Record(Event{Kind: PBSCall, Msg: "second"})

	select {
	case e := <-sub:
		if e.Seq != 2 || e.Host != "fakehpc" || e.Msg != "second" {
			t.Fatalf("streamed %+v, want seq 2 on fakehpc", e)
		}
	case <-ctx.Done():
		t.Fatal("no event streamed")
	}
	if got := l.Since(1); len(got) != 1 || got[0].Msg != "second" {
		t.Fatalf("Since(1) = %+v", got)
	}
	lines := strings.Split(strings.TrimSpace(sink.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("sink has %d lines, want 2", len(lines))
	}
	var e Event
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Kind != PBSCall {
		t.Fatalf("sink line %q: %v", lines[1], err)
	}
	cancel()
	for range sub { // closed when ctx ends
	}
}

func TestJSONLinesRoundTrip(t *testing.T) {
	log := NewLog()
	log.Record(Event{Kind: PBSJobState, Host: "fakehpc", Msg: "1.fakehpc -> R", Fields: map[string]any{"job": "1.fakehpc", "to": "R"}})
	log.Record(Event{Kind: Note, Msg: "second"})
	var buf bytes.Buffer
	if err := log.WriteJSONLines(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONLines(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Fields["job"] != "1.fakehpc" || got[0].Host != "fakehpc" || got[1].Msg != "second" || got[1].Seq != 2 {
		t.Fatalf("read back %+v", got)
	}
	if _, err := ReadJSONLines(strings.NewReader(`{"seq":1}` + "\n" + `{"seq":`)); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("a cut history: err %v, want one naming entry 2", err)
	}
}

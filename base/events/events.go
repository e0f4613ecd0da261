// Package events holds the one history of everything observable on a fake job
// host or topology: ssh commands, PBS calls with their output, job state
// changes, fault activations, and what drivers observe of the system under
// test. Checkers run over it (Jepsen style) and it is the incident transcript
// a developer attaches to a bug report, so it is append-only and ordered.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Kind names what an event records. Kinds are dotted, layer first, so that a
// checker can select a whole layer by prefix.
type Kind string

// The kinds emitted by jobsim itself. Drivers may add their own (for example
// "cylc.task" for a task state change seen in the workflow database).
const (
	SSHAuth       Kind = "ssh.auth"
	SSHExec       Kind = "ssh.exec"
	SSHSFTP       Kind = "ssh.sftp"
	SSHForward    Kind = "ssh.forward"
	SSHConn       Kind = "ssh.conn" // a connection dropped before login (MaxStartups, LoginGraceTime)
	PBSCall       Kind = "pbs.call"
	PBSJobState   Kind = "pbs.job"
	FaultAdded    Kind = "fault.added"
	FaultCleared  Kind = "fault.cleared"
	FaultActivate Kind = "fault.activation"
	HostLifecycle Kind = "host"
	Note          Kind = "note"
)

// Event is one entry of the history. Fields is free-form per kind but always
// JSON-encodable; Seq is assigned by the Log and is strictly increasing.
type Event struct {
	Seq    int64          `json:"seq"`
	Time   time.Time      `json:"time"`
	Host   string         `json:"host,omitempty"`
	Kind   Kind           `json:"kind"`
	Msg    string         `json:"msg,omitempty"`
	Fields map[string]any `json:"fields,omitempty"`
}

// String renders an event as one human-readable line for transcripts.
func (e Event) String() string {
	s := fmt.Sprintf("%s #%d %-16s", e.Time.UTC().Format("15:04:05.000"), e.Seq, e.Kind)
	if e.Host != "" {
		s += " [" + e.Host + "]"
	}
	if e.Msg != "" {
		s += " " + e.Msg
	}
	return s
}

// Recorder is what components need to emit events: the Log, or a Log scoped
// to one host.
type Recorder interface {
	Record(e Event)
}

// Discard is a Recorder that drops everything, for components used without a
// history.
type Discard struct{}

// Record implements Recorder.
func (Discard) Record(Event) {}

// Log is an append-only, concurrency-safe event history with live
// subscribers. The zero value is not usable; call NewLog.
type Log struct {
	mu     sync.Mutex
	now    func() time.Time
	events []Event
	subs   map[chan Event]struct{}
	sinks  []io.Writer
	seq    int64
}

// LogOption configures a Log.
type LogOption func(*Log)

// WithClock makes the log stamp events with now (a virtual clock's Now, for
// example) instead of the wall clock.
func WithClock(now func() time.Time) LogOption { return func(l *Log) { l.now = now } }

// WithSink also writes every event as one JSON line to w as it is recorded.
func WithSink(w io.Writer) LogOption { return func(l *Log) { l.sinks = append(l.sinks, w) } }

// NewLog returns an empty history.
func NewLog(opts ...LogOption) *Log {
	l := &Log{now: time.Now, subs: map[chan Event]struct{}{}}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Record appends e, assigning its sequence number and, when unset, its time.
func (l *Log) Record(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	l.events = append(l.events, e)
	for _, w := range l.sinks {
		if b, err := json.Marshal(e); err == nil {
			_, _ = w.Write(append(b, '\n'))
		}
	}
	for ch := range l.subs {
		select {
		case ch <- e:
		default: // a slow subscriber loses live events, never blocks the host; it can re-read Since.
		}
	}
}

// Since returns a copy of the events with Seq greater than seq.
func (l *Log) Since(seq int64) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := len(l.events)
	for i > 0 && l.events[i-1].Seq > seq {
		i--
	}
	return append([]Event(nil), l.events[i:]...)
}

// All returns a copy of the whole history.
func (l *Log) All() []Event { return l.Since(0) }

// Subscribe streams events recorded after the call until ctx ends. The
// channel has a buffer of buf events; when it is full new events are dropped
// for that subscriber rather than blocking the host.
func (l *Log) Subscribe(ctx context.Context, buf int) <-chan Event {
	ch := make(chan Event, buf)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	go func() {
		<-ctx.Done()
		l.mu.Lock()
		delete(l.subs, ch)
		close(ch)
		l.mu.Unlock()
	}()
	return ch
}

// WriteJSONLines writes the whole history as JSON lines.
func (l *Log) WriteJSONLines(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, e := range l.All() {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("write event %d: %w", e.Seq, err)
		}
	}
	return nil
}

// ReadJSONLines reads a history written by WriteJSONLines (an artifacts
// folder's events.jsonl), so that it can be judged or drawn again later.
// A line that is not an event is an error naming the line.
func ReadJSONLines(r io.Reader) ([]Event, error) {
	var out []Event
	dec := json.NewDecoder(r)
	for line := 1; ; line++ {
		var e Event
		err := dec.Decode(&e)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("events: entry %d: %w", line, err)
		}
		out = append(out, e)
	}
}

// ForHost returns a Recorder that stamps every event with host.
func ForHost(r Recorder, host string) Recorder { return hostRecorder{r: r, host: host} }

type hostRecorder struct {
	r    Recorder
	host string
}

func (h hostRecorder) Record(e Event) {
	if e.Host == "" {
		e.Host = h.host
	}
	h.r.Record(e)
}

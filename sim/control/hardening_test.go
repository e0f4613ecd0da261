package control

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
)

// rawAPI serves the control API for requests built by hand, as an attacker
// would send them.
type rawAPI struct {
	url string
	set *fault.Set
	log *events.Log
}

func newRawAPI(t *testing.T) rawAPI {
	t.Helper()
	log := events.NewLog()
	set := fault.NewSet(fault.WithRecorder(log))
	srv, err := NewServer("s3cret", WithFaults(set), WithEvents(log))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return rawAPI{url: ts.URL, set: set, log: log}
}

func (a rawAPI) send(t *testing.T, method, path string, body io.Reader) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// hugeJSON is a JSON object whose one string field holds n bytes, produced
// as it is sent.
func hugeJSON(prefix string, n int, suffix string) io.Reader {
	return io.MultiReader(strings.NewReader(prefix), io.LimitReader(repeatX{}, int64(n)), strings.NewReader(suffix))
}

type repeatX struct{}

func (repeatX) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// A 50 MB fault rule or event is refused with 413 and kept nowhere; the
// answer does not echo it.
func TestOversizedBodiesRefused(t *testing.T) {
	a := newRawAPI(t)
	code, body := a.send(t, http.MethodPost, "/v1/faults", hugeJSON(`{"id":"`, 50<<20, `","layer":"ssh","effect":{"kind":"hang"}}`))
	if code != http.StatusRequestEntityTooLarge || len(body) > 1024 {
		t.Fatalf("50 MB fault rule: %d, %d bytes of answer %.200s", code, len(body), body)
	}
	if n := len(a.set.List()); n != 0 {
		t.Fatalf("%d rules kept from an oversized body", n)
	}
	before := len(a.log.All())
	code, body = a.send(t, http.MethodPost, "/v1/events", hugeJSON(`{"kind":"note","msg":"`, 50<<20, `"}`))
	if code != http.StatusRequestEntityTooLarge || len(body) > 1024 {
		t.Fatalf("50 MB event: %d, %d bytes of answer %.200s", code, len(body), body)
	}
	if n := len(a.log.All()); n != before {
		t.Fatalf("the history grew by %d events from an oversized body", n-before)
	}
}

// A body within the limit whose values are too long is refused, quoting a
// short prefix only.
func TestLongValuesQuotedShort(t *testing.T) {
	a := newRawAPI(t)
	long := strings.Repeat("y", 100<<10)
	for name, body := range map[string]string{
		"id":       `{"id":"` + long + `","layer":"ssh","effect":{"kind":"hang"}}`,
		"path":     `{"layer":"fs","path":"` + long + `","effect":{"kind":"hang"}}`,
		"command":  `{"layer":"ssh","command":"(` + long + `","effect":{"kind":"hang"}}`,
		"layer":    `{"layer":"` + long + `","effect":{"kind":"hang"}}`,
		"errno":    `{"layer":"fs","effect":{"kind":"errno","errno":"` + long + `"}}`,
		"duration": `{"layer":"ssh","effect":{"kind":"latency","latency":"` + long + `"}}`,
		"field":    `{"layer":"ssh","` + long + `":1,"effect":{"kind":"hang"}}`,
	} {
		code, got := a.send(t, http.MethodPost, "/v1/faults", strings.NewReader(body))
		if code != http.StatusBadRequest || len(got) > 700 || !strings.Contains(got, "yyyy") && name != "field" {
			t.Errorf("long %s: %d, %d bytes: %.300s", name, code, len(got), got)
		}
	}
	code, got := a.send(t, http.MethodDelete, "/v1/faults/"+strings.Repeat("z", 20<<10), nil)
	if code != http.StatusNotFound || len(got) > 700 {
		t.Errorf("removing a long id: %d, %d bytes", code, len(got))
	}
	if n := len(a.set.List()); n != 0 {
		t.Fatalf("%d rules added", n)
	}
}

// One JSON value per body: a second object or trailing data is refused.
func TestTrailingDataRefused(t *testing.T) {
	a := newRawAPI(t)
	rule := `{"id":"h","layer":"ssh","effect":{"kind":"hang"}}`
	for _, body := range []string{rule + rule, rule + " x", rule + "]", rule + `{"id":"h2"}`} {
		if code, got := a.send(t, http.MethodPost, "/v1/faults", strings.NewReader(body)); code != http.StatusBadRequest {
			t.Errorf("fault rule %q: %d %s", body, code, got)
		}
	}
	if code, got := a.send(t, http.MethodPost, "/v1/events", strings.NewReader(`{"kind":"note"}{"kind":"note"}`)); code != http.StatusBadRequest {
		t.Errorf("two events: %d %s", code, got)
	}
	if n := len(a.set.List()); n != 0 {
		t.Fatalf("%d rules added from refused bodies", n)
	}
	if code, got := a.send(t, http.MethodPost, "/v1/faults", strings.NewReader(rule+"\n")); code != http.StatusCreated {
		t.Fatalf("one rule and a newline: %d %s", code, got)
	}
}

// Numbers are range-checked: what no process, probability or counter can
// be is refused, naming the field.
func TestNumericFieldsRangeChecked(t *testing.T) {
	a := newRawAPI(t)
	for field, body := range map[string]string{
		"effect.after_bytes": `{"layer":"ssh","effect":{"kind":"drop","after_bytes":-1}}`,
		"effect.exit_code":   `{"layer":"ssh","effect":{"kind":"exit","exit_code":256}}`,
		"effect.exit_code ":  `{"layer":"pbs","effect":{"kind":"exit","exit_code":-1}}`,
		"probability":        `{"layer":"ssh","probability":1.5,"effect":{"kind":"hang"}}`,
		"probability ":       `{"layer":"ssh","probability":-0.1,"effect":{"kind":"hang"}}`,
		"count":              `{"layer":"ssh","count":-1,"effect":{"kind":"hang"}}`,
		"after":              `{"layer":"ssh","after":-3,"effect":{"kind":"hang"}}`,
		"start":              `{"layer":"ssh","start":"-1s","effect":{"kind":"hang"}}`,
		"for":                `{"layer":"ssh","for":-5,"effect":{"kind":"hang"}}`,
		"effect.latency":     `{"layer":"ssh","effect":{"kind":"latency","latency":1e300}}`,
		"effect.mode":        `{"layer":"fs","effect":{"kind":"perm","mode":99999}}`,
	} {
		code, got := a.send(t, http.MethodPost, "/v1/faults", strings.NewReader(body))
		want := strings.TrimSpace(field)
		if field == "effect.latency" {
			want = "duration"
		}
		if code != http.StatusBadRequest || !strings.Contains(got, want) {
			t.Errorf("%s out of range: %d %s", field, code, got)
		}
	}
	if code, got := a.send(t, http.MethodPost, "/v1/faults", strings.NewReader(`{"layer":"ui","effect":{"kind":"hang"}}`)); code != http.StatusBadRequest || !strings.Contains(got, "UI server") {
		t.Errorf("a ui rule for a host: %d %s", code, got)
	}
	if n := len(a.set.List()); n != 0 {
		t.Fatalf("%d out-of-range rules added", n)
	}
	for _, body := range []string{
		`{"layer":"ssh","effect":{"kind":"exit","exit_code":0}}`,
		`{"layer":"ssh","effect":{"kind":"exit","exit_code":255}}`,
		`{"layer":"ssh","probability":0,"effect":{"kind":"drop","after_bytes":0}}`,
	} {
		if code, got := a.send(t, http.MethodPost, "/v1/faults", strings.NewReader(body)); code != http.StatusCreated {
			t.Errorf("in range %s: %d %s", body, code, got)
		}
	}
}

package uiserver

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/fault"
)

// The short spelling is a set of fault rules of layer "ui".
func TestShortSpellingIsRules(t *testing.T) {
	f, err := ParseFaults("slow-start=2s,never-ready=http,crash-after=5s,exit-code=3,http-error=502,http-error-after=2")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.AsRules() {
		if r.Layer != fault.UI {
			t.Errorf("rule %s of layer %s", r.ID, r.Layer)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("rule %s: %v", r.ID, err)
		}
		s := r.ID + ":" + strings.Join(r.Ops, ",") + ":" + string(r.Effect.Kind)
		switch r.Effect.Kind {
		case fault.Latency:
			s += ":" + r.Effect.Latency.D().String()
		case fault.HTTPStatus:
			s += ":" + http.StatusText(r.Effect.Status)
		case fault.Exit:
			s += ":" + r.Effect.Latency.D().String()
		}
		got = append(got, s)
	}
	want := "slow-start:listen:latency:2s never-ready:request:status:Service Unavailable crash-after:run:exit:5s http-error:request:status:Bad Gateway"
	if strings.Join(got, " ") != want {
		t.Fatalf("rules %q\nwant  %q", strings.Join(got, " "), want)
	}
}

// JOBSIM_UISERVER_FAULT also takes fault rules in JSON; rules select
// requests by path.
func TestRulesFromEnvironment(t *testing.T) {
	env := map[string]string{EnvFault: `[{"id":"api-down","layer":"ui","ops":["request"],"command":"/api$","effect":{"kind":"status","status":504}}]`}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	r := start(t, FromEnv(lookup))
	if got, _ := get(t, r.base+"/", ""); got != 200 {
		t.Errorf("GET /: %d, want 200", got)
	}
	if got, body := get(t, r.base+"/api", ""); got != 504 || !strings.Contains(body["message"].(string), "api-down") {
		t.Errorf("GET /api: %d %v, want 504 naming the rule", got, body)
	}
	for spec, want := range map[string]string{
		`{"layer":"ssh","effect":{"kind":"hang"}}`:                   "acts on \"ui\" rules only",
		`{"layer":"ui","effect":{"kind":"status","status":200}}`:     "effect.status",
		`{"layer":"ui","ops":["bind"],"effect":{"kind":"hang"}}`:     "ops",
		`{"layer":"ui","effect":{"kind":"hang"},"extra":1}`:          "unknown field",
		`[{"layer":"ui","effect":{"kind":"hang"}}] [{"layer":"ui"}]`: "after the JSON value",
	} {
		env[EnvFault] = spec
		if _, err := New(FromEnv(lookup)); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), EnvFault) {
			t.Errorf("spec %s: error %v, want one naming %s and %q", spec, err, EnvFault, want)
		}
	}
}

// Rules of a live set take effect, and clearing them takes effect, at
// once: a held request is answered, a server kept from binding binds, an
// exit rule cleared before it is due does not end the server.
func TestLiveRulesAndClearing(t *testing.T) {
	set := fault.NewSet()
	hold, err := set.Add(fault.Rule{Layer: fault.UI, Ops: []string{"listen"}, Effect: fault.Effect{Kind: fault.Hang}})
	if err != nil {
		t.Fatal(err)
	}
	srv, done := serve(t, WithFaultSet(set))
	select {
	case <-srv.Ready():
		t.Fatal("bound while a hang rule holds the binding")
	case <-time.After(200 * time.Millisecond):
	}
	set.Remove(hold.ID)
	select {
	case <-srv.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not bound 10 s after the hang rule was cleared")
	}
	base := "http://" + srv.Addr()

	held, _ := set.Add(fault.Rule{Layer: fault.UI, Ops: []string{"request"}, Effect: fault.Effect{Kind: fault.Hang}})
	answered := make(chan int, 1)
	go func() { code, _ := get(t, base+"/", ""); answered <- code }()
	time.Sleep(200 * time.Millisecond)
	select {
	case code := <-answered:
		t.Fatalf("a held request was answered %d", code)
	default:
	}
	set.Remove(held.ID)
	select {
	case code := <-answered:
		if code != 200 {
			t.Fatalf("released request: %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request still held after its rule was cleared")
	}

	nine, seven := 9, 7
	called, _ := set.Add(fault.Rule{Layer: fault.UI, Ops: []string{"run"}, Effect: fault.Effect{Kind: fault.Exit, ExitCode: &nine, Latency: fault.Duration(300 * time.Millisecond)}})
	set.Remove(called.ID)
	set.Add(fault.Rule{Layer: fault.UI, Ops: []string{"run"}, Effect: fault.Effect{Kind: fault.Exit, ExitCode: &seven, Latency: fault.Duration(600 * time.Millisecond)}})
	select {
	case err := <-done:
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Code != 7 {
			t.Fatalf("Serve: %v, want the exit rule added while running (code 7), not the cleared one", err)
		}
		done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("an exit rule added while running did not end the server")
	}
}

package uiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/httpx"
	"github.com/jobsim/jobsim/internal/testutil"
)

// running is a server started by start; done receives Serve's result.
type running struct {
	srv  *Server
	base string // http://addr
	done chan error
}

// start runs a server on a free loopback port until the test ends.
func start(t *testing.T, opts ...Option) *running {
	t.Helper()
	srv, done := serve(t, opts...)
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Serve returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("server not ready after 10 s")
	}
	return &running{srv: srv, base: "http://" + srv.Addr(), done: done}
}

// serve runs a server on a free port until the test ends; done gets what
// Serve returns (a test that takes it puts a value back for the cleanup).
func serve(t *testing.T, opts ...Option) (*Server, chan error) {
	t.Helper()
	srv, done, _ := serveUntil(t, opts...)
	return srv, done
}

// serveUntil is serve with stop, which ends the server's context and
// returns what Serve returned, failing the test if Serve has not returned
// 10 s later.
func serveUntil(t *testing.T, opts ...Option) (srv *Server, done chan error, stop func() error) {
	t.Helper()
	srv, err := New(append([]Option{WithAddr("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stop = func() error {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			done <- err
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return 10 s after its context ended")
			return nil
		}
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return 10 s after its context ended")
		}
	})
	return srv, done, stop
}

// get fetches url with an optional Authorization token and decodes a JSON
// body into a map.
func get(t *testing.T, url, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func TestServeAnswersUnderPrefix(t *testing.T) {
	r := start(t, WithPrefix("/user/alice"), WithUser("alice", ""), WithVersion("6.4.12"))
	if got := r.srv.Prefix(); got != "/user/alice/" {
		t.Fatalf("prefix %q, want /user/alice/ (trailing slash added)", got)
	}
	cases := []struct {
		path string
		want int
	}{
		{"/user/alice/", 200},
		{"/user/alice/api", 200},
		{"/user/alice", 301},
		{"/user/alice/api/status", 403}, // no token
		{"/user/alice/nothing", 404},
		{"/user/bob/", 404},
		{"/", 404},
	}
	for _, c := range cases {
		if got, body := get(t, r.base+c.path, ""); got != c.want {
			t.Errorf("GET %s: %d %v, want %d", c.path, got, body, c.want)
		}
	}
	if _, body := get(t, r.base+"/user/alice/api", ""); body["version"] != "6.4.12" {
		t.Errorf("GET api: %v, want version 6.4.12", body)
	}
}

func TestShutdownOnContextEnd(t *testing.T) {
	srv, _, stop := serveUntil(t)
	<-srv.Ready()
	addr := srv.Addr()
	if err := stop(); err != nil {
		t.Fatalf("Serve after cancel: %v, want nil", err)
	}
	if !refused(addr) {
		t.Errorf("%s still accepts connections after shutdown", addr)
	}
}

func TestFromEnv(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec.jsonl")
	env := map[string]string{
		EnvServiceURL:   "http://127.0.0.1:45678/user/alice/",
		EnvAPIURL:       "http://127.0.0.1:8081/hub/api/",
		EnvAPIToken:     "server-token",
		EnvActivityURL:  "http://127.0.0.1:8081/hub/api/users/alice/activity",
		EnvUser:         "alice",
		EnvAccessScopes: `["access:servers!server=alice/", "access:servers!user=alice"]`,
		EnvFault:        "slow-start=2s,crash-after=1m,exit-code=4",
		EnvRecord:       rec,
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	srv, err := New(FromEnv(lookup))
	if err != nil {
		t.Fatalf("New(FromEnv): %v", err)
	}
	c := srv.cfg
	if c.addr != "127.0.0.1:45678" || c.prefix != "/user/alice/" {
		t.Errorf("addr %q prefix %q, want 127.0.0.1:45678 and /user/alice/", c.addr, c.prefix)
	}
	if c.apiURL != "http://127.0.0.1:8081/hub/api" || c.apiToken != "server-token" || c.user != "alice" {
		t.Errorf("api %q token %q user %q", c.apiURL, c.apiToken, c.user)
	}
	if len(c.accessScopes) != 2 || c.accessScopes[1] != "access:servers!user=alice" {
		t.Errorf("access scopes %v", c.accessScopes)
	}
	if !reflect.DeepEqual(c.faults, Faults{SlowStart: 2 * time.Second, CrashAfter: time.Minute, ExitCode: 4}) {
		t.Errorf("faults %+v", c.faults)
	}
	if c.recordPath != rec {
		t.Errorf("record path %q", c.recordPath)
	}

	// A later option overrides the environment; a bad value names the variable.
	srv, err = New(FromEnv(lookup), WithPrefix("/other/"))
	if err != nil || srv.cfg.prefix != "/other/" {
		t.Errorf("option after FromEnv: prefix %q err %v, want /other/", srv.cfg.prefix, err)
	}
	env[EnvFault] = "crash-after=soon"
	if _, err := New(FromEnv(lookup)); err == nil || !strings.Contains(err.Error(), EnvFault) || !strings.Contains(err.Error(), "crash-after") {
		t.Errorf("bad fault env: err %v, want one naming %s and crash-after", err, EnvFault)
	}
}

func TestParseFaults(t *testing.T) {
	good := map[string]Faults{
		"":                                  {ExitCode: 1},
		"slow-start=1500ms":                 {SlowStart: 1500 * time.Millisecond, ExitCode: 1},
		"never-ready=http":                  {NeverReady: NeverReadyHTTP, ExitCode: 1},
		" never-ready = nobind ":            {NeverReady: NeverReadyNoBind, ExitCode: 1},
		"crash-after=3s,exit-code=7":        {CrashAfter: 3 * time.Second, ExitCode: 7},
		"http-error=502,http-error-after=1": {HTTPError: 502, HTTPErrorAfter: 1, ExitCode: 1},
	}
	for spec, want := range good {
		got, err := ParseFaults(spec)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseFaults(%q) = %+v, %v; want %+v", spec, got, err, want)
			continue
		}
		back, err := ParseFaults(got.String())
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("round trip of %q via %q: %+v, %v", spec, got.String(), back, err)
		}
	}
	bad := map[string]string{
		"slow-start=fast":              "slow-start",
		"never-ready=yes":              "never-ready",
		"crash-after=-1s":              "negative",
		"exit-code=300,crash-after=1s": "exit-code",
		"http-error=404":               "5xx",
		"explode=1":                    "unknown key",
		"slow-start":                   "key=value",
		"exit-code=1,exit-code=2":      "twice",
	}
	for spec, want := range bad {
		if _, err := ParseFaults(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFaults(%q) error %v, want one mentioning %q", spec, err, want)
		}
	}
}

func TestNeverReadyHTTPAnswers503(t *testing.T) {
	r := start(t, WithPrefix("/user/alice/"), WithFaults(Faults{NeverReady: NeverReadyHTTP}))
	for _, p := range []string{"/user/alice/", "/user/alice/api"} {
		if got, _ := get(t, r.base+p, ""); got != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %d, want 503", p, got)
		}
	}
}

// TestNeverReadyNoBindNeverListens: connecting is refused while the
// server does not bind, yet the port the hub chose stays this server's
// (another server asking the kernel for a free port, or binding it
// outright, does not get it); once the server gives up, the port is free
// again. Without the reservation a hub elsewhere on the machine could be
// handed the port during a delay and its server would pass this one's
// readiness check.
func TestNeverReadyNoBindNeverListens(t *testing.T) {
	addr := freeAddr(t)
	srv, _, stop := serveUntil(t, WithAddr(addr), WithFaults(Faults{NeverReady: NeverReadyNoBind}))
	select {
	case <-srv.Ready():
		t.Fatal("a nobind server became ready")
	case <-time.After(300 * time.Millisecond):
	}
	if !refused(addr) {
		t.Errorf("%s accepts connections, want refused", addr)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Errorf("another server could listen on %s during the delay", addr)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v, want nil after cancel", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("after the server gave up, %s is still taken: %v", addr, err)
	}
	ln.Close()
}

func TestSlowStartDelaysBinding(t *testing.T) {
	const delay = 400 * time.Millisecond
	addr := freeAddr(t)
	begin := time.Now()
	r := start(t, WithAddr(addr), WithFaults(Faults{SlowStart: delay}))
	if waited := time.Since(begin); waited < delay {
		t.Errorf("ready after %v, want at least the slow start %v", waited, delay)
	}
	if got, _ := get(t, r.base+"/", ""); got != 200 {
		t.Errorf("GET / after slow start: %d, want 200", got)
	}
}

func TestSlowStartStopsOnCancel(t *testing.T) {
	_, _, stop := serveUntil(t, WithFaults(Faults{SlowStart: time.Hour}))
	time.Sleep(50 * time.Millisecond)
	if err := stop(); err != nil {
		t.Errorf("Serve: %v, want nil", err)
	}
}

func TestCrashAfterReturnsExitError(t *testing.T) {
	r := start(t, WithFaults(Faults{CrashAfter: 200 * time.Millisecond, ExitCode: 3}))
	addr := r.srv.Addr()
	if got, _ := get(t, r.base+"/", ""); got != 200 {
		t.Fatalf("GET / before crash: %d", got)
	}
	select {
	case err := <-r.done:
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Code != 3 {
			t.Fatalf("Serve: %v, want *ExitError with code 3", err)
		}
		r.done <- nil // let the cleanup see Serve as finished
	case <-time.After(10 * time.Second):
		t.Fatal("no crash 10 s after a 200 ms crash fault")
	}
	if !refused(addr) {
		t.Errorf("%s accepts connections after the crash", addr)
	}
}

func TestHTTPErrorAfterFirstRequests(t *testing.T) {
	r := start(t, WithFaults(Faults{HTTPError: 502, HTTPErrorAfter: 1}))
	if got, _ := get(t, r.base+"/", ""); got != 200 {
		t.Errorf("first request: %d, want 200", got)
	}
	for i := 0; i < 2; i++ {
		if got, body := get(t, r.base+"/api", ""); got != 502 {
			t.Errorf("request %d: %d %v, want 502", i+2, got, body)
		}
	}
}

// hubDouble answers GET /hub/api/user like a hub for a fixed token table,
// and records activity posts. It stands in for the hub in unit tests only;
// the scenarios/hub tests run the same checks against a real JupyterHub.
type hubDouble struct {
	mu       sync.Mutex
	ids      map[string]Identity
	activity []string // "token body"
	broken   bool
}

func (h *hubDouble) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tok, _ := requestToken(r)
	switch {
	case h.broken:
		http.Error(w, "hub exploded", 500)
	case r.Method == http.MethodGet && r.URL.Path == "/hub/api/user":
		id, ok := h.ids[tok]
		if !ok {
			http.Error(w, `{"status": 403}`, http.StatusForbidden)
			return
		}
		httpx.WriteJSON(w, 200, id)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/activity"):
		body, _ := io.ReadAll(r.Body)
		h.activity = append(h.activity, tok+" "+string(body))
		w.WriteHeader(204)
	default:
		http.NotFound(w, r)
	}
}

func TestTokensCheckedWithTheHub(t *testing.T) {
	hub := &hubDouble{ids: map[string]Identity{
		"tok-bob":   {Kind: "user", Name: "bob", Scopes: []string{"access:servers!user=bob", "read:users!user=bob"}},
		"tok-alice": {Kind: "user", Name: "alice", Scopes: []string{"access:servers!user=bob", "access:servers!server=alice/"}},
		"tok-carol": {Kind: "user", Name: "carol", Scopes: []string{"access:servers!user=carol"}},
		"tok-admin": {Kind: "service", Name: "driver", Scopes: []string{"access:servers"}},
	}}
	hubSrv := httptest.NewServer(hub)
	defer hubSrv.Close()
	recPath := filepath.Join(t.TempDir(), "requests.jsonl")
	r := start(t, WithPrefix("/user/bob/"), WithUser("bob", ""), WithHubAPI(hubSrv.URL+"/hub/api", "srv-token"), WithRecordFile(recPath))

	cases := []struct {
		token string
		want  int
	}{
		{"tok-bob", 200},   // owner
		{"tok-alice", 200}, // granted access:servers!user=bob
		{"tok-admin", 200}, // unfiltered scope
		{"tok-carol", 403}, // someone else's scope only
		{"tok-nobody", 403},
		{"", 403},
	}
	for _, c := range cases {
		if got, body := get(t, r.base+"/user/bob/api/status", c.token); got != c.want {
			t.Errorf("token %q: %d %v, want %d", c.token, got, body, c.want)
		}
	}
	if got, body := get(t, r.base+"/user/bob/api/me?token=tok-alice", ""); got != 200 || body["identity"].(map[string]any)["username"] != "alice" {
		t.Errorf("?token= alice on api/me: %d %v, want 200 naming alice", got, body)
	}
	hub.mu.Lock()
	hub.broken = true
	hub.mu.Unlock()
	if got, _ := get(t, r.base+"/user/bob/api/status", "tok-bob"); got != http.StatusBadGateway {
		t.Errorf("hub answering 500: %d, want 502", got)
	}

	// The record file has one line per request, with caller and token.
	f, err := os.Open(recPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("record line %q: %v", sc.Text(), err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != len(cases)+2 {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(cases)+2, recs)
	}
	if rc := recs[1]; rc.Caller != "alice" || rc.Token != "tok-alice" || rc.TokenSource != TokenFromHeader || rc.Status != 200 || rc.Path != "/user/bob/api/status" {
		t.Errorf("record of alice's header request: %+v", rc)
	}
	if rc := recs[3]; rc.Caller != "carol" || rc.Status != 403 {
		t.Errorf("record of carol's request: %+v", rc)
	}
	if rc := recs[len(cases)]; rc.TokenSource != TokenFromQuery || rc.Caller != "alice" {
		t.Errorf("record of the ?token= request: %+v", rc)
	}
}

func TestActivityReported(t *testing.T) {
	hub := &hubDouble{}
	hubSrv := httptest.NewServer(hub)
	defer hubSrv.Close()
	start(t, WithUser("alice", ""), WithHubAPI(hubSrv.URL+"/hub/api", "srv-token"),
		WithActivity(hubSrv.URL+"/hub/api/users/alice/activity", 0))
	deadline := time.Now().Add(10 * time.Second)
	for {
		hub.mu.Lock()
		got := append([]string(nil), hub.activity...)
		hub.mu.Unlock()
		if len(got) > 0 {
			tok, body, _ := strings.Cut(got[0], " ")
			var m struct {
				LastActivity string                       `json:"last_activity"`
				Servers      map[string]map[string]string `json:"servers"`
			}
			if tok != "srv-token" || json.Unmarshal([]byte(body), &m) != nil || m.LastActivity == "" || m.Servers[""]["last_activity"] == "" {
				t.Errorf("activity post: token %q body %s", tok, body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no activity post within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScopesGrant(t *testing.T) {
	req := []string{"access:servers!server=bob/", "access:servers!user=bob"}
	cases := []struct {
		held []string
		want bool
	}{
		{[]string{"access:servers!user=bob"}, true},
		{[]string{"access:servers!server=bob/"}, true},
		{[]string{"access:servers"}, true},
		{[]string{"access:servers!user=bobby"}, false},
		{[]string{"access:servers!user=carol", "read:users!user=bob"}, false},
		{[]string{"access:servers!group=team"}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := ScopesGrant(req, c.held); got != c.want {
			t.Errorf("ScopesGrant(%v, %v) = %v, want %v", req, c.held, got, c.want)
		}
	}
	// A user filter grants that user's named servers too.
	if !ScopesGrant([]string{"access:servers!server=bob/lab"}, []string{"access:servers!user=bob"}) {
		t.Error("user filter does not grant the user's named server")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"addr":    WithAddr("no-port"),
		"url":     WithServiceURL("https://127.0.0.1:1/user/x/"),
		"faults":  WithFaults(Faults{HTTPError: 200}),
		"activty": WithActivity("http://x", -time.Second),
	} {
		if _, err := New(opt); err == nil || !strings.Contains(err.Error(), "option 1") {
			t.Errorf("%s: New error %v, want one naming the option", name, err)
		}
	}
}

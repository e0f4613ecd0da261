package httpx

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type thing struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// decodeServer answers 200 with the decoded thing, or the error.
func decodeServer(t *testing.T, limit int64) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(Bearer("tok", "test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v thing
		if ReadJSON(w, r, limit, "thing", &v) {
			WriteJSON(w, http.StatusOK, v)
		}
	})))
	t.Cleanup(ts.Close)
	return ts
}

func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDecodeIsStrict(t *testing.T) {
	ts := decodeServer(t, 1024)
	for body, want := range map[string]int{
		`{"name":"a","count":2}`:    200,
		"  {\"name\":\"a\"}\n\n":    200,
		`{"name":"a"} {"name":"b"}`: 400, // a second object
		`{"name":"a"}x`:             400, // trailing data
		`{"name":"a"}]`:             400,
		`{"name":"a","extra":1}`:    400, // unknown field
		`{"name":"a"`:               400, // cut short
		``:                          400,
		`{"count":"many"}`:          400,
		`{"name":"` + strings.Repeat("x", 2000) + `"}`: 413,
	} {
		code, got := post(t, ts.URL, "tok", body)
		if code != want {
			t.Errorf("body %.40q: status %d (%s), want %d", body, code, got, want)
			continue
		}
		if code != 200 {
			var e Error
			if err := json.Unmarshal([]byte(got), &e); err != nil || !strings.HasPrefix(e.Error, "thing: ") {
				t.Errorf("body %.40q: error body %q is not {\"error\": \"thing: ...\"}", body, got)
			}
		}
	}
}

// A body far over the limit is refused without being read to its end or
// kept, and the answer does not echo it.
func TestOversizedBodyRefused(t *testing.T) {
	ts := decodeServer(t, 1<<10)
	code, got := post(t, ts.URL, "tok", `{"name":"`+strings.Repeat("y", 8<<20)+`"}`)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", code)
	}
	if len(got) > MaxErrorLen+64 || strings.Contains(got, "yyyy") {
		t.Fatalf("answer echoes the body: %.200s", got)
	}
}

func TestBearer(t *testing.T) {
	ts := decodeServer(t, 1024)
	for _, tok := range []string{"", "wrong", "tok2", "to"} {
		code, got := post(t, ts.URL, tok, `{}`)
		if code != http.StatusUnauthorized || !strings.Contains(got, "bearer token") {
			t.Errorf("token %q: %d %s", tok, code, got)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Basic dG9rOg==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="test"` {
		t.Errorf("basic auth: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// An empty configured token lets nobody in.
	h := Bearer("", "x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer ")
	h.ServeHTTP(rec, r)
	if rec.Code != 401 {
		t.Errorf("empty token let a request in: %d", rec.Code)
	}
}

func TestQuoteAndTruncate(t *testing.T) {
	if got := Quote("abc"); got != `"abc"` {
		t.Errorf("Quote short: %s", got)
	}
	long := strings.Repeat("é", 100)
	q := Quote(long)
	if len(q) > 100 || !strings.HasSuffix(q, "... (200 bytes)") {
		t.Errorf("Quote long: %s", q)
	}
	tr := Truncate(strings.Repeat("a", 1000), 100)
	if len(tr) > 100 || !strings.HasSuffix(tr, "(1000 bytes)") {
		t.Errorf("Truncate: %s", tr)
	}
}

package huboauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fakeHub answers the two API calls a client makes: the token exchange
// (one code, for one client and secret) and GET /user.
func fakeHub(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hub/api/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		f := r.PostForm
		if f.Get("code") != "the-code" || f.Get("client_id") != "service-x" || f.Get("client_secret") != "secret" ||
			f.Get("redirect_uri") != "/services/x/oauth_callback" || f.Get("grant_type") != "authorization_code" {
			http.Error(w, "bad exchange "+f.Encode(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"access_token": "alice-token", "token_type": "Bearer"})
	})
	mux.HandleFunc("GET /hub/api/user", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "token alice-token" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		json.NewEncoder(w).Encode(Identity{Kind: "user", Name: "alice", Scopes: []string{"access:services!service=x"}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestLoginRoundTrip(t *testing.T) {
	hub := fakeHub(t)
	env := map[string]string{
		EnvAPIURL: hub.URL + "/hub/api/", EnvAPIToken: "secret", EnvClientID: "service-x",
		EnvPrefix: "/services/x/", EnvBaseURL: "/",
	}
	cfg, ok, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if cfg.CallbackURL != "/services/x/oauth_callback" || cfg.AuthorizeURL != "/hub/api/oauth2/authorize" {
		t.Fatalf("config %+v", cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}

	// No session: sent to the hub with a state.
	r := httptest.NewRequest("GET", "/services/x/?page=2", nil)
	if id, err := c.User(r); id != nil || err != nil {
		t.Fatalf("User without a session: %v %v", id, err)
	}
	w := httptest.NewRecorder()
	c.Login(w, r)
	loc, _ := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusFound || loc.Path != "/hub/api/oauth2/authorize" || loc.Query().Get("client_id") != "service-x" ||
		loc.Query().Get("redirect_uri") != "/services/x/oauth_callback" || loc.Query().Get("state") == "" {
		t.Fatalf("login redirect %d %s", w.Code, loc)
	}
	state := loc.Query().Get("state")

	// A callback with a state the client never issued is refused.
	w = httptest.NewRecorder()
	c.Callback(w, httptest.NewRequest("GET", "/services/x/oauth_callback?code=the-code&state=forged", nil))
	if w.Code != http.StatusBadRequest {
		t.Errorf("forged state: %d", w.Code)
	}
	// The hub's refusal is passed on.
	w = httptest.NewRecorder()
	c.Callback(w, httptest.NewRequest("GET", "/services/x/oauth_callback?error=access_denied&state="+state, nil))
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "access_denied") {
		t.Errorf("hub error: %d %s", w.Code, w.Body)
	}

	// The real callback: a session cookie, then back where it was going.
	w = httptest.NewRecorder()
	c.Callback(w, httptest.NewRequest("GET", "/services/x/oauth_callback?code=the-code&state="+state, nil))
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/services/x/?page=2" {
		t.Fatalf("callback: %d %s %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != "service-x" || cookies[0].Path != "/services/x/" || !cookies[0].HttpOnly || cookies[0].Value == "alice-token" {
		t.Fatalf("session cookie %+v", cookies)
	}
	// The state is used up.
	w2 := httptest.NewRecorder()
	c.Callback(w2, httptest.NewRequest("GET", "/services/x/oauth_callback?code=the-code&state="+state, nil))
	if w2.Code != http.StatusBadRequest {
		t.Errorf("replayed state: %d", w2.Code)
	}

	r = httptest.NewRequest("GET", "/services/x/", nil)
	r.AddCookie(cookies[0])
	id, err := c.User(r)
	if err != nil || id == nil || id.Name != "alice" || id.Kind != "user" {
		t.Fatalf("User with the session: %+v %v", id, err)
	}
}

func TestConfigFromEnvMissing(t *testing.T) {
	_, ok, err := ConfigFromEnv(func(k string) (string, bool) {
		if k == EnvClientID {
			return "service-x", true
		}
		return "", false
	})
	if !ok || err == nil || !strings.Contains(err.Error(), EnvAPIURL) || !strings.Contains(err.Error(), EnvAPIToken) {
		t.Errorf("ConfigFromEnv with only a client id: %v %v", ok, err)
	}
	if _, ok, err := ConfigFromEnv(func(string) (string, bool) { return "", false }); ok || err != nil {
		t.Errorf("ConfigFromEnv without a client: %v %v", ok, err)
	}
}

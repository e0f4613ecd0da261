package authzservice

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHubAPI holds users and groups the way the hub's REST API shows
// them, and records the changes asked of it.
type fakeHubAPI struct {
	mu     sync.Mutex
	users  []string
	groups map[string]*group
	token  string
}

func (f *fakeHubAPI) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "token "+f.token {
				http.Error(w, `{"message": "forbidden"}`, http.StatusForbidden)
				return
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			h(w, r)
		}
	}
	mux.HandleFunc("GET /hub/api/users", auth(func(w http.ResponseWriter, r *http.Request) {
		var out []map[string]any
		for _, u := range f.users {
			out = append(out, map[string]any{"name": u, "servers": map[string]any{}})
		}
		json.NewEncoder(w).Encode(out)
	}))
	mux.HandleFunc("GET /hub/api/groups", auth(func(w http.ResponseWriter, r *http.Request) {
		out := []*group{}
		for _, g := range f.groups {
			out = append(out, g)
		}
		json.NewEncoder(w).Encode(out)
	}))
	mux.HandleFunc("POST /hub/api/groups/{name}", auth(func(w http.ResponseWriter, r *http.Request) {
		g := &group{Name: r.PathValue("name"), Users: []string{}, Roles: []string{}}
		f.groups[g.Name] = g
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(g)
	}))
	members := func(add bool) http.HandlerFunc {
		return auth(func(w http.ResponseWriter, r *http.Request) {
			g := f.groups[r.PathValue("name")]
			var body struct{ Users []string }
			if g == nil || json.NewDecoder(r.Body).Decode(&body) != nil {
				http.Error(w, "bad", http.StatusBadRequest)
				return
			}
			for _, u := range body.Users {
				if !slices.Contains(f.users, u) {
					http.Error(w, "no such user "+u, http.StatusBadRequest)
					return
				}
				g.Users = slices.DeleteFunc(g.Users, func(x string) bool { return x == u })
				if add {
					g.Users = append(g.Users, u)
				}
			}
			json.NewEncoder(w).Encode(g)
		})
	}
	mux.HandleFunc("POST /hub/api/groups/{name}/users", members(true))
	mux.HandleFunc("DELETE /hub/api/groups/{name}/users", members(false))
	return mux
}

func TestSyncGroups(t *testing.T) {
	api := &fakeHubAPI{
		users: []string{"alice", "bob", "carol"},
		token: "service-token",
		groups: map[string]*group{
			// bob's group has its role; carol's holds a member the file drops.
			"viewers-of-bob":   {Name: "viewers-of-bob", Users: []string{}, Roles: []string{"viewers-of-bob"}},
			"viewers-of-carol": {Name: "viewers-of-carol", Users: []string{"bob"}, Roles: []string{"viewers-of-carol"}},
			"unrelated":        {Name: "unrelated", Users: []string{"alice"}},
		},
	}
	srv := httptest.NewServer(api.handler(t))
	defer srv.Close()
	site := filepath.Join(t.TempDir(), "authz.yaml")
	if err := os.WriteFile(site, []byte("may_view:\n  alice: [bob]\n  carol: [alice, zed]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(WithConfigFile(site), WithHubAPI(srv.URL+"/hub/api", "service-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"viewers-of-bob": {"alice"}, "viewers-of-alice": {"carol"}, "viewers-of-carol": {}}
	for g, w := range want {
		if got := api.groups[g]; got == nil || !slices.Equal(got.Users, w) {
			t.Errorf("hub group %s: %+v, want members %v", g, got, w)
		}
		if !slices.Equal(rep.Groups[g], w) {
			t.Errorf("report group %s: %v, want %v", g, rep.Groups[g], w)
		}
	}
	if !slices.Equal(api.groups["unrelated"].Users, []string{"alice"}) {
		t.Errorf("a group not the service's changed: %+v", api.groups["unrelated"])
	}
	if !slices.Equal(rep.Removed["viewers-of-carol"], []string{"bob"}) {
		t.Errorf("removed: %v", rep.Removed)
	}
	joined := strings.Join(rep.Warnings, "\n")
	if !strings.Contains(joined, "not users of the hub (ignored): zed") {
		t.Errorf("warnings %q lack the unknown user", joined)
	}
	// viewers-of-alice was created by the service and no role uses it.
	if !strings.Contains(joined, "group viewers-of-alice carries no role viewers-of-alice") {
		t.Errorf("warnings %q lack the group without a role", joined)
	}

	// A wrong token: the hub's refusal is the error.
	bad, err := New(WithConfigFile(site), WithHubAPI(srv.URL+"/hub/api", "wrong"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Sync(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("sync with a wrong token: %v", err)
	}

	// The handler: reload only with the service token.
	h := s.Handler()
	for _, c := range []struct {
		auth string
		want int
	}{{"", 403}, {"token wrong", 403}, {"token service-token", 200}} {
		r := httptest.NewRequest("POST", "/reload", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("POST /reload with %q: %d %s, want %d", c.auth, w.Code, w.Body, c.want)
		}
	}
	// Without an OAuth client the list says what is missing.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "JUPYTERHUB_CLIENT_ID") {
		t.Errorf("GET / without OAuth: %d %s", w.Code, w.Body)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(WithHubAPI("http://x/hub/api", "t")); err == nil || !strings.Contains(err.Error(), "no site file") {
		t.Errorf("no file: %v", err)
	}
	site := filepath.Join(t.TempDir(), "authz.yaml")
	if _, err := New(WithConfigFile(site)); err == nil || !strings.Contains(err.Error(), "no hub API") {
		t.Errorf("no API: %v", err)
	}
	if _, err := New(WithConfigFile(site), WithHubAPI("http://x/hub/api", "t")); err == nil || !strings.Contains(err.Error(), site) {
		t.Errorf("missing file: %v", err)
	}
}

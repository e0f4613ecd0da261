package authzservice

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jobsim/jobsim/internal/httpx"
	"github.com/jobsim/jobsim/internal/huboauth"
)

// The environment a hub gives a managed service, besides huboauth's.
const (
	EnvServiceURL  = "JUPYTERHUB_SERVICE_URL"
	EnvServiceName = "JUPYTERHUB_SERVICE_NAME"
	// EnvConfig names the site file when no --config is given.
	EnvConfig = "JOBSIM_AUTHZ_CONFIG"
)

// Option configures New.
type Option func(*config) error

type config struct {
	file     string
	addr     string
	prefix   string
	apiURL   string
	token    string
	oauth    *huboauth.Config
	logger   *slog.Logger
	hc       *http.Client
	syncWait time.Duration
}

// WithConfigFile names the site file (required).
func WithConfigFile(path string) Option {
	return func(c *config) error { c.file = path; return nil }
}

// WithAddr sets the address to listen on (default: from
// JUPYTERHUB_SERVICE_URL).
func WithAddr(addr string) Option { return func(c *config) error { c.addr = addr; return nil } }

// WithHubAPI sets the hub API URL (…/hub/api) and the service's token.
func WithHubAPI(apiURL, token string) Option {
	return func(c *config) error {
		c.apiURL, c.token = strings.TrimRight(apiURL, "/"), token
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.logger = l; return nil } }

// WithInitialSyncWait bounds how long Serve retries the first sync while
// the hub is still starting (default 60 s).
func WithInitialSyncWait(d time.Duration) Option {
	return func(c *config) error { c.syncWait = d; return nil }
}

// FromEnv reads what the hub gives a managed service: the address and
// prefix (JUPYTERHUB_SERVICE_URL, _PREFIX), the API and token, the OAuth
// client, and the site file from JOBSIM_AUTHZ_CONFIG.
func FromEnv(lookup func(string) (string, bool)) Option {
	return func(c *config) error {
		get := func(k string) string { v, _ := lookup(k); return v }
		if v := get(EnvServiceURL); v != "" {
			u, err := url.Parse(v)
			if err != nil || u.Host == "" {
				return fmt.Errorf("%s=%q: want http://host:port/prefix/", EnvServiceURL, v)
			}
			c.addr = u.Host
			if c.prefix == "" {
				c.prefix = u.Path
			}
		}
		if v := get(huboauth.EnvPrefix); v != "" {
			c.prefix = v
		}
		if v := get(huboauth.EnvAPIURL); v != "" {
			c.apiURL = strings.TrimRight(v, "/")
		}
		if v := get(huboauth.EnvAPIToken); v != "" {
			c.token = v
		}
		if v := get(EnvConfig); v != "" && c.file == "" {
			c.file = v
		}
		oc, ok, err := huboauth.ConfigFromEnv(lookup)
		if err != nil {
			return err
		}
		if ok {
			c.oauth = &oc
		}
		return nil
	}
}

// Service is one running authorization service.
type Service struct {
	cfg   config
	log   *slog.Logger
	oauth *huboauth.Client

	mu     sync.Mutex
	grants Grants
	last   Report
}

// Report is what a sync did: the hub's users, each group's members as
// now set, what changed, and warnings (names the hub does not know, a
// group no role grants anything to).
type Report struct {
	Time     time.Time           `json:"time"`
	Users    []string            `json:"users"`
	Groups   map[string][]string `json:"groups"`
	Added    map[string][]string `json:"added,omitempty"`
	Removed  map[string][]string `json:"removed,omitempty"`
	Warnings []string            `json:"warnings,omitempty"`
}

// New checks the configuration and reads the site file (a bad file is an
// error here, before anything starts).
func New(opts ...Option) (*Service, error) {
	c := config{syncWait: time.Minute}
	for i, o := range opts {
		if err := o(&c); err != nil {
			return nil, fmt.Errorf("authzservice: option %d: %w", i+1, err)
		}
	}
	switch {
	case c.file == "":
		return nil, fmt.Errorf("authzservice: no site file: give --config or set %s", EnvConfig)
	case c.apiURL == "" || c.token == "":
		return nil, fmt.Errorf("authzservice: no hub API (%s and %s; the hub sets them for a managed service)", huboauth.EnvAPIURL, huboauth.EnvAPIToken)
	}
	if c.prefix == "" {
		c.prefix = "/"
	}
	if !strings.HasSuffix(c.prefix, "/") {
		c.prefix += "/"
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 10 * time.Second}
	}
	g, err := LoadFile(c.file)
	if err != nil {
		return nil, fmt.Errorf("authzservice: %w", err)
	}
	s := &Service{cfg: c, log: c.logger, grants: g}
	if c.oauth != nil {
		if s.oauth, err = huboauth.New(*c.oauth, c.hc); err != nil {
			return nil, fmt.Errorf("authzservice: %w", err)
		}
	}
	return s, nil
}

// Grants are the grants in force.
func (s *Service) Grants() Grants {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants
}

// LastReport is the report of the last sync.
func (s *Service) LastReport() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Reload reads the site file again and syncs the hub's groups to it. A
// file that does not parse leaves the grants in force unchanged.
func (s *Service) Reload(ctx context.Context) (Report, error) {
	g, err := LoadFile(s.cfg.file)
	if err != nil {
		return Report{}, err
	}
	s.mu.Lock()
	s.grants = g
	s.mu.Unlock()
	return s.Sync(ctx)
}

// Sync makes each viewers-of-<owner> group of the hub hold exactly the
// viewers the grants name, creating the groups it needs and emptying
// those no grant names any more.
func (s *Service) Sync(ctx context.Context) (Report, error) {
	g := s.Grants()
	var users []struct {
		Name string `json:"name"`
	}
	if err := s.api(ctx, http.MethodGet, "/users", nil, &users); err != nil {
		return Report{}, fmt.Errorf("list the hub's users: %w", err)
	}
	rep := Report{Time: time.Now().UTC(), Groups: map[string][]string{}, Added: map[string][]string{}, Removed: map[string][]string{}}
	for _, u := range users {
		rep.Users = append(rep.Users, u.Name)
	}
	if unk := g.Unknown(rep.Users); len(unk) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("not users of the hub (ignored): %s", strings.Join(unk, ", ")))
	}
	var groups []group
	if err := s.api(ctx, http.MethodGet, "/groups", nil, &groups); err != nil {
		return Report{}, fmt.Errorf("list the hub's groups: %w", err)
	}
	existing := map[string]group{}
	for _, gr := range groups {
		if strings.HasPrefix(gr.Name, GroupPrefix) {
			existing[gr.Name] = gr
		}
	}
	for _, owner := range rep.Users {
		name := Group(owner)
		want := g.Viewers(owner, rep.Users)
		gr, ok := existing[name]
		if !ok && len(want) == 0 {
			continue
		}
		if !ok {
			if err := s.api(ctx, http.MethodPost, "/groups/"+url.PathEscape(name), nil, &gr); err != nil {
				return rep, fmt.Errorf("create group %s: %w", name, err)
			}
		}
		delete(existing, name)
		if err := s.setMembers(ctx, gr, want, &rep); err != nil {
			return rep, err
		}
	}
	// Groups of owners the hub no longer has: emptied, not deleted (a
	// role may still name them).
	for _, gr := range existing {
		if err := s.setMembers(ctx, gr, nil, &rep); err != nil {
			return rep, err
		}
	}
	s.mu.Lock()
	s.last = rep
	s.mu.Unlock()
	s.log.Info("synced viewer groups", "groups", rep.Groups, "added", rep.Added, "removed", rep.Removed, "warnings", rep.Warnings)
	return rep, nil
}

type group struct {
	Name  string   `json:"name"`
	Users []string `json:"users"`
	Roles []string `json:"roles"`
}

func (s *Service) setMembers(ctx context.Context, gr group, want []string, rep *Report) error {
	var add, remove []string
	for _, u := range want {
		if !slices.Contains(gr.Users, u) {
			add = append(add, u)
		}
	}
	for _, u := range gr.Users {
		if !slices.Contains(want, u) {
			remove = append(remove, u)
		}
	}
	path := "/groups/" + url.PathEscape(gr.Name) + "/users"
	if len(add) > 0 {
		if err := s.api(ctx, http.MethodPost, path, map[string]any{"users": add}, nil); err != nil {
			return fmt.Errorf("add %v to group %s: %w", add, gr.Name, err)
		}
		rep.Added[gr.Name] = add
	}
	if len(remove) > 0 {
		if err := s.api(ctx, http.MethodDelete, path, map[string]any{"users": remove}, nil); err != nil {
			return fmt.Errorf("remove %v from group %s: %w", remove, gr.Name, err)
		}
		rep.Removed[gr.Name] = remove
	}
	rep.Groups[gr.Name] = nonNil(want)
	if len(want) > 0 && !slices.Contains(gr.Roles, gr.Name) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("group %s carries no role %s: its members get no access until the hub's load_roles gives it one (scopes %s)",
			gr.Name, gr.Name, strings.Join(RoleScopes(strings.TrimPrefix(gr.Name, GroupPrefix)), ", ")))
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// APIError is a hub API answer that was not a success.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.Status, httpx.Truncate(e.Body, 200))
}

// api calls the hub API with the service's token.
func (s *Service) api(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.cfg.apiURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+s.cfg.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.cfg.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: reply: %w", method, path, err)
		}
	}
	return nil
}

// Serve listens, syncs the hub (retrying while the hub is still starting)
// and answers until ctx is done; reload receives a value for each reload
// asked from outside (SIGHUP).
func (s *Service) Serve(ctx context.Context, reload <-chan struct{}) error {
	if s.cfg.addr == "" {
		return fmt.Errorf("authzservice: no address to listen on (%s, or --addr)", EnvServiceURL)
	}
	ln, err := net.Listen("tcp", s.cfg.addr)
	if err != nil {
		return fmt.Errorf("authzservice: listen: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String(), "prefix", s.cfg.prefix, "config", s.cfg.file)

	var wg sync.WaitGroup
	bg, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	wg.Go(func() { s.initialSync(bg) })
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		case <-reload:
			if _, err := s.Reload(ctx); err != nil {
				s.log.Error("reload failed: the grants in force stay", "err", err)
			}
		case err := <-served:
			return fmt.Errorf("authzservice: serve: %w", err)
		}
	}
}

func (s *Service) initialSync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.syncWait)
	defer cancel()
	for {
		_, err := s.Sync(ctx)
		if err == nil {
			return
		}
		s.log.Warn("sync with the hub failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			s.log.Error("gave up the first sync with the hub", "err", err)
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Handler answers under the prefix:
//
//	GET  <prefix>                the logged-in user's list (hub OAuth)
//	GET  <prefix>oauth_callback  the hub's OAuth redirect
//	POST <prefix>reload          re-read the site file and sync (service token)
//	GET  <prefix>api/report      the last sync's report (service token)
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	p := s.cfg.prefix
	mux.HandleFunc("GET "+p+"{$}", s.list)
	if s.oauth != nil {
		mux.HandleFunc("GET "+s.oauth.CallbackPath(), s.oauth.Callback)
	}
	mux.HandleFunc("POST "+p+"reload", s.tokenOnly(func(w http.ResponseWriter, r *http.Request) {
		rep, err := s.Reload(r.Context())
		if err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "reload: %v", err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, rep)
	}))
	mux.HandleFunc("GET "+p+"api/report", s.tokenOnly(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, s.LastReport())
	}))
	return mux
}

// tokenOnly admits requests carrying the service's own API token.
func (s *Service) tokenOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "token ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.token)) != 1 {
			httpx.WriteError(w, http.StatusForbidden, "needs the service's API token (Authorization: token ...)")
			return
		}
		next(w, r)
	}
}

// Entry is one server the list offers.
type Entry struct {
	User    string
	URL     string
	Running bool
}

var listPage = template.Must(template.New("list").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Servers you may open</title></head>
<body>
<h1>Servers you may open</h1>
<p id="viewer">Signed in as <b>{{.Viewer}}</b> (your own: <a href="{{.Own}}">{{.Own}}</a>).</p>
{{if .Entries}}<ul id="viewable">
{{range .Entries}}<li data-user="{{.User}}"><a href="{{.URL}}">{{.User}}</a> {{if .Running}}<span class="running">running</span>{{else}}<span class="stopped">not running</span>{{end}}</li>
{{end}}</ul>{{else}}<p id="none">The site has not granted you a view of anyone's server.</p>{{end}}
</body></html>
`))

// list serves the logged-in user's list of servers they may open.
func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	if s.oauth == nil {
		httpx.WriteError(w, http.StatusServiceUnavailable, "no hub OAuth client (%s): run the service under the hub", huboauth.EnvClientID)
		return
	}
	id, err := s.oauth.User(r)
	if err != nil {
		httpx.WriteError(w, http.StatusBadGateway, "ask the hub who you are: %v", err)
		return
	}
	if id == nil {
		s.oauth.Login(w, r)
		return
	}
	if id.Kind != "user" {
		httpx.WriteError(w, http.StatusForbidden, "%s %s is not a user", id.Kind, id.Name)
		return
	}
	entries, err := s.Entries(r.Context(), id.Name)
	if err != nil {
		httpx.WriteError(w, http.StatusBadGateway, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err = listPage.Execute(w, map[string]any{"Viewer": id.Name, "Own": userURL(id.Name), "Entries": entries})
	if err != nil {
		s.log.Warn("render list", "err", err)
	}
}

// Entries lists the servers viewer may open: the hub's users the grants
// name, each with whether its default server is running now.
func (s *Service) Entries(ctx context.Context, viewer string) ([]Entry, error) {
	var users []struct {
		Name    string `json:"name"`
		Servers map[string]struct {
			Ready bool `json:"ready"`
		} `json:"servers"`
	}
	if err := s.api(ctx, http.MethodGet, "/users", nil, &users); err != nil {
		return nil, fmt.Errorf("list the hub's users: %w", err)
	}
	names := make([]string, 0, len(users))
	running := map[string]bool{}
	for _, u := range users {
		names = append(names, u.Name)
		running[u.Name] = u.Servers[""].Ready
	}
	var out []Entry
	for _, u := range s.Grants().Viewable(viewer, names) {
		out = append(out, Entry{User: u, URL: userURL(u), Running: running[u]})
	}
	return out, nil
}

func userURL(name string) string { return "/user/" + url.PathEscape(name) + "/" }

package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to a JupyterHub's REST API (under /hub/api) and, through the
// hub's proxy, to users' servers (under /user/<name>/), with one token.
// Derive a client for another token with WithToken.
type Client struct {
	base  string // public URL without trailing slash
	token string
	hc    *http.Client
	poll  time.Duration
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: one that does not follow
// redirects, so a 302 from the hub stays visible).
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// WithPollInterval sets how often WaitReady and WaitStopped ask the hub
// (default 100 ms).
func WithPollInterval(d time.Duration) ClientOption { return func(c *Client) { c.poll = d } }

// NewClient returns a client for the hub whose public URL is baseURL (for
// example "http://127.0.0.1:8000"), authenticating with token.
func NewClient(baseURL, token string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub: URL %q: want http(s)://host:port", baseURL)
	}
	c := &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		hc: &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		poll: 100 * time.Millisecond,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// WithToken returns a client sharing this one's connections that
// authenticates with token instead (for example a user's own token, to
// check what that user may see).
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.token = token
	return &d
}

// URL is the hub's public URL.
func (c *Client) URL() string { return c.base }

// APIError is a reply from the hub API outside the 2xx range.
type APIError struct {
	Method string
	Path   string // under /hub/api
	Status int
	// Message is the hub's explanation ("bob is already running").
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("hub API %s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

// IsStatus reports whether err is (or wraps) an APIError with status code.
func IsStatus(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == code
}

// do sends an API request; a body value is sent as JSON. It returns the
// response (body read into raw) or an *APIError for non-2xx replies.
func (c *Client) do(ctx context.Context, method, path string, in any) (status int, raw []byte, err error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, fmt.Errorf("hub API %s %s: encode body: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/hub/api"+path, body)
	if err != nil {
		return 0, nil, fmt.Errorf("hub API %s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "token "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("hub API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("hub API %s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &m) == nil {
			ae.Message = m.Message
		} else {
			ae.Message = strings.TrimSpace(string(raw))
			if len(ae.Message) > 300 {
				ae.Message = ae.Message[:300] + "..."
			}
		}
		return resp.StatusCode, raw, ae
	}
	return resp.StatusCode, raw, nil
}

// Request sends any API request (path under /hub/api, body sent as JSON
// when not nil) and returns the status and body. A non-2xx reply comes
// with an *APIError as well as its status; status 0 means no reply.
func (c *Client) Request(ctx context.Context, method, path string, body any) (int, []byte, error) {
	return c.do(ctx, method, path, body)
}

// getJSON sends a request and decodes a 2xx JSON reply into out.
func (c *Client) getJSON(ctx context.Context, method, path string, in, out any) (int, error) {
	status, raw, err := c.do(ctx, method, path, in)
	if err != nil {
		return status, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return status, fmt.Errorf("hub API %s %s: decode reply %.200q: %w", method, path, raw, err)
		}
	}
	return status, nil
}

func userPath(name string, rest ...string) string {
	return "/users/" + url.PathEscape(name) + strings.Join(rest, "")
}

// Version returns the hub's version from GET /hub/api/ (no token needed).
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	if _, err := c.getJSON(ctx, http.MethodGet, "/", nil, &v); err != nil {
		return "", err
	}
	if v.Version == "" {
		return "", fmt.Errorf("hub API GET /: no version in the reply")
	}
	return v.Version, nil
}

// User is JupyterHub's user model. Which fields are filled depends on the
// token's scopes: Servers is nil when the token cannot read servers.
type User struct {
	Kind         string            `json:"kind"`
	Name         string            `json:"name"`
	Admin        bool              `json:"admin"`
	Roles        []string          `json:"roles"`
	Groups       []string          `json:"groups"`
	Server       *string           `json:"server"`
	Pending      *string           `json:"pending"`
	Created      *time.Time        `json:"created"`
	LastActivity *time.Time        `json:"last_activity"`
	Servers      map[string]Server `json:"servers"`
	// Scopes are the token's own scopes, only in the reply to Me.
	Scopes []string `json:"scopes,omitempty"`
}

// Server is JupyterHub's model of one server of a user.
type Server struct {
	Name         string         `json:"name"`
	Ready        bool           `json:"ready"`
	Pending      *string        `json:"pending"`
	Stopped      bool           `json:"stopped"`
	URL          string         `json:"url"`
	Started      *time.Time     `json:"started"`
	LastActivity *time.Time     `json:"last_activity"`
	ProgressURL  string         `json:"progress_url"`
	State        map[string]any `json:"state"`
	UserOptions  map[string]any `json:"user_options"`
}

// CreateUser creates a user (201). An existing user gives an APIError with
// status 409 (users named in the config exist from startup).
func (c *Client) CreateUser(ctx context.Context, name string) (*User, error) {
	var u User
	if _, err := c.getJSON(ctx, http.MethodPost, userPath(name), nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// DeleteUser deletes a user (204).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, userPath(name), nil)
	return err
}

// User returns a user's model. A user the token may not see gives an
// APIError with status 404, as a missing user does.
func (c *Client) User(ctx context.Context, name string) (*User, error) {
	var u User
	if _, err := c.getJSON(ctx, http.MethodGet, userPath(name), nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Users lists all users (needs list:users; 403 otherwise).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var us []User
	if _, err := c.getJSON(ctx, http.MethodGet, "/users", nil, &us); err != nil {
		return nil, err
	}
	return us, nil
}

// Me returns the model of the token's owner with the token's scopes
// (GET /hub/api/user). A service's token gives kind "service".
func (c *Client) Me(ctx context.Context) (*User, error) {
	var u User
	if _, err := c.getJSON(ctx, http.MethodGet, "/user", nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// StartResult says how the hub answered a start request.
type StartResult int

const (
	// Started: 201, the server is ready.
	Started StartResult = iota + 1
	// StartPending: 202, still starting; see WaitReady or Progress.
	StartPending
	// AlreadyRunning: 400 "... is already running".
	AlreadyRunning
)

func (r StartResult) String() string {
	switch r {
	case Started:
		return "started"
	case StartPending:
		return "pending"
	case AlreadyRunning:
		return "already running"
	}
	return fmt.Sprintf("StartResult(%d)", int(r))
}

// SpawnFailedError says a server did not start, with the hub's reason
// ("Server at http://... didn't respond in 30 seconds").
type SpawnFailedError struct {
	User string
	// Server is the server's name, "" for the default server.
	Server  string
	Message string
}

func (e *SpawnFailedError) Error() string {
	return fmt.Sprintf("hub: %s failed to start: %s", ServerLabel(e.User, e.Server), e.Message)
}

// ServerLabel names a server in messages: "server of alice" for the
// default server, "server lab of alice" for a named one.
func ServerLabel(user, server string) string {
	if server == "" {
		return "server of " + user
	}
	return "server " + server + " of " + user
}

// serverPath is the API path of one of a user's servers, with rest
// appended: /users/{name}/server for the default server (server ""),
// /users/{name}/servers/{server} for a named one.
func serverPath(user, server string, rest ...string) string {
	if server == "" {
		return userPath(user, append([]string{"/server"}, rest...)...)
	}
	return userPath(user, append([]string{"/servers/", url.PathEscape(server)}, rest...)...)
}

// StartServer asks the hub to start a user's default server (POST
// /users/{name}/server). The hub waits up to 10 s for the spawn: a spawn
// that fails within that time gives a *SpawnFailedError with the reason
// the hub reports in the progress stream.
func (c *Client) StartServer(ctx context.Context, user string) (StartResult, error) {
	return c.StartNamedServer(ctx, user, "", nil)
}

// StartServerOptions is StartServer with user options (the JSON body the
// spawner receives as user_options).
func (c *Client) StartServerOptions(ctx context.Context, user string, options map[string]any) (StartResult, error) {
	return c.StartNamedServer(ctx, user, "", options)
}

// StartNamedServer asks the hub to start one of a user's servers: server
// "" is the default server (as StartServer), any other name a named server
// (POST /users/{name}/servers/{server}; the hub must allow named servers).
// options, when not nil, is the JSON body the spawner receives as
// user_options. A spawn that fails while the hub waits for it gives a
// *SpawnFailedError. A request the hub refuses, for example a new named
// server beyond JupyterHub.named_server_limit_per_user ("User alice
// already has the maximum of 2 named servers. One must be deleted before
// a new server can be created") or named servers not enabled, is an
// *APIError with status 400 and the hub's message.
func (c *Client) StartNamedServer(ctx context.Context, user, server string, options map[string]any) (StartResult, error) {
	var in any
	if options != nil {
		in = options
	}
	path := serverPath(user, server)
	status, _, err := c.do(ctx, http.MethodPost, path, in)
	switch {
	case err == nil && status == http.StatusCreated:
		return Started, nil
	case err == nil && status == http.StatusAccepted:
		return StartPending, nil
	case err == nil:
		return 0, fmt.Errorf("hub API POST %s: unexpected status %d", path, status)
	case IsStatus(err, http.StatusBadRequest) && strings.Contains(err.Error(), "already running"):
		return AlreadyRunning, nil
	case IsStatus(err, http.StatusInternalServerError):
		// The spawn failed while the hub waited for it; the progress stream
		// has the reason.
		if ev, perr := c.finalProgress(ctx, user, server); perr == nil && ev.Failed {
			return 0, fmt.Errorf("%w (%v)", &SpawnFailedError{User: user, Server: server, Message: strings.TrimPrefix(ev.Message, "Spawn failed: ")}, err)
		}
		return 0, &SpawnFailedError{User: user, Server: server, Message: err.Error()}
	}
	return 0, err
}

// StopResult says how the hub answered a stop request.
type StopResult int

const (
	// Stopped: 204, the server is stopped (or was not running).
	Stopped StopResult = iota + 1
	// StopPending: 202, still stopping; see WaitStopped.
	StopPending
)

func (r StopResult) String() string {
	switch r {
	case Stopped:
		return "stopped"
	case StopPending:
		return "pending"
	}
	return fmt.Sprintf("StopResult(%d)", int(r))
}

// StopServer asks the hub to stop a user's default server (DELETE
// /users/{name}/server). A server still starting gives an APIError 400.
func (c *Client) StopServer(ctx context.Context, user string) (StopResult, error) {
	return c.StopNamedServer(ctx, user, "")
}

// StopNamedServer asks the hub to stop one of a user's servers (server ""
// is the default server, as StopServer; a named one is DELETE
// /users/{name}/servers/{server}). A stopped named server keeps its place:
// it still counts towards JupyterHub.named_server_limit_per_user until it
// is removed (RemoveNamedServer). A server still starting gives an
// APIError 400, an unknown named server an APIError 404.
func (c *Client) StopNamedServer(ctx context.Context, user, server string) (StopResult, error) {
	return c.deleteServer(ctx, user, server, nil)
}

// RemoveNamedServer stops a user's named server if it runs and deletes it
// from the hub (DELETE /users/{name}/servers/{server} with {"remove":
// true}), which frees its place under named_server_limit_per_user. With a
// 202 (stop pending) the hub deletes the server once it has stopped. The
// default server cannot be removed: the hub answers 400.
func (c *Client) RemoveNamedServer(ctx context.Context, user, server string) (StopResult, error) {
	return c.deleteServer(ctx, user, server, map[string]bool{"remove": true})
}

func (c *Client) deleteServer(ctx context.Context, user, server string, body any) (StopResult, error) {
	path := serverPath(user, server)
	status, _, err := c.do(ctx, http.MethodDelete, path, body)
	if err != nil {
		return 0, err
	}
	switch status {
	case http.StatusNoContent:
		return Stopped, nil
	case http.StatusAccepted:
		return StopPending, nil
	}
	return 0, fmt.Errorf("hub API DELETE %s: unexpected status %d", path, status)
}

// ServerStatus is the state of one of a user's servers as the hub sees it.
type ServerStatus struct {
	// Active: the hub has a server for the user (ready or pending).
	// An inactive server is stopped (not in the user model's servers).
	Active bool
	Ready  bool
	// Pending is "spawn", "stop" or "".
	Pending string
	// URL is the server's path on the proxy ("/user/alice/", or
	// "/user/alice/lab/" for the named server lab).
	URL     string
	Started time.Time
}

// Status is the state of a server of the user model: an entry of
// User.Servers is an active server.
func (s Server) Status() ServerStatus {
	st := ServerStatus{Active: !s.Stopped, Ready: s.Ready, URL: s.URL}
	if s.Pending != nil {
		st.Pending = *s.Pending
	}
	if s.Started != nil {
		st.Started = *s.Started
	}
	return st
}

// ServerStatus returns the state of a user's default server. It needs a
// token that may read the user's servers.
func (c *Client) ServerStatus(ctx context.Context, user string) (ServerStatus, error) {
	return c.NamedServerStatus(ctx, user, "")
}

// NamedServerStatus returns the state of one of a user's servers (server
// "" is the default server). A named server that is stopped, removed or
// was never started is inactive.
func (c *Client) NamedServerStatus(ctx context.Context, user, server string) (ServerStatus, error) {
	all, err := c.ServerStatuses(ctx, user)
	if err != nil {
		return ServerStatus{}, err
	}
	return all[server], nil
}

// ServerStatuses returns the state of each active server of a user, by
// server name ("" is the default server), from the user model.
func (c *Client) ServerStatuses(ctx context.Context, user string) (map[string]ServerStatus, error) {
	u, err := c.User(ctx, user)
	if err != nil {
		return nil, err
	}
	if u.Servers == nil {
		return nil, fmt.Errorf("hub: the model of %s has no servers: the token lacks read:servers for that user", user)
	}
	out := make(map[string]ServerStatus, len(u.Servers))
	for name, s := range u.Servers {
		out[name] = s.Status()
	}
	return out, nil
}

// WaitReady polls until the user's default server is ready. If the hub
// drops the server instead (spawn failed, or the server died), it returns
// a *SpawnFailedError with the hub's reason.
func (c *Client) WaitReady(ctx context.Context, user string) (ServerStatus, error) {
	return c.WaitNamedReady(ctx, user, "")
}

// WaitNamedReady is WaitReady for one of a user's servers (server "" is
// the default server).
func (c *Client) WaitNamedReady(ctx context.Context, user, server string) (ServerStatus, error) {
	for {
		st, err := c.NamedServerStatus(ctx, user, server)
		if err != nil {
			return st, err
		}
		if st.Ready {
			return st, nil
		}
		if !st.Active {
			msg := "the hub has no such server for this user (never started, failed, or exited)"
			if ev, perr := c.finalProgress(ctx, user, server); perr == nil && ev.Failed {
				msg = strings.TrimPrefix(ev.Message, "Spawn failed: ")
			}
			return st, &SpawnFailedError{User: user, Server: server, Message: msg}
		}
		if err := sleep(ctx, c.poll); err != nil {
			return st, fmt.Errorf("hub: wait for the %s to be ready (last: pending %q): %w", ServerLabel(user, server), st.Pending, err)
		}
	}
}

// WaitStopped polls until the hub has no active default server for the
// user.
func (c *Client) WaitStopped(ctx context.Context, user string) error {
	return c.WaitNamedStopped(ctx, user, "")
}

// WaitNamedStopped is WaitStopped for one of a user's servers (server ""
// is the default server).
func (c *Client) WaitNamedStopped(ctx context.Context, user, server string) error {
	for {
		st, err := c.NamedServerStatus(ctx, user, server)
		if err != nil {
			return err
		}
		if !st.Active {
			return nil
		}
		if err := sleep(ctx, c.poll); err != nil {
			return fmt.Errorf("hub: wait for the %s to stop (last: ready %v, pending %q): %w", ServerLabel(user, server), st.Ready, st.Pending, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// TokenRequest is the body of a token request; zero fields are left out.
type TokenRequest struct {
	Note string `json:"note,omitempty"`
	// ExpiresIn is the lifetime in seconds (0: no expiry).
	ExpiresIn int `json:"expires_in,omitempty"`
	// Scopes limit the token (default: all its owner's permissions).
	Scopes []string `json:"scopes,omitempty"`
}

// Token is JupyterHub's token model. Token (the secret) is only set in the
// reply to CreateToken.
type Token struct {
	ID           string     `json:"id"`
	Kind         string     `json:"kind"`
	User         string     `json:"user"`
	Token        string     `json:"token,omitempty"`
	Note         string     `json:"note"`
	Roles        []string   `json:"roles"`
	Scopes       []string   `json:"scopes"`
	Created      *time.Time `json:"created"`
	LastActivity *time.Time `json:"last_activity"`
	ExpiresAt    *time.Time `json:"expires_at"`
}

// CreateToken creates an API token for a user (201).
func (c *Client) CreateToken(ctx context.Context, user string, req TokenRequest) (*Token, error) {
	var t Token
	if _, err := c.getJSON(ctx, http.MethodPost, userPath(user, "/tokens"), req, &t); err != nil {
		return nil, err
	}
	if t.Token == "" {
		return nil, fmt.Errorf("hub API POST %s: no token in the reply", userPath(user, "/tokens"))
	}
	return &t, nil
}

// Tokens lists a user's tokens (without their secrets).
func (c *Client) Tokens(ctx context.Context, user string) ([]Token, error) {
	var out struct {
		APITokens []Token `json:"api_tokens"`
	}
	if _, err := c.getJSON(ctx, http.MethodGet, userPath(user, "/tokens"), nil, &out); err != nil {
		return nil, err
	}
	return out.APITokens, nil
}

// DeleteToken revokes a user's token by its id (204).
func (c *Client) DeleteToken(ctx context.Context, user, id string) error {
	_, _, err := c.do(ctx, http.MethodDelete, userPath(user, "/tokens/"+url.PathEscape(id)), nil)
	return err
}

// ServerRequest sends a request through the hub's proxy to a user's server
// at /user/<user>/<path>, with this client's token in the Authorization
// header. Redirects are not followed (a server that is not running shows
// as the hub's 302). The caller closes the response body.
func (c *Client) ServerRequest(ctx context.Context, user, method, path string, body io.Reader) (*http.Response, error) {
	target := c.base + "/user/" + url.PathEscape(user) + "/" + strings.TrimPrefix(path, "/")
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("hub: request to the server of %s: %w", user, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "token "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hub: %s %s: %w", method, target, err)
	}
	return resp, nil
}

// ServerGet is ServerRequest for a GET, returning status and body.
func (c *Client) ServerGet(ctx context.Context, user, path string) (int, []byte, error) {
	resp, err := c.ServerRequest(ctx, user, http.MethodGet, path, nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("hub: GET %s of %s: read body: %w", path, user, err)
	}
	return resp.StatusCode, b, nil
}

// Package huboauth is the client side of JupyterHub's OAuth, as a hub
// service or a single-user server uses it (JupyterHub's HubOAuth): it
// asks the hub who owns a token (GET <api>/user), sends a browser without
// a session to the hub's authorize page, takes the code the hub sends back
// to the callback, exchanges it for a token at <api>/oauth2/token and
// keeps that token in a server-side session named by a cookie.
//
// The hub decides who may come in: its authorize page refuses (403) a user
// without access to the client (access:servers for a server,
// access:services for a service), and the scopes it reports for the token
// on each request follow the user's roles as they are now.
package huboauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The environment a hub gives its services and spawned servers.
const (
	EnvAPIURL      = "JUPYTERHUB_API_URL"
	EnvAPIToken    = "JUPYTERHUB_API_TOKEN"
	EnvClientID    = "JUPYTERHUB_CLIENT_ID"
	EnvCallbackURL = "JUPYTERHUB_OAUTH_CALLBACK_URL"
	EnvHost        = "JUPYTERHUB_HOST"
	EnvBaseURL     = "JUPYTERHUB_BASE_URL"
	EnvPrefix      = "JUPYTERHUB_SERVICE_PREFIX"
)

// Identity is what the hub says about a token: the owner's kind ("user"
// or "service"), name, groups, and the token's scopes as they are now.
type Identity struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Groups []string `json:"groups,omitempty"`
	Scopes []string `json:"scopes"`
}

// ErrInvalidToken is returned by Identify when the hub does not know the
// token (it answers 403 or 401).
var ErrInvalidToken = errors.New("token not recognised by the hub")

// Identify asks the hub at apiURL (…/hub/api) who owns token, with the
// token itself, as jupyterhub-singleuser's HubAuth.user_for_token does.
func Identify(ctx context.Context, hc *http.Client, apiURL, token string) (*Identity, error) {
	if apiURL == "" {
		return nil, fmt.Errorf("no hub API URL configured (%s), cannot check tokens", EnvAPIURL)
	}
	apiURL = strings.TrimRight(apiURL, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/user", nil)
	if err != nil {
		return nil, fmt.Errorf("identify token: %w", err)
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identify token with the hub: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("identify token with the hub: read reply: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return nil, ErrInvalidToken
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("identify token with the hub: GET %s/user: %s: %.200s", apiURL, resp.Status, body)
	}
	var id Identity
	if err := json.Unmarshal(body, &id); err != nil {
		return nil, fmt.Errorf("identify token with the hub: reply is not a user model: %w", err)
	}
	return &id, nil
}

// Config is one OAuth client of the hub.
type Config struct {
	// APIURL is the hub API as the client reaches it (JUPYTERHUB_API_URL).
	APIURL string
	// ClientID is the client's id (JUPYTERHUB_CLIENT_ID: "service-<name>"
	// or "jupyterhub-user-<name>").
	ClientID string
	// ClientSecret is the client's API token (JUPYTERHUB_API_TOKEN).
	ClientSecret string
	// CallbackURL is the redirect URI the hub registered for the client
	// (JUPYTERHUB_OAUTH_CALLBACK_URL), a path or an absolute URL; the code
	// comes back there.
	CallbackURL string
	// AuthorizeURL is the hub's authorize page as the browser reaches it
	// (default JUPYTERHUB_HOST + JUPYTERHUB_BASE_URL + "hub/api/oauth2/authorize").
	AuthorizeURL string
	// CookiePath scopes the session cookie (JUPYTERHUB_SERVICE_PREFIX).
	CookiePath string
}

// ConfigFromEnv reads a client's configuration through lookup
// (os.LookupEnv in a real process). ok is false when the hub gave no
// OAuth client (no JUPYTERHUB_CLIENT_ID); a client id without the API
// URL, token or callback is an error naming what is missing.
func ConfigFromEnv(lookup func(string) (string, bool)) (c Config, ok bool, err error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	c = Config{
		APIURL:       strings.TrimRight(get(EnvAPIURL), "/"),
		ClientID:     get(EnvClientID),
		ClientSecret: get(EnvAPIToken),
		CallbackURL:  get(EnvCallbackURL),
		CookiePath:   get(EnvPrefix),
	}
	if c.ClientID == "" {
		return Config{}, false, nil
	}
	if c.CallbackURL == "" && c.CookiePath != "" {
		c.CallbackURL = strings.TrimSuffix(c.CookiePath, "/") + "/oauth_callback"
	}
	base := get(EnvBaseURL)
	if base == "" {
		base = "/"
	}
	c.AuthorizeURL = get(EnvHost) + strings.TrimSuffix(base, "/") + "/hub/api/oauth2/authorize"
	return c, true, c.validate()
}

func (c Config) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{EnvAPIURL, c.APIURL}, {EnvClientID, c.ClientID}, {EnvAPIToken, c.ClientSecret},
		{EnvCallbackURL, c.CallbackURL}, {"authorize URL", c.AuthorizeURL},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("hub OAuth client %q: missing %s", c.ClientID, strings.Join(missing, ", "))
	}
	return nil
}

// Client is one OAuth client with its sessions. It is safe for concurrent
// use.
type Client struct {
	cfg          Config
	hc           *http.Client
	callbackPath string
	cookie       string
	now          func() time.Time

	mu       sync.Mutex
	sessions map[string]string    // session id -> access token
	pending  map[string]loginWait // state -> where the browser was going
}

type loginWait struct {
	next  string
	since time.Time
}

// stateTTL is how long a login may take between the redirect to the hub
// and the callback.
const stateTTL = 10 * time.Minute

// New returns a client for cfg; hc (nil: a client with a 10 s timeout)
// talks to the hub API.
func New(cfg Config, hc *http.Client) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.CallbackURL)
	if err != nil {
		return nil, fmt.Errorf("hub OAuth client %q: callback URL %q: %w", cfg.ClientID, cfg.CallbackURL, err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.CookiePath == "" {
		cfg.CookiePath = "/"
	}
	return &Client{
		cfg:          cfg,
		hc:           hc,
		callbackPath: u.Path,
		// One cookie per client, as HubOAuth names it: a browser holds
		// sessions with several servers and services of one hub at once.
		cookie:   cfg.ClientID,
		now:      time.Now,
		sessions: map[string]string{},
		pending:  map[string]loginWait{},
	}, nil
}

// CallbackPath is the URL path the hub sends the browser back to.
func (c *Client) CallbackPath() string { return c.callbackPath }

// User returns who the request's session belongs to, asked of the hub now
// (so a role taken away since the login shows at once), and nil without a
// session. A session whose token the hub no longer knows is dropped.
func (c *Client) User(r *http.Request) (*Identity, error) {
	ck, err := r.Cookie(c.cookie)
	if err != nil {
		return nil, nil
	}
	c.mu.Lock()
	token, ok := c.sessions[ck.Value]
	c.mu.Unlock()
	if !ok {
		return nil, nil
	}
	id, err := Identify(r.Context(), c.hc, c.cfg.APIURL, token)
	if errors.Is(err, ErrInvalidToken) {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
		return nil, nil
	}
	return id, err
}

// Login sends the browser to the hub's authorize page, remembering where
// it was going (the request's path and query) for the callback.
func (c *Client) Login(w http.ResponseWriter, r *http.Request) {
	state := randomHex(16)
	now := c.now()
	c.mu.Lock()
	for s, p := range c.pending {
		if now.Sub(p.since) > stateTTL {
			delete(c.pending, s)
		}
	}
	c.pending[state] = loginWait{next: r.URL.RequestURI(), since: now}
	c.mu.Unlock()
	q := url.Values{
		"client_id":     {c.cfg.ClientID},
		"redirect_uri":  {c.cfg.CallbackURL},
		"response_type": {"code"},
		"state":         {state},
	}
	http.Redirect(w, r, c.cfg.AuthorizeURL+"?"+q.Encode(), http.StatusFound)
}

// Callback handles the hub's redirect back: it checks the state, exchanges
// the code for a token, starts a session and sends the browser where it
// was going. Errors are answered with their status and a message.
func (c *Client) Callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Error(w, fmt.Sprintf("hub OAuth refused: %s: %s", e, q.Get("error_description")), http.StatusForbidden)
		return
	}
	state, code := q.Get("state"), q.Get("code")
	c.mu.Lock()
	wait, ok := c.pending[state]
	delete(c.pending, state)
	c.mu.Unlock()
	switch {
	case code == "":
		http.Error(w, "OAuth callback without a code", http.StatusBadRequest)
		return
	case !ok || c.now().Sub(wait.since) > stateTTL:
		http.Error(w, "OAuth callback with an unknown or expired state: log in again", http.StatusBadRequest)
		return
	}
	token, err := c.exchange(r.Context(), code)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	sid := randomHex(24)
	c.mu.Lock()
	c.sessions[sid] = token
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: c.cookie, Value: sid, Path: c.cfg.CookiePath,
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, wait.next, http.StatusFound)
}

// exchange trades an authorization code for an access token at the hub.
func (c *Client) exchange(ctx context.Context, code string) (string, error) {
	form := url.Values{
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.cfg.CallbackURL},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.APIURL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("OAuth token exchange: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("OAuth token exchange: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("OAuth token exchange: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("OAuth token exchange: POST %s/oauth2/token: %s: %.200s", c.cfg.APIURL, resp.Status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("OAuth token exchange: reply without an access_token: %.200s", body)
	}
	return tok.AccessToken, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("huboauth: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

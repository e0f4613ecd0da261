package uiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// Token sources, as recorded in Record.TokenSource.
const (
	TokenFromHeader = "header"
	TokenFromQuery  = "query"
)

// authHeader matches "Authorization: token X" and "Authorization: bearer X",
// as JupyterHub's HubAuth does.
var authHeader = regexp.MustCompile(`(?i)^(?:token|bearer)\s+(.+)$`)

// requestToken returns the token a request carries and where it was found:
// the ?token= parameter first, then the Authorization header (JupyterHub's
// order). It returns "", "" when there is none.
func requestToken(r *http.Request) (token, source string) {
	if t := r.URL.Query().Get("token"); t != "" {
		return t, TokenFromQuery
	}
	if m := authHeader.FindStringSubmatch(strings.TrimSpace(r.Header.Get("Authorization"))); m != nil {
		return strings.TrimSpace(m[1]), TokenFromHeader
	}
	return "", ""
}

// Identity is what the hub says about a token: the owner's kind ("user" or
// "service"), name, and the token's scopes.
type Identity struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// errInvalidToken is returned by identify when the hub does not know the
// token (it answers 403).
var errInvalidToken = fmt.Errorf("token not recognised by the hub")

// identify asks the hub who owns token: GET <api>/user with the token
// itself, as jupyterhub-singleuser's HubAuth.user_for_token does.
func (s *Server) identify(ctx context.Context, token string) (*Identity, error) {
	if s.cfg.apiURL == "" {
		return nil, fmt.Errorf("no hub API URL configured (%s), cannot check tokens", EnvAPIURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.apiURL+"/user", nil)
	if err != nil {
		return nil, fmt.Errorf("identify token: %w", err)
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := s.client.Do(req)
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
		return nil, errInvalidToken
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("identify token with the hub: GET %s/user: %s: %.200s", s.cfg.apiURL, resp.Status, body)
	}
	var id Identity
	if err := json.Unmarshal(body, &id); err != nil {
		return nil, fmt.Errorf("identify token with the hub: reply is not a user model: %w", err)
	}
	return &id, nil
}

// requiredScopes are the scopes of which a caller must hold one; nil means
// any identified caller is let in.
func (s *Server) requiredScopes() []string {
	if len(s.cfg.accessScopes) > 0 {
		return s.cfg.accessScopes
	}
	if s.cfg.user == "" {
		return nil
	}
	return []string{
		"access:servers!server=" + s.cfg.user + "/" + s.cfg.serverName,
		"access:servers!user=" + s.cfg.user,
	}
}

// ScopesGrant reports whether any scope in held grants any scope in
// required, following JupyterHub's check_scopes: a scope grants itself; an
// unfiltered scope grants every filtered form of it; a user filter
// (access:servers!user=bob) grants the server filters of that user
// (access:servers!server=bob/...). Like JupyterHub's singleuser check,
// group filters are not resolved to their members.
func ScopesGrant(required, held []string) bool {
	for _, r := range required {
		rBase, rFilter, _ := strings.Cut(r, "!")
		for _, h := range held {
			hBase, hFilter, filtered := strings.Cut(h, "!")
			if hBase != rBase {
				continue
			}
			if !filtered || hFilter == rFilter {
				return true
			}
			hUser, isUser := strings.CutPrefix(hFilter, "user=")
			rServer, isServer := strings.CutPrefix(rFilter, "server=")
			if isUser && isServer && strings.HasPrefix(rServer, hUser+"/") {
				return true
			}
		}
	}
	return false
}

package uiserver

import (
	"context"
	"net/http"
	"regexp"
	"strings"

	"github.com/jobsim/jobsim/internal/huboauth"
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

// Identity is what the hub says about a token (huboauth.Identity).
type Identity = huboauth.Identity

// errInvalidToken is returned by identify when the hub does not know the
// token (it answers 403).
var errInvalidToken = huboauth.ErrInvalidToken

// identify asks the hub who owns token: GET <api>/user with the token
// itself, as jupyterhub-singleuser's HubAuth.user_for_token does.
func (s *Server) identify(ctx context.Context, token string) (*Identity, error) {
	return huboauth.Identify(ctx, s.client, s.cfg.apiURL, token)
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

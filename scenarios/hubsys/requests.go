package hubsys

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/hub"
)

// requests makes each request with its user's own token (created through
// the driver on first use) and records a hub.request event per answer.
// Only a request that gets no answer at all is an error; statuses are
// judged by the scenario's expectations.
func (s *System) requests(ctx context.Context, c *hub.Client, reqs []Request) error {
	for _, r := range reqs {
		tok, err := s.token(ctx, c, r.As)
		if err != nil {
			return err
		}
		as := c.WithToken(tok)
		var status int
		var what string
		if r.API != "" {
			method, path, _ := strings.Cut(r.API, " ")
			what = method + " /hub/api" + path
			status, _, err = as.Request(ctx, method, path, nil)
			if status == 0 {
				return fmt.Errorf("request as %s: %s: %w", r.As, what, err)
			}
			if method == http.MethodPost && status/100 == 2 && r.Want/100 != 2 {
				s.o.logger.Warn("a request the scenario expected to be refused was carried out", "as", r.As, "request", what, "status", status)
			}
		} else {
			ref, perr := ParseServerRef(r.Server)
			if perr != nil {
				return fmt.Errorf("request as %s: %w", r.As, perr)
			}
			// A named server lives under its name: /user/alice/lab/...
			path := strings.TrimPrefix(r.Path, "/")
			if ref.Named() {
				path = ref.Name + "/" + path
			}
			what = "GET /user/" + ref.User + "/" + path
			status, _, err = as.ServerGet(ctx, ref.User, path)
			if err != nil {
				return fmt.Errorf("request as %s: %s: %w", r.As, what, err)
			}
		}
		ok := status == r.Want
		verdict := "as expected"
		if !ok {
			verdict = fmt.Sprintf("expected %d", r.Want)
		}
		s.log.Record(events.Event{Kind: RequestEvent, Msg: fmt.Sprintf("%s as %s: %d (%s)", what, r.As, status, verdict),
			Fields: map[string]any{"as": r.As, "request": what, "status": status, "want": r.Want, "ok": ok, "note": r.Note}})
	}
	return nil
}

// token returns a token of user's own, created on first use.
func (s *System) token(ctx context.Context, c *hub.Client, user string) (string, error) {
	s.mu.Lock()
	tok, ok := s.tokens[user]
	s.mu.Unlock()
	if ok {
		return tok, nil
	}
	t, err := c.CreateToken(ctx, user, hub.TokenRequest{Note: "jobsim scenario request step"})
	if err != nil {
		return "", fmt.Errorf("a token for %s: %w", user, err)
	}
	s.mu.Lock()
	s.tokens[user] = t.Token
	s.mu.Unlock()
	return t.Token, nil
}

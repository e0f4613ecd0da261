package hub

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// PAMAuthenticator logs users in with their Unix password through PAM (the
// hub must run as root for pam_unix to read /etc/shadow). Users are Unix
// accounts: see CreateAccounts.
const PAMAuthenticator = "jupyterhub.auth.PAMAuthenticator"

// Session is a user logged in through the hub's login form, as a browser
// is: it holds the cookies the hub set and sends them with each request.
type Session struct {
	User string
	base string
	hc   *http.Client
}

// LoginRefusedError is the hub refusing a login: it rendered its login
// page again with a message (JupyterHub 3: "Invalid username or password").
type LoginRefusedError struct {
	User    string
	Status  int
	Message string
}

func (e *LoginRefusedError) Error() string {
	return fmt.Sprintf("hub login as %s refused (%d): %s", e.User, e.Status, e.Message)
}

var (
	loginErrorRE = regexp.MustCompile(`(?s)<p class="login_error">\s*(.*?)\s*</p>`)
	xsrfFieldRE  = regexp.MustCompile(`name="_xsrf"\s+value="([^"]*)"`)
)

// Login fills in and posts the hub's login form (/hub/login: username,
// password, and the _xsrf token when the page carries one) and returns the
// session the hub's cookies make. A refusal is a *LoginRefusedError with
// the hub's own message; anything else unexpected is an error saying what
// came back.
func (c *Client) Login(ctx context.Context, username, password string) (*Session, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("hub login: %w", err)
	}
	hc := &http.Client{
		Jar:       jar,
		Transport: c.hc.Transport,
		Timeout:   c.hc.Timeout,
		// The hub answers a good login with a redirect: that answer is
		// the verdict, and its cookies are kept.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s := &Session{User: username, base: c.base, hc: hc}
	status, page, err := s.Get(ctx, "/hub/login")
	if err != nil {
		return nil, fmt.Errorf("hub login page: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("hub login page: GET /hub/login: %d: %.200s", status, page)
	}
	form := url.Values{"username": {username}, "password": {password}}
	if m := xsrfFieldRE.FindSubmatch(page); m != nil {
		form.Set("_xsrf", html.UnescapeString(string(m[1])))
	} else if u, err := url.Parse(c.base + "/hub/"); err == nil {
		for _, ck := range jar.Cookies(u) {
			if ck.Name == "_xsrf" {
				form.Set("_xsrf", ck.Value)
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/hub/login", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("hub login: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hub login as %s: %w", username, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("hub login as %s: read reply: %w", username, err)
	}
	if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		return s, nil
	}
	if m := loginErrorRE.FindSubmatch(body); m != nil {
		return nil, &LoginRefusedError{User: username, Status: resp.StatusCode, Message: html.UnescapeString(string(m[1]))}
	}
	return nil, fmt.Errorf("hub login as %s: POST /hub/login: %d without a redirect or the login page's message: %.300s", username, resp.StatusCode, body)
}

// Get fetches a page of the hub (path from the root, e.g. "/hub/home")
// with the session's cookies, without following redirects.
func (s *Session) Get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return resp.StatusCode, b, nil
}

// FormRefusedError is the hub refusing a spawn form's answers: it rendered
// the form again with the message options_from_form raised, and spawned
// nothing.
type FormRefusedError struct {
	User    string
	Message string
}

func (e *FormRefusedError) Error() string {
	return fmt.Sprintf("spawn form for %s refused: %s", e.User, e.Message)
}

var spawnErrorRE = regexp.MustCompile(`(?s)<p class="spawn-error-msg[^"]*">\s*Error:\s*(.*?)\s*</p>`)

// SpawnForm fetches the spawn form page for user (/hub/spawn/<user>): the
// hub's page with the spawner's options_form inside.
func (s *Session) SpawnForm(ctx context.Context, user string) (string, error) {
	status, page, err := s.Get(ctx, "/hub/spawn/"+url.PathEscape(user))
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("GET /hub/spawn/%s: %d (want the form, 200): %.200s", user, status, page)
	}
	return string(page), nil
}

// SubmitSpawnForm posts the spawn form for user with answers, as a
// browser does. It returns where the hub sends the browser (the
// spawn-pending page) when it starts the spawn, or a *FormRefusedError with
// the message the form shows.
func (s *Session) SubmitSpawnForm(ctx context.Context, user string, answers url.Values) (string, error) {
	form := url.Values{}
	for k, v := range answers {
		form[k] = append([]string(nil), v...)
	}
	if u, err := url.Parse(s.base + "/hub/"); err == nil && s.hc.Jar != nil {
		for _, ck := range s.hc.Jar.Cookies(u) {
			if ck.Name == "_xsrf" {
				form.Set("_xsrf", ck.Value)
			}
		}
	}
	path := "/hub/spawn/" + url.PathEscape(user)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		return resp.Header.Get("Location"), nil
	}
	if m := spawnErrorRE.FindSubmatch(body); m != nil {
		return "", &FormRefusedError{User: user, Message: html.UnescapeString(string(m[1]))}
	}
	return "", fmt.Errorf("POST %s: %d without a redirect or the form's message: %.300s", path, resp.StatusCode, body)
}

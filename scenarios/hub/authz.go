package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/jobsim/jobsim/sim/authzservice"
)

// SiteAuthz is a site-authorization service run by the hub as a managed
// service: jobsim's stand-in (`jobsim authz-service --config FILE`,
// sim/authzservice) or a site's own command. The hub starts Command,
// proxies it at /services/<Name>/ and logs users into it with OAuth, with
// no confirmation page (as for a site's own service).
type SiteAuthz struct {
	// Name of the service (default "authz").
	Name string
	// Command starts the service, e.g. {jobsim, "authz-service",
	// "--config", "/etc/jupyterhub/authz.yaml"}.
	Command []string
	// Token is the service's API token: it also authorizes POST
	// <service>/reload.
	Token string
	// Owners are the users whose servers may be granted to viewers: the
	// hub gets a role viewers-of-<owner> for each (JupyterHub 3 defines
	// roles only in its configuration; the service fills the groups).
	// They are also the users allowed into the service.
	Owners []string
	// Environment is added to the service's environment.
	Environment map[string]string
}

// DefaultAuthzService is SiteAuthz's default name.
const DefaultAuthzService = "authz"

// authzServiceRole names the role that carries the service's own scopes.
const authzServiceRole = "jobsim-authz-service"

// WithSiteAuthz adds a site-authorization service: the managed service,
// the role giving its token authzservice.ServiceScopes, and a role per
// owner (authzservice.Roles) granting access to that owner's servers to
// the group the service keeps.
func WithSiteAuthz(a SiteAuthz) Option {
	return func(o *options) {
		if a.Name == "" {
			a.Name = DefaultAuthzService
		}
		o.cfg.Services = append(o.cfg.Services, Service{
			Name: a.Name, APIToken: a.Token, Command: a.Command,
			Environment: a.Environment, OAuthNoConfirm: true,
		})
		o.cfg.Roles = append(o.cfg.Roles, Role{
			Name:        authzServiceRole + "-" + a.Name,
			Description: "the site-authorization service's own token",
			Scopes:      authzservice.ServiceScopes,
			Services:    []string{a.Name},
		})
		// Users may log in to the service (JupyterHub 3's user role does
		// not include access:services).
		o.cfg.Roles = append(o.cfg.Roles, Role{
			Name:        authzServiceRole + "-" + a.Name + "-users",
			Description: "users may open the " + a.Name + " service's list",
			Scopes:      []string{"access:services!service=" + a.Name},
			Users:       a.Owners,
		})
		for _, r := range authzservice.Roles(a.Owners...) {
			o.cfg.Roles = append(o.cfg.Roles, Role{
				Name: r.Name, Description: "viewers of " + strings.TrimPrefix(r.Name, authzservice.GroupPrefix) + "'s servers, kept by the " + a.Name + " service",
				Scopes: r.Scopes, Groups: r.Groups,
			})
		}
	}
}

// Page is where a browsing session ended: the final status, path and
// body, and the addresses it was sent through.
type Page struct {
	Status int
	URL    string
	Body   []byte
	Hops   []string
}

// Text is the page's text without tags, spaces collapsed: what a person
// reads.
func (p *Page) Text() string {
	s := tagRE.ReplaceAllString(string(p.Body), " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

var tagRE = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>|<[^>]*>`)

// maxHops bounds the redirects Browse follows.
const maxHops = 20

// Browse fetches path (from the root, e.g. "/user/bob/") as a browser
// does: it follows redirects with the session's cookies (the hub's, a
// server's and a service's OAuth rounds) and returns the page it ends on.
func (s *Session) Browse(ctx context.Context, path string) (*Page, error) {
	base, err := url.Parse(s.base + "/")
	if err != nil {
		return nil, err
	}
	next, err := base.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("browse %s: %w", path, err)
	}
	p := &Page{}
	for range maxHops {
		p.Hops = append(p.Hops, next.RequestURI())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("browse %s: %w", path, err)
		}
		resp, err := s.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("browse %s: GET %s: %w", path, next.RequestURI(), err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("browse %s: GET %s: %w", path, next.RequestURI(), err)
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			p.Status, p.URL, p.Body = resp.StatusCode, next.RequestURI(), body
			return p, nil
		}
		if next, err = next.Parse(loc); err != nil {
			return nil, fmt.Errorf("browse %s: redirect to %q: %w", path, loc, err)
		}
	}
	return nil, fmt.Errorf("browse %s: more than %d redirects: %s", path, maxHops, strings.Join(p.Hops, " -> "))
}

// authorizeFormRE and authorizeScopeRE find the hub's "Authorize access"
// page (oauth.html) and the scopes its form grants.
var (
	authorizeFormRE  = regexp.MustCompile(`<input type="submit" value="Authorize"`)
	authorizeScopeRE = regexp.MustCompile(`<input type="hidden" name="scopes" value="([^"]*)"/>`)
)

// IsAuthorizePage reports whether the page is the hub's "Authorize
// access" page, which the hub shows before a user's first visit to a
// server that is not theirs (or a service without oauth_no_confirm).
func (p *Page) IsAuthorizePage() bool {
	return strings.HasPrefix(p.URL, "/hub/api/oauth2/authorize") && authorizeFormRE.Match(p.Body)
}

// Authorize answers the hub's "Authorize access" page p as a person
// clicking Authorize does (the form posts back its scopes) and follows
// where the hub sends the browser.
func (s *Session) Authorize(ctx context.Context, p *Page) (*Page, error) {
	if !p.IsAuthorizePage() {
		return nil, fmt.Errorf("authorize: %s is not the hub's Authorize access page: %.200s", p.URL, p.Text())
	}
	form := url.Values{}
	for _, m := range authorizeScopeRE.FindAllSubmatch(p.Body, -1) {
		form.Add("scopes", html.UnescapeString(string(m[1])))
	}
	if u, err := url.Parse(s.base + "/hub/"); err == nil && s.hc.Jar != nil {
		for _, ck := range s.hc.Jar.Cookies(u) {
			if ck.Name == "_xsrf" {
				form.Set("_xsrf", ck.Value)
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+p.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// The hub takes the form only from its own page, as a browser sends it.
	req.Header.Set("Referer", s.base+p.URL)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("authorize: POST %s: %w", p.URL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || loc == "" {
		return nil, fmt.Errorf("authorize: POST %s: %d without a redirect: %.300s", p.URL, resp.StatusCode, body)
	}
	next, err := s.Browse(ctx, loc)
	if err != nil {
		return nil, err
	}
	next.Hops = append(append(append([]string(nil), p.Hops...), "POST "+p.URL), next.Hops...)
	return next, nil
}

// hubErrorRE finds the message of the hub's error page (error.html).
var hubErrorRE = regexp.MustCompile(`(?s)<div class="error">.*?<h1>\s*(\d+)\s*:?\s*(.*?)\s*</h1>.*?<p>\s*(.*?)\s*</p>`)

// HubError is the status and message of the hub's own error page, and
// false when the page is not one.
func (p *Page) HubError() (status string, message string, ok bool) {
	m := hubErrorRE.FindSubmatch(p.Body)
	if m == nil {
		return "", "", false
	}
	return string(m[1]), html.UnescapeString(strings.TrimSpace(tagRE.ReplaceAllString(string(m[3]), ""))), true
}

// viewableRE finds the entries of the stand-in service's list.
var viewableRE = regexp.MustCompile(`<li data-user="([^"]+)"><a href="([^"]+)">`)

// Viewable opens the list page of the stand-in authorization service
// (/services/<service>/) and returns the users whose servers it offers,
// in page order, with their links (user -> href).
func (s *Session) Viewable(ctx context.Context, service string) ([]string, map[string]string, *Page, error) {
	p, err := s.Browse(ctx, "/services/"+url.PathEscape(service)+"/")
	if err != nil {
		return nil, nil, nil, err
	}
	if p.Status != http.StatusOK || !strings.Contains(string(p.Body), "Servers you may open") {
		return nil, nil, p, fmt.Errorf("service %s list for %s: %d at %s: %.300s", service, s.User, p.Status, p.URL, p.Text())
	}
	users := []string{}
	links := map[string]string{}
	for _, m := range viewableRE.FindAllSubmatch(p.Body, -1) {
		u := html.UnescapeString(string(m[1]))
		users = append(users, u)
		links[u] = html.UnescapeString(string(m[2]))
	}
	return users, links, p, nil
}

// AuthzReport is what the stand-in service says its last sync did
// (authzservice.Report).
type AuthzReport = authzservice.Report

// ReloadService asks a service to re-read its site file: POST
// /services/<service>/reload through the proxy with the service's token.
// The stand-in answers with its sync report; a refused reload (a file
// that does not parse) is an error with the service's message.
func (c *Client) ReloadService(ctx context.Context, service, token string) (*AuthzReport, error) {
	target := c.base + "/services/" + url.PathEscape(service) + "/reload"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reload service %s: %w", service, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reload service %s: %w", service, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reload service %s: POST %s: %d: %.300s", service, target, resp.StatusCode, body)
	}
	var rep AuthzReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("reload service %s: reply: %w", service, err)
	}
	return &rep, nil
}

// ServiceReport fetches the stand-in service's last sync report (GET
// /services/<service>/api/report with the service's token); zero Time
// means no sync has finished yet.
func (c *Client) ServiceReport(ctx context.Context, service, token string) (*AuthzReport, error) {
	target := c.base + "/services/" + url.PathEscape(service) + "/api/report"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("service %s report: %w", service, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("service %s report: %w", service, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &APIError{Method: http.MethodGet, Path: target, Status: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	}
	var rep AuthzReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("service %s report: %w", service, err)
	}
	return &rep, nil
}

package hubsys

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/internal/browser"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// BrowserEvent is one browser step's action, as a person at Chromium saw
// it. Fields: as, action (login, visit, fill, click, authorize,
// wait_text), target, url (the page's address from the hub's root),
// status (the page's HTTP status, 0 where Chromium does not say), text
// (what the page shows, up to 4000 characters), shot (the screenshot, a
// path inside the run's artifacts), ok.
const BrowserEvent events.Kind = "hub.browser"

// ViewableEvent is what a site-authorization service's list offered a
// user, as a viewable condition read it. Fields: service, as, users (the
// list, comma-separated, in page order).
const ViewableEvent events.Kind = "hub.viewable"

// pageTextMax bounds the page text a browser event keeps.
const pageTextMax = 4000

// authorizeButton is the hub's "Authorize access" page's submit button.
const authorizeButton = `input[type="submit"][value="Authorize"]`

// BrowserStep is a browser step: a hub user at a real browser (headless
// Chromium, one fresh profile per user, logged in through the hub's login
// form on first use). Its actions run in this order: visit, fill, click,
// authorize, wait_text; each takes a screenshot into the artifacts and is
// recorded as a hub.browser event.
type BrowserStep struct {
	As string `yaml:"as"`
	// Password is typed into the login form on first use (default: none,
	// which DummyAuthenticator takes; PAM accounts need theirs).
	Password string `yaml:"password"`
	// Visit opens a path from the hub's root, as typed into the address
	// bar (/user/bob/, /services/authz/).
	Visit string `yaml:"visit"`
	// Fill types into fields: CSS selector -> text.
	Fill map[string]string `yaml:"fill"`
	// Click clicks an element (CSS selector), e.g. a[href="/user/bob/"].
	Click string `yaml:"click"`
	// Authorize waits for the hub's "Authorize access" page and answers
	// it (the hub asks on a user's first visit to a server not theirs);
	// the step fails if the page does not come.
	Authorize bool `yaml:"authorize"`
	// WaitText waits until the page shows the text; the step fails if it
	// does not within the browser's wait (30 s).
	WaitText string `yaml:"wait_text"`
}

func (b BrowserStep) String() string {
	var parts []string
	if b.Visit != "" {
		parts = append(parts, "visit "+b.Visit)
	}
	for _, sel := range slices.Sorted(maps.Keys(b.Fill)) {
		parts = append(parts, "fill "+sel)
	}
	if b.Click != "" {
		parts = append(parts, "click "+b.Click)
	}
	if b.Authorize {
		parts = append(parts, "authorize")
	}
	if b.WaitText != "" {
		parts = append(parts, fmt.Sprintf("wait for %q", b.WaitText))
	}
	return fmt.Sprintf("browser as %s: %s", b.As, strings.Join(parts, ", "))
}

func parseBrowser(h *Config, v scenario.Value) (scenario.Action, error) {
	var b BrowserStep
	if err := v.Decode(&b); err != nil {
		return nil, err
	}
	if !slices.Contains(h.Users, b.As) {
		return nil, v.Where().Key("as").Errorf("browser: as %q: want one of the hub users %v", b.As, h.Users)
	}
	if b.Visit == "" && len(b.Fill) == 0 && b.Click == "" && !b.Authorize && b.WaitText == "" {
		return nil, v.Where().Errorf("browser: give at least one of visit: /PATH, fill: {SELECTOR: TEXT}, click: SELECTOR, authorize: true, wait_text: TEXT")
	}
	if b.Visit != "" && !strings.HasPrefix(b.Visit, "/") {
		return nil, v.Where().Key("visit").Errorf("browser: visit %q: a path from the hub's root, starting with /", b.Visit)
	}
	return b, nil
}

// ViewableCondition holds when a site-authorization service's list
// offers each user exactly the users given (in any order): viewable:
// {alice: [bob], carol: []}. Each user is logged in through the hub's
// login form (Password, default none).
type ViewableCondition struct {
	Viewable map[string][]string `yaml:"viewable"`
	Service  string              `yaml:"service"`
	Password string              `yaml:"password"`
}

func (c ViewableCondition) String() string {
	var parts []string
	for _, u := range slices.Sorted(maps.Keys(c.Viewable)) {
		parts = append(parts, fmt.Sprintf("%s sees [%s]", u, strings.Join(c.Viewable[u], " ")))
	}
	return fmt.Sprintf("service %s lists: %s", c.Service, strings.Join(parts, "; "))
}

func parseViewable(h *Config, v scenario.Value) (scenario.Predicate, error) {
	var c ViewableCondition
	if err := v.Decode(&c); err != nil {
		return nil, err
	}
	if c.Service == "" {
		c.Service = hub.DefaultAuthzService
	}
	if _, ok := h.service(c.Service); !ok {
		return nil, v.Where().Key("service").Errorf("viewable: service %q is not one of system.hub.services", c.Service)
	}
	if len(c.Viewable) == 0 {
		return nil, v.Where().Key("viewable").Errorf("viewable: want {USER: [USERS whose servers the list offers]}")
	}
	for u, owners := range c.Viewable {
		for _, name := range append([]string{u}, owners...) {
			if !slices.Contains(h.Users, name) {
				return nil, v.Where().Key("viewable").Key(u).Errorf("viewable: %q is not one of the hub users %v", name, h.Users)
			}
		}
	}
	return c, nil
}

// PageExpectation is what a user's browser showed: some page the
// browser steps of As recorded (at a path starting with At, when given)
// showed the text PageShows, and had the HTTP status Status (when given).
type PageExpectation struct {
	PageShows string `yaml:"page_shows"`
	As        string `yaml:"as"`
	At        string `yaml:"at"`
	Status    int    `yaml:"status"`
}

func parsePageExpectation(h *Config, v scenario.Value) (check.Expectation, error) {
	e := &PageExpectation{}
	if err := v.Decode(e); err != nil {
		return nil, err
	}
	if strings.TrimSpace(e.PageShows) == "" {
		return nil, v.Where().Key("page_shows").Errorf("page_shows: the text the page shows")
	}
	if !slices.Contains(h.Users, e.As) {
		return nil, v.Where().Key("as").Errorf("page_shows: as %q: want the hub user whose browser showed it, one of %v", e.As, h.Users)
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		return nil, v.Where().Key("status").Errorf("page_shows: status %d: an HTTP status (100..599)", e.Status)
	}
	return e, nil
}

// Pending implements check.Expectation: pages are recorded by steps, so
// there is nothing to wait for once the timeline is done.
func (e *PageExpectation) Pending(check.Run, time.Time) bool { return false }

// Evaluate implements check.Expectation.
func (e *PageExpectation) Evaluate(run check.Run) check.Result {
	var seen []string
	for _, ev := range run.Events {
		if ev.Kind != BrowserEvent || ev.Fields["as"] != e.As {
			continue
		}
		u, _ := ev.Fields["url"].(string)
		if e.At != "" && !strings.HasPrefix(u, e.At) {
			continue
		}
		status := toInt(ev.Fields["status"])
		text, _ := ev.Fields["text"].(string)
		shot, _ := ev.Fields["shot"].(string)
		seen = append(seen, fmt.Sprintf("%s (%d)", u, status))
		if strings.Contains(text, e.PageShows) && (e.Status == 0 || status == e.Status) {
			return check.Result{OK: true, Detail: fmt.Sprintf("%s's browser showed %q at %s (%d) at +%s; screenshot %s", e.As, e.PageShows, u, status, check.Since(run.Start, ev.Time), shot)}
		}
	}
	want := fmt.Sprintf("%q", e.PageShows)
	if e.Status != 0 {
		want += fmt.Sprintf(" with status %d", e.Status)
	}
	return check.Result{Detail: fmt.Sprintf("no page of %s's browser showed %s; pages: %s", e.As, want, check.OrNone(seen))}
}

func toInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

// needsBrowser reports whether the scenario has browser steps.
func needsBrowser(f *scenario.File) bool {
	for _, st := range f.Timeline {
		if _, ok := st.Action.(BrowserStep); ok {
			return true
		}
	}
	return false
}

// checkBrowser makes a scenario with browser steps skip, with the
// reason, where Chromium is not installed.
func checkBrowser(f *scenario.File) error {
	if !needsBrowser(f) {
		return nil
	}
	if _, err := browser.Find(); err != nil {
		return &runner.SkipError{Reason: "the scenario's browser steps need Chromium: " + err.Error()}
	}
	return nil
}

// shotsDir is where the browsers' screenshots go (copied into the
// artifacts as hub/screenshots).
func (s *System) shotsDir() string { return filepath.Join(s.dir, "screenshots") }

// userBrowser is one user's Chromium, logged in.
type userBrowser struct {
	b     *hub.Browser
	close func()
}

// browserFor returns user's browser, starting it and logging in through
// the hub's login form on first use.
func (s *System) browserFor(ctx context.Context, user, password string) (*hub.Browser, error) {
	s.mu.Lock()
	ub, ok := s.browsers[user]
	h := s.hub
	s.mu.Unlock()
	if ok {
		return ub.b, nil
	}
	b, closeFn, err := hub.OpenBrowser(context.WithoutCancel(ctx), h.URL(), filepath.Join(s.shotsDir(), user))
	if err != nil {
		if errors.Is(err, browser.ErrNoChromium) {
			return nil, &runner.SkipError{Reason: err.Error()}
		}
		return nil, fmt.Errorf("browser for %s: %w", user, err)
	}
	s.mu.Lock()
	s.browsers[user] = &userBrowser{b: b, close: closeFn}
	s.mu.Unlock()
	// next=/hub/home: the hub's default after a login is to spawn the
	// user's server, which the scenario did not ask for.
	err = b.Visit(ctx, "/hub/login?next="+url.QueryEscape("/hub/home"))
	if err == nil {
		err = b.Type(ctx, "#username_input", user)
	}
	if err == nil && password != "" {
		err = b.Type(ctx, "#password_input", password)
	}
	if err == nil {
		err = b.Click(ctx, "#login_submit")
	}
	if err == nil {
		_, err = b.WaitText(ctx, "Logout")
	}
	s.recordPage(ctx, b, user, "login", "/hub/login", err)
	if err != nil {
		return nil, fmt.Errorf("browser login as %s: %w", user, err)
	}
	return b, nil
}

// browse performs a browser step.
func (s *System) browse(ctx context.Context, st BrowserStep) error {
	b, err := s.browserFor(ctx, st.As, st.Password)
	if err != nil {
		return err
	}
	act := func(action, target string, err error) error {
		s.recordPage(ctx, b, st.As, action, target, err)
		if err != nil {
			return fmt.Errorf("browser as %s: %s %s: %w", st.As, action, target, err)
		}
		return nil
	}
	if st.Visit != "" {
		if err := act("visit", st.Visit, b.Visit(ctx, st.Visit)); err != nil {
			return err
		}
	}
	for _, sel := range slices.Sorted(maps.Keys(st.Fill)) {
		if err := act("fill", sel, b.Type(ctx, sel, st.Fill[sel])); err != nil {
			return err
		}
	}
	if st.Click != "" {
		if err := act("click", st.Click, b.Click(ctx, st.Click)); err != nil {
			return err
		}
	}
	if st.Authorize {
		loc, err := s.awaitAuthorizePage(ctx, b)
		if err == nil {
			err = b.Click(ctx, authorizeButton)
		}
		if err := act("authorize", loc, err); err != nil {
			return err
		}
	}
	if st.WaitText != "" {
		_, err := b.WaitText(ctx, st.WaitText)
		if err := act("wait_text", st.WaitText, err); err != nil {
			return err
		}
	}
	return nil
}

// authorizeWait bounds the wait for the hub's Authorize access page.
const authorizeWait = 30 * time.Second

// awaitAuthorizePage waits until the browser is on the hub's "Authorize
// access" page (a click or visit may still be going through the hub's
// OAuth redirects) and returns its address.
func (s *System) awaitAuthorizePage(ctx context.Context, b *hub.Browser) (string, error) {
	deadline := time.Now().Add(authorizeWait)
	for {
		loc, err := b.Location(ctx)
		if err == nil && strings.HasPrefix(loc, "/hub/api/oauth2/authorize") {
			return loc, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return loc, fmt.Errorf("the hub's Authorize access page did not come within %s (the browser is at %s: the hub asks only on a user's first visit to a server not theirs)", authorizeWait, loc)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// recordPage takes a screenshot and records what the page shows as a
// hub.browser event.
func (s *System) recordPage(ctx context.Context, b *hub.Browser, user, action, target string, stepErr error) {
	fields := map[string]any{"as": user, "action": action, "target": target, "ok": stepErr == nil}
	shot, err := b.Screenshot(ctx, user+"-"+action)
	if err == nil {
		if rel, rerr := filepath.Rel(s.dir, shot.Path); rerr == nil {
			fields["shot"] = filepath.Join("hub", rel)
		}
		fields["url"] = shot.URL
	}
	if text, err := b.Text(ctx); err == nil {
		text = strings.Join(strings.Fields(text), " ")
		if len(text) > pageTextMax {
			text = text[:pageTextMax]
		}
		fields["text"] = text
	}
	status, err := b.Status(ctx)
	if err == nil {
		fields["status"] = status
	}
	msg := fmt.Sprintf("browser as %s: %s %s", user, action, target)
	if u, ok := fields["url"].(string); ok {
		msg += fmt.Sprintf(": at %s (%v)", u, fields["status"])
	}
	if stepErr != nil {
		msg += ": " + stepErr.Error()
		fields["error"] = stepErr.Error()
	}
	if sh, ok := fields["shot"].(string); ok {
		msg += "; screenshot " + sh
	}
	s.log.Record(events.Event{Kind: BrowserEvent, Msg: msg, Fields: fields})
}

// closeBrowsers ends every user's browser.
func (s *System) closeBrowsers() {
	s.mu.Lock()
	bs := s.browsers
	s.browsers = map[string]*userBrowser{}
	s.mu.Unlock()
	for _, ub := range bs {
		ub.close()
	}
}

// holdsViewable reads each user's list from the service (logged in
// through the hub's login form, sessions kept) and compares.
func (s *System) holdsViewable(ctx context.Context, c *hub.Client, cond ViewableCondition) (bool, error) {
	all := true
	for _, u := range slices.Sorted(maps.Keys(cond.Viewable)) {
		key := cond.Service + "/" + u
		s.mu.Lock()
		sess := s.sessions[key]
		s.mu.Unlock()
		if sess == nil {
			var err error
			if sess, err = c.Login(ctx, u, cond.Password); err != nil {
				return false, fmt.Errorf("viewable: %w", err)
			}
			s.mu.Lock()
			s.sessions[key] = sess
			s.mu.Unlock()
		}
		got, _, page, err := sess.Viewable(ctx, cond.Service)
		if err != nil {
			// The service may not be up or synced yet: not held, the
			// wait goes on; its message says what the page was.
			if page != nil {
				s.o.logger.Debug("viewable: no list yet", "as", u, "err", err)
				return false, nil
			}
			return false, fmt.Errorf("viewable: %w", err)
		}
		s.noteViewable(cond.Service, u, got)
		want := slices.Clone(cond.Viewable[u])
		have := slices.Clone(got)
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(want, have) {
			all = false
		}
	}
	return all, nil
}

// noteViewable records a user's list when it differs from the last one
// recorded.
func (s *System) noteViewable(service, user string, users []string) {
	list := strings.Join(users, ",")
	key := service + "/" + user
	s.mu.Lock()
	last, ok := s.lists[key]
	s.lists[key] = list
	s.mu.Unlock()
	if ok && last == list {
		return
	}
	s.log.Record(events.Event{Kind: ViewableEvent, Msg: fmt.Sprintf("service %s offers %s: [%s]", service, user, strings.Join(users, " ")),
		Fields: map[string]any{"service": service, "as": user, "users": list}})
}

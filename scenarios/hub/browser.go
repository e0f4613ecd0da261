package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jobsim/jobsim/internal/browser"
)

// Browser is a person at a real browser (headless Chromium, see
// internal/browser) using a hub: it visits pages, types into fields,
// clicks, waits for text, and keeps a screenshot of each step it is told
// to record. Its verbs are what scenario steps can act with: visit, type,
// select, click, wait for text, screenshot.
type Browser struct {
	ctx   context.Context // chromedp's, for the browser's lifetime
	base  string
	shots string
	wait  time.Duration

	mu   sync.Mutex
	n    int
	list []Shot
}

// Shot is one screenshot a Browser took: its name, file and the page it
// showed.
type Shot struct {
	Name string
	Path string
	URL  string
}

// BrowserOption configures OpenBrowser.
type BrowserOption func(*browserConfig)

type browserConfig struct {
	wait time.Duration
	opts []browser.Option
}

// WithBrowserWait bounds each step's wait for a page, a field or a text
// (default 30 s; the caller's context also applies).
func WithBrowserWait(d time.Duration) BrowserOption {
	return func(c *browserConfig) { c.wait = d }
}

// WithBrowserOptions passes options to internal/browser.Start (window
// size).
func WithBrowserOptions(opts ...browser.Option) BrowserOption {
	return func(c *browserConfig) { c.opts = append(c.opts, opts...) }
}

// OpenBrowser starts Chromium, with a fresh profile, for the hub at
// baseURL, saving screenshots into shotsDir (created). Close ends the
// browser. Where Chromium is absent the error wraps browser.ErrNoChromium.
func OpenBrowser(ctx context.Context, baseURL, shotsDir string, opts ...BrowserOption) (*Browser, func(), error) {
	c := browserConfig{wait: 30 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	if err := os.MkdirAll(shotsDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("browser: screenshots: %w", err)
	}
	bctx, cancel, err := browser.Start(ctx, c.opts...)
	if err != nil {
		return nil, nil, err
	}
	return &Browser{ctx: bctx, base: strings.TrimRight(baseURL, "/"), shots: shotsDir, wait: c.wait}, cancel, nil
}

// step runs actions with the step's deadline: the browser's, the
// caller's and the step wait, whichever comes first.
func (b *Browser) step(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) error {
	sctx, cancel := context.WithTimeout(b.ctx, b.wait)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if err := chromedp.Do(sctx, actions...); err != nil {
		return fmt.Errorf("browser: %s: %w", what, err)
	}
	return nil
}

// Visit opens path (from the hub's root, e.g. "/user/bob/"), as typing it
// into the address bar does, and waits for the page it ends on (after
// redirects) to load.
func (b *Browser) Visit(ctx context.Context, path string) error {
	return b.step(ctx, "visit "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// Type types text into the field sel (a CSS selector) once it is visible.
func (b *Browser) Type(ctx context.Context, sel, text string) error {
	return b.step(ctx, fmt.Sprintf("type into %s", sel), chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// Select chooses value in the select sel.
func (b *Browser) Select(ctx context.Context, sel, value string) error {
	return b.step(ctx, fmt.Sprintf("select %s in %s", value, sel), chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value))
}

// Click clicks the element sel once it is visible.
func (b *Browser) Click(ctx context.Context, sel string) error {
	return b.step(ctx, "click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// Text is what the page shows (document.body.innerText).
func (b *Browser) Text(ctx context.Context) (string, error) {
	sctx, cancel := context.WithTimeout(b.ctx, b.wait)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	return chromedp.Run(sctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

// navigationStatus is the main document's HTTP status, as Chromium's
// Navigation Timing reports it (responseStatus; 0 where it does not).
const navigationStatus = `(() => { const e = performance.getEntriesByType("navigation")[0]; return e && e.responseStatus ? e.responseStatus : 0 })()`

// Status is the HTTP status the page's document came with (the last
// response of its navigation: 403 for the hub's refusal), 0 where the
// browser does not say.
func (b *Browser) Status(ctx context.Context) (int, error) {
	sctx, cancel := context.WithTimeout(b.ctx, b.wait)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	return chromedp.Run(sctx, chromedp.Evaluate[int](navigationStatus))
}

// Location is the page's address, from the hub's root ("/hub/login").
func (b *Browser) Location(ctx context.Context) (string, error) {
	sctx, cancel := context.WithTimeout(b.ctx, b.wait)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	loc, err := chromedp.Run(sctx, chromedp.Location())
	return strings.TrimPrefix(loc, b.base), err
}

// WaitText waits until the page shows text (through navigations: a
// page that is being replaced is asked again), and returns the address it
// was seen at.
func (b *Browser) WaitText(ctx context.Context, text string) (string, error) {
	deadline := time.Now().Add(b.wait)
	var last string
	for {
		t, err := b.Text(ctx)
		if err == nil && strings.Contains(t, text) {
			return b.Location(ctx)
		}
		if err == nil {
			last = t
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			loc, _ := b.Location(context.WithoutCancel(ctx))
			return loc, fmt.Errorf("browser: waited %v for %q; %s shows %q", b.wait, text, loc, strings.Join(strings.Fields(last), " "))
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var shotName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Screenshot saves what the window shows as <n>-<name>.png in the
// screenshots folder.
func (b *Browser) Screenshot(ctx context.Context, name string) (Shot, error) {
	sctx, cancel := context.WithTimeout(b.ctx, b.wait)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		return Shot{}, fmt.Errorf("browser: screenshot %s: %w", name, err)
	}
	loc, _ := b.Location(ctx)
	b.mu.Lock()
	b.n++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, shotName.ReplaceAllString(name, "_")))
	b.mu.Unlock()
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return Shot{}, fmt.Errorf("browser: screenshot %s: %w", name, err)
	}
	s := Shot{Name: name, Path: path, URL: loc}
	b.mu.Lock()
	b.list = append(b.list, s)
	b.mu.Unlock()
	return s, nil
}

// Shots lists the screenshots taken, in order.
func (b *Browser) Shots() []Shot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Shot(nil), b.list...)
}

// LoginForm fills in the hub's login form (/hub/login) and submits it, as
// a person does; where the hub sends the browser next is the caller's to
// wait for.
func (b *Browser) LoginForm(ctx context.Context, user, password string) error {
	if err := b.Visit(ctx, "/hub/login"); err != nil {
		return err
	}
	if err := b.Type(ctx, "#username_input", user); err != nil {
		return err
	}
	if err := b.Type(ctx, "#password_input", password); err != nil {
		return err
	}
	return b.Click(ctx, "#login_submit")
}

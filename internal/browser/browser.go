// Package browser starts the real browser the project tests pages in:
// Debian's Chromium, headless, driven over the DevTools protocol with
// chromedp. No browser is ever downloaded; where Chromium is not installed,
// Start says so and how to install it, so that a test can skip with that
// reason.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/chromedp/chromedp"
)

// ErrNoChromium is wrapped by Start's error when no Chromium is installed.
var ErrNoChromium = errors.New("no Chromium: install Debian's chromium (apt-get install chromium, or make setup), or set JOBSIM_CHROMIUM to a Chromium binary")

// Find returns the Chromium to use: $JOBSIM_CHROMIUM, else the first of
// Debian's names on PATH.
func Find() (string, error) {
	if p := os.Getenv("JOBSIM_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("JOBSIM_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Option configures Start.
type Option func(*config)

type config struct {
	width, height int
}

// WithWindow sets the window size in CSS pixels (default 1366x900).
func WithWindow(w, h int) Option { return func(c *config) { c.width, c.height = w, h } }

// Start launches headless Chromium with a fresh profile for ctx's lifetime
// and returns a context whose chromedp actions run in its first tab. cancel
// closes the browser and waits for it to exit, removing its profile.
func Start(ctx context.Context, opts ...Option) (context.Context, context.CancelFunc, error) {
	c := config{width: 1366, height: 900}
	for _, o := range opts {
		o(&c)
	}
	bin, err := Find()
	if err != nil {
		return nil, nil, err
	}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.WindowSize(c.width, c.height),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, allocOpts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		bcancel()
		acancel()
		return nil, nil, fmt.Errorf("browser: start %s: %w", bin, err)
	}
	return bctx, func() { bcancel(); acancel() }, nil
}

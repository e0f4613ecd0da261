package hub

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/browser"
)

// BenchmarkHubStart measures Start (launch to GET /hub/api/ answering
// through the proxy) and Close (SIGTERM to all processes gone).
//
//	go test -run '^$' -bench HubStart -benchtime 5x ./scenarios/hub
func BenchmarkHubStart(b *testing.B) {
	needHub(b)
	ctx := context.Background()
	var start, stop time.Duration
	for b.Loop() {
		h, err := Start(ctx, WithSpawner(standIn()))
		if err != nil {
			b.Fatal(err)
		}
		start += h.StartupTime()
		t0 := time.Now()
		if err := h.Close(); err != nil {
			b.Fatal(err)
		}
		stop += time.Since(t0)
	}
	b.ReportMetric(float64(start.Milliseconds())/float64(b.N), "start-ms")
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "close-ms")
}

// BenchmarkSpawnStop measures, on one hub, a user's server from the start
// request to ready and from the stop request to gone, for the stand-in
// (`jobsim uiserver`) and for Debian's jupyterhub-singleuser.
//
//	go test -run '^$' -bench SpawnStop -benchtime 10x ./scenarios/hub
func BenchmarkSpawnStop(b *testing.B) {
	needHub(b)
	servers := map[string]Spawner{"standin": standIn()}
	if bin, err := exec.LookPath("jupyterhub-singleuser"); err == nil {
		sp := Spawner{Class: SimpleLocalProcessSpawner, Cmd: []string{bin}, StartTimeout: 60 * time.Second, HTTPTimeout: 60 * time.Second}
		if os.Geteuid() == 0 {
			sp.Args = []string{"--allow-root"}
		}
		servers["singleuser"] = sp
	}
	for _, name := range []string{"standin", "singleuser"} {
		sp, ok := servers[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			h := startHub(b, WithSpawner(sp), WithUsers("alice"))
			c, err := NewClient(h.URL(), h.Token(), WithPollInterval(10*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var spawn, stop time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := c.StartServer(ctx, "alice"); err != nil {
					b.Fatal(err)
				}
				if _, err := c.WaitReady(ctx, "alice"); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := c.StopServer(ctx, "alice"); err != nil {
					b.Fatal(err)
				}
				if err := c.WaitStopped(ctx, "alice"); err != nil {
					b.Fatal(err)
				}
				spawn += t1.Sub(t0)
				stop += time.Since(t1)
			}
			b.ReportMetric(float64(spawn.Milliseconds())/float64(b.N), "spawn-ms")
			b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "stop-ms")
		})
	}
}

// BenchmarkBrowserLoginSpawn measures what a person waits for in
// Chromium: from submitting the hub's login form, through the spawn form,
// to their own server's page (the stand-in, logged in through the hub's
// OAuth). Between rounds the server is stopped and the browser logs out.
//
//	go test -run '^$' -bench BrowserLoginSpawn -benchtime 5x ./scenarios/hub
func BenchmarkBrowserLoginSpawn(b *testing.B) {
	needHub(b)
	sp := standIn()
	sp.OptionsForm = []FormField{{Name: "memory", Label: "Memory", Choices: []string{"1gb", "2gb"}, Default: "1gb"}}
	h := startHub(b, WithSpawner(sp), WithUsers("alice"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	br, closeBrowser, err := OpenBrowser(ctx, h.URL(), b.TempDir())
	if errors.Is(err, browser.ErrNoChromium) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer closeBrowser()
	c := h.Client()
	var total time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := br.LoginForm(ctx, "alice", "any"); err != nil {
			b.Fatal(err)
		}
		if _, err := br.WaitText(ctx, "Server Options"); err != nil {
			b.Fatal(err)
		}
		if err := br.Click(ctx, `#spawn_form input[type="submit"]`); err != nil {
			b.Fatal(err)
		}
		if _, err := br.WaitText(ctx, "UI server of alice"); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		if _, err := c.StopServer(ctx, "alice"); err != nil {
			b.Fatal(err)
		}
		if err := c.WaitStopped(ctx, "alice"); err != nil {
			b.Fatal(err)
		}
		if err := br.Visit(ctx, "/hub/logout"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "login-spawn-ms")
}

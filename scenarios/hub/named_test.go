package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNamedServers runs a user's default server and two named servers on
// a real hub with named_server_limit_per_user 2: all three are ready, each
// reached through the proxy at its own prefix; a third named server is
// refused with the hub's 400 and message; a stopped named server still
// counts towards the limit until it is removed; stopping one server
// leaves the others running.
func TestNamedServers(t *testing.T) {
	h := startHub(t, WithSpawner(standIn()), WithUsers("alice"), WithNamedServers(2))
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)

	servers := []string{"", "lab", "pbs"}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, name := range servers {
		wg.Go(func() {
			if _, err := c.StartNamedServer(ctx, "alice", name, nil); err != nil {
				errs[i] = fmt.Errorf("start %q: %w", name, err)
				return
			}
			st, err := c.WaitNamedReady(ctx, "alice", name)
			if err != nil {
				errs[i] = fmt.Errorf("wait for %q: %w", name, err)
				return
			}
			if want := "/user/alice/" + name; strings.TrimSuffix(st.URL, "/") != strings.TrimSuffix(want, "/") {
				errs[i] = fmt.Errorf("server %q at %q, want %s/", name, st.URL, strings.TrimSuffix(want, "/"))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	all, err := c.ServerStatuses(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || !all[""].Ready || !all["lab"].Ready || !all["pbs"].Ready {
		t.Fatalf("servers %+v: want the default, lab and pbs ready", all)
	}
	if got := len(standIns(t, h)); got != 3 {
		t.Errorf("%d stand-in server processes, want 3", got)
	}
	// Each server answers at its own prefix through the proxy.
	for _, name := range servers {
		path := strings.TrimPrefix(name+"/", "/")
		status, body, err := c.ServerGet(ctx, "alice", path)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /user/alice/%s: %d %s %v", path, status, body, err)
		}
		var root struct{ Prefix string }
		if err := json.Unmarshal(body, &root); err != nil {
			t.Fatalf("GET /user/alice/%s: %s: %v", path, body, err)
		}
		if want := "/user/alice/" + path; root.Prefix != want {
			t.Errorf("GET /user/alice/%s reached the server with prefix %q, want %q", path, root.Prefix, want)
		}
	}
	evs, err := c.NamedProgressEvents(ctx, "alice", "lab")
	if err != nil || len(evs) == 0 || !evs[len(evs)-1].Ready || evs[len(evs)-1].URL != "/user/alice/lab/" {
		t.Errorf("progress of lab: %+v, %v: want a last event ready at /user/alice/lab/", evs, err)
	}

	refused := func(when string) {
		t.Helper()
		_, err := c.StartNamedServer(ctx, "alice", "extra", nil)
		if !IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "already has the maximum of 2 named servers") {
			t.Fatalf("%s: a third named server: %v, want the hub's 400 \"... already has the maximum of 2 named servers ...\"", when, err)
		}
	}
	refused("with two named servers running")

	res, err := c.StopNamedServer(ctx, "alice", "lab")
	if err != nil {
		t.Fatal(err)
	}
	if res == StopPending {
		if err := c.WaitNamedStopped(ctx, "alice", "lab"); err != nil {
			t.Fatal(err)
		}
	}
	all, err = c.ServerStatuses(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all["lab"]; ok || !all[""].Ready || !all["pbs"].Ready {
		t.Fatalf("after stopping lab: servers %+v, want the default and pbs ready, lab gone", all)
	}
	if status, _, _ := c.ServerGet(ctx, "alice", "pbs/"); status != http.StatusOK {
		t.Errorf("pbs after lab stopped: GET answered %d, want 200", status)
	}
	// JupyterHub 3 forgets a stopped named server's spawner wrapper: its
	// progress is a 404 (a stopped default server's is a 400).
	if _, err := c.NamedProgressEvents(ctx, "alice", "lab"); !IsStatus(err, http.StatusNotFound) {
		t.Errorf("progress of stopped lab: %v, want 404", err)
	}
	// A stopped named server keeps its place under the limit.
	refused("with lab stopped but not removed")

	if _, err := c.RemoveNamedServer(ctx, "alice", ""); !IsStatus(err, http.StatusBadRequest) {
		t.Errorf("remove the default server: %v, want the hub's 400", err)
	}
	if _, err := c.RemoveNamedServer(ctx, "alice", "lab"); err != nil {
		t.Fatalf("remove lab: %v", err)
	}
	if _, err := c.StopNamedServer(ctx, "alice", "lab"); !IsStatus(err, http.StatusNotFound) {
		t.Errorf("stop removed lab: %v, want 404", err)
	}
	if _, err := c.StartNamedServer(ctx, "alice", "extra", nil); err != nil {
		t.Fatalf("a named server after removing one: %v", err)
	}
	if _, err := c.WaitNamedReady(ctx, "alice", "extra"); err != nil {
		t.Fatal(err)
	}
}

// TestNamedServersNotEnabled: a hub without allow_named_servers refuses a
// named server with 400 and its message; the default server still works
// through the same code path.
func TestNamedServersNotEnabled(t *testing.T) {
	h := startHub(t, WithSpawner(standIn()), WithUsers("alice"))
	c := h.Client()
	ctx := testCtx(t, time.Minute)
	_, err := c.StartNamedServer(ctx, "alice", "lab", nil)
	if !IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "Named servers are not enabled") {
		t.Fatalf("named server on a hub without them: %v, want 400 \"Named servers are not enabled.\"", err)
	}
	if _, err := c.StartNamedServer(ctx, "alice", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitNamedReady(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
}

package hub

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/sim/uiserver"
)

// spawnTimes are one user's measured durations.
type spawnTimes struct {
	spawn, stop time.Duration
}

// TestSpawnThreeUsersAtOnce starts, checks and stops three users' servers
// concurrently, with SimpleLocalProcessSpawner (any user names) and, when
// run as root, LocalProcessSpawner for three Unix accounts every Debian
// has (it switches to their uid).
func TestSpawnThreeUsersAtOnce(t *testing.T) {
	t.Run("SimpleLocalProcessSpawner", func(t *testing.T) {
		spawnThree(t, SimpleLocalProcessSpawner, []string{"alice", "bob", "carol"})
	})
	t.Run("LocalProcessSpawner", func(t *testing.T) {
		users := []string{"daemon", "bin", "sys"}
		if os.Geteuid() != 0 {
			t.Skip("LocalProcessSpawner switches to the users' uids: run as root")
		}
		for _, u := range users {
			if _, err := user.Lookup(u); err != nil {
				t.Skipf("Unix user %s missing (%v): LocalProcessSpawner needs the users to exist", u, err)
			}
		}
		spawnThree(t, LocalProcessSpawner, users)
	})
}

func spawnThree(t *testing.T, class string, users []string) {
	needHub(t)
	rec := recordFile(t)
	sp := standIn()
	sp.Class = class
	sp.Environment = map[string]string{uiserver.EnvRecord: rec}
	h := startHub(t, WithSpawner(sp), WithUsers(users...))
	t.Logf("hub start to ready: %v", h.StartupTime())
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)

	times := make([]spawnTimes, len(users))
	var wg sync.WaitGroup
	errs := make([]error, len(users))
	for i, u := range users {
		wg.Go(func() {
			begin := time.Now()
			res, err := c.StartServer(ctx, u)
			if err != nil {
				errs[i] = fmt.Errorf("start %s: %w", u, err)
				return
			}
			if res != Started && res != StartPending {
				errs[i] = fmt.Errorf("start %s: %v, want started or pending", u, res)
				return
			}
			st, err := c.WaitReady(ctx, u)
			if err != nil {
				errs[i] = fmt.Errorf("wait ready %s: %w", u, err)
				return
			}
			times[i].spawn = time.Since(begin)
			if st.URL != "/user/"+u+"/" {
				errs[i] = fmt.Errorf("%s ready at %q, want /user/%s/", u, st.URL, u)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	for _, u := range users {
		evs, err := c.ProgressEvents(ctx, u)
		if err != nil {
			t.Fatalf("progress of %s: %v", u, err)
		}
		if last := evs[len(evs)-1]; !last.Ready || last.Progress != 100 || last.URL != "/user/"+u+"/" {
			t.Errorf("last progress event of %s: %+v, want ready at 100%% with its URL", u, last)
		}
		status, body, err := c.ServerGet(ctx, u, "api")
		if err != nil || status != 200 || !strings.Contains(string(body), `"version"`) {
			t.Errorf("GET /user/%s/api through the proxy: %d %s %v, want 200 with a version", u, status, body, err)
		}
		if status, body, _ := c.ServerGet(ctx, u, "api/status"); status != 200 {
			t.Errorf("GET /user/%s/api/status with the driver's token: %d %s, want 200", u, status, body)
		}
		if res, err := c.StartServer(ctx, u); err != nil || res != AlreadyRunning {
			t.Errorf("second start of %s: %v %v, want already running", u, res, err)
		}
		if class == LocalProcessSpawner {
			checkRunsAs(t, c, u)
		}
	}

	stopErrs := make([]error, len(users))
	for i, u := range users {
		wg.Go(func() {
			begin := time.Now()
			if _, err := c.StopServer(ctx, u); err != nil {
				stopErrs[i] = fmt.Errorf("stop %s: %w", u, err)
				return
			}
			if err := c.WaitStopped(ctx, u); err != nil {
				stopErrs[i] = err
				return
			}
			times[i].stop = time.Since(begin)
		})
	}
	wg.Wait()
	if err := errors.Join(stopErrs...); err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		t.Logf("%s (%s): spawn to ready %v, stop %v", u, class, times[i].spawn, times[i].stop)
		if status, _, _ := c.ServerGet(ctx, u, "api"); status == 200 {
			t.Errorf("GET /user/%s/api after stop: 200, want the hub's redirect", u)
		}
	}
	if left := standIns(t, h); len(left) > 0 {
		t.Errorf("stand-in servers still running after stop: %v", left)
	}

	// The stand-ins recorded the driver's requests with its token.
	seen := map[string]bool{}
	for _, r := range readRecords(t, rec) {
		if r.Path == r.Server+"api/status" && r.Caller == DriverService && r.CallerKind == "service" && r.Token == h.Token() && r.TokenSource == uiserver.TokenFromHeader {
			seen[r.Server] = true
		}
	}
	for _, u := range users {
		if !seen["/user/"+u+"/"] {
			t.Errorf("no record of the driver's api/status request on %s's server", u)
		}
	}
}

// checkRunsAs checks that the user's server process runs with the uid of
// the Unix user of that name.
func checkRunsAs(t *testing.T, c *Client, name string) {
	t.Helper()
	u, err := c.User(testCtx(t, 10*time.Second), name)
	if err != nil {
		t.Fatal(err)
	}
	pid, ok := u.Servers[""].State["pid"].(float64)
	if !ok {
		t.Fatalf("no pid in the spawner state of %s: %v", name, u.Servers[""].State)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", int(pid)))
	if err != nil {
		t.Fatalf("server of %s: %v", name, err)
	}
	var uid string
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	want, _ := user.Lookup(name)
	if uid != want.Uid {
		t.Errorf("server of %s runs as uid %s, want %s", name, uid, want.Uid)
	}
}

func readRecords(t *testing.T, path string) []uiserver.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []uiserver.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r uiserver.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestNeverReadyServerFails: a server that answers 503, and one that never
// binds, fail within the shortened timeouts and are not left running.
// LocalProcessSpawner.start returns as soon as the process exists, so the
// bound that applies is http_timeout (the readiness wait); both are set.
func TestNeverReadyServerFails(t *testing.T) {
	const timeout = 3 * time.Second
	sp := standIn()
	sp.StartTimeout, sp.HTTPTimeout = timeout, timeout
	sp.UserEnvironment = map[string]map[string]string{
		"alice": {uiserver.EnvFault: uiserver.Faults{NeverReady: uiserver.NeverReadyHTTP}.String()},
		"bob":   {uiserver.EnvFault: uiserver.Faults{NeverReady: uiserver.NeverReadyNoBind}.String()},
	}
	h := startHub(t, WithSpawner(sp), WithUsers("alice", "bob"))
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)
	for _, u := range []string{"alice", "bob"} {
		begin := time.Now()
		res, err := c.StartServer(ctx, u)
		if err == nil {
			_, err = c.WaitReady(ctx, u)
		}
		took := time.Since(begin)
		var failed *SpawnFailedError
		if !errors.As(err, &failed) {
			t.Fatalf("%s: start %v, error %v; want a *SpawnFailedError", u, res, err)
		}
		t.Logf("%s: failed after %v: %v", u, took, err)
		if !strings.Contains(failed.Message, "didn't respond in 3 seconds") {
			t.Errorf("%s: reason %q, want the hub's 'didn't respond in 3 seconds'", u, failed.Message)
		}
		// The hub's clock starts when the process exists, so allow some
		// jitter below; above, the hub's default of 30 s would be far off.
		if took < timeout/2 || took > timeout+15*time.Second {
			t.Errorf("%s: failed after %v, want about the shortened %v timeout", u, took, timeout)
		}
		if st, err := c.ServerStatus(ctx, u); err != nil || st.Active {
			t.Errorf("%s after the failure: %+v %v, want no server", u, st, err)
		}
	}
	waitNoStandIns(t, h, 15*time.Second)
}

// waitNoStandIns waits until the hub has no stand-in server process left.
func waitNoStandIns(t *testing.T, h *Hub, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := standIns(t, h)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stand-in servers still running %v later: %v", d, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCrashAfterStartIsNoticed: a server that exits on its own after it
// was ready is noticed by the hub's poll, with its exit status.
func TestCrashAfterStartIsNoticed(t *testing.T) {
	sp := standIn()
	sp.PollInterval = time.Second
	sp.UserEnvironment = map[string]map[string]string{
		"alice": {uiserver.EnvFault: uiserver.Faults{CrashAfter: 3 * time.Second, ExitCode: 3}.String()},
	}
	h := startHub(t, WithSpawner(sp), WithUsers("alice"))
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)
	if _, err := c.StartServer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	if err := c.WaitStopped(testCtx(t, 30*time.Second), "alice"); err != nil {
		t.Fatalf("the hub did not notice the crash: %v", err)
	}
	t.Logf("crash noticed %v after ready (crash at 3 s, poll every 1 s)", time.Since(ready))
	if log := h.LogTail(200); !strings.Contains(log, "User alice server stopped, with exit code: 3") {
		t.Errorf("hub log lacks %q", "User alice server stopped, with exit code: 3")
	}
	if status, _, _ := c.ServerGet(ctx, "alice", "api"); status == 200 {
		t.Error("GET /user/alice/api after the crash: 200, want no server")
	}
	// The hub can start it again.
	if _, err := c.StartServer(ctx, "alice"); err != nil {
		t.Fatalf("restart after crash: %v", err)
	}
	if _, err := c.WaitReady(ctx, "alice"); err != nil {
		t.Fatalf("restart after crash: %v", err)
	}
}

// TestSlowStartStillSucceeds: a server that binds 3 s late, within the
// hub's http_timeout, is ready.
func TestSlowStartStillSucceeds(t *testing.T) {
	const delay = 3 * time.Second
	sp := standIn()
	sp.UserEnvironment = map[string]map[string]string{
		"alice": {uiserver.EnvFault: uiserver.Faults{SlowStart: delay}.String()},
	}
	h := startHub(t, WithSpawner(sp), WithUsers("alice"))
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)
	begin := time.Now()
	res, err := c.StartServer(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitReady(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	t.Logf("slow start: %v (start answered %v), ready at %s", took, res, st.URL)
	if took < delay {
		t.Errorf("ready after %v, before the %v slow start", took, delay)
	}
	if status, _, err := c.ServerGet(ctx, "alice", "api"); status != 200 {
		t.Errorf("GET /user/alice/api: %d %v", status, err)
	}
}

// TestHTTPErrorsAfterReady: a server that passes the readiness check and
// then answers 502 is still "ready" to the hub, and its users get the 502
// through the proxy.
func TestHTTPErrorsAfterReady(t *testing.T) {
	sp := standIn()
	sp.UserEnvironment = map[string]map[string]string{
		"alice": {uiserver.EnvFault: uiserver.Faults{HTTPError: 502, HTTPErrorAfter: 1}.String()},
	}
	h := startHub(t, WithSpawner(sp), WithUsers("alice"))
	c := h.Client()
	ctx := testCtx(t, time.Minute)
	if _, err := c.StartServer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := c.ServerGet(ctx, "alice", "api"); status != http.StatusBadGateway || !strings.Contains(string(body), "http-error fault") {
		t.Errorf("GET /user/alice/api: %d %s, want the stand-in's 502", status, body)
	}
}

// TestCloseLeavesNoProcesses: Close stops the hub, its proxy, a ready
// server and a server still starting, and the hub does it by itself.
func TestCloseLeavesNoProcesses(t *testing.T) {
	needHub(t)
	sp := standIn()
	sp.UserEnvironment = map[string]map[string]string{
		"bob": {uiserver.EnvFault: uiserver.Faults{SlowStart: time.Hour}.String()},
	}
	ctx := testCtx(t, 2*time.Minute)
	h, err := Start(ctx, WithSpawner(sp), WithUsers("alice", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			h.Close()
		}
	})
	dir := h.Dir()
	c := h.Client()
	if _, err := c.StartServer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// bob's start answers 202 after 10 s of waiting; do not wait for it.
	go c.StartServer(ctx, "bob")
	deadline := time.Now().Add(20 * time.Second)
	for len(standIns(t, h)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("bob's server process never appeared; processes: %v", must(h.Processes()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	procs := must(h.Processes())
	t.Logf("before Close: %v", procs)
	if len(procs) != 4 {
		t.Errorf("%d processes, want 4 (hub, proxy, two servers): %v", len(procs), procs)
	}

	begin := time.Now()
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	t.Logf("Close took %v", time.Since(begin))
	if left := h.Leaked(); len(left) > 0 {
		t.Errorf("the hub left processes for Close to kill: %v", left)
	}
	if left := must(FindMarked(h.Marker())); len(left) > 0 {
		t.Errorf("processes left after Close: %v", left)
	}
	if left := processesMentioning(t, dir, jobsimBin+" uiserver", "configurable-http-proxy --ip 127.0.0.1 --port "+portOf(h.URL())); len(left) > 0 {
		t.Errorf("jupyterhub, proxy or server processes left after Close: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary dir %s still there after Close (%v)", dir, err)
	}
}

// TestCloseKillsWhatAKilledHubLeftBehind: when the hub itself dies
// without cleaning up, Close still leaves nothing running, and says what
// it had to kill.
func TestCloseKillsWhatAKilledHubLeftBehind(t *testing.T) {
	h := startHub(t, WithSpawner(standIn()), WithUsers("alice"))
	c := h.Client()
	ctx := testCtx(t, time.Minute)
	if _, err := c.StartServer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.exited
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var proxy, server bool
	for _, p := range h.Leaked() {
		proxy = proxy || strings.Contains(p.Cmdline, "configurable-http-proxy")
		server = server || strings.Contains(p.Cmdline, "uiserver")
	}
	if !proxy || !server {
		t.Errorf("Leaked() = %v, want the orphaned proxy and server", h.Leaked())
	}
	if left := must(FindMarked(h.Marker())); len(left) > 0 {
		t.Errorf("processes left after Close: %v", left)
	}
}

// processesMentioning lists live processes whose command line contains
// any of the given strings.
func processesMentioning(t *testing.T, needles ...string) []Process {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || zombie(pid) {
			continue
		}
		cl := cmdline(pid)
		for _, n := range needles {
			if n != "" && strings.Contains(cl, n) {
				out = append(out, Process{PID: pid, Cmdline: cl})
				break
			}
		}
	}
	return out
}

func portOf(url string) string { return url[strings.LastIndexByte(url, ':')+1:] }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestStartRejectsBadConfig: bad configurations are refused before
// anything runs, with the field named.
func TestStartRejectsBadConfig(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	bad := []struct {
		name string
		opts []Option
		want string
	}{
		{"no server command", nil, "Spawner.Cmd"},
		{"sub-second timeout", []Option{WithSpawner(Spawner{Cmd: []string{"x"}, HTTPTimeout: 500 * time.Millisecond})}, "Spawner.HTTPTimeout"},
		{"bad user name", []Option{WithSpawner(Spawner{Cmd: []string{"x"}}), WithUsers("al ice")}, `"al ice"`},
		{"bad trait key", []Option{WithSpawner(Spawner{Cmd: []string{"x"}}), WithTrait("slow_spawn_timeout", 0)}, "Class.trait"},
		{"driver service name taken", []Option{WithSpawner(Spawner{Cmd: []string{"x"}}), WithServices(Service{Name: DriverService, APIToken: "0123456789"})}, "driver's own"},
	}
	for _, b := range bad {
		if _, err := Start(ctx, b.opts...); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: Start error %v, want one mentioning %s", b.name, err, b.want)
		}
	}
	_, err := Start(ctx, WithSpawner(Spawner{Cmd: []string{"x"}}), WithCommand("/nonexistent/jupyterhub"))
	if !errors.Is(err, ErrNotInstalled) {
		t.Errorf("missing command: %v, want ErrNotInstalled", err)
	}

}

// TestStartReportsAHubDyingAtStartup: a hub that exits at startup is
// reported at once with its log, and leaves nothing behind.
func TestStartReportsAHubDyingAtStartup(t *testing.T) {
	needHub(t)
	ctx := testCtx(t, time.Minute)
	dir := t.TempDir()
	begin := time.Now()
	_, err := Start(ctx, WithDir(dir), WithSpawner(standIn()), WithAuthenticator(Authenticator{Class: "no.such.Authenticator"}))
	if err == nil || !strings.Contains(err.Error(), "exited at startup") || !strings.Contains(err.Error(), "no.such") {
		t.Errorf("hub with a missing authenticator class: %v, want 'exited at startup' and the log naming the class", err)
	}
	t.Logf("failed start reported after %v", time.Since(begin))
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left by a failed start: %v", left)
	}
}

// TestConnectAndTokens: Connect reaches a running hub; tokens made through
// the API identify their user and stop working when deleted.
func TestConnectAndTokens(t *testing.T) {
	h := startHub(t, WithSpawner(standIn()), WithUsers("alice"))
	ctx := testCtx(t, time.Minute)
	conn, err := Connect(ctx, h.URL(), h.Token())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := conn.Client()
	me, err := c.Me(ctx)
	if err != nil || me.Kind != "service" || me.Name != DriverService {
		t.Fatalf("Me as the driver: %+v %v, want service %s", me, err, DriverService)
	}
	if _, err := c.CreateUser(ctx, "alice"); !IsStatus(err, http.StatusConflict) {
		t.Errorf("create existing user: %v, want 409", err)
	}
	if u, err := c.CreateUser(ctx, "erin"); err != nil || u.Name != "erin" {
		t.Errorf("create erin: %+v %v", u, err)
	}

	tok, err := c.CreateToken(ctx, "alice", TokenRequest{Note: "jobsim test", ExpiresIn: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if tok.User != "alice" || tok.ExpiresAt == nil || tok.Note != "jobsim test" {
		t.Errorf("token model: %+v", tok)
	}
	alice := c.WithToken(tok.Token)
	if me, err := alice.Me(ctx); err != nil || me.Name != "alice" || len(me.Scopes) == 0 {
		t.Errorf("Me with alice's token: %+v %v, want alice with scopes", me, err)
	}
	list, err := c.Tokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range list {
		found = found || l.ID == tok.ID
	}
	if !found {
		t.Errorf("token %s not in the list %+v", tok.ID, list)
	}
	if err := c.DeleteToken(ctx, "alice", tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Me(ctx); !IsStatus(err, http.StatusForbidden) {
		t.Errorf("Me with a deleted token: %v, want 403", err)
	}

	if _, err := Connect(ctx, "http://127.0.0.1:1", "x"); err == nil {
		t.Error("Connect to a closed port succeeded")
	}
	if _, err := Connect(ctx, "not a url", "x"); err == nil || !strings.Contains(err.Error(), "not a url") {
		t.Errorf("Connect to a bad URL: %v", err)
	}
}

// TestRealSingleUserServer checks the driver against Debian's own
// single-user server (notebook 6.4), not the stand-in.
func TestRealSingleUserServer(t *testing.T) {
	needHub(t)
	bin, err := exec.LookPath("jupyterhub-singleuser")
	if err != nil {
		t.Skip("jupyterhub-singleuser missing: " + installHint)
	}
	sp := Spawner{Class: SimpleLocalProcessSpawner, Cmd: []string{bin}, StartTimeout: 60 * time.Second, HTTPTimeout: 60 * time.Second}
	if os.Geteuid() == 0 {
		sp.Args = []string{"--allow-root"}
	}
	h := startHub(t, WithSpawner(sp), WithUsers("alice"))
	c := h.Client()
	ctx := testCtx(t, 2*time.Minute)
	begin := time.Now()
	if _, err := c.StartServer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	spawn := time.Since(begin)
	if status, body, _ := c.ServerGet(ctx, "alice", "api/status"); status != 200 || !strings.Contains(string(body), "started") {
		t.Errorf("GET /user/alice/api/status on the real server: %d %s", status, body)
	}
	begin = time.Now()
	if _, err := c.StopServer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitStopped(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	t.Logf("real jupyterhub-singleuser: spawn to ready %v, stop %v", spawn, time.Since(begin))
}

// TestLocalProcessSpawnerWithoutUnixUser: LocalProcessSpawner for a hub
// user with no Unix account fails at once, and the driver says why.
func TestLocalProcessSpawnerWithoutUnixUser(t *testing.T) {
	const name = "jobsim-no-such-unix-user"
	if _, err := user.Lookup(name); err == nil {
		t.Skipf("Unix user %s exists", name)
	}
	sp := standIn()
	sp.Class = LocalProcessSpawner
	h := startHub(t, WithSpawner(sp), WithUsers(name))
	ctx := testCtx(t, time.Minute)
	_, err := h.Client().StartServer(ctx, name)
	var failed *SpawnFailedError
	if !errors.As(err, &failed) || !strings.Contains(failed.Message, "getpwnam") {
		t.Fatalf("start: %v; want a *SpawnFailedError naming getpwnam", err)
	}
	t.Logf("driver error: %v", err)
}

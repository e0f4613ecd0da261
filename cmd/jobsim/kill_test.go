package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/internal/procmark"
	"github.com/jobsim/jobsim/internal/reaper"
	"github.com/jobsim/jobsim/internal/runreg"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/sim/fsys/fusefs"
)

// What a CI runner does at its time limit and the kernel on OOM: SIGKILL
// the jobsim process, at some moment of its run. Within seconds, and with
// no further command, nothing of the run may be left: no process, mount,
// temporary folder, container or network. Each test gives its run a
// registry of its own ($JOBSIM_RUNS_DIR), so that it looks only at its
// own run and never at other runs on the machine.

// cleanWithin bounds the time from the kill to nothing left.
const cleanWithin = 20 * time.Second

// killRuns is how many runs of one kind a kill test kills: one per moment,
// or $JOBSIM_KILL_RUNS (the measure: leftovers after that many killed
// runs, kill-to-clean times), the moments taken in turn.
func killRuns(t *testing.T, moments int) int {
	if v := os.Getenv("JOBSIM_KILL_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("JOBSIM_KILL_RUNS=%q: want a positive number", v)
		}
		return n
	}
	return moments
}

// killable is one jobsim run started for killing.
type killable struct {
	t      *testing.T
	reg    string // its registry
	id     string // its run id
	cmd    *exec.Cmd
	out    string // stdout and stderr file
	docker bool
	exited chan struct{} // closed once the process is reaped
	ownReg bool          // the registry is this run's alone: removed at the end
}

func (k *killable) ended() bool {
	select {
	case <-k.exited:
		return true
	default:
		return false
	}
}

// killAndReap SIGKILLs the run's process and waits until it is reaped; a
// process stuck exiting (see reaper.Unstick) is not waited for beyond
// the watcher's or the cleanup's unsticking.
func (k *killable) killAndReap(limit time.Duration) bool {
	_ = k.cmd.Process.Kill()
	select {
	case <-k.exited:
		return true
	case <-time.After(limit):
		return false
	}
}

func startKillable(t *testing.T, docker bool, args ...string) *killable {
	t.Helper()
	reg, err := os.MkdirTemp("", "jr") // short: Unix sockets live below
	if err != nil {
		t.Fatal(err)
	}
	k := startKillableIn(t, reg, docker, args...)
	k.ownReg = true
	return k
}

// startKillableIn starts the run in registry reg, which may hold other
// runs (the first new one is this one).
func startKillableIn(t *testing.T, reg string, docker bool, args ...string) *killable {
	t.Helper()
	bin := buildJobsim(t)
	before, _ := runreg.List(reg)
	k := &killable{t: t, reg: reg, docker: docker, out: filepath.Join(t.TempDir(), "output"), exited: make(chan struct{})}
	f, err := os.Create(k.out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k.cmd = exec.Command(bin, args...)
	k.cmd.Env = append(os.Environ(), runreg.DirEnv+"="+reg, "JOBSIM_BIN="+bin)
	k.cmd.Stdout, k.cmd.Stderr = f, f
	k.cmd.Dir = repoRoot(t)
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = k.cmd.Wait(); close(k.exited) }()
	t.Cleanup(k.cleanup)
	k.waitFor("the run registered", 10*time.Second, func() bool {
		ents, _ := runreg.List(reg)
		for _, e := range ents {
			if e.Alive && !slices.ContainsFunc(before, func(b runreg.Entry) bool { return b.ID == e.ID }) {
				k.id = e.ID
				return true
			}
		}
		return false
	})
	return k
}

// cleanup leaves nothing even when the test failed: the run killed, its
// things removed as sweep would, its registry removed.
func (k *killable) cleanup() {
	if !k.killAndReap(time.Second) && k.id != "" {
		_, _ = reaper.Unstick(k.reg, k.id)
		k.killAndReap(10 * time.Second)
	}
	for _, w := range k.watchers() {
		_ = syscall.Kill(w, syscall.SIGKILL)
	}
	if k.id != "" {
		for _, p := range inFolder(runreg.TempDir(k.reg, k.id)) {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if k.id != "" {
		if d, err := runreg.TryDead(k.reg, k.id); err == nil {
			_, _ = reaper.Reap(ctx, k.reg, k.id, reaper.Options{Docker: k.docker})
			_ = d.Done()
		}
	}
	if k.ownReg {
		_ = os.RemoveAll(k.reg)
	}
}

func (k *killable) output() string {
	b, _ := os.ReadFile(k.out)
	return string(b)
}

func (k *killable) waitFor(what string, limit time.Duration, cond func() bool) {
	k.t.Helper()
	// A run that ended will not bring cond about: stop waiting at once.
	_ = testutil.Poll(what, limit, func() bool { return cond() || k.ended() })
	if !cond() {
		k.t.Fatalf("%s: not within %s\n%s", what, limit, k.output())
	}
}

// processes lists the run's live processes: those carrying its id, and
// its watcher (which carries the registry, not the id).
func (k *killable) processes() []procmark.Process {
	out, _ := procmark.Marked(runreg.EnvVar, k.id)
	byReg, _ := procmark.Marked(runreg.DirEnv, k.reg)
	for _, p := range byReg {
		if strings.HasSuffix(p.Command, " watch --run "+k.id) {
			out = append(out, p)
		}
	}
	return out
}

func (k *killable) watchers() []int {
	var out []int
	for _, p := range k.processes() {
		if strings.HasSuffix(p.Command, " watch --run "+k.id) {
			out = append(out, p.PID)
		}
	}
	return out
}

// leftovers is everything of the run still there: processes, mounts under
// the registry, files in it (the run's folder, lock and watcher log),
// containers and networks it owns.
func (k *killable) leftovers() []string {
	var out []string
	if !k.ended() {
		out = append(out, fmt.Sprintf("process %d (the run itself, not yet exited)", k.cmd.Process.Pid))
	}
	for _, p := range k.processes() {
		out = append(out, fmt.Sprintf("process %d %s", p.PID, p.Command))
	}
	// Independently of the marker: processes that name the run's folder on
	// their command line or work in it.
	for _, p := range inFolder(runreg.TempDir(k.reg, k.id)) {
		if !slices.ContainsFunc(k.processes(), func(q procmark.Process) bool { return q.PID == p.PID }) {
			out = append(out, fmt.Sprintf("process %d %s (unmarked)", p.PID, p.Command))
		}
	}
	if ms, err := fusefs.ListMounts(); err == nil {
		for _, m := range ms {
			if strings.HasPrefix(m.Mountpoint, k.reg+"/"+k.id+"/") || m.Run == k.id {
				out = append(out, "mount "+m.Mountpoint)
			}
		}
	}
	ents, _ := os.ReadDir(k.reg)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), k.id) {
			out = append(out, "file "+filepath.Join(k.reg, e.Name()))
		}
	}
	if k.docker {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		objs, err := container.List(ctx)
		if err != nil {
			out = append(out, "docker: "+err.Error())
		}
		for _, o := range objs {
			if o.Owner == k.id {
				out = append(out, o.Kind+" "+o.Name)
			}
		}
	}
	return out
}

// kill SIGKILLs the run's process (only it: what it started is left to
// the mechanisms under test) and returns how long until nothing is left.
func (k *killable) kill() time.Duration {
	k.t.Helper()
	if k.ended() {
		k.t.Fatalf("the run ended before it was killed:\n%s", k.output())
	}
	before := k.leftovers()
	if err := k.cmd.Process.Kill(); err != nil {
		k.t.Fatal(err)
	}
	killed := time.Now()
	var left []string
	for time.Since(killed) < cleanWithin {
		if left = k.leftovers(); len(left) == 0 {
			took := time.Since(killed)
			k.t.Logf("run %s killed with %d things of it live (%s); nothing left after %s", k.id, len(before), summarize(before), took.Round(time.Millisecond))
			return took
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(k.reg, k.id+".watch.log"))
	k.t.Fatalf("%s after killing run %s, still there:\n  %s\nwatcher log:\n%s\nrun output:\n%s", cleanWithin, k.id, strings.Join(left, "\n  "), log, k.output())
	return 0
}

// inFolder lists the processes whose command line names folder or whose
// working directory is in it.
func inFolder(folder string) []procmark.Process {
	ents, _ := os.ReadDir("/proc")
	var out []procmark.Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		cmd := strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		if strings.Contains(cmd, folder+"/") || strings.HasSuffix(cmd, folder) || cwd == folder || strings.HasPrefix(cwd, folder+"/") {
			out = append(out, procmark.Process{PID: pid, Command: cmd})
		}
	}
	return out
}

// summarize counts leftovers by kind ("3 process, 1 mount, ...").
func summarize(things []string) string {
	counts := map[string]int{}
	for _, s := range things {
		kind, _, _ := strings.Cut(s, " ")
		counts[kind]++
	}
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// report logs the measure over the rounds of one kind of run.
func report(t *testing.T, kind string, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	t.Logf("MEASURE %s: %d runs killed, 0 left anything behind; kill to clean: min %s, median %s, max %s",
		kind, len(took), took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// A killed `jobsim host` with real processes and a FUSE fault mount: what
// its ssh users started in the background (a detached session too) and a
// queued PBS job die, the mount goes, the folders go.
func TestKilledHostLeavesNothing(t *testing.T) {
	if err := fusefs.Available(); err != nil {
		t.Skipf("FUSE: %v", err)
	}
	testutil.NeedOpenSSH(t, "ssh")
	var took []time.Duration
	for i := range killRuns(t, 2) {
		args := []string{"host", "-o", "json", "--executor", "real", "--pbs", "--users", "alice", "--fault-mount", "/opt/lib"}
		if i%2 == 1 {
			// The host's root (and its mount) outside the run's folder:
			// the mount is found by the run id in its source.
			root, err := os.MkdirTemp("", "jroot")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(root) })
			args = append(args, "--root", root)
		}
		k := startKillable(t, false, args...)
		startBackground(t, k)
		if !slices.ContainsFunc(k.leftovers(), func(s string) bool { return strings.HasPrefix(s, "mount ") }) {
			t.Fatalf("the run's mount is not found as the run's: %v", k.leftovers())
		}
		took = append(took, k.kill())
	}
	report(t, "jobsim host (real executor, FUSE mount, ssh background processes, a PBS job)", took)
}

// startBackground waits for the killable `jobsim host` to print its
// details, then over ssh starts two background processes (one in a new
// session) and queues a PBS job, and waits until the three run.
func startBackground(t *testing.T, k *killable) {
	t.Helper()
	var info hostInfo
	k.waitFor("the host printed its details", time.Minute, func() bool {
		return json.Unmarshal([]byte(firstLine(k.output())), &info) == nil && info.SSHConfig != ""
	})
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte(info.SSHConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	out, err := exec.CommandContext(ctx, "ssh", "-F", cfg, "-o", "BatchMode=yes", info.Name,
		`nohup sleep 300 >/dev/null 2>&1 </dev/null & setsid sleep 301 >/dev/null 2>&1 </dev/null & echo "sleep 302" | qsub`).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	k.waitFor("the background processes and the job run", 30*time.Second, func() bool {
		n := 0
		for _, p := range k.processes() {
			if strings.HasPrefix(p.Command, "sleep 30") {
				n++
			}
		}
		return n == 3
	})
}

func firstLine(s string) string {
	// -o json prints one indented object first; the log follows on stderr
	// into the same file, so cut at the closing brace of the object.
	start := strings.Index(s, "{\n")
	end := strings.Index(s, "\n}\n")
	if start < 0 || end < start {
		return ""
	}
	return s[start : end+2]
}

// A killed watcher cannot clean: `jobsim sweep` then finds the dead run's
// things by its free lock, lists them without touching them, removes them,
// and leaves a live run of the same registry alone.
func TestSweepCleansARunWhoseWatcherWasKilled(t *testing.T) {
	if err := fusefs.Available(); err != nil {
		t.Skipf("FUSE: %v", err)
	}
	testutil.NeedOpenSSH(t, "ssh")
	// A live run in the registry, started first: its watcher's check of
	// earlier dead runs is over before the dead run dies (this test is
	// about sweep, not about a later run's watcher cleaning up).
	reg, err := os.MkdirTemp("", "jr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(reg) })
	live := exec.Command(buildJobsim(t), "host", "-o", "json", "--users", "bob")
	live.Env = append(os.Environ(), runreg.DirEnv+"="+reg)
	var liveOut testutil.SyncBuffer
	live.Stdout, live.Stderr = &liveOut, &liveOut
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Process.Signal(syscall.SIGTERM); _ = live.Wait() })
	var liveID string
	testutil.WaitFor(t, "the live run to come up", time.Minute, func() bool {
		ents, _ := runreg.List(reg)
		if len(ents) != 1 {
			return false
		}
		liveID = ents[0].ID
		b, _ := os.ReadFile(runreg.WatchLog(reg, liveID))
		return strings.Contains(string(b), "earlier dead runs checked") && strings.Contains(liveOut.String(), "ssh_config")
	})

	dead := startKillableIn(t, reg, false, "host", "-o", "json", "--executor", "real", "--pbs", "--users", "alice", "--fault-mount", "/opt/lib")
	startBackground(t, dead)

	ws := dead.watchers()
	if len(ws) != 1 {
		t.Fatalf("watchers of run %s: %v", dead.id, ws)
	}
	_ = syscall.Kill(ws[0], syscall.SIGKILL)
	dead.waitFor("the watcher died", 10*time.Second, func() bool { return len(dead.watchers()) == 0 })
	dead.killAndReap(10 * time.Second)
	time.Sleep(time.Second) // the time a watcher would have needed
	left := dead.leftovers()
	if !slices.ContainsFunc(left, func(s string) bool { return strings.HasPrefix(s, "mount ") }) ||
		!slices.ContainsFunc(left, func(s string) bool {
			return strings.HasSuffix(s, " setsid sleep 301") || strings.HasSuffix(s, " sleep 301")
		}) {
		logs, _ := filepath.Glob(filepath.Join(dead.reg, "*.watch.log"))
		var b strings.Builder
		for _, l := range logs {
			c, _ := os.ReadFile(l)
			fmt.Fprintf(&b, "%s:\n%s\n", l, c)
		}
		t.Fatalf("with its watcher killed too, the run should have left its mount and the detached process: %v\n%s", left, b.String())
	}

	sweep := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(buildJobsim(t), append([]string{"sweep"}, args...)...)
		cmd.Env = append(os.Environ(), runreg.DirEnv+"="+dead.reg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("jobsim sweep %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	listed := sweep("--list")
	if !strings.Contains(listed, "mount "+dead.reg+"/"+dead.id+"/") || !strings.Contains(listed, "folder "+dead.reg+"/"+dead.id+" run="+dead.id) ||
		!strings.Contains(listed, " sleep 301 run="+dead.id) {
		t.Fatalf("sweep --list does not show the dead run's mount and folder:\n%s", listed)
	}
	if strings.Contains(listed, liveID) {
		t.Fatalf("sweep --list shows the live run %s:\n%s", liveID, listed)
	}
	if l2 := dead.leftovers(); len(l2) < len(left) {
		t.Fatalf("sweep --list removed things: before %v, after %v", left, l2)
	}
	start := time.Now()
	removed := sweep()
	if !strings.Contains(removed, "removed mount ") || !strings.Contains(removed, " sleep 301 run="+dead.id) {
		t.Fatalf("sweep output:\n%s", removed)
	}
	if l := dead.leftovers(); len(l) > 0 {
		t.Fatalf("after sweep, still there: %v\nsweep said:\n%s", l, removed)
	}
	t.Logf("sweep removed the dead run's things in %s:\n%s", time.Since(start).Round(time.Millisecond), removed)
	if !runreg.Alive(dead.reg, liveID) {
		t.Fatal("sweep touched the live run")
	}
	if _, err := os.Stat(runreg.TempDir(dead.reg, liveID)); err != nil {
		t.Fatalf("the live run's folder: %v", err)
	}
}

// moment is a point of a run to kill it at: when cond first holds.
type moment struct {
	name string
	cond func(k *killable) bool
}

func hasProcess(substr string) func(k *killable) bool {
	return func(k *killable) bool {
		has := func(p procmark.Process) bool { return strings.Contains(p.Command, substr) }
		return slices.ContainsFunc(k.processes(), has) || slices.ContainsFunc(inFolder(runreg.TempDir(k.reg, k.id)), has)
	}
}

func hasMount(k *killable) bool {
	ms, _ := fusefs.ListMounts()
	return slices.ContainsFunc(ms, func(m fusefs.MountEntry) bool { return strings.HasPrefix(m.Mountpoint, k.reg+"/"+k.id+"/") })
}

func after(d time.Duration, c func(k *killable) bool) func(k *killable) bool {
	var since time.Time
	return func(k *killable) bool {
		if !c(k) {
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= d
	}
}

// killScenarioRuns runs `jobsim run args...` once per moment and round,
// kills it at the moment, and checks that nothing of it is left.
func killScenarioRuns(t *testing.T, kind string, docker bool, moments []moment, args ...string) {
	var took []time.Duration
	for i := range killRuns(t, len(moments)) {
		m := moments[i%len(moments)]
		k := startKillable(t, docker, append([]string{"run", "--parallel", "1", "--artifacts", t.TempDir()}, args...)...)
		k.waitFor(m.name, 3*time.Minute, func() bool { return m.cond(k) })
		t.Logf("killing at: %s", m.name)
		took = append(took, k.kill())
	}
	report(t, kind, took)
}

// A scenario run in-process with a FUSE fault mount and the real Cylc,
// killed while its topology starts, while its scheduler (a daemon in a
// session of its own) runs, and once jobs have run.
func TestKilledCylcRunLeavesNothing(t *testing.T) {
	if err := fusefs.Available(); err != nil {
		t.Skipf("FUSE: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cylcsys.LocateInstall(ctx); err != nil {
		t.Skipf("Cylc: %v", err)
	}
	killScenarioRuns(t, "jobsim run (in-process, FUSE, Cylc)", false, []moment{
		{"the FUSE fault mount is up", hasMount},
		{"the Cylc scheduler runs", hasProcess("cylc play")},
		{"the scheduler has run for 2s", after(2*time.Second, hasProcess("cylc play"))},
	}, "fixtures/scenarios/cylc/unlistable-lib.yaml")
}

// A hub scenario killed while JupyterHub starts, once its proxy runs, and
// once the users' servers (started by the hub's spawner, with an
// environment of the spawner's making) run.
func TestKilledHubRunLeavesNothing(t *testing.T) {
	for _, tool := range []string{"jupyterhub", "configurable-http-proxy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make setup-hub installs it)", tool)
		}
	}
	killScenarioRuns(t, "jobsim run (hub, local spawner)", false, []moment{
		{"JupyterHub starts", hasProcess("jupyterhub -f")},
		{"the proxy runs", hasProcess("configurable-http-proxy")},
		{"the users' servers run", hasProcess(" uiserver")},
	}, "fixtures/scenarios/hub/local-three-users.yaml")
}

func hasObject(kind string) func(k *killable) bool {
	return func(k *killable) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		objs, _ := container.List(ctx)
		return slices.ContainsFunc(objs, func(o container.Object) bool { return o.Owner == k.id && o.Kind == kind })
	}
}

func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := container.DockerAvailable(ctx); err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
}

// `jobsim up` (a login node and a compute node on a private network),
// killed while its containers start and once it serves: the containers
// and the network go.
func TestKilledUpLeavesNothing(t *testing.T) {
	requireDocker(t)
	var took []time.Duration
	moments := []moment{
		{"the network exists", hasObject("network")},
		{"the first container exists", hasObject("container")},
		{"the cluster serves", func(k *killable) bool { return strings.Contains(k.output(), "ssh_config") }},
	}
	for i := range killRuns(t, len(moments)) {
		m := moments[i%len(moments)]
		k := startKillable(t, true, "up", "-o", "json", "--name", "killhpc", "--users", "alice", "--nodes", "killcn1")
		k.waitFor(m.name, 5*time.Minute, func() bool { return m.cond(k) })
		t.Logf("killing at: %s", m.name)
		took = append(took, k.kill())
	}
	report(t, "jobsim up (containers, network)", took)
}

// A scenario run on the containers backend with the real Cylc, killed as
// its job host's container comes up and while the scheduler runs.
func TestKilledContainersRunLeavesNothing(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cylcsys.LocateInstall(ctx); err != nil {
		t.Skipf("Cylc: %v", err)
	}
	killScenarioRuns(t, "jobsim run --backend containers (Cylc)", true, []moment{
		{"the job host's container exists", hasObject("container")},
		{"the Cylc scheduler runs", hasProcess("cylc play")},
	}, "--backend", "containers", "fixtures/scenarios/cylc/happy-poll.yaml")
}

// With containers: `jobsim up` and its watcher both killed, sweep --list
// shows the run's containers and network (and jobsim's images, but not
// an image of another name carrying jobsim's labels), sweep removes them.
func TestSweepRemovesContainersOfARunWhoseWatcherWasKilled(t *testing.T) {
	requireDocker(t)
	k := startKillable(t, true, "up", "-o", "json", "--name", "sweephpc", "--users", "alice")
	k.waitFor("the host serves", 5*time.Minute, func() bool { return strings.Contains(k.output(), "ssh_config") })
	var info upInfo
	if err := json.Unmarshal([]byte(firstLine(k.output())), &info); err != nil {
		t.Fatalf("%v\n%s", err, k.output())
	}
	// Someone else's image that carries jobsim's labels (the same image
	// under another name).
	foreign := "jobsimtest/foreign:" + k.id
	if out, err := exec.Command("docker", "tag", info.Image, foreign).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", foreign).Run() })

	for _, w := range k.watchers() {
		_ = syscall.Kill(w, syscall.SIGKILL)
	}
	k.waitFor("the watcher died", 10*time.Second, func() bool { return len(k.watchers()) == 0 })
	k.killAndReap(10 * time.Second)
	time.Sleep(3 * time.Second) // what the watcher would have needed
	sweep := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(buildJobsim(t), append([]string{"sweep"}, args...)...)
		cmd.Env = append(os.Environ(), runreg.DirEnv+"="+k.reg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("jobsim sweep %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	listed := sweep("--list")
	if !strings.Contains(listed, "container ") ||
		!strings.Contains(listed, "network ") || !strings.Contains(listed, "run="+k.id) ||
		!strings.Contains(listed, "image "+info.Image) || strings.Contains(listed, foreign) {
		t.Fatalf("sweep --list:\n%s", listed)
	}
	if !hasObject("container")(k) {
		t.Fatal("sweep --list removed the container")
	}
	removed := sweep()
	if !strings.Contains(removed, "removed container ") || !strings.Contains(removed, "removed network ") {
		t.Fatalf("sweep:\n%s", removed)
	}
	if l := k.leftovers(); len(l) > 0 {
		t.Fatalf("after sweep, still there: %v", l)
	}
	if out, err := exec.Command("docker", "image", "inspect", foreign).CombinedOutput(); err != nil {
		t.Fatalf("sweep touched the foreign image: %v\n%s", err, out)
	}
}

// stuckRunEnv makes the test binary a run that mounts the fault layer and
// keeps a file of its own mount open (see TestKilledRunStuckOnItsOwnMount).
const stuckRunEnv = "JOBSIM_TEST_STUCK_RUN"

// A run killed while it has a file open on its own FUSE mount cannot
// finish exiting: closing the file asks the FUSE server, which died with
// it, so a thread waits for ever and the run's lock stays held (a Cylc
// run killed as it copied into its mount did so). The watcher sees the
// holder of the lock is a zombie, aborts the run's FUSE connections, and
// the run then goes, with all it left.
func TestKilledRunStuckOnItsOwnMount(t *testing.T) {
	if os.Getenv(stuckRunEnv) != "" {
		stuckRun()
		return
	}
	if err := fusefs.Available(); err != nil {
		t.Skipf("FUSE: %v", err)
	}
	var took []time.Duration
	for range killRuns(t, 1) {
		took = append(took, killStuckRun(t))
	}
	report(t, "a run stuck exiting on its own FUSE mount (the watcher aborts the connection)", took)
}

func killStuckRun(t *testing.T) time.Duration {
	t.Helper()
	bin := buildJobsim(t)
	reg, err := os.MkdirTemp("", "jr")
	if err != nil {
		t.Fatal(err)
	}
	k := &killable{t: t, reg: reg, out: filepath.Join(t.TempDir(), "output"), exited: make(chan struct{}), ownReg: true}
	f, err := os.Create(k.out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k.cmd = exec.Command(os.Args[0], "-test.run=^TestKilledRunStuckOnItsOwnMount$")
	k.cmd.Env = append(os.Environ(), stuckRunEnv+"=1", runreg.DirEnv+"="+reg)
	k.cmd.Stdout, k.cmd.Stderr = f, f
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = k.cmd.Wait(); close(k.exited) }()
	t.Cleanup(k.cleanup)
	k.waitFor("the run has its file open on its mount", 30*time.Second, func() bool {
		if i := strings.Index(k.output(), "open "); i >= 0 {
			k.id = strings.Fields(k.output()[i+5:])[0]
			return true
		}
		return false
	})
	w := exec.Command(bin, "watch", "--run", k.id)
	w.Env = append(os.Environ(), runreg.DirEnv+"="+reg)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Wait() }()
	t.Cleanup(func() { _ = w.Process.Kill() })
	return k.kill()
}

// stuckRun is the child of TestKilledRunStuckOnItsOwnMount.
func stuckRun() {
	r, err := runreg.Start("")
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	dir := filepath.Join(r.TempDir(), "lib")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644); err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	if _, err := fusefs.Mount(context.Background(), dir, dir, nil); err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	f, err := os.Open(filepath.Join(dir, "data"))
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	defer f.Close()
	fmt.Println("open", r.ID())
	time.Sleep(10 * time.Minute)
}

// A run killed with its watcher leaves its things; the next run started
// on the machine (here a jobsim host in the same registry) removes them
// with no sweep: its watcher first cleans after earlier dead runs.
func TestNextRunCleansAfterADeadRunWhoseWatcherWasKilled(t *testing.T) {
	if err := fusefs.Available(); err != nil {
		t.Skipf("FUSE: %v", err)
	}
	testutil.NeedOpenSSH(t, "ssh")
	dead := startKillable(t, false, "host", "-o", "json", "--executor", "real", "--pbs", "--users", "alice", "--fault-mount", "/opt/lib")
	startBackground(t, dead)
	for _, w := range dead.watchers() {
		_ = syscall.Kill(w, syscall.SIGKILL)
	}
	dead.waitFor("the watcher died", 10*time.Second, func() bool { return len(dead.watchers()) == 0 })
	dead.killAndReap(10 * time.Second)
	time.Sleep(time.Second)
	if left := dead.leftovers(); len(left) == 0 {
		t.Fatal("with its watcher killed too, the run should have left things")
	}
	next := startKillableIn(t, dead.reg, false, "host", "-o", "json", "--users", "bob")
	start := time.Now()
	for len(dead.leftovers()) > 0 {
		if time.Since(start) > cleanWithin {
			t.Fatalf("the next run's watcher did not clean after the dead run: %v", dead.leftovers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the next run's watcher removed the dead run's things %s after it started", time.Since(start).Round(time.Millisecond))
	if !runreg.Alive(next.reg, next.id) {
		t.Fatal("the next run is not alive")
	}
}

// Ctrl-C in the middle of a scenario: the run says interrupted (summary,
// JUnit, exit status 130), not that the system under test failed, and
// leaves nothing behind.
func TestInterruptedRunIsReportedAsInterrupted(t *testing.T) {
	for _, tool := range []string{"jupyterhub", "configurable-http-proxy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make setup-hub installs it)", tool)
		}
	}
	junit := filepath.Join(t.TempDir(), "junit.xml")
	k := startKillable(t, false, "run", "--junit", junit, "--artifacts", t.TempDir(), "fixtures/scenarios/hub/local-three-users.yaml")
	servers := hasProcess(" uiserver")
	k.waitFor("the users' servers run", 3*time.Minute, func() bool { return servers(k) })
	if err := k.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("jobsim run did not end on SIGINT:\n%s", k.output())
	}
	if code := k.cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit status %d, want 130:\n%s", code, k.output())
	}
	out := k.output()
	if !strings.Contains(out, "INTERRUPTED") || !strings.Contains(out, "0 failed, 0 errored, 0 skipped, 1 interrupted") {
		t.Fatalf("summary:\n%s", out)
	}
	x, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(x), `<error message="interrupted by signal: interrupt signal received"`) || strings.Contains(string(x), "<failure") {
		t.Fatalf("junit:\n%s", x)
	}
	testutil.WaitFor(t, "nothing left after SIGINT", cleanWithin, func() bool { return len(k.leftovers()) == 0 })
}

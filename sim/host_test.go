package sim_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/testbin"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim"
	"github.com/jobsim/jobsim/sim/control"
	"github.com/jobsim/jobsim/sim/executor/real"
	"github.com/jobsim/jobsim/sim/fsys/fusefs"
)

// jobsimBin is the jobsim binary built once for the tests: real hosts put
// it on PATH as qsub, qstat, ...
var jobsimBin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &jobsimBin)) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newHost(t *testing.T, opts ...sim.Option) *sim.Host {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	h, err := sim.NewHost(ctx, append([]sim.Option{sim.WithUsers("alice"), sim.WithJobsimBinary(jobsimBin)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return h
}

// goSSH runs cmd on the host as alice with the Go ssh client.
func goSSH(t *testing.T, h *sim.Host, cmd string) (string, string, int) {
	t.Helper()
	return goSSHAs(t, h, "alice", cmd)
}

// goSSHAs runs cmd on the host as user with the Go ssh client.
func goSSHAs(t *testing.T, h *sim.Host, user, cmd string) (string, string, int) {
	t.Helper()
	signer, err := h.Signer(user)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", h.SSHAddr(), &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.FixedHostKey(h.HostKey()), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	code := 0
	if err := s.Run(cmd); err != nil {
		ee, ok := err.(*gossh.ExitError)
		if !ok {
			t.Fatalf("ssh %q: %v", cmd, err)
		}
		code = ee.ExitStatus()
	}
	return out.String(), errb.String(), code
}

// sshConfig writes an OpenSSH client config for alice at alias fakehpc.
func sshConfig(t *testing.T, h *sim.Host) string {
	t.Helper()
	block, err := h.SSHConfig("fakehpc", "alice")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func realSSH(t *testing.T, cfg string, args ...string) (string, string, int) {
	t.Helper()
	testutil.NeedOpenSSH(t, "ssh")
	ctx := ctxFor(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, "ssh", append([]string{"-F", cfg, "-o", "BatchMode=yes"}, args...)...)
	return testutil.Run(t, cmd)
}

func TestVirtualHostRunsPBSJobsOverSSH(t *testing.T) {
	h := newHost(t, sim.WithPBS())
	out, errs, code := goSSH(t, h, `echo 'echo hello from $PBS_JOBID' | qsub -N greet`)
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), ".fakehpc") {
		t.Fatalf("qsub: %q %q exit %d", out, errs, code)
	}
	id := strings.TrimSpace(out)
	ctx := ctxFor(t, 30*time.Second)
	testutil.WaitFor(t, "job "+id+" to finish", 20*time.Second, func() bool {
		jobs, err := h.Client().PBSJobs(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		return len(jobs) == 1 && jobs[0].State == 'F' || len(jobs) == 0
	})
	seq, _, _ := strings.Cut(id, ".")
	out, errs, code = goSSH(t, h, "cat greet.o"+seq)
	if code != 0 || strings.TrimSpace(out) != "hello from "+id {
		t.Fatalf("job output: %q %q exit %d", out, errs, code)
	}
	health, err := h.Client().Health(ctx)
	if err != nil || !health.OK || !health.Checks["ssh"].OK || !health.Checks["pbs"].OK {
		t.Fatalf("health %+v %v", health, err)
	}
}

// The site incident on a virtual host: the library directory cannot be
// listed, its files still open; clearing the rule restores it.
func TestVirtualHostUnlistableDirectory(t *testing.T) {
	h := newHost(t)
	if _, _, code := goSSH(t, h, "mkdir -p /opt/lib/pkg && echo x > /opt/lib/pkg/mod.py"); code != 0 {
		t.Fatal("setup failed")
	}
	r, err := h.Faults().Add(fault.Rule{Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/lib/pkg", Effect: fault.Effect{Kind: fault.Errno, Errno: "EIO"}})
	if err != nil {
		t.Fatal(err)
	}
	_, errs, code := goSSH(t, h, "ls /opt/lib/pkg")
	if code != 2 || !strings.Contains(errs, "reading directory") || !strings.Contains(errs, "Input/output error") {
		t.Fatalf("ls of the unlistable dir: %q exit %d", errs, code)
	}
	if out, _, code := goSSH(t, h, "cat /opt/lib/pkg/mod.py"); code != 0 || out != "x\n" {
		t.Fatalf("cat of a file inside: %q exit %d", out, code)
	}
	h.Faults().Remove(r.ID)
	if out, _, code := goSSH(t, h, "ls /opt/lib/pkg"); code != 0 || out != "mod.py\n" {
		t.Fatalf("ls after clearing: %q exit %d", out, code)
	}
}

func TestRealHostWithOpenSSHClientPBSAndRsync(t *testing.T) {
	h := newHost(t, sim.WithExecutor(sim.Real), sim.WithPBS())
	cfg := sshConfig(t, h)
	out, errs, code := realSSH(t, cfg, "fakehpc", `echo 'echo "$PBS_JOBNAME ran in $PWD"' | qsub -N real; qstat`)
	if code != 0 || !strings.Contains(out, ".fakehpc") {
		t.Fatalf("qsub over ssh: %q %q exit %d", out, errs, code)
	}
	id := strings.Fields(out)[0]
	// A client without $JOBSIM_PBS_SERVER finds the server through the
	// host's pbs.conf, as an OpenPBS client does.
	conf := h.ProcessPath("/etc/pbs.conf")
	if out, errs, code := realSSH(t, cfg, "fakehpc", "env -u JOBSIM_PBS_SERVER PBS_CONF_FILE="+conf+" qstat -B"); code != 0 || !strings.Contains(out, "fakehpc") {
		t.Errorf("qstat through %s: %q %q exit %d", conf, out, errs, code)
	}
	ctx := ctxFor(t, time.Minute)
	testutil.WaitFor(t, "job "+id+" to leave the server (finished)", 30*time.Second, func() bool {
		res, err := h.RunPBS(ctx, "alice", "qstat", id)
		if err != nil {
			t.Fatal(err)
		}
		return res.ExitCode != 0
	})
	seq, _, _ := strings.Cut(id, ".")
	out, _, code = realSSH(t, cfg, "fakehpc", "cat real.o"+seq)
	home := h.ProcessPath("/home/alice")
	if code != 0 || strings.TrimSpace(out) != "real ran in "+home {
		t.Fatalf("job output %q (want it to have run in %s)", out, home)
	}

	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync is not installed (make setup installs it)")
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "wf", "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "wf", "bin", "run"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	if _, errs, code := realSSH(t, cfg, "fakehpc", "mkdir -p cylc-run"); code != 0 {
		t.Fatalf("mkdir: %s", errs)
	}
	rs := exec.CommandContext(ctx, "rsync", "-a", "--rsh=ssh -F "+cfg, filepath.Join(src, "wf")+"/", "fakehpc:cylc-run/wf/")
	if b, err := rs.CombinedOutput(); err != nil {
		t.Fatalf("rsync: %v\n%s", err, b)
	}
	if out, _, code := realSSH(t, cfg, "fakehpc", "cylc-run/wf/bin/run"); code != 0 || out != "hi\n" {
		t.Fatalf("the rsynced script: %q exit %d", out, code)
	}
}

// The site incident on a real host: through the FUSE fault layer, real ls
// fails, real cat works, and a Python import from the directory fails as on
// a real machine, until the rule is cleared.
func TestRealHostUnlistableLibraryThroughFUSE(t *testing.T) {
	if err := fusefs.Available(); err != nil {
		t.Skipf("FUSE is not available here (%v): make setup installs fuse3; the test needs root and /dev/fuse", err)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "opt/lib/py"), 0o755)
	os.WriteFile(filepath.Join(root, "opt/lib/py/jobmod.py"), []byte("X = 42\n"), 0o644)
	h := newHost(t, sim.WithExecutor(sim.Real), sim.WithRoot(root), sim.WithFaultMounts("/opt/lib"))
	lib := h.ProcessPath("/opt/lib/py")
	ctx := ctxFor(t, 30*time.Second)
	if _, err := h.Client().AddFault(ctx, fault.Rule{ID: "unlistable", Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/lib/py", Effect: fault.Effect{Kind: fault.Errno, Errno: "EIO"}}); err != nil {
		t.Fatal(err)
	}
	_, errs, code := goSSH(t, h, "ls "+lib)
	if code != 2 || !strings.Contains(errs, "Input/output error") {
		t.Fatalf("ls: %q exit %d", errs, code)
	}
	if out, _, code := goSSH(t, h, "cat "+lib+"/jobmod.py"); code != 0 || out != "X = 42\n" {
		t.Fatalf("cat: %q exit %d", out, code)
	}
	_, errs, code = goSSH(t, h, "PYTHONPATH="+lib+" python3 -c 'import jobmod'")
	if code == 0 || !strings.Contains(errs, "Errno 5") {
		t.Fatalf("python import from the unlistable directory: %q exit %d", errs, code)
	}
	if err := h.Client().RemoveFault(ctx, "unlistable"); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := goSSH(t, h, "PYTHONPATH="+lib+" python3 -c 'import jobmod; print(jobmod.X)'"); code != 0 || out != "42\n" {
		t.Fatalf("import after clearing: %q %q exit %d", out, errs, code)
	}
	evs, _ := h.Client().Events(ctx, 0)
	var fired bool
	for _, e := range evs {
		fired = fired || e.Kind == "fault.activation"
	}
	if !fired {
		t.Fatal("no fault activation was recorded")
	}
}

// The site incident with EACCES: Python skips a sys.path directory it may
// not list, so on a host that sees the machine's own copy of Cylc the
// import silently finds that copy. With the machine's copies hidden (what
// a job host carries is only its own library) the import fails as it
// would on a job host, and works again once the directory is readable.
func TestRealHostPythonCannotFallBackToTheMachinesCylc(t *testing.T) {
	if err := fusefs.Available(); err != nil {
		t.Skipf("FUSE is not available here (%v): make setup installs fuse3; the test needs root and /dev/fuse", err)
	}
	ctx := ctxFor(t, 60*time.Second)
	machine, err := real.PythonPackageDirs(ctx, "cylc", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(machine) == 0 {
		t.Skip("the machine's Python has no cylc package (make setup-cylc installs Debian's cylc-flow)")
	}
	importCylc := func(h *sim.Host) (string, string, int) {
		return goSSH(t, h, "PYTHONPATH="+h.ProcessPath("/opt/cylc/lib")+" python3 -c 'import cylc.flow; print(cylc.flow.__file__)'")
	}
	unlistable := fault.Rule{ID: "unlistable", Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/cylc/lib", Effect: fault.Effect{Kind: fault.Errno, Errno: "EACCES"}}
	newCylcHost := func(opts ...sim.Option) *sim.Host {
		root := t.TempDir()
		flow := filepath.Join(root, "opt/cylc/lib/cylc/flow")
		if err := os.MkdirAll(flow, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(flow, "__init__.py"), []byte("HOST = True\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHost(t, append([]sim.Option{sim.WithExecutor(sim.Real), sim.WithRoot(root), sim.WithFaultMounts("/opt/cylc/lib")}, opts...)...)
		if _, err := h.Client().AddFault(ctx, unlistable); err != nil {
			t.Fatal(err)
		}
		return h
	}

	// Unhidden, the import falls back to the machine's copy: what the
	// hiding is for (and proof that the fault takes this path).
	open := newCylcHost()
	if out, errs, code := importCylc(open); code != 0 || !strings.HasPrefix(out, machine[0]) {
		t.Fatalf("without hiding, the import found %q (%q, exit %d), want the machine's copy under %s", out, errs, code, machine[0])
	}

	h := newCylcHost(sim.WithHiddenPaths(machine...))
	for _, n := range h.Notes() {
		if strings.Contains(n, "not isolated") {
			t.Skipf("the host cannot hide the machine's Cylc here: %s", n)
		}
	}
	_, errs, code := importCylc(h)
	if code == 0 || !strings.Contains(errs, "ModuleNotFoundError: No module named 'cylc.flow'") {
		t.Fatalf("with the library unlistable: %q exit %d, want ModuleNotFoundError for cylc.flow", errs, code)
	}
	if err := h.Client().RemoveFault(ctx, unlistable.ID); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := importCylc(h); code != 0 || out != h.ProcessPath("/opt/cylc/lib/cylc/flow/__init__.py")+"\n" {
		t.Fatalf("with the library readable: %q %q exit %d, want the host's own copy", out, errs, code)
	}
}

// A real host hides what it is asked to, or, where it cannot (no private
// mount namespace: not root), says so at start, in a warning and in its
// notes, and runs unhidden.
func TestRealHostHidesOrSaysWhyNot(t *testing.T) {
	secret := t.TempDir()
	if err := os.WriteFile(filepath.Join(secret, "machine-only"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	h := newHost(t, sim.WithExecutor(sim.Real), sim.WithHiddenPaths(secret), sim.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	out, _, _ := goSSH(t, h, "ls -A "+secret)
	noted := strings.Contains(strings.Join(h.Notes(), "\n"), "not isolated")
	warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), secret)
	switch {
	case out == "" && !noted && !warned:
		// hidden, and nothing to say
	case out == "machine-only\n" && noted && warned:
		t.Logf("not isolated here, as the host said: %v", h.Notes())
	default:
		t.Fatalf("the host saw %q; notes %v; log %q: want hidden and silent, or visible with a warning and a note", out, h.Notes(), logs.String())
	}
}

func TestControlAPINeedsTheToken(t *testing.T) {
	h := newHost(t)
	ctx := ctxFor(t, 10*time.Second)
	if _, err := control.NewClient(h.ControlURL(), "not-the-token").Faults(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a wrong token got %v", err)
	}
}

// On a virtual host with a virtual clock, a blocking qsub waits for its job
// in simulated time: an hour-long job answers with its exit status instead
// of stalling the clock it waits on.
func TestVirtualHostBlockingQsubOnTheVirtualClock(t *testing.T) {
	h := newHost(t, sim.WithPBS(), sim.WithClock(clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), clock.AutoAdvance())))
	type result struct {
		out, errs string
		code      int
	}
	res := make(chan result, 1)
	go func() {
		out, errs, code := goSSH(t, h, `printf 'sleep 3600\nexit 3\n' | qsub -W block=true`)
		res <- result{out, errs, code}
	}()
	select {
	case r := <-res:
		if r.code != 3 || !strings.HasSuffix(strings.TrimSpace(r.out), ".fakehpc") {
			t.Fatalf("qsub -W block=true: %q %q exit %d", r.out, r.errs, r.code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("qsub -W block=true never returned: the virtual clock stalled while it waited")
	}
}

// A PBS server restart through the control API reaches the real PBS
// executables: while it is down qstat is refused as OpenPBS's is and health
// says PBS does not answer; afterwards the kept job is still there.
func TestRealHostPBSServerRestart(t *testing.T) {
	h := newHost(t, sim.WithExecutor(sim.Real), sim.WithPBS())
	cfg := sshConfig(t, h)
	out, errs, code := realSSH(t, cfg, "fakehpc", `echo 'sleep 30' | qsub -N long`)
	if code != 0 {
		t.Fatalf("qsub: %q %q exit %d", out, errs, code)
	}
	id := strings.TrimSpace(out)
	ctx := ctxFor(t, 30*time.Second)
	if err := h.Client().RestartPBS(ctx, control.PBSRestart{Down: fault.Duration(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	out, errs, code = realSSH(t, cfg, "fakehpc", "qstat "+id)
	if code != 255 || out != "" || errs != "Connection refused\nqstat: cannot connect to server fakehpc (errno=111)\n" {
		t.Fatalf("qstat while the server is down: exit %d stdout %q stderr %q", code, out, errs)
	}
	if health, err := h.Client().Health(ctx); err != nil || health.OK || health.Checks["pbs"].OK {
		t.Fatalf("health while PBS is down: %+v %v", health, err)
	}
	var se *control.StatusError
	if err := h.Client().RestartPBS(ctx, control.PBSRestart{}); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("restart while down: %v, want 409", err)
	}
	if err := h.Client().RestartPBS(ctx, control.PBSRestart{Down: fault.Duration(-time.Second)}); !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Message, "negative") {
		t.Fatalf("restart with a negative down: %v, want 400 saying so", err)
	}
	for {
		out, errs, code = realSSH(t, cfg, "fakehpc", "qstat "+id)
		if code == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the server did not come back: exit %d %q", code, errs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(out, id+" ") || !strings.Contains(out, " R workq") {
		t.Fatalf("the kept job after the restart:\n%s", out)
	}
}

// TestRealHostPBSConf: a real host writes its /etc/pbs.conf (where PBS
// clients without $JOBSIM_PBS_SERVER find the server) and removes it when
// it stops; a pbs.conf that is not jobsim's is left as it is.
func TestRealHostPBSConf(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	root := t.TempDir()
	h, err := sim.NewHost(ctx, sim.WithUsers("alice"), sim.WithJobsimBinary(jobsimBin), sim.WithExecutor(sim.Real), sim.WithRoot(root), sim.WithPBS())
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "etc", "pbs.conf")
	b, err := os.ReadFile(conf)
	if err != nil || !strings.Contains(string(b), "\nPBS_SERVER=fakehpc\n") || !strings.Contains(string(b), "\nJOBSIM_PBS_SERVER=unix:") {
		t.Errorf("pbs.conf %q %v: want PBS_SERVER and the socket", b, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(conf); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pbs.conf after Close: %v, want it removed", err)
	}

	site := "PBS_SERVER=realpbs\n"
	if err := os.WriteFile(conf, []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err = sim.NewHost(ctx, sim.WithUsers("alice"), sim.WithJobsimBinary(jobsimBin), sim.WithExecutor(sim.Real), sim.WithRoot(root), sim.WithPBS())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != site {
		t.Errorf("a site's pbs.conf after a host ran: %q %v, want it untouched", b, err)
	}
}

// A host user named root is the host's own root account (uid 0, /root), as
// on a real machine: `jobsim host` run as root asks for exactly that.
func TestVirtualHostUserRootIsTheRootAccount(t *testing.T) {
	h := newHost(t, sim.WithUsers("root", "alice"))
	out, errs, code := goSSHAs(t, h, "root", `id -u; echo "$HOME"; ls -d /home/alice`)
	if code != 0 {
		t.Fatalf("as root: exit %d: %s%s", code, out, errs)
	}
	if got := strings.Fields(string(out)); len(got) != 3 || got[0] != "0" || got[1] != "/root" || got[2] != "/home/alice" {
		t.Fatalf("as root: %q, want uid 0, home /root, and alice's home beside it", out)
	}
}

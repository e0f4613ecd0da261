package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/bashexec"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/fakepbs/remote"
	"github.com/jobsim/jobsim/internal/testbin"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/spf13/afero"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// pbsBin builds jobsim once per test binary into a directory holding the
// PBS command names as symlinks to it, and returns that directory.
func pbsBin(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if _, err := exec.LookPath("go"); err != nil {
			buildErr = err
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "jobsim-pbs-bin-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, buildErr = testbin.Build(ctx, buildDir); buildErr != nil {
			return
		}
		for _, c := range cli.Commands {
			if err := os.Symlink("jobsim", filepath.Join(buildDir, c)); err != nil {
				buildErr = err
				return
			}
		}
	})
	if buildErr != nil {
		tb.Skipf("cannot build jobsim for the PBS personality tests (needs the go toolchain): %v", buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// pbsHost is a PBS server with real bash jobs, served on a unix socket.
type pbsHost struct {
	bin, sock, home string
	srv             *fakepbs.Server
}

func startPBSHost(tb testing.TB) *pbsHost {
	tb.Helper()
	h := &pbsHost{bin: pbsBin(tb), home: tb.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := fakepbs.NewServer(ctx, fakepbs.WithName("fakepbs"), fakepbs.WithExecutor(bashexec.Executor{}),
		fakepbs.WithHistory(true, time.Hour), fakepbs.WithHomeDirs(func(string) string { return h.home }),
		fakepbs.WithPBSHome(tb.TempDir()), fakepbs.WithTmpDir(tb.TempDir()), fakepbs.WithFS(afero.NewOsFs()))
	if err != nil {
		tb.Fatal(err)
	}
	h.srv = srv
	h.sock = filepath.Join(tb.TempDir(), "pbs.sock")
	ln, err := remote.Listen("unix:"+h.sock, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- remote.Serve(ctx, ln, srv) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Close()
	})
	return h
}

// run runs a PBS command as the real executable from dir.
func (h *pbsHost) run(tb testing.TB, dir string, stdin *os.File, name string, args ...string) (string, string, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.bin, name), args...)
	cmd.Dir = dir
	cmd.Env = []string{"JOBSIM_PBS_SERVER=unix:" + h.sock, "USER=alice", "HOME=" + h.home, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	return testutil.Run(tb, cmd)
}

func TestPBSExecutablesJobLife(t *testing.T) {
	h := startPBSHost(t)
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "job.sh"), []byte("#!/bin/bash\n#PBS -N life\n#PBS -l walltime=00:01:00\nsleep 0.3\nexit 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := h.run(t, work, nil, "qsub", "job.sh")
	if code != 0 || out != "1.fakepbs\n" {
		t.Fatalf("qsub: exit %d stdout %q stderr %q", code, out, errs)
	}
	out, _, code = h.run(t, work, nil, "qstat", "1.fakepbs")
	if code != 0 || !strings.HasPrefix(out, "Job id            Name             User              Time Use S Queue\n") ||
		!strings.Contains(out, "\n1.fakepbs         life             alice    ") {
		t.Fatalf("qstat: exit %d\n%s", code, out)
	}
	if err := testutil.Poll("the job to finish (qstat exit 35)", 15*time.Second, func() bool {
		_, errs, code = h.run(t, work, nil, "qstat", "1")
		return code == 35
	}); err != nil {
		t.Fatalf("%v: qstat exit %d %q", err, code, errs)
	}
	if errs != "qstat: 1.fakepbs Job has finished, use -x or -H to obtain historical job information\n" {
		t.Errorf("finished job without -x: %q", errs)
	}
	out, _, code = h.run(t, work, nil, "qstat", "-fx", "1")
	if code != 0 || !strings.Contains(out, "    Exit_status = 7\n") || !strings.Contains(out, "    job_state = F\n") {
		t.Errorf("qstat -fx: exit %d\n%s", code, out)
	}
	_, errs, code = h.run(t, work, nil, "qdel", "1.fakepbs")
	if code != 35 || errs != "qdel: Job has finished 1.fakepbs\n" {
		t.Errorf("qdel of a finished job: exit %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(work, "life.o1")); err != nil {
		t.Errorf("the job's output file must be staged to qsub's working directory: %v", err)
	}
}

func TestPBSExecutablesStdin(t *testing.T) {
	h := startPBSHost(t)
	work := t.TempDir()
	// A script on stdin, as batchspawner submits.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func(w *os.File) {
		_, _ = w.WriteString("#PBS -N from-stdin\ntrue\n")
		_ = w.Close()
	}(w)
	out, errs, code := h.run(t, work, r, "qsub")
	_ = r.Close()
	if code != 0 || out != "1.fakepbs\n" {
		t.Fatalf("qsub from stdin: exit %d %q %q", code, out, errs)
	}
	if j, err := h.srv.Job(context.Background(), "1", true); err != nil || j.Name != "from-stdin" {
		t.Errorf("job %+v %v", j, err)
	}
	// An open stdin that never sends anything (a non-interactive ssh
	// session) must not block commands that do not read it.
	r, w, err = os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	start := time.Now()
	if _, errs, code := h.run(t, work, r, "qstat", "-B"); code != 0 {
		t.Errorf("qstat -B with an open stdin: exit %d %q", code, errs)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("qstat blocked on stdin for %v", d)
	}
}

func TestPBSExecutablesWithoutServer(t *testing.T) {
	bin := pbsBin(t)
	cmd := exec.Command(filepath.Join(bin, "qstat"), "1")
	cmd.Env = []string{"JOBSIM_PBS_SERVER=unix:" + filepath.Join(t.TempDir(), "absent.sock"), "PBS_SERVER=headnode", "USER=alice"}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 255 || errb.String() != "Connection refused\nqstat: cannot connect to server headnode (errno=111)\n" {
		t.Errorf("qstat without a server: %v %q", err, errb.String())
	}
	cmd = exec.Command(filepath.Join(bin, "qsub"))
	absent := filepath.Join(t.TempDir(), "pbs.conf")
	cmd.Env = []string{"USER=alice", "PBS_CONF_FILE=" + absent}
	errb.Reset()
	cmd.Stderr = &errb
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 15010&0xff ||
		!strings.HasPrefix(errb.String(), "No default server name.\nqsub: cannot connect to server  (errno=15010)\n") || !strings.Contains(errb.String(), absent+" (no such file)") {
		t.Errorf("qsub with no server configured: %v %q", err, errb.String())
	}
}

// TestPBSExecutablesFindServerInPBSConf: with no $JOBSIM_PBS_SERVER, the
// client finds its server in the pbs.conf $PBS_CONF_FILE names, as a real
// OpenPBS client does (batchspawner runs qsub with a reduced environment:
// the file is what a login node's clients rely on); $PBS_SERVER naming
// another server wins over the file.
func TestPBSExecutablesFindServerInPBSConf(t *testing.T) {
	h := startPBSHost(t)
	conf := filepath.Join(t.TempDir(), "pbs.conf")
	text := "# written by the test\nPBS_EXEC=/opt/pbs\nPBS_HOME=/var/spool/pbs\nPBS_SERVER=fakepbs\nJOBSIM_PBS_SERVER=unix:" + h.sock + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, name string, args ...string) (string, string, int) {
		cmd := exec.Command(filepath.Join(h.bin, name), args...)
		cmd.Dir = h.home
		cmd.Env = append([]string{"USER=alice", "HOME=" + h.home, "PATH=/usr/bin:/bin", "PBS_CONF_FILE=" + conf}, env...)
		return testutil.Run(t, cmd)
	}
	script := filepath.Join(h.home, "job.sh")
	if err := os.WriteFile(script, []byte("#PBS -h\nsleep 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(nil, "qsub", script)
	id := strings.TrimSpace(out)
	if code != 0 || !strings.HasSuffix(id, ".fakepbs") {
		t.Fatalf("qsub through pbs.conf: exit %d, out %q, err %q", code, out, errs)
	}
	if out, errs, code := run(nil, "qstat", "-f", id); code != 0 || !strings.Contains(out, "Job Id: "+id) {
		t.Errorf("qstat -f through pbs.conf: exit %d, out %q, err %q", code, out, errs)
	}
	// $PBS_SERVER names another server: the client goes there (TCP, the
	// default batch port) and says so in PBS's words.
	if _, errs, code := run([]string{"PBS_SERVER=127.0.0.1:1"}, "qstat", id); code == 0 || !strings.Contains(errs, "cannot connect to server 127.0.0.1:1") {
		t.Errorf("qstat with PBS_SERVER overriding the file: exit %d, err %q", code, errs)
	}
	// $JOBSIM_PBS_SERVER still wins over everything.
	if _, errs, code := run([]string{"JOBSIM_PBS_SERVER=unix:" + filepath.Join(t.TempDir(), "absent.sock")}, "qstat", id); code != 255 || !strings.Contains(errs, "cannot connect to server fakepbs") {
		t.Errorf("qstat with JOBSIM_PBS_SERVER: exit %d, err %q", code, errs)
	}
	if _, _, code := run(nil, "qdel", id); code != 0 {
		t.Errorf("qdel through pbs.conf: exit %d", code)
	}
}

func TestRunPersonalityIgnoresOtherNames(t *testing.T) {
	for _, name := range []string{"jobsim", "/usr/local/bin/jobsim", "qsubx", ""} {
		if _, ok := runPersonality(context.Background(), []string{name}); ok {
			t.Errorf("%q taken for a PBS command", name)
		}
	}
}

// BenchmarkPBSExecutablesRoundTrip measures qsub + qstat + qdel through the
// real executables and a unix socket, beside spawning `true` three times in
// the same run: the cost of a PBS call over the cost of any process.
func BenchmarkPBSExecutablesRoundTrip(b *testing.B) {
	h := startPBSHost(b)
	// No executor would keep jobs queued; use a server without one so the
	// jobs stay cheap and qdel always finds them queued.
	work := b.TempDir()
	if err := os.WriteFile(filepath.Join(work, "job.sh"), []byte("#PBS -l walltime=00:10:00\n#PBS -h\nsleep 100\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true(1) on PATH to compare with")
	}
	var pbs, spawn time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		out, errs, code := h.run(b, work, nil, "qsub", "job.sh")
		if code != 0 {
			b.Fatalf("qsub: %d %q", code, errs)
		}
		id := strings.TrimSpace(out)
		if _, errs, code := h.run(b, work, nil, "qstat", id); code != 0 {
			b.Fatalf("qstat: %d %q", code, errs)
		}
		if _, errs, code := h.run(b, work, nil, "qdel", id); code != 0 {
			b.Fatalf("qdel: %d %q", code, errs)
		}
		t1 := time.Now()
		for k := 0; k < 3; k++ {
			if err := exec.Command(truePath).Run(); err != nil {
				b.Fatal(err)
			}
		}
		pbs += t1.Sub(t0)
		spawn += time.Since(t1)
	}
	b.ReportMetric(float64(pbs.Nanoseconds())/float64(b.N), "pbs-ns/op")
	b.ReportMetric(float64(spawn.Nanoseconds())/float64(b.N), "3xtrue-ns/op")
	b.ReportMetric(float64(pbs)/float64(spawn), "pbs/true-ratio")
}

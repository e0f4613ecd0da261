package container_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/internal/testenv"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/internal/runreg"
	"github.com/jobsim/jobsim/internal/testutil"
)

// The image every test of this package runs, built once in TestMain (or
// the reason there is none).
var (
	testImage  image.Image
	noImageWhy string
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &testImage, &noImageWhy)) }

func needImage(t *testing.T) {
	t.Helper()
	if noImageWhy != "" {
		t.Skip(noImageWhy)
	}
}

// runHost starts a container for the test and removes it at the end.
func runHost(t *testing.T, opts ...container.Option) *container.Container {
	t.Helper()
	needImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := container.NewRunID()
	c, err := container.Run(ctx, append([]container.Option{container.WithImage(testImage), container.WithRun(run)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if rep, err := container.Sweep(ctx, run); err != nil || len(rep.Containers)+len(rep.Networks) > 0 {
			t.Errorf("left behind after Close: %+v %v", rep, err)
		}
	})
	return c
}

// sshRun runs a command on the container with the real OpenSSH client.
func sshRun(t *testing.T, c *container.Container, user, command string) (string, int) {
	t.Helper()
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no OpenSSH client (apt-get install openssh-client)")
	}
	cfg, err := c.SSHConfig("jobhost", user)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, sshBin, "-F", cfgFile, "jobhost", command).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	return string(out), code
}

// A container a Go test makes outside a jobsim run carries the test
// binary's run as its owner, a run that is alive while the test runs, so
// that `jobsim sweep` removes it once a killed test can no longer.
func TestTestContainersCarryALiveOwner(t *testing.T) {
	c := runHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := container.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner := os.Getenv(runreg.EnvVar)
	for _, o := range objs {
		if o.Kind == "container" && o.Run == c.Run() {
			if o.Owner == "" || o.Owner != owner || !runreg.Alive(runreg.Dir(), o.Owner) {
				t.Errorf("container owner %q, want this test binary's live run %q", o.Owner, owner)
			}
			return
		}
	}
	t.Fatalf("container of run %s not listed", c.Run())
}

func TestHostRunsPBSJobsOverSSH(t *testing.T) {
	c := runHost(t, container.WithName("fakehpc"), container.WithUsers("alice"), container.WithPBS(fakepbs.Config{History: true}))
	t.Logf("healthy in %s", c.StartedIn())
	out, code := sshRun(t, c, "alice", `hostname; id -un; echo 'echo hello from $PBS_JOBID on $(hostname)' | qsub -N hello`)
	if code != 0 {
		t.Fatalf("ssh exited %d: %s", code, out)
	}
	lines := strings.Fields(out)
	if len(lines) < 3 || lines[0] != "fakehpc" || lines[2] != "1.fakehpc" {
		t.Fatalf("want hostname fakehpc and job id 1.fakehpc, got %q", out)
	}
	if err := testutil.Poll("the job to finish with its output", 30*time.Second, func() bool {
		out, _ = sshRun(t, c, "alice", "qstat -x -f 1 | grep -E 'job_state|Exit_status'; cat hello.o1 2>/dev/null")
		return strings.Contains(out, "job_state = F") && strings.Contains(out, "hello from 1.fakehpc on fakehpc")
	}); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, "Exit_status = 0") {
		t.Errorf("want Exit_status = 0: %s", out)
	}
}

func TestUnlistableDirectoryInsideContainer(t *testing.T) {
	c := runHost(t, container.WithName("fshost"), container.WithUsers("alice"), container.WithFaultMounts("/opt/lib"))
	for _, n := range c.Notes() {
		if strings.Contains(n, "FUSE unavailable") {
			t.Skipf("the engine gives the container no FUSE: %s", n)
		}
	}
	if out, code := sshRun(t, c, "alice", "mkdir -p /opt/lib/pkg && echo 'X = 42' > /opt/lib/pkg/mod.py && touch /opt/lib/pkg/__init__.py && ls /opt/lib/pkg"); code != 0 || !strings.Contains(out, "mod.py") {
		t.Fatalf("setup: %d %s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Control().AddFault(ctx, fault.Rule{ID: "unlistable", Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/lib/pkg",
		Effect: fault.Effect{Kind: fault.Errno, Errno: "EIO"}}); err != nil {
		t.Fatal(err)
	}
	out, code := sshRun(t, c, "alice", "ls /opt/lib/pkg")
	if code == 0 || !strings.Contains(out, "Input/output error") {
		t.Errorf("ls of the unlistable directory: want an I/O error, got %d %q", code, out)
	}
	out, code = sshRun(t, c, "alice", "cat /opt/lib/pkg/mod.py")
	if code != 0 || !strings.Contains(out, "X = 42") {
		t.Errorf("cat of a file inside: want its content, got %d %q", code, out)
	}
	out, code = sshRun(t, c, "alice", "cd /opt/lib && python3 -c 'import pkg.mod; print(pkg.mod.X)'")
	if code == 0 || !strings.Contains(out, "Errno 5") {
		t.Errorf("python import from the unlistable directory: want it to fail with EIO, got %d %q", code, out)
	}
	if _, err := c.Control().ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	out, code = sshRun(t, c, "alice", "cd /opt/lib && python3 -c 'import pkg.mod; print(pkg.mod.X)'")
	if code != 0 || strings.TrimSpace(out) != "42" {
		t.Errorf("after clearing the fault the import must work: %d %q", code, out)
	}
}

// A host whose Cylc is the overlay shows no other Cylc: with its library
// unlistable (EACCES, which Python skips without a word) the import fails
// as on a job host instead of finding the test machine's copy that the
// bind-mounted /usr carries; readable, it finds the host's own.
func TestHostPythonCannotFallBackToTheMachinesCylc(t *testing.T) {
	needImage(t)
	if len(testImage.Hidden) == 0 {
		t.Skipf("image %s hides nothing (userland %s, overlay %v): no machine copy of Cylc to fall back to", testImage.Ref, testImage.Userland, testImage.Overlay)
	}
	c := runHost(t, container.WithName("cylchost"), container.WithUsers("alice"), container.WithCylc("/opt/cylc"), container.WithFaultMounts("/opt/cylc/lib"))
	for _, n := range c.Notes() {
		if strings.Contains(n, "FUSE unavailable") {
			t.Skipf("the engine gives the container no FUSE: %s", n)
		}
	}
	importCylc := "PYTHONPATH=/opt/cylc/lib python3 -c 'import cylc.flow; print(cylc.flow.__file__)'"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Control().AddFault(ctx, fault.Rule{ID: "unlistable", Layer: fault.FS, Ops: []string{"readdir"}, Path: "/opt/cylc/lib",
		Effect: fault.Effect{Kind: fault.Errno, Errno: "EACCES"}}); err != nil {
		t.Fatal(err)
	}
	if out, code := sshRun(t, c, "alice", importCylc); code == 0 || !strings.Contains(out, "No module named 'cylc.flow'") {
		t.Errorf("with the library unlistable: want ModuleNotFoundError, got %d %q", code, out)
	}
	if _, err := c.Control().ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	if out, code := sshRun(t, c, "alice", importCylc); code != 0 || strings.TrimSpace(out) != "/opt/cylc/lib/cylc/flow/__init__.py" {
		t.Errorf("with the library readable: want the host's own copy, got %d %q", code, out)
	}
}

// Job logs written on a containerized host reach the scenario's artifacts:
// files come out with their content, big ones cut, links left out, and a
// missing folder says so.
func TestCopyOutBringsHostFilesBack(t *testing.T) {
	c := runHost(t, container.WithName("logs"), container.WithUsers("alice"))
	setup := `set -e; d=log/job/1/foo; mkdir -p $d/01; echo out > $d/01/job.out; echo 'CYLC_JOB_EXIT=SUCCEEDED' > $d/01/job.status
head -c 5000 /dev/zero > $d/01/big; ln -s 01 $d/NN`
	if out, code := sshRun(t, c, "alice", setup); code != 0 {
		t.Fatalf("setup: %d %s", code, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst := filepath.Join(t.TempDir(), "job")
	if err := c.CopyOut(ctx, "/home/alice/log/job", dst, 1000); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"1/foo/01/job.out": "out\n", "1/foo/01/job.status": "CYLC_JOB_EXIT=SUCCEEDED\n"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "1/foo/01/big")); err != nil || !strings.HasPrefix(string(b), strings.Repeat("\x00", 1000)+"\n[jobsim: cut at 1000 bytes]") {
		t.Errorf("big file: %d bytes %v, want 1000 and the cut note", len(b), err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "1/foo/NN")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the NN link was copied: %v", err)
	}
	if err := c.CopyOut(ctx, "/home/alice/nosuch", filepath.Join(t.TempDir(), "x"), 1000); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: %v, want fs.ErrNotExist", err)
	}
}

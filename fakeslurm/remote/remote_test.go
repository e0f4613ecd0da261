package remote_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/fakeslurm/remote"
	"github.com/jobsim/jobsim/internal/testbin"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

var jobsimBin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &jobsimBin)) }

// host is a fake controller served on a unix socket, and a directory of
// Slurm command names linked to the jobsim binary.
type host struct {
	bin, sock, dir string
	srv            *fakeslurm.Server
	fs             afero.Fs
}

func startHost(t testing.TB, opts ...remote.Option) *host {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range cli.Commands {
		if err := os.Symlink(jobsimBin, filepath.Join(bin, c)); err != nil {
			t.Fatal(err)
		}
	}
	fs := afero.NewMemMapFs()
	e := virtual.New(virtual.WithFS(fs), virtual.WithHostname("localhost"))
	srv, err := fakeslurm.NewServer(context.Background(), fakeslurm.WithFS(fs), fakeslurm.WithExecutor(e),
		fakeslurm.WithSchedulerDelay(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "slurmctld.sock")
	ln, err := remote.Listen("unix:"+sock, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- remote.Serve(ctx, ln, srv, opts...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = srv.Close()
		_ = e.Close()
	})
	return &host{bin: bin, sock: sock, dir: dir, srv: srv, fs: fs}
}

func (h *host) run(t testing.TB, env []string, stdin string, name string, args ...string) (string, string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.bin, name), args...)
	cmd.Dir = h.dir
	cmd.Env = append([]string{"USER=alice", "HOME=" + h.dir, "PATH=" + h.bin + ":/usr/bin:/bin", "SLURM_CONF=" + filepath.Join(h.dir, "absent.conf"),
		"TMPDIR=" + h.dir}, env...) // srun's step counters go to TMPDIR
	cmd.Stdin = strings.NewReader(stdin)
	start := time.Now()
	out, errs, code := testutil.Run(t, cmd)
	return out, errs, code, time.Since(start)
}

// The executables reach the controller named by $JOBSIM_SLURM_SERVER:
// sbatch reads a script file or stdin on the client side, squeue and
// scancel act on the job.
func TestExecutablesAgainstController(t *testing.T) {
	h := startHost(t)
	env := []string{remote.ServerEnv + "=unix:" + h.sock}
	script := filepath.Join(h.dir, "job.sh")
	if err := os.WriteFile(script, []byte("#!/bin/bash\n#SBATCH -J fromfile\nsleep 600\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code, _ := h.run(t, env, "", "sbatch", "job.sh")
	if out != "Submitted batch job 1\n" || code != 0 {
		t.Fatalf("sbatch job.sh: %q %q exit %d", out, errs, code)
	}
	out, errs, code, _ = h.run(t, env, "#!/bin/sh\nsleep 600\n", "sbatch", "--parsable")
	if out != "2\n" || code != 0 {
		t.Fatalf("sbatch from stdin: %q %q exit %d", out, errs, code)
	}
	j, err := h.srv.Job(context.Background(), 1)
	if err != nil || j.Name != "fromfile" || j.User != "alice" || j.Command != script || j.WorkDir != h.dir {
		t.Errorf("job 1 as submitted: %+v %v", j, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _, _ = h.run(t, env, "", "squeue", "-h", "-j", "1", "-o", "%T %B")
		if out == "RUNNING localhost\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("squeue: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, errs, code, _ = h.run(t, env, "", "scancel", "1"); code != 0 || out != "" || errs != "" {
		t.Errorf("scancel 1: %q %q exit %d", out, errs, code)
	}
	if _, errs, code, _ = h.run(t, env, "", "squeue", "-j", "999"); code != 1 || errs != "slurm_load_jobs error: Invalid job id specified\n" {
		t.Errorf("squeue -j 999: %q exit %d", errs, code)
	}
}

// Without $JOBSIM_SLURM_SERVER the client finds its controller in
// slurm.conf, and honours its MessageTimeout when the controller is away:
// squeue waits MessageTimeout-1s, scancel exits 8.
func TestConfAndUnreachable(t *testing.T) {
	h := startHost(t)
	conf := filepath.Join(h.dir, "slurm.conf")
	if err := os.WriteFile(conf, []byte("ClusterName=c\nSlurmctldHost=head(10.0.0.1)\nMessageTimeout=2\n#JobsimController=unix:"+h.sock+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"SLURM_CONF=" + conf}
	if out, errs, code, _ := h.run(t, env, "", "sinfo", "-h", "-o", "%P %D"); out != "debug* 1\n" || code != 0 {
		t.Errorf("sinfo via slurm.conf: %q %q %d", out, errs, code)
	}
	gone := []string{"SLURM_CONF=" + conf, remote.ServerEnv + "=unix:" + filepath.Join(h.dir, "absent.sock")}
	out, errs, code, took := h.run(t, gone, "", "squeue")
	if out != "" || errs != "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n" || code != 1 {
		t.Errorf("squeue with the controller away: %q %q exit %d", out, errs, code)
	}
	if took < time.Second || took > 3*time.Second {
		t.Errorf("squeue gave up after %v, want MessageTimeout-1s = 1s", took)
	}
	_, errs, code, _ = h.run(t, gone, "", "scancel", "5")
	if errs != "scancel: error: Kill job error on job id 5: Unable to contact slurm controller (connect failure)\n" || code != 8 {
		t.Errorf("scancel with the controller away: %q exit %d", errs, code)
	}
	out, _, code, _ = h.run(t, gone, "", "scontrol", "ping")
	if !strings.HasPrefix(out, "Slurmctld(primary) at head is DOWN\n") || code != 1 {
		t.Errorf("scontrol ping: %q exit %d", out, code)
	}
	_, errs, code, _ = h.run(t, nil, "", "squeue")
	if code != 1 || !strings.Contains(errs, "Could not establish a configuration source") {
		t.Errorf("squeue without any configuration: %q exit %d", errs, code)
	}
}

// srun inside a job runs its command in place; outside a job it refuses.
func TestSrun(t *testing.T) {
	h := startHost(t)
	out, errs, code, _ := h.run(t, []string{"SLURM_JOB_ID=7"}, "", "srun", "-n", "1", "--export=ALL", "sh", "-c", "echo in job $SLURM_JOB_ID; exit 4")
	if out != "in job 7\n" || code != 4 {
		t.Errorf("srun in a job: %q %q exit %d", out, errs, code)
	}
	if _, errs, code, _ = h.run(t, nil, "", "srun", "true"); code != 1 || !strings.Contains(errs, "SLURM_JOB_ID") {
		t.Errorf("srun outside a job: %q exit %d", errs, code)
	}
	// srun -n 2: two tasks at once, each with its SLURM_PROCID, srun's
	// line for the failed one and its exit code.
	job := []string{"SLURM_JOB_ID=8", "SLURM_CPUS_ON_NODE=2", "SLURMD_NODENAME=localhost"}
	out, errs, code, _ = h.run(t, job, "", "srun", "-n", "2", "-l", "sh", "-c", "echo task $SLURM_PROCID of $SLURM_STEP_NUM_TASKS; exit $SLURM_PROCID")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(lines)
	if strings.Join(lines, "|") != "0: task 0 of 2|1: task 1 of 2" || code != 1 ||
		errs != "srun: error: localhost: task 1: Exited with exit code 1\n" {
		t.Errorf("srun -n 2: %q %q exit %d", out, errs, code)
	}
	for want := range 2 { // a job's steps count from 0
		if out, errs, _, _ := h.run(t, []string{"SLURM_JOB_ID=9"}, "", "srun", "sh", "-c", "echo $SLURM_STEP_ID"); out != fmt.Sprintln(want) {
			t.Errorf("step %d: %q %q", want, out, errs)
		}
	}
	if _, errs, code, _ = h.run(t, job, "", "srun", "-n", "3", "true"); code != 1 ||
		errs != "srun: error: Unable to create step for job 8: More processors requested than permitted\n" {
		t.Errorf("srun -n 3 on 2 CPUs: %q exit %d", errs, code)
	}
}

// On a unix socket the controller knows the caller's uid, as munge tells
// slurmctld: a process may act only in its own name.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client under another uid")
	}
	const nobody = 65534
	h := startHost(t, remote.WithUserLookup(func(uid uint32) (string, error) {
		if uid == nobody {
			return "alice", nil
		}
		return "", fmt.Errorf("uid %d unknown", uid)
	}))
	for d := h.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(h.bin, "sbatch"), "--wrap", "true")
		cmd.Dir = "/"
		cmd.Env = []string{"USER=" + user, "PATH=/usr/bin:/bin", remote.ServerEnv + "=unix:" + h.sock, "SLURM_CONF=/nonexistent"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		return testutil.Run(t, cmd)
	}
	if out, errs, code := as("alice"); out != "Submitted batch job 1\n" || code != 0 {
		t.Errorf("own name: %q %q exit %d", out, errs, code)
	}
	if out, errs, code := as("bob"); code != 1 || out != "" || errs != "sbatch: error: Access/permission denied\n" {
		t.Errorf("another user's name: %q %q exit %d", out, errs, code)
	}
	if j, err := h.srv.Job(context.Background(), 1); err != nil || j.User != "alice" || j.UID != nobody {
		t.Errorf("job 1: %+v %v", j, err)
	}
}

// A client's slurm.conf names the fake controller and its token in
// comment lines a real Slurm ignores; the real keys are read as Slurm
// reads them.
func TestReadConfTakesJobsimLinesAndSlurmKeys(t *testing.T) {
	c, err := remote.ReadConf(strings.NewReader("ClusterName=hpc\nSlurmctldHost=login(10.0.0.1)\nMessageTimeout=7\n#JobsimController=tcp:login:6817\n#JobsimToken=s3cret\n# a comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := remote.Conf{ClusterName: "hpc", ControlHost: "login", MessageTimeout: 7 * time.Second, Controller: "tcp:login:6817", Token: "s3cret"}
	if c != want {
		t.Errorf("ReadConf: %+v, want %+v", c, want)
	}
}

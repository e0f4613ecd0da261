package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/scenarios/runner"
)

// startServing runs `jobsim args...`, a command that prints JSON once it is
// up and then serves until interrupted, decodes that JSON into info, and
// returns stop: sig to the process (as Ctrl-C or a service manager would
// send) and its exit. Cleanup stops it if the test did not.
func startServing(t *testing.T, ctx context.Context, info any, sig syscall.Signal, args ...string) (stop func() error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, buildJobsim(t), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var exit error
	stop = func() error {
		once.Do(func() {
			_ = cmd.Process.Signal(sig)
			if exit = cmd.Wait(); exit != nil {
				exit = fmt.Errorf("%w\n%s", exit, stderr.String())
			}
		})
		return exit
	}
	t.Cleanup(func() { _ = stop() })
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(info); err != nil {
		t.Fatalf("reading what jobsim %s printed: %v\n%s", args[0], err, stderr.String())
	}
	go io.Copy(io.Discard, stdout)
	return stop
}

// startHostCommand runs `jobsim host ... -o json` and returns what it
// printed once the host was up; the process is stopped with SIGTERM at the
// end of the test, and must exit 0.
func startHostCommand(t *testing.T, args ...string) hostInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var info hostInfo
	stop := startServing(t, ctx, &info, syscall.SIGTERM, append([]string{"host", "-o", "json"}, args...)...)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("jobsim host did not stop cleanly on SIGTERM: %v", err)
		}
	})
	return info
}

func jobsimCLI(t *testing.T, info hostInfo, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildJobsim(t), args...)
	cmd.Env = append(os.Environ(), "JOBSIM_CONTROL="+info.Control, "JOBSIM_TOKEN="+info.Token)
	return testutil.Run(t, cmd)
}

func openssh(t *testing.T, info hostInfo, remote string) (string, string, int) {
	t.Helper()
	testutil.NeedOpenSSH(t, "ssh")
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(cfg, []byte(info.SSHConfig), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-F", cfg, "-o", "BatchMode=yes", info.Name, remote)
	return testutil.Run(t, cmd)
}

// A person's throwaway PBS login node: `jobsim host` prints an ssh config,
// `ssh fakehpc qsub` works, and faults go on and off from the CLI.
func TestHostCommandWithFaultCLI(t *testing.T) {
	info := startHostCommand(t, "--pbs", "--pbs-history", "--users", "alice")
	if info.PBSServer != "fakehpc" || info.KeyFiles["alice"] == "" {
		t.Fatalf("printed %+v", info)
	}
	out, errs, code := openssh(t, info, "echo 'sleep 0' | qsub")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), ".fakehpc") {
		t.Fatalf("ssh fakehpc qsub: %q %q exit %d", out, errs, code)
	}

	out, errs, code = jobsimCLI(t, info, "fault", "add", "pbs", "exit", "--id", "reject", "--ops", "qsub", "--exit-code", "38", "--stderr", "qsub: Job rejected by all possible destinations")
	if code != 0 || strings.TrimSpace(out) != "reject" {
		t.Fatalf("fault add: %q %q exit %d", out, errs, code)
	}
	_, errs, code = openssh(t, info, "echo 'sleep 0' | qsub")
	if code != 38 || !strings.HasSuffix(errs, "Job rejected by all possible destinations\n") {
		t.Fatalf("qsub under the fault: %q exit %d", errs, code)
	}
	out, _, _ = jobsimCLI(t, info, "fault", "ls", "-o", "json")
	var st []struct {
		ID          string `json:"id"`
		Activations int    `json:"activations"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st) != 1 || st[0].ID != "reject" || st[0].Activations != 1 {
		t.Fatalf("fault ls -o json: %v %q", err, out)
	}
	if _, errs, code := jobsimCLI(t, info, "fault", "add", "fs", "errno", "--errno", "EWHAT"); code == 0 || !strings.Contains(errs, "effect.errno") {
		t.Fatalf("a bad rule: %q exit %d", errs, code)
	}
	if _, errs, code := jobsimCLI(t, info, "fault", "rm", "reject"); code != 0 {
		t.Fatalf("fault rm: %q", errs)
	}
	if _, errs, code := openssh(t, info, "echo 'sleep 0' | qsub"); code != 0 {
		t.Fatalf("qsub after removing the fault: %q exit %d", errs, code)
	}

	out, _, code = jobsimCLI(t, info, "events")
	if code != 0 || !strings.Contains(out, "fault.activation") || !strings.Contains(out, "pbs.call") || !strings.Contains(out, "ssh.exec") {
		t.Fatalf("events:\n%s", out)
	}
	out, _, code = jobsimCLI(t, info, "pbs", "jobs", "-x", "-o", "json")
	var jobs []struct{ ID string }
	if err := json.Unmarshal([]byte(out), &jobs); code != 0 || err != nil || len(jobs) != 2 {
		t.Fatalf("pbs jobs: %v %q", err, out)
	}
	if _, errs, code := jobsimCLI(t, info, "slurm", "jobs", "-x"); code == 0 ||
		!strings.Contains(errs, "this host runs PBS, not Slurm") || !strings.Contains(errs, "jobsim pbs jobs") {
		t.Fatalf("slurm jobs on a PBS host: %q exit %d", errs, code)
	}

	// A zero outage is refused, not quietly turned into the default one.
	if _, errs, code := jobsimCLI(t, info, "pbs", "restart", "--down", "0s"); code == 0 || !strings.Contains(errs, "give a positive duration") {
		t.Fatalf("pbs restart --down 0s: %q exit %d, want refused", errs, code)
	}
	out, errs, code = jobsimCLI(t, info, "pbs", "restart", "--down", "1s", "--lose-jobs")
	if code != 0 || !strings.Contains(out, "PBS server down for 1s; jobs lost") {
		t.Fatalf("pbs restart: %q %q exit %d", out, errs, code)
	}
	if _, errs, code := openssh(t, info, "qstat"); code != 255 || !strings.Contains(errs, "Connection refused") {
		t.Fatalf("qstat while the server restarts: %q exit %d", errs, code)
	}
	if _, errs, code := jobsimCLI(t, info, "pbs", "restart"); code == 0 || !strings.Contains(errs, "already down") {
		t.Fatalf("a second restart while down: %q exit %d", errs, code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, code = jobsimCLI(t, info, "pbs", "jobs", "-x", "-o", "json")
		if code == 0 && strings.TrimSpace(out) == "[]" {
			if _, errs, code := openssh(t, info, "qstat"); code == 0 {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("qstat after the restart: %q exit %d", errs, code)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("jobs after a restart that lost them: %q exit %d", out, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRunRejectsAMalformedScenarioBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	os.WriteFile(p, []byte("name: bad\ntopology:\n  hosts: [{name: h}]\nsystem:\n  cylc: {workflow: nowhere}\ntimeline:\n  - do: start\n    retries: 2\n"), 0o644)
	_, errs, code := jobsimCLI(t, hostInfo{}, "run", "--artifacts", filepath.Join(dir, "out"), p)
	if code != 2 || !strings.Contains(errs, "bad.yaml:8:5: unknown field \"retries\"") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Fatal("a malformed scenario still created artifacts")
	}
}

// `jobsim host --trusted-user-ca-keys` makes the host accept a user
// certificate signed by that CA (made by the real ssh-keygen) for a key
// the host was never told about, as sshd's TrustedUserCAKeys.
func TestHostCommandTrustsUserCertificates(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("the OpenSSH ssh-keygen is not installed (make setup installs openssh-client)")
	}
	dir := t.TempDir()
	keygen := func(args ...string) {
		t.Helper()
		c := exec.Command("ssh-keygen", args...)
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	keygen("-q", "-t", "ed25519", "-N", "", "-f", "ca")
	keygen("-q", "-t", "ed25519", "-N", "", "-f", "id_cert")
	keygen("-q", "-s", "ca", "-I", "alice-cert", "-n", "alice", "-V", "+5m", "id_cert.pub")
	info := startHostCommand(t, "--users", "alice", "--trusted-user-ca-keys", filepath.Join(dir, "ca.pub"))
	var lines []string
	for _, l := range strings.Split(info.SSHConfig, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "IdentityFile ") {
			l = "  IdentityFile " + filepath.Join(dir, "id_cert")
		}
		lines = append(lines, l)
	}
	info.SSHConfig = strings.Join(lines, "\n")
	if out, errs, code := openssh(t, info, "echo in as $USER"); code != 0 || out != "in as alice\n" {
		t.Fatalf("ssh with the certificate: %q %q exit %d\nconfig:\n%s", out, errs, code, info.SSHConfig)
	}
}

// A person's throwaway Slurm login node: `jobsim host --slurm` prints the
// cluster, and through the real OpenSSH client sbatch --wrap queues a job
// that squeue lists, runs it, and sacct reports it completed; --slurm with
// --pbs is refused.
func TestHostCommandSlurm(t *testing.T) {
	info := startHostCommand(t, "--slurm", "--users", "alice")
	if info.SlurmCluster != "fakehpc" || info.PBSServer != "" {
		t.Fatalf("printed %+v", info)
	}
	out, errs, code := openssh(t, info, `sbatch --wrap "sleep 1"; squeue`)
	if code != 0 || !strings.HasPrefix(out, "Submitted batch job ") || !strings.Contains(out, "JOBID PARTITION") || !strings.Contains(out, " alice ") {
		t.Fatalf("ssh fakehpc 'sbatch --wrap \"sleep 1\"; squeue': %q %q exit %d", out, errs, code)
	}
	first, _, _ := strings.Cut(out, "\n")
	id := strings.TrimPrefix(first, "Submitted batch job ")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errs, code = openssh(t, info, "sacct -n -X -P -j "+id+" -o JobName,State,ExitCode")
		if code == 0 && strings.TrimSpace(out) == "wrap|COMPLETED|0:0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sacct of job %s: %q %q exit %d", id, out, errs, code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, errs, code = jobsimCLI(t, info, "slurm", "jobs", "-x", "-o", "json")
	var jobs []struct {
		ID    int
		Name  string
		State string
	}
	if err := json.Unmarshal([]byte(out), &jobs); code != 0 || err != nil || len(jobs) != 1 || fmt.Sprint(jobs[0].ID) != id ||
		jobs[0].Name != "wrap" || jobs[0].State != "COMPLETED" {
		t.Fatalf("slurm jobs -x -o json: %v %q %q", err, out, errs)
	}
	// pbs jobs on a Slurm host says so and names the command to use.
	if _, errs, code := jobsimCLI(t, info, "pbs", "jobs", "-x"); code == 0 ||
		!strings.Contains(errs, "this host runs Slurm, not PBS") || !strings.Contains(errs, "jobsim slurm jobs") {
		t.Fatalf("pbs jobs on a Slurm host: %q exit %d", errs, code)
	}
	if _, errs, code := jobsimCLI(t, hostInfo{}, "host", "--slurm", "--pbs"); code == 0 || !strings.Contains(errs, "one batch system") {
		t.Fatalf("--slurm --pbs: %q exit %d", errs, code)
	}
}

// The containers backend carries Slurm: the Slurm gate (real Cylc
// submitting with sbatch and polling over ssh) passes on a job-host
// container as it does in-process, and the Slurm host in its history is
// the container's node daemon (its sshd on the container's port 22).
func TestSlurmScenarioOnContainers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := container.DockerAvailable(ctx); err != nil {
		t.Skipf("the containers backend needs a Docker engine: %v", err)
	}
	bin := buildJobsim(t)
	art := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "run", "--backend", "containers", "-o", "json", "--artifacts", art, "../../fixtures/scenarios/cylc/happy-slurm-poll.yaml")
	cmd.Env = append(os.Environ(), "JOBSIM_BIN="+bin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var reps []runner.Report
	if err := json.Unmarshal(stdout.Bytes(), &reps); err != nil || len(reps) != 1 {
		t.Fatalf("jobsim run: %v, reports %d, output: %v\n%s\n%s", runErr, len(reps), err, stdout.String(), stderr.String())
	}
	r := reps[0]
	switch {
	case r.Verdict == runner.Skip:
		t.Skipf("%s skipped: %s", r.Name, r.Reason)
	case r.Verdict != runner.Pass || runErr != nil:
		t.Fatalf("%s on containers: %s (%s), %v; artifacts %s\n%s", r.Name, r.Verdict, r.Reason, runErr, r.Dir, stderr.String())
	}
	hist, err := os.ReadFile(filepath.Join(r.Dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	started := false
	for _, line := range strings.Split(string(hist), "\n") {
		var e struct {
			Host, Kind string
			Fields     map[string]any
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Kind == "host" && e.Host == "fakehpc" {
			ssh, _ := e.Fields["ssh"].(string)
			started = strings.HasSuffix(ssh, ":22")
		}
	}
	if !started {
		t.Errorf("the history has no start of host fakehpc as a container (sshd on port 22):\n%s", hist)
	}
}

package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/fakeslurm/realslurm"
	"github.com/jobsim/jobsim/fakeslurm/virtualsrun"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// twin is the same Slurm twice: Debian's real daemons and the fake, set up
// alike (one node "localhost" with 2 CPUs and 1000 MB, partition debug,
// MessageTimeout 2s, job arrays off, no accounting).
type twin struct {
	real   *realslurm.Cluster
	fake   *fakeslurm.Server
	fs     afero.Fs
	faults *fault.Set
}

const diffMsgTimeout = 2 * time.Second

func startTwin(t *testing.T) *twin { return startTwinWith(t, false) }

// startTwinWith starts the twin, with accounting (slurmdbd and MariaDB on
// the real side, sacct's history on the fake) or without (sacct refused).
func startTwinWith(t *testing.T, accounting bool) *twin {
	t.Helper()
	avail := realslurm.Available
	if accounting {
		avail = realslurm.AccountingAvailable
	}
	if err := avail(); err != nil {
		t.Skipf("real Slurm cannot run here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rc, err := realslurm.Start(ctx, realslurm.Options{MessageTimeout: diffMsgTimeout, KillWait: 2 * time.Second, Accounting: accounting})
	if err != nil {
		t.Skipf("real Slurm does not start here: %v", err)
	}
	t.Cleanup(func() {
		if err := rc.Close(); err != nil {
			t.Errorf("stop real Slurm: %v", err)
		}
		if left := rc.Leftovers(); len(left) > 0 {
			t.Errorf("processes of the real Slurm left running: %v", left)
		}
		if _, err := os.Stat(rc.Dir); !os.IsNotExist(err) {
			t.Errorf("real Slurm's directory %s is left behind", rc.Dir)
		}
	})
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll(rc.Work, 0o755); err != nil {
		t.Fatal(err)
	}
	set := fault.NewSet()
	e := virtual.New(virtual.WithFS(fs), virtual.WithHostname("localhost"), virtual.WithBuiltin("srun", virtualsrun.Builtin()))
	srv, err := fakeslurm.NewServer(context.Background(), fakeslurm.WithFS(fs), fakeslurm.WithExecutor(e),
		fakeslurm.WithControlHost(rc.Host), fakeslurm.WithMessageTimeout(diffMsgTimeout), fakeslurm.WithAccounting(accounting),
		fakeslurm.WithKillWait(2*time.Second), fakeslurm.WithFaults(set))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Close()
		_ = e.Close()
	})
	return &twin{real: rc, fake: srv, fs: fs, faults: set}
}

// result is one command's output on one side.
type result struct {
	out, err string
	code     int
	took     time.Duration
}

func (tw *twin) runReal(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var in []byte
	if stdin != "" || args[0] == "sbatch" {
		in = []byte(stdin)
	}
	start := time.Now()
	out, errs, code, err := tw.real.Exec(ctx, in, args[0], args[1:]...)
	if err != nil {
		t.Fatalf("real %v: %v", args, err)
	}
	return result{out, errs, code, time.Since(start)}
}

func (tw *twin) runFake(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	res := cli.Run(ctx, tw.fake, cli.Invocation{
		Command: args[0], Args: args[1:], Stdin: strings.NewReader(stdin),
		Env: []string{"HOME=/root", "PATH=/usr/bin:/bin", "SLURM_CONF=" + tw.real.Conf},
		Cwd: tw.real.Work, User: "root", Host: "localhost", FS: tw.fs,
	}, cli.WithFaults(tw.faults))
	return result{string(res.Stdout), string(res.Stderr), res.ExitCode, time.Since(start)}
}

var (
	stepRetryRE = regexp.MustCompile(`(?m)^srun: (Job \d+ step creation temporarily disabled, retrying \(Requested nodes are busy\)|Step created for job \d+)\n`)
	stampRE     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)
	runTimeRE   = regexp.MustCompile(`RunTime=\S+`)
	sidRE       = regexp.MustCompile(`AllocNode:Sid=\S+`)
	nodeRE      = regexp.MustCompile(`(CPULoad|FreeMem|BootTime|SlurmdStartTime|LastBusyTime)=[^\n]*?( [A-Z]|\n)`)
	osRE        = regexp.MustCompile(`OS=[^\n]*`)
)

// normalize removes what differs run to run (times, the submitting
// session), as reference/slurm.md lists.
func normalize(s string) string {
	s = stampRE.ReplaceAllString(s, "<TIME>")
	s = runTimeRE.ReplaceAllString(s, "RunTime=<RUN>")
	s = sidRE.ReplaceAllString(s, "AllocNode:Sid=<SID>")
	s = nodeRE.ReplaceAllString(s, "$1=<X>$2")
	s = osRE.ReplaceAllString(s, "OS=<X>")
	// A cancelled dash script exits 143:0 when its child gets the SIGTERM
	// before it does, 0:15 otherwise: a race in the real Slurm.
	s = strings.ReplaceAll(s, "ExitCode=143:0", "ExitCode=0:15")
	return s
}

// squeueTime blanks the TIME column (the 10 characters after the ST
// column) of squeue's default table.
func squeueTime(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if len(l) >= 61 {
			lines[i] = l[:50] + "<TIME>    " + l[60:]
		}
	}
	return strings.Join(lines, "\n")
}

// same runs args on both sides and requires equal output after norm.
func (tw *twin) same(t *testing.T, stdin string, norm func(string) string, args ...string) (result, result) {
	t.Helper()
	r := tw.runReal(t, stdin, args...)
	f := tw.runFake(t, stdin, args...)
	n := func(s string) string {
		s = normalize(s)
		if norm != nil {
			s = norm(s)
		}
		return s
	}
	if n(r.out) != n(f.out) || n(r.err) != n(f.err) || r.code != f.code {
		t.Errorf("%s\n--- real (exit %d)\nstdout:\n%s\nstderr:\n%s\n--- fake (exit %d)\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), r.code, r.out, r.err, f.code, f.out, f.err)
	}
	return r, f
}

// waitBoth polls `squeue -h -t all -o FORMAT` on both sides until want
// (after normalising) shows on each.
func (tw *twin) waitBoth(t *testing.T, format, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, side := range []func(*testing.T, string, ...string) result{tw.runReal, tw.runFake} {
		for {
			got := side(t, "", "squeue", "-h", "-t", "all", "-o", format).out
			if strings.Contains(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %q in squeue -o %q; last: %q", want, format, got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestDifferential runs one command sequence — submissions accepted and
// rejected, queries, holds, cancels, failures, unknown ids, and a
// controller that is down or hung — against Debian's real Slurm and the
// fake, and requires the same output and exit status from both.
func TestDifferential(t *testing.T) {
	tw := startTwin(t)
	tw.same(t, "", nil, "sinfo")
	tw.same(t, "", nil, "sinfo", "-h", "-o", "%P %a %D %T %N")
	tw.same(t, "", nil, "sbatch", "--wrap", "sleep 300")
	tw.same(t, "", nil, "sbatch", "--parsable", "-J", "spawner-jupyterhub", "-t", "10", "--wrap", "sleep 300")
	tw.same(t, "", nil, "sbatch", "-N", "5", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-p", "nosuch", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "--mem=99999", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "--array=0-3", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "--time=abc", "--wrap", "true")
	tw.same(t, "echo no shebang\n", nil, "sbatch")
	tw.same(t, "", nil, "sbatch")
	tw.same(t, "", nil, "sbatch", "nosuch.sh")
	tw.same(t, "", nil, "sbatch", "--bogus")
	tw.same(t, "", nil, "squeue", "--bogus")
	tw.same(t, "", nil, "scancel", "--bogus")
	tw.same(t, "", nil, "scontrol", "--bogus")
	tw.same(t, "", nil, "sinfo", "--bogus")

	tw.waitBoth(t, "%i %T", "2 RUNNING")
	tw.waitBoth(t, "%i %T", "1 RUNNING")
	tw.waitBoth(t, "%i %r", "3 PartitionConfig")
	tw.same(t, "", squeueTime, "squeue")
	tw.same(t, "", nil, "squeue", "-h", "-j", "1", "-o", "%T %B")
	tw.same(t, "", squeueTime, "squeue", "-h", "-j", "1,2,999")
	tw.same(t, "", nil, "squeue", "-j", "999")
	tw.same(t, "", nil, "squeue", "-j", "abc")
	tw.same(t, "", nil, "squeue", "-t", "bogus")
	tw.same(t, "", nil, "squeue", "-t", "all", "-o", "%i|%P|%j|%u|%t|%T|%l|%D|%C|%R|%r|%B|%N|%m|%Q|%o|%a|%E")
	tw.same(t, "", nil, "squeue", "-O", "JobID,Name:5,State:.12,TimeLimit,NumCPUs,MinMemory,Partition,UserName,Reason")
	tw.same(t, "", nil, "scontrol", "show", "job", "1")
	tw.same(t, "", nil, "scontrol", "show", "job", "2")
	tw.same(t, "", nil, "scontrol", "show", "job", "3")
	tw.same(t, "", nil, "scontrol", "show", "job", "4")
	tw.same(t, "", nil, "scontrol", "show", "job", "999")
	tw.same(t, "", nil, "scontrol", "hold", "3")
	tw.same(t, "", nil, "squeue", "-h", "-j", "3", "-o", "%T %r %Q")
	tw.same(t, "", nil, "scontrol", "release", "3")
	tw.same(t, "", nil, "scontrol", "hold", "999")
	tw.same(t, "", nil, "scontrol", "show", "partition")
	tw.same(t, "", nil, "scontrol", "show", "node", "localhost")
	tw.same(t, "", nil, "scontrol", "show", "node", "nosuch")
	tw.same(t, "", nil, "scontrol", "bogus")
	tw.same(t, "", nil, "scontrol", "ping")
	tw.same(t, "", nil, "sacct")

	// Cancel a running job: CANCELLED with 0:15 and slurmstepd's line.
	tw.same(t, "", nil, "scancel", "2")
	tw.waitBoth(t, "%i %T", "2 CANCELLED")
	tw.same(t, "", nil, "scontrol", "show", "job", "2")
	tw.same(t, "", nil, "squeue", "-h", "-j", "2", "-o", "%T %B")
	tw.same(t, "", nil, "scancel", "2")
	tw.same(t, "", nil, "scancel", "999")
	tw.same(t, "", nil, "scancel", "-v", "999")
	tw.same(t, "", nil, "scancel", "abc")
	tw.same(t, "", nil, "scancel")
	tw.same(t, "", nil, "scancel", "-s", "BOGUS", "1")
	tw.same(t, "", nil, "scancel", "3")

	// A failing job and output patterns.
	tw.same(t, "", nil, "sbatch", "--wrap", "echo to-out; echo to-err >&2; exit 3")
	tw.same(t, "#!/bin/bash\n#SBATCH -J named\n#SBATCH --output=out-%j-%x.txt\necho hello $SLURM_JOB_ID $SLURM_JOB_NAME $SLURM_JOB_NODELIST\n", nil, "sbatch")
	tw.waitBoth(t, "%i %T", "5 FAILED")
	tw.waitBoth(t, "%i %T", "6 COMPLETED")
	tw.same(t, "", nil, "scontrol", "show", "job", "5")
	tw.same(t, "", nil, "scontrol", "show", "job", "6")
	for _, f := range []string{"slurm-5.out", "out-6-named.txt", "slurm-2.out"} {
		compareFile(t, tw, f)
	}
	tw.same(t, "", nil, "squeue", "-t", "all", "-o", "%i %T %r")

	// The controller away: each command's message, exit status and the
	// time it spends trying (MessageTimeout-1s; twice for one job id).
	tw.real.StopController()
	rule, err := tw.faults.Add(fault.Rule{Layer: fault.Slurm, Effect: fault.Effect{Kind: fault.Unreachable, Style: "refused"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"squeue"}, {"squeue", "-h", "-j", "1"}, {"sinfo"}, {"sbatch", "--wrap", "true"}, {"scancel", "1"},
		{"scontrol", "show", "job", "1"}, {"scontrol", "ping"},
	} {
		r, f := tw.same(t, "", func(s string) string { return strings.ReplaceAll(s, tw.real.Host, "<host>") }, args...)
		if d := r.took - f.took; d > 900*time.Millisecond || d < -900*time.Millisecond {
			t.Errorf("%v took %v on the real Slurm, %v on the fake", args, r.took, f.took)
		}
	}
	tw.faults.Remove(rule.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tw.real.StartController(ctx); err != nil {
		t.Fatal(err)
	}
	tw.same(t, "", nil, "scontrol", "ping")

	// A hung controller (SIGSTOP): socket timeouts, scancel exits 140.
	tw.real.PauseController()
	rule, err = tw.faults.Add(fault.Rule{Layer: fault.Slurm, Effect: fault.Effect{Kind: fault.Unreachable, Style: "cannot-connect"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"squeue"}, {"scancel", "1"}} {
		r, f := tw.same(t, "", nil, args...)
		if d := r.took - f.took; d > 900*time.Millisecond || d < -900*time.Millisecond {
			t.Errorf("%v took %v on the real Slurm, %v on the fake", args, r.took, f.took)
		}
	}
	tw.faults.Remove(rule.ID)
	tw.real.ResumeController()
}

// waitFile waits until a job's output file holds want on both sides.
func (tw *twin) waitFile(t *testing.T, name, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, read := range []func() ([]byte, error){
		func() ([]byte, error) { return os.ReadFile(filepath.Join(tw.real.Work, name)) },
		func() ([]byte, error) { return afero.ReadFile(tw.fs, filepath.Join(tw.real.Work, name)) },
	} {
		for {
			if b, _ := read(); strings.Contains(string(b), want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never held %q", name, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// compareFile requires a job's output file to be the same on both sides.
func compareFile(t *testing.T, tw *twin, name string) {
	t.Helper()
	realOut, err := os.ReadFile(filepath.Join(tw.real.Work, name))
	if err != nil {
		t.Errorf("real: %v", err)
	}
	fakeOut, err := afero.ReadFile(tw.fs, filepath.Join(tw.real.Work, name))
	if err != nil {
		t.Errorf("fake: %v", err)
	}
	r := strings.ReplaceAll(normalize(string(realOut)), "slurmstepd-"+tw.real.Host, "slurmstepd-localhost")
	// dash's report of its child killed by SIGTERM; the virtual shell
	// the fake's jobs run in does not print it.
	r = strings.ReplaceAll(r, "Terminated\n", "")
	// srun waiting for the previous step's CPUs, which the real slurmd
	// frees a moment after that step ended: its timing, not a behaviour.
	r = stepRetryRE.ReplaceAllString(r, "")
	if r != normalize(string(fakeOut)) {
		t.Errorf("%s: real %q, fake %q", name, realOut, fakeOut)
	}
}

// TestDifferentialJobs compares what jobs see and how the queue shows
// them: the job environment, --export, held submissions, dependencies,
// time limit formats and resource requests.
func TestDifferentialJobs(t *testing.T) {
	t.Parallel()
	tw := startTwin(t)
	envScript := "#!/bin/bash\n#SBATCH -J envjob\n#SBATCH -c 2\n#SBATCH --mem=100\nenv | grep -E '^(SLURM|SLURMD)_' | sort; echo FOO=${FOO-unset} BAR=${BAR-unset}\n"
	tw.same(t, envScript, nil, "sbatch", "--export=ALL,FOO=foo")
	tw.same(t, "", nil, "sbatch", "-H", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-d", "afterok:1", "-t", "1-2:03", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-d", "afternotok:1", "-t", "90", "-n", "2", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-d", "bogus:1", "--wrap", "true")
	tw.waitBoth(t, "%i %T", "1 COMPLETED")
	tw.waitBoth(t, "%i %T", "3 COMPLETED")
	tw.same(t, "", nil, "squeue", "-t", "all", "-o", "%i %T %r %l %D %C %m %E %Q")
	tw.same(t, "", nil, "scontrol", "show", "job", "2")
	tw.same(t, "", nil, "scontrol", "show", "job", "4")
	tw.same(t, "", nil, "scontrol", "release", "2")
	tw.waitBoth(t, "%i %T", "2 COMPLETED")

	// Signals: without -b a signal reaches job steps only (none here);
	// with -b the batch shell gets it and its trap runs.
	trap := "#!/bin/bash\ntrap 'echo got USR1; exit 0' USR1\necho ready\nsleep 300 &\nwait\nwait\necho woke\n"
	// (job 5 is the id the bad dependency used up)
	tw.same(t, trap, nil, "sbatch")
	tw.waitBoth(t, "%i %T", "6 RUNNING")
	tw.waitFile(t, "slurm-6.out", "ready\n") // the trap is set
	tw.same(t, "", nil, "scancel", "-s", "USR1", "6")
	tw.same(t, "", nil, "squeue", "-h", "-j", "6", "-o", "%T")
	tw.same(t, "", nil, "scancel", "-b", "-s", "USR1", "6")
	tw.waitBoth(t, "%i %T", "6 COMPLETED")
	tw.same(t, "", nil, "scontrol", "show", "job", "6")
	compareFile(t, tw, "slurm-6.out")

	// Script arguments, node lists, append mode.
	args := "#!/bin/sh\necho args: \"$@\" $#\n"
	if err := os.WriteFile(filepath.Join(tw.real.Work, "args.sh"), []byte(args), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(tw.fs, filepath.Join(tw.real.Work, "args.sh"), []byte(args), 0o644); err != nil {
		t.Fatal(err)
	}
	tw.same(t, "", nil, "sbatch", "-o", "args.out", "args.sh", "one", "two three")
	tw.same(t, "", nil, "sbatch", "-w", "nosuch", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-x", "localhost", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-w", "localhost", "--exclusive", "--open-mode=append", "-o", "app.out", "--wrap", "echo x")
	tw.same(t, "", nil, "sbatch", "--open-mode=append", "-o", "app.out", "--wrap", "echo y")
	tw.waitBoth(t, "%i %T", "7 COMPLETED")
	tw.waitBoth(t, "%i %T", "11 COMPLETED")
	tw.same(t, "", nil, "squeue", "-t", "all", "-o", "%i %T %r %C")
	compareFile(t, tw, "args.out")
	compareFile(t, tw, "app.out")

	// sbatch --wait exits with the job's exit code; node administration.
	tw.same(t, "", nil, "sbatch", "-W", "--wrap", "exit 3")
	tw.same(t, "", nil, "scontrol", "update", "NodeName=localhost", "State=DRAIN", "Reason=maint")
	tw.same(t, "", nil, "sinfo")
	tw.same(t, "", nil, "scontrol", "show", "node", "localhost")
	// (right after a resume the real sinfo shows idle* until slurmctld
	// has pinged slurmd: not compared)
	tw.same(t, "", nil, "scontrol", "update", "NodeName=localhost", "State=RESUME")
	tw.same(t, "", nil, "scontrol", "update", "NodeName=nosuch", "State=RESUME")
	tw.same(t, "", nil, "scontrol", "update", "NodeName=localhost", "State=BOGUS")
	tw.same(t, "", nil, "scontrol", "update", "NodeName=localhost", "State=DOWN")

	realOut, err := os.ReadFile(filepath.Join(tw.real.Work, "slurm-1.out"))
	if err != nil {
		t.Fatal(err)
	}
	fakeOut, err := afero.ReadFile(tw.fs, filepath.Join(tw.real.Work, "slurm-1.out"))
	if err != nil {
		t.Fatal(err)
	}
	if normEnv(string(realOut)) != normEnv(string(fakeOut)) {
		t.Errorf("job environment differs:\n--- real\n%s\n--- fake\n%s", realOut, fakeOut)
	}
}

// waitSacct waits until the real accounting database has the job ends
// (slurmctld sends them to slurmdbd on its own time): want is a suffix of
// `sacct -n -X -P -o JobID,State`.
func (tw *twin) waitSacct(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := tw.runReal(t, "", "sacct", "-n", "-X", "-P", "-o", "JobID,State").out
		if strings.HasSuffix(out, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sacct never showed %q; last %q", want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDifferentialSacct compares sacct, with slurmdbd and MariaDB behind
// the real one: the default table, parsable forms, steps, cancelled and
// failed jobs, unknown ids.
func TestDifferentialSacct(t *testing.T) {
	t.Parallel()
	tw := startTwinWith(t, true)
	tw.same(t, "", nil, "sbatch", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "--wrap", "exit 3")
	// exec: the batch process itself gets the SIGTERM (with a shell in
	// between, the real Slurm races between 0:15 and the shell's 143).
	tw.same(t, "", nil, "sbatch", "-J", "spawner-jupyterhub", "--wrap", "exec sleep 300")
	tw.same(t, "", nil, "sbatch", "-N", "5", "--wrap", "true")
	tw.waitBoth(t, "%i %T", "3 RUNNING")
	tw.waitBoth(t, "%i %T", "2 FAILED")
	tw.waitBoth(t, "%i %T", "1 COMPLETED")
	tw.same(t, "", nil, "scancel", "3", "4")
	tw.waitBoth(t, "%i %T", "3 CANCELLED")
	tw.waitSacct(t, "3|CANCELLED by 0\n4|CANCELLED by 0\n")
	elapsed := regexp.MustCompile(`\d\d:\d\d:\d\d`)
	noElapsed := func(s string) string { return elapsed.ReplaceAllString(s, "<ELAPSED>") }
	tw.same(t, "", nil, "sacct")
	tw.same(t, "", nil, "sacct", "-n", "-X", "-P", "-j", "1,2,3,4", "-o", "JobID,State,ExitCode")
	tw.same(t, "", nil, "sacct", "-j", "3")
	tw.same(t, "", nil, "sacct", "-n", "-j", "999")
	tw.same(t, "", nil, "sacct", "-j", "999")
	tw.same(t, "", noElapsed, "sacct", "-P", "-o", "JobID,JobName,Partition,Account,AllocCPUS,State,ExitCode,Elapsed,NNodes,NodeList,User,Timelimit")
	// A job cancelled before it ever ran shows Start None, or its end
	// time when slurmctld had sent slurmdbd its record first (a race in
	// the real Slurm: both were seen).
	neverRan := func(s string) string { return strings.ReplaceAll(noElapsed(s), "4|None|", "4|<TIME>|") }
	tw.same(t, "", neverRan, "sacct", "-p", "-X", "-o", "JobIDRaw,Start,End,Submit,ReqMem,ReqCPUS")
	tw.same(t, "", nil, "sacct", "-b")
	// With accounting the dump names the association: account, QOS.
	tw.same(t, "", normJSON, "squeue", "--json")
	tw.same(t, "", normSacctJSON, "sacct", "--json")
	tw.same(t, "", normSacctJSON, "sacct", "--json", "-j", "2,4")
}

var (
	sacctTimeRE = regexp.MustCompile(`"(eligible|end|start|submission)": [1-9]\d*`)
	sacctCPURE  = regexp.MustCompile(`"(elapsed|seconds|microseconds)": \d+`)
)

// withoutStepUsage drops the jobs' steps' tres.requested and tres.consumed
// from a sacct --json dump (other text is returned as it is), re-encoded.
func withoutStepUsage(t *testing.T, s string) string {
	t.Helper()
	start := strings.Index(s, "{")
	if start < 0 {
		return s
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(regexp.MustCompile(`<[TN]>`).ReplaceAllString(s[start:], "0")), &doc); err != nil {
		return s
	}
	jobs, _ := doc["jobs"].([]any)
	for _, j := range jobs {
		steps, _ := j.(map[string]any)["steps"].([]any)
		for _, st := range steps {
			if tr, ok := st.(map[string]any)["tres"].(map[string]any); ok {
				delete(tr, "requested")
				delete(tr, "consumed")
			}
		}
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return s[:start] + string(b)
}

// normSacctJSON blanks the times of sacct --json (0 and null stay), its
// elapsed seconds and the CPU times slurmd measured (the fake measures
// none).
func normSacctJSON(s string) string {
	s = sacctTimeRE.ReplaceAllString(s, `"$1": <T>`)
	// A job cancelled before it ran has no start, or its end time when
	// slurmctld sent slurmdbd its record first: a race in the real Slurm
	// (both seen; the text forms of sacct show None or the time).
	s = strings.ReplaceAll(s, `"start": null`, `"start": <T>`)
	return sacctCPURE.ReplaceAllString(s, `"$1": <N>`)
}

// TestDifferentialTimeLimit runs a job past a one-minute limit on both
// sides (the real slurmctld notices up to half a minute late): TIMEOUT,
// Reason=TimeLimit, 0:15, slurmstepd's line, and sacct's view of it.
func TestDifferentialTimeLimit(t *testing.T) {
	t.Parallel()
	tw := startTwinWith(t, realslurm.AccountingAvailable() == nil)
	// exec: the batch process itself gets the SIGTERM (with a shell in
	// between, the real batch step ends CANCELLED 0:15 or FAILED 15:0 as
	// the shell and its child race).
	tw.same(t, "", nil, "sbatch", "-t", "1", "-J", "limited", "--wrap", "exec sleep 600")
	tw.waitBoth(t, "%i %T", "1 RUNNING")
	deadline := time.Now().Add(3 * time.Minute)
	for _, side := range []func(*testing.T, string, ...string) result{tw.runReal, tw.runFake} {
		for {
			if out := side(t, "", "squeue", "-h", "-t", "all", "-o", "%T").out; out == "TIMEOUT\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the job does not time out")
			}
			time.Sleep(time.Second)
		}
	}
	tw.same(t, "", nil, "scontrol", "show", "job", "1")
	tw.same(t, "", nil, "squeue", "-h", "-t", "all", "-o", "%i %T %r %l %R")
	compareFile(t, tw, "slurm-1.out")
	if realslurm.AccountingAvailable() == nil {
		tw.waitSacct(t, "1|TIMEOUT\n")
		tw.same(t, "", func(s string) string { return regexp.MustCompile(`\d\d:\d\d:\d\d`).ReplaceAllString(s, "<ELAPSED>") },
			"sacct", "-o", "JobID,JobName,State,ExitCode,Timelimit,Elapsed")
		// A step that ran past jobacct_gather's 30 s poll has measured
		// usage (memory, vmem, disk) the fake does not model: compared
		// without the steps' requested/consumed TRES.
		tw.same(t, "", func(s string) string { return withoutStepUsage(t, normSacctJSON(s)) }, "sacct", "--json")
	}
}

var (
	jsonTimeRE  = regexp.MustCompile(`"(accrue_time|eligible_time|end_time|start_time|submit_time|last_sched_evaluation|boot_time|last_busy|slurmd_start_time|reason_changed_at)": [1-9]\d*`)
	jsonLoadRE  = regexp.MustCompile(`"(cpu_load|free_memory|port)": \d+`)
	jsonOSRE    = regexp.MustCompile(`"operating_system": "[^"]*"`)
	jsonFlagsRE = regexp.MustCompile(`"flags": \[[^\]]*\]`)
	jsonItemRE  = regexp.MustCompile(`"[A-Z_]+"`)
)

// normJSON blanks the times of a --json dump (0, unset, stays), and the
// node's load, free memory, kernel and slurmd port, and writes
// each flags array on one line without TRES_STR_CALC, a flag slurmctld
// adds to finished jobs at some later point of its own.
func normJSON(s string) string {
	s = jsonTimeRE.ReplaceAllString(s, `"$1": <T>`)
	s = jsonLoadRE.ReplaceAllString(s, `"$1": <N>`)
	s = jsonOSRE.ReplaceAllString(s, `"operating_system": <OS>`)
	return jsonFlagsRE.ReplaceAllStringFunc(s, func(f string) string {
		var keep []string
		for _, x := range jsonItemRE.FindAllString(f[len(`"flags": `):], -1) {
			if x != `"TRES_STR_CALC"` {
				keep = append(keep, x)
			}
		}
		return `"flags": [` + strings.Join(keep, ",") + `]`
	})
}

// TestDifferentialJSON compares squeue --json (Slurm 22.05.8's
// openapi/v0.0.38 dump) for running, failed, held, dependent and
// resource-waiting jobs, before and after a cancel, and its disregard of
// -j, and sinfo --json of a busy node, drained and not: byte for byte
// after the times are blanked.
func TestDifferentialJSON(t *testing.T) {
	t.Parallel()
	tw := startTwin(t)
	// exec: job 1 is cancelled below; with a shell in between, the real
	// batch step's exit_code races between the signal (15) and the
	// shell's 143 (36608), as in the sacct test.
	tw.same(t, "", nil, "sbatch", "-t", "10", "--wrap", "exec sleep 300")
	tw.same(t, "", nil, "sbatch", "-o", "o-%j.txt", "-e", "e-%j.txt", "-J", "failing", "--wrap", "exit 3")
	tw.same(t, "", nil, "sbatch", "-H", "-N", "5", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-d", "afterok:1", "-w", "localhost", "--comment", "hello", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "-c", "2", "--mem=100", "--wrap", "sleep 300")
	tw.waitBoth(t, "%i %T", "1 RUNNING")
	tw.waitBoth(t, "%i %T", "2 FAILED")
	tw.waitBoth(t, "%i %r", "5 Resources")
	tw.same(t, "", normJSON, "squeue", "--json")
	tw.same(t, "", normJSON, "squeue", "--json", "-j", "999", "-t", "RUNNING")
	tw.same(t, "", normJSON, "sinfo", "--json")
	tw.same(t, "", nil, "scontrol", "update", "NodeName=localhost", "State=DRAIN", "Reason=maint")
	tw.same(t, "", normJSON, "sinfo", "--json")
	tw.same(t, "", nil, "scontrol", "update", "NodeName=localhost", "State=RESUME")
	tw.same(t, "", nil, "scancel", "1")
	tw.waitBoth(t, "%i %T", "5 RUNNING")
	tw.waitBoth(t, "%i %T", "1 CANCELLED")
	tw.same(t, "", normJSON, "squeue", "--json")
}

// TestDifferentialJobAdmin compares scontrol update JobId=... (the fields
// a site changes, and the errors for running, finished and unknown jobs,
// unknown fields and bad values), scontrol requeue of running, pending,
// finished and non-requeueable jobs, and the refusal of job arrays
// (MaxArraySize=0) however they are asked for.
func TestDifferentialJobAdmin(t *testing.T) {
	t.Parallel()
	tw := startTwin(t)
	tw.same(t, "", nil, "sbatch", "--wrap", "sleep 300")
	tw.same(t, "", nil, "sbatch", "--wrap", "sleep 300")
	tw.same(t, "", nil, "sbatch", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "--no-requeue", "--wrap", "true")
	tw.waitBoth(t, "%i %T", "1 RUNNING")
	tw.waitBoth(t, "%i %T", "2 RUNNING")
	for _, args := range [][]string{
		{"JobId=1", "TimeLimit=10"},
		{"JobId=1", "JobName=newname"},
		{"JobId=1", "Partition=debug"},
		{"JobId=1", "Bogus=1"},
		{"JobId=999", "TimeLimit=10"},
		{"JobId=3", "TimeLimit=10", "JobName=pn"},
		{"JobId=3", "Partition=nosuch"},
		{"JobId=3", "Dependency=afterok:1"},
		{"JobId=3", "TimeLimit=abc"},
		{"jobid=3", "timelimit=20"},
		{"JobId=abc", "TimeLimit=20"},
		{"TimeLimit=20"},
		{"JobId=3"},
		{"JobId=2", "Partition=nosuch"},
		{"JobId=2", "Dependency=afterok:1"},
		{"JobId=2", "TimeLimit=5"},
		{"JobId=3", "Name=n2"},
		{"JobId=3", "TimeLimit=+5"},
		{"JobId=3", "Comment=hi"},
		{"JobId=3", "Bogus"},
	} {
		tw.same(t, "", nil, append([]string{"scontrol", "update"}, args...)...)
	}
	tw.same(t, "", nil, "squeue", "-t", "all", "-o", "%i %T %r %l %j %P %E %k")
	tw.same(t, "", nil, "scontrol", "update", "JobId=3", "Dependency=")
	tw.same(t, "", nil, "scontrol", "requeue", "999")
	tw.same(t, "", nil, "scontrol", "requeue", "abc")
	tw.same(t, "", nil, "scontrol", "requeue")
	tw.same(t, "", nil, "scontrol", "requeue", "1")
	tw.same(t, "", nil, "scontrol", "requeue", "2,999")
	tw.waitBoth(t, "%i %T", "3 COMPLETED")
	tw.waitBoth(t, "%i %T", "4 COMPLETED")
	tw.same(t, "", nil, "scontrol", "update", "JobId=3", "TimeLimit=5")
	tw.same(t, "", nil, "scontrol", "requeue", "4")
	tw.same(t, "", nil, "scontrol", "requeue", "3")
	tw.same(t, "", nil, "squeue", "-t", "all", "-o", "%i %T %r %l %j %P %E")
	tw.waitBoth(t, "%i %r", "3 BeginTime")
	tw.same(t, "", nil, "squeue", "-t", "all", "-o", "%i %T %r %l %j %P %E")
	tw.same(t, "", nil, "scontrol", "requeue", "3")
	tw.waitFile(t, "slurm-1.out", "REQUEUE")
	compareFile(t, tw, "slurm-1.out")
	compareFile(t, tw, "slurm-2.out")

	// Job arrays: MaxArraySize=0 refuses each spelling.
	tw.same(t, "", nil, "sbatch", "-a", "1-2", "--wrap", "true")
	tw.same(t, "", nil, "sbatch", "--array", "0-3%1", "--wrap", "true")
	tw.same(t, "#!/bin/sh\n#SBATCH --array=0-1\ntrue\n", nil, "sbatch")
}

// normEnv blanks the job environment's variables that differ run to run
// (pids, ports, the submitting host, the configuration's path).
func normEnv(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		k, _, _ := strings.Cut(l, "=")
		switch k {
		case "SLURM_TASK_PID", "SLURM_WORKING_CLUSTER", "SLURM_SUBMIT_HOST", "SLURM_CONF",
			"SLURM_SRUN_COMM_PORT", "SLURM_STEP_LAUNCHER_PORT":
			l = k + "=<varies>"
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// TestDifferentialSrun compares srun inside a batch job: the tasks'
// environments (SLURM_PROCID, the step's variables), -n defaulting to the
// job's task count, step ids, srun's messages and exit codes for failed
// tasks, a step larger than the job, and --label.
func TestDifferentialSrun(t *testing.T) {
	t.Parallel()
	tw := startTwin(t)
	script := `#!/bin/sh
env | grep -E '^SLURM' | sort > batch.env
srun -n 2 sh -c 'env | grep -E "^SLURM" | sort > task-$SLURM_PROCID.env'
srun -n 1 -c 2 sh -c 'env | grep -E "^SLURM" | sort > taskc.env'
srun -n 2 sh -c 'exit $((SLURM_PROCID+1))'
echo rc=$?
srun -n 2 sh -c 'exit 4'
echo rc=$?
srun -n 3 true
echo rc=$?
srun sh -c 'echo one $SLURM_PROCID $SLURM_STEP_ID $SLURM_NTASKS' | sort
srun -n 2 -l echo x | sort
srun
echo rc=$?
srun -n abc true
echo rc=$?
srun --bogus true
echo rc=$?
`
	tw.same(t, script, nil, "sbatch", "-n", "2", "-o", "srun.out")
	tw.waitBoth(t, "%i %T", "1 COMPLETED")
	compareFile(t, tw, "srun.out")
	for _, f := range []string{"batch.env", "task-0.env", "task-1.env", "taskc.env"} {
		realOut, err := os.ReadFile(filepath.Join(tw.real.Work, f))
		if err != nil {
			t.Fatal(err)
		}
		fakeOut, err := afero.ReadFile(tw.fs, filepath.Join(tw.real.Work, f))
		if err != nil {
			t.Fatal(err)
		}
		if normEnv(string(realOut)) != normEnv(string(fakeOut)) {
			t.Errorf("%s differs:\n--- real\n%s\n--- fake\n%s", f, realOut, fakeOut)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/internal/getopt"
)

// env is a test harness: a fake backend, a host filesystem and a user.
type env struct {
	t    *testing.T
	b    *fakeBackend
	fs   afero.Fs
	opts []Option
}

func newEnv(t *testing.T) *env {
	return &env{t: t, b: newFake(), fs: afero.NewMemMapFs()}
}

func (e *env) file(path, content string) {
	e.t.Helper()
	if err := afero.WriteFile(e.fs, path, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) inv(cmd string, args ...string) Invocation {
	return Invocation{Command: cmd, Args: args, User: "alice", Host: "login1.cluster", Cwd: "/home/alice/work",
		Env: []string{"HOME=/home/alice", "LOGNAME=alice", "PATH=/usr/bin:/bin", "SHELL=/bin/bash", "LANG=en_US.UTF-8",
			"MAIL=/var/mail/alice", "FOO=foo-value", "COMMA=a,b"},
		FS: e.fs}
}

func (e *env) run(inv Invocation) Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Run(ctx, e.b, inv, e.opts...)
}

func (e *env) sh(cmd string, args ...string) Result { return e.run(e.inv(cmd, args...)) }

func (e *env) mustOK(r Result) string {
	e.t.Helper()
	if r.ExitCode != 0 {
		e.t.Fatalf("exit %d, stderr %q, stdout %q", r.ExitCode, r.Stderr, r.Stdout)
	}
	return string(r.Stdout)
}

func (e *env) lastSubmit() fakepbs.SubmitRequest {
	e.t.Helper()
	if len(e.b.submits) == 0 {
		e.t.Fatal("nothing was submitted")
	}
	return e.b.submits[len(e.b.submits)-1]
}

func TestQsubFileDirectivesAndCommandLine(t *testing.T) {
	e := newEnv(t)
	e.file("/home/alice/work/job.sh", "#!/bin/bash\n"+
		"\n"+
		": a colon line does not stop the scan\n"+
		"#PBS -N from-directive\n"+
		"   #PBS -l walltime=00:10:00\n"+
		"#PBS -l walltime=00:20:00\n"+
		"#PBS -l select=1:ncpus=2:mem=1gb\n"+
		"#PBS -q workq\n"+
		"# a comment\n"+
		"#PBS -j oe -m abe\n"+
		"echo first executable line\n"+
		"#PBS -N ignored-after-executable\n")
	out := e.mustOK(e.sh("qsub", "-l", "walltime=01:00:00", "job.sh"))
	if out != "1.pbs\n" {
		t.Fatalf("stdout %q, want the job id and a newline", out)
	}
	req := e.lastSubmit()
	if req.Name != "from-directive" {
		t.Errorf("Name = %q, want the directive's -N (the basename only when no -N)", req.Name)
	}
	if req.Resources["walltime"] != "01:00:00" {
		t.Errorf("walltime = %q: the command line must win over directives", req.Resources["walltime"])
	}
	if req.Resources["select"] != "1:ncpus=2:mem=1gb" || req.Join != "oe" || req.MailPoints != "abe" {
		t.Errorf("directives not applied: %+v", req)
	}
	if !strings.Contains(string(req.Script), "#PBS -N ignored-after-executable") {
		t.Error("the script must be passed on whole, directives included")
	}
}

func TestQsubDirectivesFirstResourceWins(t *testing.T) {
	// set_resources adds a directive's resource only when it is not on the
	// list yet, so among directives the first one wins.
	e := newEnv(t)
	e.file("/home/alice/work/job.sh", "#PBS -l walltime=00:10:00\n#PBS -l walltime=00:20:00\n#PBS -N a\n#PBS -N b\ntrue\n")
	e.mustOK(e.sh("qsub", "job.sh"))
	req := e.lastSubmit()
	if req.Resources["walltime"] != "00:10:00" {
		t.Errorf("walltime = %q, want the first directive's", req.Resources["walltime"])
	}
	if req.Name != "b" {
		t.Errorf("Name = %q, want the last -N (options other than -l: last wins)", req.Name)
	}
}

func TestQsubNameFromBasenameAndStdin(t *testing.T) {
	e := newEnv(t)
	e.file("/tmp/scripts/run-model.sh", "sleep 1\n")
	e.mustOK(e.sh("qsub", "/tmp/scripts/run-model.sh"))
	if got := e.lastSubmit().Name; got != "run-model.sh" {
		t.Errorf("Name = %q, want the script's basename", got)
	}
	for _, args := range [][]string{nil, {"-"}} {
		inv := e.inv("qsub", args...)
		inv.Stdin = strings.NewReader("#PBS -l walltime=5\necho hi\n")
		e.mustOK(e.run(inv))
		req := e.lastSubmit()
		if req.Name != "STDIN" || string(req.Script) != "#PBS -l walltime=5\necho hi\n" || req.Resources["walltime"] != "5" {
			t.Errorf("qsub %v from stdin: %+v", args, req)
		}
	}
}

func TestQsubTTYPrompt(t *testing.T) {
	e := newEnv(t)
	inv := e.inv("qsub")
	inv.Stdin = strings.NewReader("true\n")
	inv.StdinTTY = true
	out := e.mustOK(e.run(inv))
	if out != readScriptMsg+"1.pbs\n" {
		t.Errorf("stdout %q, want the prompt then the id", out)
	}
	inv.StdinTTY = false
	inv.Stdin = strings.NewReader("true\n")
	if out := e.mustOK(e.run(inv)); out != "2.pbs\n" {
		t.Errorf("without a terminal: stdout %q, want only the id", out)
	}
}

func TestQsubVariableList(t *testing.T) {
	e := newEnv(t)
	e.file("/home/alice/work/j.sh", "true\n")
	e.mustOK(e.sh("qsub", "-v", "FOO,BAR=x,PBS_O_WORKDIR,Q='p,q'", "j.sh"))
	want := []string{
		"PBS_O_HOME=/home/alice", "PBS_O_LANG=en_US.UTF-8", "PBS_O_LOGNAME=alice", "PBS_O_PATH=/usr/bin:/bin",
		"PBS_O_MAIL=/var/mail/alice", "PBS_O_SHELL=/bin/bash", "PBS_O_WORKDIR=/home/alice/work", "PBS_O_SYSTEM=Linux",
		"FOO=foo-value", "BAR=x", "Q=p,q", "PBS_O_QUEUE=workq", "PBS_O_HOST=login1.cluster",
	}
	got := e.lastSubmit().Variables
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Variable_List:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e.mustOK(e.sh("qsub", "-V", "j.sh"))
	got = e.lastSubmit().Variables
	if !contains(got, "COMMA=a,b") || !contains(got, "FOO=foo-value") || got[len(got)-2] != "PBS_O_QUEUE=workq" {
		t.Errorf("-V must add the whole environment before PBS_O_QUEUE: %q", got)
	}
	r := e.sh("qsub", "-v", "FOO,UNSET", "j.sh")
	if r.ExitCode != 1 || string(r.Stderr) != "qsub: cannot send environment with the job\n" {
		t.Errorf("unset -v name: exit %d stderr %q", r.ExitCode, r.Stderr)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestQsubDirectivePrefix(t *testing.T) {
	e := newEnv(t)
	e.file("/home/alice/work/j.sh", "#PBS -N pbs-name\n#XX -N xx-name\ntrue\n")
	e.mustOK(e.sh("qsub", "-C", "#XX", "j.sh"))
	if got := e.lastSubmit().Name; got != "xx-name" {
		t.Errorf("-C #XX: Name %q", got)
	}
	e.mustOK(e.sh("qsub", "-C", "", "j.sh"))
	if got := e.lastSubmit().Name; got != "j.sh" {
		t.Errorf("-C '' must disable directives: Name %q", got)
	}
	inv := e.inv("qsub", "j.sh")
	inv.Env = append(inv.Env, "PBS_DPREFIX=#XX")
	e.mustOK(e.run(inv))
	if got := e.lastSubmit().Name; got != "xx-name" {
		t.Errorf("PBS_DPREFIX=#XX: Name %q", got)
	}
}

func TestQsubOptionsAfterScriptAreUsageErrors(t *testing.T) {
	// glibc permutes argv; qsub treats a permuted argv as a usage error.
	e := newEnv(t)
	e.file("/home/alice/work/j.sh", "true\n")
	r := e.sh("qsub", "j.sh", "-N", "x")
	if r.ExitCode != 2 || !strings.HasPrefix(string(r.Stderr), "usage: qsub") {
		t.Errorf("exit %d stderr %q", r.ExitCode, r.Stderr)
	}
	if len(e.b.submits) != 0 {
		t.Error("nothing must be submitted on a usage error")
	}
}

func TestQsubMiscOptions(t *testing.T) {
	e := newEnv(t)
	e.file("/home/alice/work/j.sh", "true\n")
	if out := e.mustOK(e.sh("qsub", "-z", "-h", "-W", "depend=afterok:1.pbs,umask=022", "-A", "acct", "-P", "proj", "-p", "10", "-r", "n", "j.sh")); out != "" {
		t.Errorf("-z must print nothing, got %q", out)
	}
	req := e.lastSubmit()
	if !req.Hold || req.DependOn != "afterok:1.pbs" || req.Umask != "022" || req.Account != "acct" || req.Project != "proj" || req.Priority != 10 || req.Rerunable != "n" {
		t.Errorf("options not carried: %+v", req)
	}
	if out := e.mustOK(e.sh("qsub", "-J", "1-10", "j.sh")); out != "2[].pbs\n" {
		t.Errorf("array job id %q", out)
	}
	for _, bad := range [][]string{{"-J", "5-1"}, {"-p", "5000"}, {"-j", "xy"}, {"-W", "depend=sometime:1"}, {"-a", "2501"}} {
		r := e.sh("qsub", append(bad, "j.sh")...)
		if r.ExitCode != 2 || !strings.Contains(string(r.Stderr), "qsub: illegal -"+bad[0][1:]+" value") {
			t.Errorf("qsub %v: exit %d stderr %q", bad, r.ExitCode, r.Stderr)
		}
	}
	out := e.mustOK(e.sh("qsub", "--", "/bin/sleep", "10"))
	if out != "3.pbs\n" || e.lastSubmit().Name != "STDIN" || string(e.lastSubmit().Script) != "/bin/sleep 10\n" {
		t.Errorf("qsub -- command: %q %+v", out, e.lastSubmit())
	}
}

func TestCvtdate(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"1300":            time.Date(2024, 5, 10, 13, 0, 0, 0, time.UTC),
		"1100":            time.Date(2024, 5, 11, 11, 0, 0, 0, time.UTC), // passed today: tomorrow
		"091100":          time.Date(2024, 6, 9, 11, 0, 0, 0, time.UTC),
		"202501020304.05": time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	for in, want := range cases {
		got, ok := cvtdate(in, now)
		if !ok || !got.Equal(want) {
			t.Errorf("cvtdate(%q) = %v %v, want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "12", "2461", "1299", "abcd", "0230000000"} {
		if _, ok := cvtdate(bad, now); ok {
			t.Errorf("cvtdate(%q) accepted", bad)
		}
	}
}

// finishingBackend ends every job it is asked about after a few polls.
type finishingBackend struct {
	*fakeBackend
	polls int
}

func (f *finishingBackend) Job(ctx context.Context, id string, history bool) (fakepbs.Job, error) {
	f.polls++
	if f.polls == 3 {
		f.finish(id, 3)
	}
	return f.fakeBackend.Job(ctx, id, history)
}

func TestQsubBlockExitsWithJobStatus(t *testing.T) {
	e := newEnv(t)
	e.file("/home/alice/work/j.sh", "exit 3\n")
	b := &finishingBackend{fakeBackend: e.b}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := Run(ctx, b, e.inv("qsub", "-W", "block=true", "j.sh"), WithPollInterval(time.Millisecond))
	if r.ExitCode != 3 || string(r.Stdout) != "1.pbs\n" {
		t.Errorf("exit %d stdout %q stderr %q, want the id then exit 3", r.ExitCode, r.Stdout, r.Stderr)
	}
}

func TestNeedsStdin(t *testing.T) {
	cases := []struct {
		cmd  string
		args []string
		want bool
	}{
		{"qsub", nil, true},
		{"qsub", []string{"-"}, true},
		{"qsub", []string{"-N", "x", "-l", "walltime=1"}, true},
		{"/usr/bin/qsub", []string{"-v", "A,B"}, true},
		{"qsub", []string{"job.sh"}, false},
		{"qsub", []string{"-N", "x", "job.sh"}, false},
		{"qsub", []string{"--", "/bin/true"}, false},
		{"qsub", []string{"--version"}, false},
		{"qsub", []string{"-I"}, false},
		{"qsub", []string{"--bogus"}, false},
		{"qsub", []string{"-l"}, false},
		{"qstat", nil, false},
		{"qdel", []string{"1"}, false},
	}
	for _, c := range cases {
		if got := NeedsStdin(c.cmd, c.args); got != c.want {
			t.Errorf("NeedsStdin(%s %q) = %v, want %v", c.cmd, c.args, got, c.want)
		}
	}
}

func TestJobLifeThroughCommands(t *testing.T) {
	e := newEnv(t)
	e.file("/home/alice/work/j.sh", "true\n")
	id := strings.TrimSpace(e.mustOK(e.sh("qsub", "j.sh")))
	row := func() string {
		out := e.mustOK(e.sh("qstat", id))
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		return lines[len(lines)-1]
	}
	if s := strings.Fields(row()); s[0] != id || s[4] != "Q" {
		t.Fatalf("queued row %q", row())
	}
	e.mustOK(e.sh("qhold", id))
	if s := strings.Fields(row()); s[4] != "H" {
		t.Fatalf("after qhold: %q", row())
	}
	e.mustOK(e.sh("qrls", "1"))
	if s := strings.Fields(row()); s[4] != "Q" {
		t.Fatalf("after qrls: %q", row())
	}
	e.b.run(id, "node1")
	full := e.mustOK(e.sh("qstat", "-f", id))
	for _, want := range []string{"    job_state = R\n", "    exec_host = node1/0\n", "    session_id = 4242\n", "    run_count = 1\n"} {
		if !strings.Contains(full, want) {
			t.Errorf("qstat -f of a running job lacks %q:\n%s", want, full)
		}
	}
	e.mustOK(e.sh("qsig", "-s", "suspend", id))
	if s := strings.Fields(row()); s[4] != "S" {
		t.Fatalf("after suspend: %q", row())
	}
	e.mustOK(e.sh("qsig", "-s", "resume", id))
	r := e.sh("qsig", "-s", "SIGNOPE", id)
	if r.ExitCode != fakepbs.ErrUnknownSignal&0xff || string(r.Stderr) != "qsig: Unknown/illegal signal name "+id+"\n" {
		t.Errorf("unknown signal: exit %d %q", r.ExitCode, r.Stderr)
	}
	e.b.finish(id, 0)
	r = e.sh("qstat", id)
	if r.ExitCode != 35 || len(r.Stdout) != 0 {
		t.Errorf("finished job without -x: exit %d stdout %q", r.ExitCode, r.Stdout)
	}
	if s := strings.Fields(lastLine(e.mustOK(e.sh("qstat", "-x", id)))); s[4] != "F" {
		t.Errorf("qstat -x row %q", s)
	}
	if out := e.mustOK(e.sh("qstat", "-fx", id)); !strings.Contains(out, "    Exit_status = 0\n") {
		t.Errorf("qstat -fx lacks Exit_status:\n%s", out)
	}
	e.b.info.HistoryEnable = false
	r = e.sh("qstat", "-x", id)
	if r.ExitCode != 153 || string(r.Stderr) != "qstat: Unknown Job Id "+id+"\n" {
		t.Errorf("without history a finished job is unknown: exit %d %q", r.ExitCode, r.Stderr)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestQdelSeveralIDsExitWithLastError(t *testing.T) {
	e := newEnv(t)
	e.b.add(fakepbs.Job{ID: "1.pbs", Name: "a", Owner: "alice@h", User: "alice", Queue: "workq", State: fakepbs.Queued})
	e.b.add(fakepbs.Job{ID: "2.pbs", Name: "b", Owner: "bob@h", User: "bob", Queue: "workq", State: fakepbs.Queued})
	e.b.add(fakepbs.Job{ID: "3.pbs", Name: "c", Owner: "alice@h", User: "alice", Queue: "workq", State: fakepbs.Finished, ExitStatus: intp(0)})
	r := e.sh("qdel", "1", "2.pbs", "abc", "3.pbs", "99")
	wantErr := "qdel: illegally formed job identifier: abc\n" +
		"qdel: Unauthorized Request  2.pbs\n" +
		"qdel: Job has finished 3.pbs\n" +
		"qdel: Unknown Job Id 99\n"
	if string(r.Stderr) != wantErr || r.ExitCode != 153 {
		t.Errorf("exit %d stderr:\n%s", r.ExitCode, r.Stderr)
	}
	if j, _ := e.b.Job(context.Background(), "1.pbs", true); j.State != fakepbs.Finished {
		t.Errorf("job 1 not deleted: %v", j.State)
	}
	if r := e.sh("qdel", "-x", "3.pbs"); r.ExitCode != 0 {
		t.Errorf("qdel -x on a finished job: exit %d %q", r.ExitCode, r.Stderr)
	}
}

func TestQstatSelections(t *testing.T) {
	e := newEnv(t)
	e.b.queues = append(e.b.queues, fakepbs.Queue{Name: "long", Enabled: true, Started: true})
	e.b.add(fakepbs.Job{ID: "1.pbs", Name: "a", Owner: "alice@h", User: "alice", Queue: "workq", State: fakepbs.Queued})
	e.b.add(fakepbs.Job{ID: "2.pbs", Name: "b", Owner: "bob@h", User: "bob", Queue: "long", State: fakepbs.Running})
	e.b.add(fakepbs.Job{ID: "3.pbs", Name: "c", Owner: "bob@h", User: "bob", Queue: "workq", State: fakepbs.Held})
	ids := func(out string) string {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(f[0], ".pbs") {
				got = append(got, strings.TrimSuffix(f[0], ".pbs"))
			}
		}
		return strings.Join(got, ",")
	}
	for args, want := range map[string]string{
		"":         "1,2,3",
		"workq":    "1,3",
		"long":     "2",
		"-u bob":   "2,3",
		"-i":       "1,3",
		"-r":       "2",
		"-a long":  "2",
		"1 3":      "1,3",
		"-u alice": "1",
	} {
		out := e.mustOK(e.sh("qstat", strings.Fields(args)...))
		if got := ids(out); got != want {
			t.Errorf("qstat %s: jobs %s, want %s\n%s", args, got, want, out)
		}
	}
	if out := e.mustOK(e.sh("qstat", "-Q")); !strings.Contains(out, "workq                0     2 yes yes     1     0     1     0     0     0 Exe*\n") {
		t.Errorf("qstat -Q counts:\n%s", out)
	}
}

func TestQstatNoJobsPrintsNothing(t *testing.T) {
	e := newEnv(t)
	r := e.sh("qstat")
	if r.ExitCode != 0 || len(r.Stdout) != 0 || len(r.Stderr) != 0 {
		t.Errorf("empty server: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	e.file("/home/alice/work/j.sh", "true\n")
	set := fault.NewSet()
	e.opts = []Option{WithFaults(set)}

	add := func(r fault.Rule) string {
		t.Helper()
		st, err := set.Add(r)
		if err != nil {
			t.Fatal(err)
		}
		return st.ID
	}

	// Unreachable: the message and exit status per command and style.
	id := add(fault.Rule{Layer: fault.PBS, Effect: fault.Effect{Kind: fault.Unreachable}})
	for _, c := range []struct {
		cmd  []string
		exit int
		msg  string
	}{
		{[]string{"qstat", "1"}, 255, "Connection refused\nqstat: cannot connect to server pbs (errno=111)\n"},
		{[]string{"qsub", "j.sh"}, 111, "Connection refused\nqsub: cannot connect to server pbs (errno=111)\n"},
		{[]string{"qdel", "1"}, 111, "Connection refused\nqdel: cannot connect to server pbs (errno=111)\n"},
		{[]string{"pbsnodes", "-a"}, 1, "Connection refused\npbsnodes: cannot connect to server pbs, error=111\n"},
	} {
		r := e.sh(c.cmd[0], c.cmd[1:]...)
		if r.ExitCode != c.exit || string(r.Stderr) != c.msg || len(r.Stdout) != 0 {
			t.Errorf("%v unreachable: exit %d stderr %q", c.cmd, r.ExitCode, r.Stderr)
		}
	}
	if len(e.b.submits) != 0 {
		t.Error("an unreachable server must not get the job")
	}
	set.Remove(id)
	id = add(fault.Rule{Layer: fault.PBS, Effect: fault.Effect{Kind: fault.Unreachable, Style: "cannot-connect"}})
	if r := e.sh("qsub", "j.sh"); r.ExitCode != 162 || !strings.Contains(string(r.Stderr), "(errno=15010)") || strings.Contains(string(r.Stderr), "refused") {
		t.Errorf("newer style qsub: exit %d %q", r.ExitCode, r.Stderr)
	}
	if r := e.sh("qdel", "1"); string(r.Stderr) != "Connection timed out\nCouldn't connect to cluster: pbs\n" {
		t.Errorf("newer style qdel: %q", r.Stderr)
	}
	set.Remove(id)

	// Latency: the command is slow but works.
	id = add(fault.Rule{Layer: fault.PBS, Ops: []string{"qsub"}, Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(60 * time.Millisecond)}})
	start := time.Now()
	if out := e.mustOK(e.sh("qsub", "j.sh")); out != "1.pbs\n" {
		t.Errorf("slow qsub printed %q", out)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("latency not applied: %v", d)
	}
	set.Remove(id)

	// Hang: until the caller gives up...
	id = add(fault.Rule{Layer: fault.PBS, Ops: []string{"qstat"}, Effect: fault.Effect{Kind: fault.Hang}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	r := Run(ctx, e.b, e.inv("qstat"), e.opts...)
	cancel()
	if r.ExitCode != 137 {
		t.Errorf("hung qstat after the caller gave up: exit %d", r.ExitCode)
	}
	// ...or until the rule is cleared.
	done := make(chan Result, 1)
	go func() { done <- e.sh("qstat", "1") }()
	select {
	case r := <-done:
		t.Fatalf("qstat returned while hanging: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	set.Remove(id)
	select {
	case r := <-done:
		if r.ExitCode != 0 || !strings.Contains(string(r.Stdout), "1.pbs") {
			t.Errorf("after clearing the hang: exit %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("qstat still hanging after the rule was cleared")
	}

	// Garbage: stdout replaced, the command's effect kept.
	id = add(fault.Rule{Layer: fault.PBS, Ops: []string{"qsub"}, Effect: fault.Effect{Kind: fault.Garbage, Stdout: "%%%garbage%%%\n"}})
	if out := e.mustOK(e.sh("qsub", "j.sh")); out != "%%%garbage%%%\n" || len(e.b.jobs) != 2 {
		t.Errorf("garbage qsub printed %q with %d jobs", out, len(e.b.jobs))
	}
	set.Remove(id)
	id = add(fault.Rule{ID: "noise", Layer: fault.PBS, Ops: []string{"qstat"}, Effect: fault.Effect{Kind: fault.Garbage}})
	a, b := e.sh("qstat"), e.sh("qstat")
	if bytes.Contains(a.Stdout, []byte("Job id")) || len(a.Stdout) < 16 || !bytes.Equal(a.Stdout, b.Stdout) {
		t.Errorf("random garbage must replace the table and repeat per rule: %q / %q", a.Stdout, b.Stdout)
	}
	set.Remove(id)

	// Exit: rejected with the chosen text and status, selected by command line.
	// 153 is pbs_errno 15001 (Unknown Job Id) as qdel's exit status shows it.
	add(fault.Rule{Layer: fault.PBS, Command: `^qdel .*2\.pbs`, Effect: fault.Effect{Kind: fault.Exit, ExitCode: intp(15001 & 0xff), Stderr: "qdel: Unknown Job Id 2.pbs\n"}})
	if r := e.sh("qdel", "2.pbs"); r.ExitCode != 153 || string(r.Stderr) != "qdel: Unknown Job Id 2.pbs\n" {
		t.Errorf("rejected qdel: exit %d %q", r.ExitCode, r.Stderr)
	}
	if r := e.sh("qdel", "1.pbs"); r.ExitCode != 0 {
		t.Errorf("qdel of another job must not match the rule: exit %d %q", r.ExitCode, r.Stderr)
	}
}

func TestTruncateIDsFaultBreaksCylcPolling(t *testing.T) {
	// Cylc's PBS poll: a stdout line whose first token is the job id means
	// "still there". Ids cut short by qstat make it think the job is gone.
	e := newEnv(t)
	e.b.info.Name = "master.domain"
	e.b.add(fakepbs.Job{ID: "38438.master.domain", Name: "t", Owner: "alice@h", User: "alice", Queue: "workq", State: fakepbs.Running})
	seen := func() bool {
		for _, l := range strings.Split(e.mustOK(e.sh("qstat", "38438.master.domain")), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "38438.master.domain" {
				return true
			}
		}
		return false
	}
	if seen() {
		t.Fatal("qstat's table always cuts ids at the second dot: 38438.master.domain shows as 38438.master")
	}
	e.b.info.Name = "pbs"
	e.b.jobs[0].ID = "38438.pbs"
	set := fault.NewSet()
	e.opts = []Option{WithFaults(set)}
	if out := e.mustOK(e.sh("qstat", "38438.pbs")); !strings.Contains(out, "\n38438.pbs ") {
		t.Fatalf("without the fault the id is whole:\n%s", out)
	}
	if _, err := set.Add(fault.Rule{Layer: fault.PBS, Effect: fault.Effect{Kind: fault.TruncateIDs}}); err != nil {
		t.Fatal(err)
	}
	if out := e.mustOK(e.sh("qstat", "38438.pbs")); !strings.Contains(out, "\n38438  ") {
		t.Errorf("with TruncateIDs the id loses its last label:\n%s", out)
	}
}

func TestEventsRecorded(t *testing.T) {
	e := newEnv(t)
	log := events.NewLog()
	e.opts = []Option{WithRecorder(log)}
	e.sh("qstat", "9")
	evs := log.All()
	if len(evs) != 1 || evs[0].Kind != events.PBSCall {
		t.Fatalf("events %v", evs)
	}
	f := evs[0].Fields
	if f["command"] != "qstat" || f["exit"] != 153 || f["stderr"] != "qstat: Unknown Job Id 9.pbs\n" || f["user"] != "alice" {
		t.Errorf("event fields %v", f)
	}
	if _, ok := f["duration_ms"].(float64); !ok {
		t.Errorf("no duration: %v", f)
	}
}

func TestGetopt(t *testing.T) {
	g := getopt.Parse("qstat", []string{"-fx", "1.pbs", "-u", "bob", "-w", "--", "-x"}, getopt.Spec{Short: qstatOptstring})
	var letters []byte
	for _, o := range g.Options {
		letters = append(letters, byte(o.Key))
	}
	if string(letters) != "fxuw" || g.Options[2].Arg != "bob" || strings.Join(g.Operands, " ") != "1.pbs -x" || !g.Permuted {
		t.Errorf("getopt: %+v", g)
	}
	g = getopt.Parse("qsub", []string{"-lwalltime=1", "-N"}, getopt.Spec{Short: qsubOptstring})
	if g.Options[0].Arg != "walltime=1" || g.Errors != 1 || g.Stderr() != "qsub: option requires an argument -- 'N'\n" {
		t.Errorf("getopt: %+v", g)
	}
}

func TestPrtAttrWrapping(t *testing.T) {
	var b bytes.Buffer
	prtAttr(&b, attr{Name: "Variable_List", Value: "A=1,," + strings.Repeat("x", 100) + ",B=2"}, false)
	want := "    Variable_List = A=1,\n\t" + strings.Repeat("x", 70) + "\n\t" + strings.Repeat("x", 30) + ",B=2"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestJSONNumericDetection(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "12": true, "-3.5": true, "1e5": true, " 7 ": true, "": true, "0x1f": true, "inf": true,
		"00:30:00": false, "4gb": false, "abc": false, "1.pbs": false, "nan(x": false,
	} {
		if got := cNumeric(s); got != want {
			t.Errorf("cNumeric(%q) = %v, want %v", s, got, want)
		}
	}
}

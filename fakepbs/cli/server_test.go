package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/bashexec"
	"github.com/spf13/afero"
)

// realServer is the fake PBS server with real bash jobs on one node.
func realServer(t *testing.T) (*fakepbs.Server, string) {
	t.Helper()
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("needs bash to run jobs")
	}
	home := t.TempDir()
	srv, err := fakepbs.NewServer(context.Background(), fakepbs.WithName("pbs"), fakepbs.WithExecutor(bashexec.Executor{}),
		fakepbs.WithNodes(fakepbs.NodeConfig{Name: "node1", NCPUs: 2, Mem: "4gb"}),
		fakepbs.WithHistory(true, time.Hour), fakepbs.WithHomeDirs(func(string) string { return home }),
		fakepbs.WithFS(afero.NewOsFs()), fakepbs.WithPBSHome(t.TempDir()), fakepbs.WithTmpDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, home
}

func runOn(t *testing.T, b fakepbs.Backend, home string, cmd string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Run(ctx, b, Invocation{Command: cmd, Args: args, User: "alice", Host: "login1", Cwd: home,
		Env: []string{"HOME=" + home, "PATH=/usr/bin:/bin", "LOGNAME=alice"}, FS: afero.NewOsFs()}, WithPollInterval(10*time.Millisecond))
}

func TestAgainstRealServer(t *testing.T) {
	srv, home := realServer(t)
	if err := os.WriteFile(filepath.Join(home, "j.sh"), []byte("#PBS -N real\n#PBS -l walltime=00:01:00\nsleep 0.2\nexit 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// qsub -W block=true waits for the job and exits with its status.
	res := runOn(t, srv, home, "qsub", "-W", "block=true", "j.sh")
	if res.ExitCode != 4 || string(res.Stdout) != "1.pbs\n" {
		t.Fatalf("qsub -W block=true: exit %d %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	full := runOn(t, srv, home, "qstat", "-fx", "1")
	for _, want := range []string{"    Job_Name = real\n", "    job_state = F\n", "    exec_host = node1/0\n",
		"    Exit_status = 4\n", "    Resource_List.walltime = 00:01:00\n", "    Submit_arguments = -W block=true j.sh\n",
		"PBS_O_WORKDIR=" + home, "PBS_O_QUEUE=workq", "PBS_O_HOST=login1"} {
		if !strings.Contains(string(full.Stdout), want) {
			t.Errorf("qstat -fx lacks %q:\n%s", want, full.Stdout)
		}
	}
	if got := strings.Count(string(full.Stdout), "PBS_O_QUEUE="); got != 1 {
		t.Errorf("PBS_O_QUEUE appears %d times in Variable_List: the server must keep the list the front end built", got)
	}

	// pbsnodes -o / -r through the server's node states.
	if r := runOn(t, srv, home, "pbsnodes", "-o", "-C", "maintenance", "node1"); r.ExitCode != 0 {
		t.Fatalf("pbsnodes -o: %d %q", r.ExitCode, r.Stderr)
	}
	out := string(runOn(t, srv, home, "pbsnodes", "node1").Stdout)
	if !strings.Contains(out, "     state = offline\n") || !strings.Contains(out, "     comment = maintenance\n") {
		t.Errorf("after -o:\n%s", out)
	}
	if l := string(runOn(t, srv, home, "pbsnodes", "-l").Stdout); !strings.HasPrefix(l, "node1                offline maintenance") {
		t.Errorf("pbsnodes -l: %q", l)
	}
	if r := runOn(t, srv, home, "pbsnodes", "-r", "node1"); r.ExitCode != 0 {
		t.Fatalf("pbsnodes -r: %d %q", r.ExitCode, r.Stderr)
	}
	if out := string(runOn(t, srv, home, "pbsnodes", "node1").Stdout); !strings.Contains(out, "     state = free\n") {
		t.Errorf("after -r:\n%s", out)
	}
	r := runOn(t, srv, home, "pbsnodes", "-o", "nodeX")
	if r.ExitCode != 1 || !strings.HasPrefix(string(r.Stderr), "Error marking node nodeX - Unknown node") {
		t.Errorf("pbsnodes -o of an unknown node: %d %q", r.ExitCode, r.Stderr)
	}

	// The real server's errors through the commands.
	if r := runOn(t, srv, home, "qsub", "-q", "nosuch", "j.sh"); r.ExitCode != 170 || string(r.Stderr) != "qsub: Unknown queue\n" {
		t.Errorf("unknown queue: %d %q", r.ExitCode, r.Stderr)
	}
	if r := runOn(t, srv, home, "qstat", "1"); r.ExitCode != 35 {
		t.Errorf("finished job without -x: %d %q", r.ExitCode, r.Stderr)
	}
	if r := runOn(t, srv, home, "qsig", "-s", "suspend", "1"); r.ExitCode == 0 {
		t.Errorf("suspending a finished job succeeded: %q", r.Stdout)
	}
}

// TestSizeSuffixesReachServer: every size form OpenPBS's to_size accepts
// (k/m/g/t/p, optional b or w, either case) passes qsub and the server,
// and qstat -f shows Resource_List.mem as the server encodes it.
func TestSizeSuffixesReachServer(t *testing.T) {
	srv, home := realServer(t)
	if err := os.WriteFile(filepath.Join(home, "j.sh"), []byte("true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args    []string
		mem     string // Resource_List.mem as qstat -f shows it
		selectV string // Resource_List.select
	}{
		{[]string{"-l", "mem=4g"}, "4gb", "1:ncpus=1:mem=4gb"},
		{[]string{"-l", "mem=4GB"}, "4gb", "1:ncpus=1:mem=4gb"},
		{[]string{"-l", "mem=2048M"}, "2048mb", "1:ncpus=1:mem=2048mb"},
		{[]string{"-l", "mem=1kw"}, "1kw", "1:ncpus=1:mem=1kw"},
		{[]string{"-l", "mem=1000"}, "1000b", "1:ncpus=1:mem=1000b"},
		{[]string{"-l", "select=1:ncpus=2:mem=512m"}, "512mb", "1:ncpus=2:mem=512m"},
		{[]string{"-l", "select=2:ncpus=1:mem=512mb"}, "1024mb", "2:ncpus=1:mem=512mb"},
		{[]string{"-l", "select=1:mem=1G+1:mem=256m"}, "1280mb", "1:mem=1G+1:mem=256m"},
		// NCI Gadi's qstat -fx (pbs-cli.md): a chunk's bare byte count is kept.
		{[]string{"-l", "select=1:ncpus=1:mem=3221225472"}, "3221225472b", "1:ncpus=1:mem=3221225472"},
	} {
		args := append(append([]string{"-h"}, c.args...), "j.sh")
		res := runOn(t, srv, home, "qsub", args...)
		if res.ExitCode != 0 {
			t.Errorf("qsub %v: exit %d %q", args, res.ExitCode, res.Stderr)
			continue
		}
		id := strings.TrimSpace(string(res.Stdout))
		full := string(runOn(t, srv, home, "qstat", "-f", id).Stdout)
		for _, want := range []string{"    Resource_List.mem = " + c.mem + "\n", "    Resource_List.select = " + c.selectV + "\n"} {
			if !strings.Contains(full, want) {
				t.Errorf("qsub %v: qstat -f lacks %q:\n%s", args, want, full)
			}
		}
	}
	for _, bad := range []string{"mem=4x", "mem=4gbb", "select=1:mem=4q"} {
		res := runOn(t, srv, home, "qsub", "-l", bad, "j.sh")
		if res.ExitCode == 0 || !strings.Contains(string(res.Stderr), "Illegal attribute or resource value") {
			t.Errorf("qsub -l %s: exit %d %q, want the PBS refusal", bad, res.ExitCode, res.Stderr)
		}
	}
}

package executor_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/goleak"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor"
	"github.com/jobsim/jobsim/sim/executor/real"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func virtualHost(t *testing.T, clk clock.Clock) batch.Executor {
	t.Helper()
	fs := afero.NewMemMapFs()
	if err := fs.MkdirAll("/home/alice", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fs, "/home/alice/.bash_profile", []byte("export FROM_PROFILE=yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := virtual.New(virtual.WithFS(fs), virtual.WithClock(clk), virtual.WithHostname("node1"))
	t.Cleanup(func() { _ = e.Close() })
	return executor.ForBatch(e)
}

// runJob starts spec from a clock actor that waits for the job, as the PBS
// server does, and returns how the job ended.
func runJob(t *testing.T, clk clock.Clock, x batch.Executor, spec batch.RunSpec, started func(batch.Process)) batch.ExitStatus {
	t.Helper()
	done := make(chan batch.ExitStatus, 1)
	errc := make(chan error, 1)
	clk.Go(context.Background(), func(ctx context.Context) {
		p, err := x.Start(ctx, spec)
		if err != nil {
			errc <- err
			return
		}
		if started != nil {
			started(p)
		}
		done <- p.Wait()
	})
	select {
	case st := <-done:
		return st
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("job did not end within 20s")
	}
	return batch.ExitStatus{}
}

func TestForBatchVirtualJobOnVirtualClock(t *testing.T) {
	t0 := time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0, clock.AutoAdvance())
	x := virtualHost(t, clk)
	var out, errb testutil.SyncBuffer
	st := runJob(t, clk, x, batch.RunSpec{
		JobID: "1.server", User: "alice", Node: "node1",
		Script: []byte("#!/bin/bash\n#PBS -N sleeper\necho \"$PBS_JOBID $FROM_PROFILE\"\nsleep 600\necho done >&2\nexit 3\n"),
		Env:    []string{"PBS_JOBID=1.server"}, Dir: "/home/alice", Stdout: &out, Stderr: &errb,
	}, nil)
	if st.Code != 3 || st.Signal != 0 {
		t.Errorf("status %+v", st)
	}
	if out.String() != "1.server yes\n" || errb.String() != "done\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
	if d := clk.Now().Sub(t0); d != 600*time.Second {
		t.Errorf("the job took %v of virtual time, want 10m", d)
	}
}

// The PBS server lets the clock go as soon as Signal returns: a sleeping
// script must have woken up by then.
func TestForBatchSignalWakesSleeperBeforeReturning(t *testing.T) {
	t0 := time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0) // moves only by Advance
	x := virtualHost(t, clk)
	var out testutil.SyncBuffer
	checked := make(chan struct{})
	st := runJob(t, clk, x, batch.RunSpec{
		JobID: "2.server", User: "alice", Script: []byte("trap 'echo caught; exit 7' TERM\nsleep 3600\n"), Stdout: &out, Stderr: &out,
	}, func(p batch.Process) {
		go func() {
			defer close(checked)
			if err := testutil.Poll("the job's sleep on the clock", 10*time.Second, func() bool { return clk.Pending() != 0 }); err != nil {
				t.Error(err)
			}
			if err := p.Signal(syscall.SIGTERM); err != nil {
				t.Error(err)
			}
			if n := clk.Pending(); n != 0 {
				t.Errorf("Signal returned with %d sleeper(s) still registered on the clock", n)
			}
		}()
	})
	if st.Code != 7 || out.String() != "caught\n" || !clk.Now().Equal(t0) {
		t.Errorf("status %+v output %q clock moved %v", st, out.String(), clk.Now().Sub(t0))
	}
	// The check above must not see the next job's sleep on the shared clock.
	<-checked
	st = runJob(t, clk, x, batch.RunSpec{JobID: "3.server", User: "alice", Script: []byte("sleep 3600\n")}, func(p batch.Process) {
		go func() {
			if err := testutil.Poll("the job's sleep on the clock", 10*time.Second, func() bool { return clk.Pending() != 0 }); err != nil {
				t.Error(err)
			}
			_ = p.Signal(syscall.SIGKILL)
		}()
	})
	if st.Code != 137 || st.Signal != syscall.SIGKILL {
		t.Errorf("killed job: %+v", st)
	}
}

// A job runs its script file, as under a MoM: $0 is the file, and the
// script's own traps still see the server's signals.
func TestForBatchScriptFile(t *testing.T) {
	clk := clock.NewVirtual(time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC))
	fs := afero.NewMemMapFs()
	must(t, fs.MkdirAll("/home/alice", 0o755))
	must(t, fs.MkdirAll("/bin", 0o755))
	must(t, afero.WriteFile(fs, "/bin/bash", []byte("\x7fELF stand-in"), 0o755))
	const path = "/var/spool/pbs/mom_priv/jobs/6.server.SC"
	must(t, fs.MkdirAll("/var/spool/pbs/mom_priv/jobs", 0o755))
	must(t, afero.WriteFile(fs, path, []byte("#!/bin/bash\ntrap 'echo term; exit 9' TERM\necho $0\nsleep 3600\n"), 0o700))
	e := virtual.New(virtual.WithFS(fs), virtual.WithClock(clk))
	t.Cleanup(func() { _ = e.Close() })
	var out testutil.SyncBuffer
	st := runJob(t, clk, executor.ForBatch(e), batch.RunSpec{JobID: "6.server", User: "alice", Script: []byte("unused"), ScriptPath: path, Dir: "/home/alice", Stdout: &out, Stderr: &out},
		func(p batch.Process) {
			go func() {
				if err := testutil.Poll("the job's sleep on the clock", 10*time.Second, func() bool { return clk.Pending() != 0 }); err != nil {
					t.Error(err)
				}
				if err := p.Signal(syscall.SIGTERM); err != nil {
					t.Error(err)
				}
			}()
		})
	if st.Code != 9 || st.Signal != 0 || out.String() != path+"\nterm\n" {
		t.Errorf("status %+v output %q", st, out.String())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestForBatchStartError(t *testing.T) {
	clk := clock.NewVirtual(time.Now())
	x := virtualHost(t, clk)
	_, err := x.Start(context.Background(), batch.RunSpec{JobID: "4.server", User: "nobody-here", Script: []byte("true"), Dir: "/home/nobody-here"})
	if err == nil || !strings.Contains(err.Error(), "4.server") {
		t.Errorf("err = %v", err)
	}
}

func TestForBatchRealJob(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: apt-get install bash")
	}
	root := t.TempDir()
	home := filepath.Join(root, "home", "alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := real.New(root, real.WithKillOrphans())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	var out testutil.SyncBuffer
	st := runJob(t, clock.Real{}, executor.ForBatch(e), batch.RunSpec{
		JobID: "5.server", User: "alice", Script: []byte("#PBS -l walltime=1:00\necho $PBS_JOBID; shopt -q login_shell && echo login; pwd\nexit 2\n"),
		Env: []string{"PBS_JOBID=5.server"}, Dir: home, Stdout: &out, Stderr: &out,
	}, nil)
	if st.Code != 2 || out.String() != "5.server\nlogin\n"+home+"\n" {
		t.Errorf("status %+v output %q", st, out.String())
	}
	// From the script file: $0 is its path, and a TERM reaches its trap.
	path := filepath.Join(root, "7.server.SC")
	must(t, os.WriteFile(path, []byte("trap 'echo term; exit 9' TERM\necho $0\nsleep 1000 & wait\n"), 0o700))
	out = testutil.SyncBuffer{}
	st = runJob(t, clock.Real{}, executor.ForBatch(e), batch.RunSpec{JobID: "7.server", User: "alice", ScriptPath: path, Dir: home, Stdout: &out, Stderr: &out},
		func(p batch.Process) {
			go func() {
				if err := testutil.Poll("the script to print its path", 10*time.Second, func() bool { return strings.Contains(out.String(), path) }); err != nil {
					t.Error(err)
				}
				if err := p.Signal(syscall.SIGTERM); err != nil {
					t.Error(err)
				}
			}()
		})
	if st.Code != 9 || out.String() != path+"\nterm\n" {
		t.Errorf("script file: status %+v output %q", st, out.String())
	}
}

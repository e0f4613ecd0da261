package cli_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
)

// srun's parsing inside and outside a job, its step-size check, the
// per-task environment and its report of failed tasks.
func TestParseSrun(t *testing.T) {
	job := []string{"SLURM_JOB_ID=5", "SLURM_CPUS_ON_NODE=4", "SLURM_NTASKS=3", "SLURM_JOB_NODELIST=n1", "SLURM_PROCID=0"}
	st, err := cli.ParseSrun([]string{"-l", "hostname", "-s"}, job)
	if err != nil || st.Tasks != 3 || !st.Label || strings.Join(st.Argv, " ") != "hostname -s" {
		t.Fatalf("srun in a 3-task job: %+v %v", st, err)
	}
	st.Step = 2
	env := st.TaskEnv(1, 4242)
	for _, want := range []string{"SLURM_PROCID=1", "SLURM_LOCALID=1", "SLURM_STEP_ID=2", "SLURM_STEP_NUM_TASKS=3",
		"SLURM_GTIDS=0,1,2", "SLURM_DISTRIBUTION=block", "SLURM_STEP_NODELIST=n1", "SLURM_TASK_PID=4242", "SLURM_JOB_NAME=hostname"} {
		if !slices.Contains(env, want) {
			t.Errorf("task env lacks %s: %v", want, env)
		}
	}
	if slices.Contains(env, "SLURM_PROCID=0") {
		t.Error("the batch shell's SLURM_PROCID=0 is kept beside the task's")
	}
	if _, err := cli.ParseSrun([]string{"-n", "2", "-c", "3", "true"}, job); err == nil ||
		err.Error() != "srun: error: Unable to create step for job 5: More processors requested than permitted" {
		t.Errorf("6 CPUs on 4: %v", err)
	}
	if _, err := cli.ParseSrun([]string{"true"}, nil); err == nil || !strings.Contains(err.Error(), "SLURM_JOB_ID") {
		t.Errorf("outside a job: %v", err)
	}
	var msgs bytes.Buffer
	if code := st.Finish([]int{0, 3, 3, 1, 3}, "n1", &msgs); code != 3 ||
		msgs.String() != "srun: error: n1: tasks 1-2,4: Exited with exit code 3\nsrun: error: n1: task 3: Exited with exit code 1\n" {
		t.Errorf("Finish: %d %q", code, msgs.String())
	}
}

// srun -n 2 inside a fake job runs two tasks of the virtual executor,
// each with its SLURM_PROCID, and --label prefixes their lines.
func TestSrunTasksInJob(t *testing.T) {
	l := newLocalOn(t, clock.NewVirtual(epoch))
	script := "#!/bin/sh\nsrun -l sh -c 'echo task $SLURM_PROCID step $SLURM_STEP_ID' | sort\nsrun -n 1 sh -c 'echo step $SLURM_STEP_ID; exit 5'\necho rc=$?\n"
	if r := l.run(t, script, "sbatch", "-n", "2"); r.ExitCode != 0 {
		t.Fatalf("sbatch: %s", r.Stderr)
	}
	l.clk.Advance(time.Second)
	l.state(t, 1, fakeslurm.Completed)
	out, _ := afero.ReadFile(l.fs, "/home/alice/slurm-1.out")
	want := "0: task 0 step 0\n1: task 1 step 0\nstep 1\nsrun: error: localhost: task 0: Exited with exit code 5\nrc=5\n"
	if string(out) != want {
		t.Errorf("slurm-1.out:\n%s\nwant:\n%s", out, want)
	}
}

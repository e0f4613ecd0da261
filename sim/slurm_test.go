package sim_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/sim"
)

// waitSlurmJob polls the control API until job id ends, and returns it.
func waitSlurmJob(t *testing.T, h *sim.Host, id string) fakeslurm.Job {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	for {
		jobs, err := h.Client().SlurmJobs(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if strings.TrimSpace(id) == strconv.Itoa(j.ID) && j.State.Finished() && !j.Completing {
				return j
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s did not end: %+v", id, jobs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A virtual host with Slurm: sbatch over ssh runs the job in the host's
// shell, its output lands in the submit directory, squeue and the control
// API report it, and the health check names slurm.
func TestVirtualHostRunsSlurmJobsOverSSH(t *testing.T) {
	h := newHost(t, sim.WithSlurm(fakeslurm.WithSchedulerDelay(10*time.Millisecond)))
	out, errs, code := goSSH(t, h, `sbatch -J greet --wrap 'echo hello from $SLURM_JOB_ID on $(hostname)'`)
	if code != 0 || !strings.HasPrefix(out, "Submitted batch job ") {
		t.Fatalf("sbatch: %q %q exit %d", out, errs, code)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "Submitted batch job "))
	j := waitSlurmJob(t, h, id)
	if j.State != fakeslurm.Completed || j.Name != "greet" || j.User != "alice" || j.UID != 1000 {
		t.Fatalf("job %+v, want greet of alice (uid 1000) COMPLETED", j)
	}
	out, errs, code = goSSH(t, h, "cat slurm-"+id+".out; squeue -h -t all -o '%i %j %T'")
	if code != 0 || !strings.Contains(out, "hello from "+id+" on fakehpc") || !strings.Contains(out, id+" greet COMPLETED") {
		t.Fatalf("output and squeue: %q %q exit %d", out, errs, code)
	}
	health, err := h.Client().Health(ctxFor(t, 10*time.Second))
	if err != nil || !health.OK || !health.Checks["slurm"].OK {
		t.Fatalf("health %+v %v", health, err)
	}
	if _, err := sim.NewHost(ctxFor(t, 10*time.Second), sim.WithUsers("alice"), sim.WithPBS(), sim.WithSlurm()); err == nil || !strings.Contains(err.Error(), "one batch system") {
		t.Fatalf("PBS and Slurm together: %v", err)
	}
}

// A real host with Slurm, through the real OpenSSH client: sbatch --wrap
// and squeue are jobsim's executables on PATH, the job is a real process
// writing its output in the home on disk, and sacct reports it done.
func TestRealHostWithOpenSSHClientSlurm(t *testing.T) {
	h := newHost(t, sim.WithExecutor(sim.Real), sim.WithSlurm(fakeslurm.WithSchedulerDelay(10*time.Millisecond)))
	cfg := sshConfig(t, h)
	out, errs, code := realSSH(t, cfg, "fakehpc", `sbatch --wrap "sleep 1; echo done \$SLURM_JOB_ID"; squeue -h -o '%i %T'`)
	if code != 0 || !strings.HasPrefix(out, "Submitted batch job ") {
		t.Fatalf("sbatch; squeue over ssh: %q %q exit %d", out, errs, code)
	}
	first, rest, _ := strings.Cut(out, "\n")
	id := strings.TrimSpace(strings.TrimPrefix(first, "Submitted batch job "))
	if !strings.HasPrefix(strings.TrimSpace(rest), id+" ") {
		t.Fatalf("squeue right after sbatch does not list job %s: %q", id, rest)
	}
	j := waitSlurmJob(t, h, id)
	if j.State != fakeslurm.Completed {
		t.Fatalf("job %+v, want COMPLETED", j)
	}
	out, errs, code = realSSH(t, cfg, "fakehpc", "cat slurm-"+id+".out; sacct -n -X -P -j "+id+" -o State,ExitCode")
	if code != 0 || !strings.Contains(out, "done "+id) || !strings.Contains(out, "COMPLETED|0:0") {
		t.Fatalf("output and sacct: %q %q exit %d", out, errs, code)
	}
}

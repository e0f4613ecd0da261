// Package virtualsrun is srun for jobs that run in the virtual executor
// (sim/executor/virtual): a builtin that, inside a batch job, runs its
// command as the step's tasks (srun -n N: N copies at once, each with its
// SLURM_PROCID and the step's variables) in the job's shell, as the srun
// executable does on a real host (batchspawner's SlurmSpawner starts its
// server through srun).
package virtualsrun

import (
	"context"
	"fmt"
	"sync"

	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// Builtin returns the srun builtin, for virtual.WithBuiltin("srun", ...).
// It numbers each job's steps from 0, as slurmctld does.
func Builtin() virtual.Builtin {
	var mu sync.Mutex
	steps := map[string]int{} // next step id by SLURM_JOB_ID
	return func(ctx context.Context, c *virtual.Call) int {
		st, err := cli.ParseSrun(c.Args[1:], c.Environ())
		if err != nil {
			fmt.Fprintln(c.Stderr, err)
			return cli.SrunExitCode(err)
		}
		job := c.Getenv("SLURM_JOB_ID")
		mu.Lock()
		st.Step = steps[job]
		steps[job]++
		mu.Unlock()
		outputs, flush := st.Outputs(c.Stdout, c.Stderr)
		codes := make([]int, st.Tasks)
		var wg sync.WaitGroup
		for i := range st.Tasks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, errw := outputs(i)
				codes[i] = c.RunWith(ctx, append([]string(nil), st.Argv...), st.TaskEnv(i, c.Pid+1+i), out, errw)
			}()
		}
		wg.Wait()
		flush()
		return st.Finish(codes, c.Getenv("SLURMD_NODENAME"), c.Stderr)
	}
}

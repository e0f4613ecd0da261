// Package virtualsrun is srun for jobs that run in the virtual executor
// (sim/executor/virtual): a builtin that, inside a batch job, runs its
// command in the job's shell as the srun executable execs it on a real
// host (batchspawner's SlurmSpawner starts its server through srun).
package virtualsrun

import (
	"context"
	"fmt"

	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/sim/executor/virtual"
)

// Builtin returns the srun builtin, for virtual.WithBuiltin("srun", ...).
func Builtin() virtual.Builtin {
	return func(ctx context.Context, c *virtual.Call) int {
		argv, err := cli.SrunCommand(c.Args[1:], c.Environ())
		if err != nil {
			fmt.Fprintln(c.Stderr, err)
			return 1
		}
		return c.Run(ctx, argv)
	}
}

// Command jobsim is the one binary of the project: it serves fake job hosts,
// brings up topologies, adds and clears faults, runs scenarios, and, when
// invoked under a PBS command name (qsub, qstat, ...), is the PBS client,
// and under a Slurm command name (sbatch, squeue, ...) the Slurm client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	slurmremote "github.com/jobsim/jobsim/fakeslurm/remote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args)
	stop()
	os.Exit(code)
}

// run dispatches on the program name first (the PBS personalities), then
// falls back to the cobra command tree.
func run(ctx context.Context, args []string) int {
	if code, ok := runPersonality(ctx, args); ok {
		return code
	}
	if code, ok := slurmremote.Personality(ctx, args, os.Stdin, os.Stdout, os.Stderr); ok {
		return code
	}
	root := newRootCommand()
	root.SetArgs(args[1:])
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "jobsim:", err)
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

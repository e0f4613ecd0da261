package cli

import (
	"errors"
	"fmt"
	"strings"
)

var srunOpts = []opt{
	{'n', "ntasks", reqArg, "n"},
	{'N', "nodes", reqArg, "N"},
	{'c', "cpus-per-task", reqArg, "c"},
	{0, "export", reqArg, "export"},
	{0, "mpi", reqArg, "ignore"},
	{'l', "label", noArg, "ignore"},
	{'u', "unbuffered", noArg, "ignore"},
	{0, "pty", noArg, "ignore"},
	{0, "exclusive", optArg, "ignore"},
	{0, "overlap", noArg, "ignore"},
	{'J', "job-name", reqArg, "ignore"},
	{0, "mem", reqArg, "ignore"},
	{'t', "time", reqArg, "ignore"},
	{'o', "output", reqArg, "ignore"},
	{'e', "error", reqArg, "ignore"},
	{'K', "kill-on-bad-exit", optArg, "ignore"},
	{'W', "wait", reqArg, "ignore"},
	{0, "cpu-bind", reqArg, "ignore"},
	{0, "ntasks-per-node", reqArg, "ignore"},
	{'Q', "quiet", noArg, "ignore"},
	{'v', "verbose", noArg, "ignore"},
	{0, "help", noArg, "help"},
}

// SrunCommand parses srun's arguments inside a batch job and returns the
// command to run in the job's allocation. The fake runs one task: srun
// inside a job becomes the command itself (its exit status is srun's), as
// batchspawner's `srun <server>` needs. env is srun's environment: outside
// a job (no SLURM_JOB_ID) srun would create an allocation, which the fake
// refuses with an error.
func SrunCommand(args, env []string) ([]string, error) {
	inJob := false
	for _, kv := range env {
		if strings.HasPrefix(kv, "SLURM_JOB_ID=") {
			inJob = true
		}
	}
	ps, operands, err := getopt("srun", srunOpts, args, true)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.key == "help" {
			return nil, fmt.Errorf("srun: usage: srun [OPTIONS] executable [args...]")
		}
	}
	if !inJob {
		return nil, fmt.Errorf("srun: error: fakeslurm runs srun only inside a batch job (SLURM_JOB_ID is not set)")
	}
	if len(operands) == 0 {
		//lint:ignore ST1005 srun's own message, byte for byte
		return nil, errors.New("srun: fatal: No command given to execute.")
	}
	return operands, nil
}

func (r *run) srun() error {
	if _, err := SrunCommand(r.inv.Args, r.inv.Env); err != nil {
		fmt.Fprintf(&r.stderr, "%v\n", err)
		return exit(1)
	}
	r.stderr.WriteString("srun: error: the in-process front end cannot start processes; srun runs as the jobsim executable inside a job\n")
	return exit(1)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/hubsys"
	"github.com/jobsim/jobsim/scenarios/runner"
)

// systemOptions registers the systems under test `jobsim run` drives: the
// real Cylc (any cylc: $JOBSIM_CYLC, default the one make setup-cylc
// prepares) and the real JupyterHub with jobsim's stand-in UI server.
func systemOptions(ctx context.Context, self string) ([]runner.Option, error) {
	opts := []runner.Option{
		runner.WithSystem("cylc", cylcsys.Factory()),
		runner.WithSystem("hub", hubsys.Factory(hubsys.WithJobsim(self))),
	}
	in, err := cylcsys.LocateInstall(ctx)
	var skip *runner.SkipError
	switch {
	case err == nil:
		opts = append(opts, runner.WithCylcInstall(in))
	case errors.As(err, &skip):
		// Cylc scenarios skip with this reason; others run.
		fmt.Fprintf(os.Stderr, "jobsim run: %s\n", skip.Reason)
	default:
		return nil, err
	}
	return opts, nil
}

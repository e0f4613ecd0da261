package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/hubsys"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// systemOptions registers the systems under test `jobsim run` drives: the
// real Cylc (any cylc: $JOBSIM_CYLC, default the one make setup-cylc
// prepares) and the real JupyterHub with jobsim's stand-in UI server.
// vocabulary is the scenario vocabulary jobsim understands: the core's
// and its plug-ins' (the systems under test, and the batch systems on the
// hosts). A new system or batch system is one more entry here and in
// systemOptions.
func vocabulary() *scenario.Vocabulary {
	return scenario.MustVocabulary(cylcsys.Plugin{}, hubsys.Plugin{}, pbsbatch.Plugin{})
}

func systemOptions(ctx context.Context, self string) ([]runner.Option, error) {
	opts := []runner.Option{
		runner.WithSystem(cylcsys.Plugin{}.Name(), cylcsys.Factory()),
		runner.WithSystem(hubsys.Plugin{}.Name(), hubsys.Factory(hubsys.WithJobsim(self))),
		runner.WithHostPlugin(pbsbatch.Plugin{}),
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

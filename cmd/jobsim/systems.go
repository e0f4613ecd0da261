package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/hubsys"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/scenarios/slurmbatch"
)

// vocabulary is the scenario vocabulary jobsim understands: the core's
// and its plug-ins' (the systems under test, and the batch systems on the
// hosts). A new system or batch system is one more entry here and in
// systemOptions.
func vocabulary() *scenario.Vocabulary {
	return scenario.MustVocabulary(cylcsys.Plugin{}, hubsys.Plugin{}, pbsbatch.Plugin{}, slurmbatch.Plugin{})
}

// locateCylc finds the Cylc under test (any cylc: $JOBSIM_CYLC, default
// the one make setup-cylc prepares) for the backends and the Cylc system;
// nil when there is none (Cylc scenarios then skip with the reason
// printed).
func locateCylc(ctx context.Context) (*cylc.Install, error) {
	in, err := cylcsys.LocateInstall(ctx)
	var skip *runner.SkipError
	switch {
	case err == nil:
		return in, nil
	case errors.As(err, &skip):
		fmt.Fprintf(os.Stderr, "jobsim run: %s\n", skip.Reason)
		return nil, nil
	}
	return nil, err
}

// systemOptions registers the systems under test `jobsim run` drives (the
// real Cylc, in, and the real JupyterHub with jobsim's stand-in UI server)
// and the batch systems' host plug-ins.
func systemOptions(in *cylc.Install, self string) []runner.Option {
	var copts []cylcsys.Option
	if in != nil {
		copts = append(copts, cylcsys.WithInstall(in))
	}
	return []runner.Option{
		runner.WithSystem(cylcsys.Plugin{}.Name(), cylcsys.Factory(copts...)),
		runner.WithSystem(hubsys.Plugin{}.Name(), hubsys.Factory(hubsys.WithJobsim(self))),
		runner.WithHostPlugin(pbsbatch.Plugin{}),
		runner.WithHostPlugin(slurmbatch.Plugin{}),
	}
}

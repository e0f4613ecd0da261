package hubsys

import (
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/scenarios/slurmbatch"
)

// testVocabulary is what the hub scenarios use: this plug-in, PBS and
// Slurm.
var testVocabulary = scenario.MustVocabulary(Plugin{}, pbsbatch.Plugin{}, slurmbatch.Plugin{})

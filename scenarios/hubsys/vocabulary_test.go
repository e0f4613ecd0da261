package hubsys

import (
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// testVocabulary is what the hub scenarios use: this plug-in and PBS.
var testVocabulary = scenario.MustVocabulary(Plugin{}, pbsbatch.Plugin{})

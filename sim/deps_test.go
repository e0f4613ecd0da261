package sim_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLayersImportOnlyWhatIsBelow holds promises of the layout: a Go user
// who embeds an in-process host (package sim, or the PBS server alone)
// never builds the Docker client, testcontainers or the scenario layer,
// which belong to the containers backend and the runner above it; the
// in-container node daemon and the cluster it runs in take their own
// configuration, not the scenario format's types; the executors and the
// batch-system contract know no particular batch system (they reach it
// through package sim/batch), so Slurm plugs in beside PBS; and the
// scenario core, checker and runner know no system under test or batch
// system plug-in (those register with them).
func TestLayersImportOnlyWhatIsBelow(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; cannot list the packages sim depends on")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	container := []string{
		"github.com/docker/",
		"github.com/moby/",
		"github.com/testcontainers/",
		"github.com/jobsim/jobsim/backend/",
		"github.com/jobsim/jobsim/scenarios/",
	}
	scenarios := []string{"github.com/jobsim/jobsim/scenarios/"}
	pbs := []string{"github.com/jobsim/jobsim/fakepbs", "github.com/jobsim/jobsim/scenarios/"}
	plugins := []string{
		"github.com/jobsim/jobsim/scenarios/cylc", // and cylcsys
		"github.com/jobsim/jobsim/scenarios/hub",  // and hubsys
		"github.com/jobsim/jobsim/scenarios/pbsbatch",
		"github.com/jobsim/jobsim/scenarios/slurmbatch",
		"github.com/jobsim/jobsim/scenarios/batchplugin",
	}
	for pkg, bannedPrefixes := range map[string][]string{
		"github.com/jobsim/jobsim/sim":                        container,
		"github.com/jobsim/jobsim/fakepbs":                    container,
		"github.com/jobsim/jobsim/backend/containers/node":    scenarios,
		"github.com/jobsim/jobsim/backend/containers/cluster": scenarios,
		"github.com/jobsim/jobsim/sim/batch":                  pbs,
		"github.com/jobsim/jobsim/sim/executor":               pbs,
		"github.com/jobsim/jobsim/sim/executor/real":          pbs,
		"github.com/jobsim/jobsim/sim/executor/virtual":       pbs,
		"github.com/jobsim/jobsim/scenarios/scenario":         plugins,
		"github.com/jobsim/jobsim/scenarios/check":            plugins,
		"github.com/jobsim/jobsim/scenarios/runner":           plugins,
		"github.com/jobsim/jobsim/internal/batchwire":         {"github.com/jobsim/jobsim/fakepbs", "github.com/jobsim/jobsim/fakeslurm"},
		"github.com/jobsim/jobsim/internal/batchserver":       {"github.com/jobsim/jobsim/fakepbs", "github.com/jobsim/jobsim/fakeslurm"},
		"github.com/jobsim/jobsim/scenarios/batchplugin":      {"github.com/jobsim/jobsim/scenarios/pbsbatch", "github.com/jobsim/jobsim/scenarios/slurmbatch"},
	} {
		out, err := exec.CommandContext(ctx, gobin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, banned := range bannedPrefixes {
				if strings.HasPrefix(dep, banned) {
					t.Errorf("%s depends on %s: the in-process host must not build it", pkg, dep)
				}
			}
		}
	}
}

package sim_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestInProcessHostPullsNoContainerCode holds the promise that a Go user
// who embeds an in-process host (package sim, or the PBS server alone)
// never builds the Docker client, testcontainers or the scenario layer:
// those belong to the containers backend and the runner above it.
func TestInProcessHostPullsNoContainerCode(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; cannot list the packages sim depends on")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, pkg := range []string{"github.com/jobsim/jobsim/sim", "github.com/jobsim/jobsim/fakepbs"} {
		out, err := exec.CommandContext(ctx, gobin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, banned := range []string{
				"github.com/docker/",
				"github.com/moby/",
				"github.com/testcontainers/",
				"github.com/jobsim/jobsim/backend/",
				"github.com/jobsim/jobsim/scenarios/",
			} {
				if strings.HasPrefix(dep, banned) {
					t.Errorf("%s depends on %s: the in-process host must not build container or scenario code", pkg, dep)
				}
			}
		}
	}
}

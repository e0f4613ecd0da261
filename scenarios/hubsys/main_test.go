package hubsys

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// jobsimBin is the jobsim binary built by TestMain; its `uiserver` is the
// stand-in server the scenarios' hubs spawn.
var (
	jobsimBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if _, err := exec.LookPath("jupyterhub"); err != nil {
			return m.Run()
		}
		if bin := os.Getenv(EnvJobsim); bin != "" {
			jobsimBin = bin
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "jobsim-hubsys-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "temp dir:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		jobsimBin = filepath.Join(dir, "jobsim")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", jobsimBin, "github.com/jobsim/jobsim/cmd/jobsim").CombinedOutput()
		if err != nil {
			// The tree is shared: cmd/jobsim may be mid-change. The same
			// uiserver behind a minimal main serves the local spawners.
			fmt.Fprintf(os.Stderr, "WARNING: ./cmd/jobsim does not build, the hub scenarios spawn scenarios/hub/testdata/standin instead:\n%s\n", out)
			out, err = exec.CommandContext(ctx, "go", "build", "-o", jobsimBin, "github.com/jobsim/jobsim/scenarios/hub/testdata/standin").CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build standin: %v\n%s", err, out)
			}
		}
		return m.Run()
	}())
}

func needHub(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("jupyterhub"); err != nil {
		t.Skip(InstallHint)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

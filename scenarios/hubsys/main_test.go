package hubsys

import (
	"os"
	"os/exec"
	"testing"

	"github.com/jobsim/jobsim/internal/testbin"
)

// jobsimBin is the jobsim binary built once for these tests; its
// `uiserver` is the stand-in server the scenarios' hubs spawn.
var jobsimBin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &jobsimBin)) }

func needHub(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("jupyterhub"); err != nil {
		t.Skip(InstallHint)
	}
}

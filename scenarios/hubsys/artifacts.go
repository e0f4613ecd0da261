package hubsys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jobsim/jobsim/internal/artifact"
)

// artifactFiles are the files of the hub directory worth keeping, with the
// name each gets in the artifacts folder.
var artifactFiles = []struct{ src, dst string }{
	{"jupyterhub.log", "hub.log"},
	{"jupyterhub_config.py", "jupyterhub_config.py"},
	{"jobsim-hub.json", "jobsim-hub.json"},
	{"uiserver-requests.jsonl", "uiserver-requests.jsonl"},
	{"ssh_config", "ssh_config"},
	{"python/jobsim_spawners.py", "jobsim_spawners.py"},
}

// CollectArtifacts implements runner.System: into dir/hub it copies the
// hub log (hub, proxy and servers' output), the generated configuration
// (jupyterhub_config.py and the JSON spec it reads, which holds the API
// tokens of this run's throwaway hub), the stand-in servers' request
// record, and for job-host spawners the ssh config and spawner module.
// Files not written (the hub never started) are skipped.
func (s *System) CollectArtifacts(ctx context.Context, dir string) error {
	out := filepath.Join(dir, "hub")
	var errs []error
	made := false
	for _, f := range artifactFiles {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		src := filepath.Join(s.dir, f.src)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if !made {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("hubsys: artifacts: %w", err)
			}
			made = true
		}
		if err := artifact.CopyFile(src, filepath.Join(out, f.dst), artifact.MaxFile); err != nil {
			errs = append(errs, fmt.Errorf("hubsys: artifact %s: %w", f.src, err))
		}
	}
	if _, err := os.Stat(s.shotsDir()); err == nil {
		if err := artifact.CopyTree(s.shotsDir(), filepath.Join(out, "screenshots"), artifact.MaxFile); err != nil {
			errs = append(errs, fmt.Errorf("hubsys: screenshots: %w", err))
		}
	}
	return errors.Join(errs...)
}

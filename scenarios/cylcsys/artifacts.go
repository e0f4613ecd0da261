package cylcsys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/jobsim/jobsim/internal/artifact"
	"github.com/jobsim/jobsim/scenarios/runner"
)

// CollectArtifacts implements runner.System. Into dir it copies:
//
//	global.cylc, ssh_config   the generated configuration
//	flow.cylc                 the installed workflow definition
//	scheduler/                log/scheduler of the run (log = the current log)
//	job/<cycle>/<task>/<NN>/  job, job-activity.log (scheduler side) and
//	                          job.out, job.err, job.status (job host side,
//	                          copied out of containers)
//	db                        the workflow database
//
// Missing pieces (nothing installed yet, a job host in a container) are
// skipped; errors reading what exists are returned joined.
func (s *System) CollectArtifacts(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cylc artifacts: %w", err)
	}
	var errs []error
	add := func(err error) {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	add(artifact.CopyFile(s.env.GlobalConfigPath(), filepath.Join(dir, "global.cylc"), artifact.MaxFile))
	if p := s.env.SSHConfigPath(); p != "" {
		add(artifact.CopyFile(p, filepath.Join(dir, "ssh_config"), artifact.MaxFile))
	}
	wf := s.Workflow()
	if wf == nil {
		return errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	run := wf.RunDir()
	flow := wf.FlowFile()
	if _, err := os.Stat(flow); err != nil {
		flow = filepath.Join(run, "suite.rc")
	}
	add(artifact.CopyFile(flow, filepath.Join(dir, "flow.cylc"), artifact.MaxFile))
	add(artifact.CopyTree(filepath.Join(run, "log", "scheduler"), filepath.Join(dir, "scheduler"), artifact.MaxFile))
	add(artifact.CopyTree(filepath.Join(run, "log", "job"), filepath.Join(dir, "job"), artifact.MaxFile))
	add(artifact.CopyFile(wf.DBPath(), filepath.Join(dir, "db"), artifact.MaxFile))
	// The job host side: job.out, job.err, job.status stay there.
	remote := path.Join(s.plan.remoteHome, "cylc-run", wf.ID(), "log", "job")
	if fc, ok := s.plan.host.(runner.FileCopier); ok {
		add(fc.CopyOut(ctx, remote, filepath.Join(dir, "job"), artifact.MaxFile))
	} else if local := filepath.FromSlash(remote); local != filepath.Join(run, "log", "job") {
		add(artifact.CopyTree(local, filepath.Join(dir, "job"), artifact.MaxFile))
	}
	return errors.Join(errs...)
}

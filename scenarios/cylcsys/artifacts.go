package cylcsys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/jobsim/jobsim/scenarios/runner"
)

// maxArtifactFile bounds each copied file (a runaway job.out must not fill
// the disk); longer files are cut with a note.
const maxArtifactFile = 8 << 20

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
	add(copyFile(s.env.GlobalConfigPath(), filepath.Join(dir, "global.cylc")))
	if p := s.env.SSHConfigPath(); p != "" {
		add(copyFile(p, filepath.Join(dir, "ssh_config")))
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
	add(copyFile(flow, filepath.Join(dir, "flow.cylc")))
	add(copyTree(filepath.Join(run, "log", "scheduler"), filepath.Join(dir, "scheduler")))
	add(copyTree(filepath.Join(run, "log", "job"), filepath.Join(dir, "job")))
	add(copyFile(wf.DBPath(), filepath.Join(dir, "db")))
	// The job host side: job.out, job.err, job.status stay there.
	if fc, ok := s.plan.host.(runner.FileCopier); ok {
		remote := path.Join(s.plan.remoteHome, "cylc-run", wf.ID(), "log", "job")
		add(fc.CopyOut(ctx, remote, filepath.Join(dir, "job"), maxArtifactFile))
	} else if remote := filepath.Join(s.plan.remoteHome, "cylc-run", filepath.FromSlash(wf.ID()), "log", "job"); remote != filepath.Join(run, "log", "job") {
		add(copyTree(remote, filepath.Join(dir, "job")))
	}
	return errors.Join(errs...)
}

// copyTree copies the regular files below src (following symbolic links to
// files, such as log/scheduler/log and log/job/.../NN) into dst.
func copyTree(src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return err
	}
	var errs []error
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// "NN" links to the latest submit directory, which is
			// copied anyway; links to files are copied as files.
			st, err := os.Stat(p)
			if err != nil || st.IsDir() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		if err := copyFile(p, target); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// copyFile copies src to dst (creating its directory), at most
// maxArtifactFile bytes.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(in, maxArtifactFile))
	if err == nil && n == maxArtifactFile {
		_, err = io.WriteString(out, "\n[jobsim: cut at "+fmt.Sprint(maxArtifactFile)+" bytes]\n")
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/spf13/cobra"

	containers "github.com/jobsim/jobsim/backend/containers"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/inprocess"
	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/htmlreport"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

func newRunCommand() *cobra.Command {
	var (
		artifacts   string
		junit       string
		parallel    int
		labelFilter string
		backend     string
		output      string
		shard       string
		cylcs       []string
		alone       []string
	)
	cmd := &cobra.Command{
		Use:   "run FILE|DIR...",
		Short: "Run scenario files against real Cylc or JupyterHub on fake job hosts",
		Long: `Run scenario files (docs/scenarios.md): bring up their fake hosts, start the
system under test, play the timeline (faults, reloads, triggers, waits) and
judge the expectations over the recorded history.

A gate passes when the system behaves; a reproducer passes when the bug it
names shows on the releases it affects (on others it runs as a gate).
Every scenario leaves <artifacts>/<name>/ with events.jsonl, the scheduler
or hub log, job logs, the generated configs, transcript.md and report.html
(the run as a picture); <artifacts>/index.html links them all.

The Cylc under test is any cylc executable: JOBSIM_CYLC=/path/to/bin/cylc
(default: the Cylc 8.0.2 that make setup installs).

The exit status is 0 when every scenario passed or was skipped, 1 when any
failed or errored, 2 when a file is malformed (nothing is started then),
130 (SIGINT) or 143 (SIGTERM) when a signal stopped the run: the scenarios
it cut short are reported as interrupted, not as failures of the system.`,
		Example: `  # Every gate scenario, two at a time, JUnit for CI (long run)
  jobsim run --label-filter gate --parallel 2 --junit out/junit.xml fixtures/scenarios

  # One incident, its transcript afterwards (long run)
  jobsim run fixtures/scenarios/cylc/unlistable-lib.yaml
  less out/scenarios/unlistable-lib/transcript.md

  # This machine's half of a suite split over two (jobsim report merges the halves) (long run)
  jobsim run --shard 1/2 --artifacts out/shard1 fixtures/scenarios/hub/local-three-users.yaml fixtures/scenarios/hub/named-servers.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := vocabulary().LoadAll(args...)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			if labelFilter != "" {
				filter, err := types.ParseLabelFilter(labelFilter)
				if err != nil {
					return exitError{code: 2, err: fmt.Errorf("--label-filter: %w", err)}
				}
				var kept []*scenario.File
				for _, f := range files {
					if filter(f.Labels) {
						kept = append(kept, f)
					}
				}
				files = kept
			}
			if shard != "" {
				sh, err := runner.ParseShard(shard)
				if err != nil {
					return exitError{code: 2, err: fmt.Errorf("--shard: %w", err)}
				}
				files = sh.Select(files)
				if len(files) == 0 {
					// More shards than scenarios: this machine has none to run.
					fmt.Fprintf(cmd.ErrOrStderr(), "shard %s: no scenario falls to this shard\n", shard)
					return nil
				}
			}
			if len(files) == 0 {
				return exitError{code: 2, err: fmt.Errorf("no scenario selected from %v (label filter %q)", args, labelFilter)}
			}
			if output != "table" && output != "json" {
				return exitError{code: 2, err: fmt.Errorf("--output %q: want table or json", output)}
			}
			end, _, err := ownRun(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer end() // after every scenario's hosts and systems are gone
			if len(cylcs) == 0 {
				if v := os.Getenv(cylc.EnvExecutable); strings.Contains(v, string(os.PathListSeparator)) {
					cylcs = filepath.SplitList(v)
				}
			}
			if len(cylcs) > 1 {
				return runMatrix(cmd, files, cylcs, backend, artifacts, junit, parallel)
			}
			var in *cylc.Install
			if len(cylcs) == 1 {
				in, err = cylcsys.LocateInstall(cmd.Context(), cylcsys.WithExecutable(cylcs[0]))
			} else {
				in, err = locateCylc(cmd.Context())
			}
			if err != nil {
				return err
			}
			opts, err := runnerOptions(cmd, backend, in)
			if err != nil {
				return err
			}
			opts = append(opts, runner.WithArtifacts(artifacts), runner.WithParallel(parallel), runner.WithProgress(cmd.ErrOrStderr()))
			if len(alone) > 0 {
				opts = append(opts, runner.WithAlone(func(f *scenario.File) bool { return slices.Contains(alone, f.Name) }))
			}
			r, err := runner.New(opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "running %d scenarios (%d at a time) on %s; artifacts in %s\n", len(files), parallel, backend, artifacts)
			reps := r.RunAll(cmd.Context(), files)
			out := cmd.OutOrStdout()
			if output == "json" {
				err = runner.WriteJSON(out, reps)
			} else {
				err = runner.WriteSummary(out, reps)
			}
			if err != nil {
				return err
			}
			if junit != "" {
				if err := writeJUnitFile(junit, reps); err != nil {
					return err
				}
			}
			var links []htmlreport.Link
			if junit != "" {
				if rel, err := filepath.Rel(artifacts, junit); err == nil {
					links = append(links, htmlreport.Link{Name: "JUnit", Href: filepath.ToSlash(rel)})
				}
			}
			if err := runner.WriteHTMLIndex(artifacts, reps, links...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "report: %s\n", filepath.Join(artifacts, "index.html"))
			for _, rep := range reps {
				if rep.Verdict == runner.Interrupted {
					// As a shell reports a command a signal stopped.
					code := 128 + int(syscall.SIGINT)
					if strings.Contains(rep.Reason, "terminated") {
						code = 128 + int(syscall.SIGTERM)
					}
					return exitError{code: code, err: fmt.Errorf("interrupted (see %s)", artifacts)}
				}
			}
			for _, rep := range reps {
				if rep.Verdict == runner.Fail || rep.Verdict == runner.Error {
					return exitError{code: 1, err: fmt.Errorf("not every scenario passed (see %s)", artifacts)}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&artifacts, "artifacts", filepath.Join("out", "scenarios"), "folder for one artifacts subfolder per scenario")
	f.StringVar(&junit, "junit", "", "also write a JUnit XML report to this file")
	f.IntVarP(&parallel, "parallel", "p", max(1, runtime.NumCPU()/2), "scenarios to run at once (they share nothing)")
	f.StringSliceVar(&alone, "alone", nil, "scenario names to run one at a time after the others, with nothing else running (timing-sensitive ones)")
	f.StringVar(&shard, "shard", "", "run only shard K/N of the selected scenarios (a CI matrix of N machines; merge their artifacts with jobsim report)")
	f.StringVar(&labelFilter, "label-filter", "", "run only scenarios whose labels match (Ginkgo syntax: 'gate && cylc', '!slow')")
	f.StringVar(&backend, "backend", "inprocess", "where fake hosts run: inprocess, or containers (a Docker engine; $JOBSIM_USERLAND=bind|rootfs)")
	f.StringVarP(&output, "output", "o", "table", "summary format: table or json")
	f.StringArrayVar(&cylcs, "cylc", nil, "the cylc under test (default $JOBSIM_CYLC, else the one make setup-cylc prepares); given twice or more (or $JOBSIM_CYLC as a:b), a version matrix: the suite runs against each, artifacts in <artifacts>/<version>/, and a table gives each scenario's verdict on each")
	return cmd
}

// runnerOptions builds the backend and the systems under test, with in
// the Cylc under test (nil: none; Cylc scenarios skip).
func runnerOptions(cmd *cobra.Command, backend string, in *cylc.Install) ([]runner.Option, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var opts []runner.Option
	switch backend {
	case "inprocess":
		opts = append(opts, runner.WithBackend(inprocess.New(inprocess.WithJobsimBinary(self), inprocess.WithCylc(in))))
	case "containers":
		bin := self
		if p := os.Getenv("JOBSIM_BIN"); p != "" {
			bin = p
		}
		quietTestcontainers(slog.Default())
		bopts := []containers.Option{containers.WithJobsimBinary(bin), containers.WithCylc(in)}
		if u := os.Getenv("JOBSIM_USERLAND"); u != "" {
			// bind (the test machine's /usr) or rootfs (installed packages' files)
			bopts = append(bopts, containers.WithUserland(image.Userland(u)))
		}
		opts = append(opts, runner.WithBackend(containers.New(bopts...)))
	default:
		return nil, exitError{code: 2, err: fmt.Errorf("--backend %q: want inprocess or containers", backend)}
	}
	return append(opts, systemOptions(in, self)...), nil
}

// exitError carries the process exit status of a failed command.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// runMatrix runs the files against each cylc in turn (artifacts and JUnit
// per install, below a folder named after its version) and prints the
// matrix of verdicts. It fails when any scenario failed or errored on any
// install.
func runMatrix(cmd *cobra.Command, files []*scenario.File, paths []string, backend, artifacts, junit string, parallel int) error {
	ctx := cmd.Context()
	var cols []runner.Column
	labels := map[string]bool{}
	bad := false
	for _, p := range paths {
		in, err := cylcsys.LocateInstall(ctx, cylcsys.WithExecutable(p))
		if err != nil {
			return exitError{code: 2, err: fmt.Errorf("--cylc %s: %w", p, err)}
		}
		c, err := cylc.Locate(ctx, cylc.WithExecutable(in.Executable))
		if err != nil {
			return exitError{code: 2, err: fmt.Errorf("--cylc %s: %w", p, err)}
		}
		label, err := c.Version(ctx)
		if err != nil {
			return exitError{code: 2, err: fmt.Errorf("--cylc %s: version: %w", p, err)}
		}
		if labels[label] {
			label += " (" + p + ")"
		}
		labels[label] = true
		dir := filepath.Join(artifacts, "cylc-"+strings.Map(func(r rune) rune {
			if r == '/' || r == ' ' || r == '(' || r == ')' {
				return '_'
			}
			return r
		}, label))
		opts, err := runnerOptions(cmd, backend, in)
		if err != nil {
			return err
		}
		opts = append(opts, runner.WithArtifacts(dir), runner.WithParallel(parallel), runner.WithProgress(cmd.ErrOrStderr()))
		r, err := runner.New(opts...)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "running %d scenarios against cylc %s (%s); artifacts in %s\n", len(files), label, in.Executable, dir)
		reps := r.RunAll(ctx, files)
		if err := runner.WriteHTMLIndex(dir, reps); err != nil {
			return err
		}
		if junit != "" {
			if err := writeJUnitFile(filepath.Join(dir, filepath.Base(junit)), reps); err != nil {
				return err
			}
		}
		for _, rep := range reps {
			bad = bad || rep.Verdict == runner.Fail || rep.Verdict == runner.Error
		}
		cols = append(cols, runner.Column{Label: label, Reports: reps})
	}
	if err := runner.WriteMatrix(cmd.OutOrStdout(), cols); err != nil {
		return err
	}
	if bad {
		return exitError{code: 1, err: fmt.Errorf("not every scenario passed on every install (see %s)", artifacts)}
	}
	return nil
}

// writeJUnitFile writes the reports as JUnit XML to path.
func writeJUnitFile(path string, reps []runner.Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := runner.WriteJUnit(f, "jobsim", reps); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

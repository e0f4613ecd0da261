// Package suite is the Ginkgo suite over the scenario files in
// fixtures/scenarios: one spec per file, labelled with the file's labels
// (gate, cylc, hub, fault:fs, ...), so that
//
//	go test ./scenarios/suite -ginkgo.label-filter='gate && cylc' -ginkgo.junit-report=out/junit.xml
//
// runs exactly what `jobsim run --label-filter 'gate && cylc'` would, with
// Ginkgo's reporting. Each spec runs its scenario through the runner on the
// in-process backend and fails with the scenario's verdict and reasons;
// artifacts go to $JOBSIM_ARTIFACTS (default out/suite). JOBSIM_SHARD=K/N
// runs one shard of the files (see jobsim run --shard).
package suite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/jobsim/jobsim/backend/inprocess"
	"github.com/jobsim/jobsim/internal/testbin"
	"github.com/jobsim/jobsim/scenarios/cylcsys"
	"github.com/jobsim/jobsim/scenarios/hubsys"
	"github.com/jobsim/jobsim/scenarios/pbsbatch"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
	"github.com/jobsim/jobsim/scenarios/slurmbatch"
)

// The scenario files are loaded while the spec tree is built, so a
// malformed file fails the suite before anything starts.
var (
	repoRoot           = findRepoRoot()
	vocabulary         = scenario.MustVocabulary(cylcsys.Plugin{}, hubsys.Plugin{}, pbsbatch.Plugin{}, slurmbatch.Plugin{})
	files, loadErr     = vocabulary.LoadAll(filepath.Join(repoRoot, "fixtures", "scenarios"))
	selected, shardErr = shardFiles()
)

func findRepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "jobsim scenarios")
}

var run *runner.Runner

var _ = SynchronizedBeforeSuite(func() []byte { return nil }, func([]byte) {
	Expect(loadErr).NotTo(HaveOccurred(), "malformed scenario files")
	Expect(shardErr).NotTo(HaveOccurred())
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer bcancel()
	bin, err := testbin.Build(bctx, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred(), "building jobsim")

	artifacts := os.Getenv("JOBSIM_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(repoRoot, "out", "suite")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, _ := cylcsys.LocateInstall(ctx) // nil: Cylc scenarios skip, saying why
	var copts []cylcsys.Option
	if in != nil {
		copts = append(copts, cylcsys.WithInstall(in))
	}
	opts := []runner.Option{
		runner.WithBackend(inprocess.New(inprocess.WithJobsimBinary(bin), inprocess.WithCylc(in))),
		runner.WithSystem(cylcsys.Plugin{}.Name(), cylcsys.Factory(copts...)),
		runner.WithSystem(hubsys.Plugin{}.Name(), hubsys.Factory(hubsys.WithJobsim(bin))),
		runner.WithHostPlugin(pbsbatch.Plugin{}),
		runner.WithHostPlugin(slurmbatch.Plugin{}),
		runner.WithArtifacts(artifacts),
		runner.WithProgress(GinkgoWriter),
	}
	run, err = runner.New(opts...)
	Expect(err).NotTo(HaveOccurred())
})

// shardFiles is the files of the shard JOBSIM_SHARD=K/N names, as jobsim
// run --shard selects them (all files when it is unset).
func shardFiles() ([]*scenario.File, error) {
	s := os.Getenv("JOBSIM_SHARD")
	if s == "" {
		return files, nil
	}
	sh, err := runner.ParseShard(s)
	if err != nil {
		return nil, fmt.Errorf("JOBSIM_SHARD: %w", err)
	}
	return sh.Select(files), nil
}

var _ = Describe("scenario", func() {
	for _, f := range selected {
		It(f.Name, Label(f.Labels...), func(ctx SpecContext) {
			rep := run.Run(ctx, f)
			var detail strings.Builder
			for _, r := range rep.Results {
				fmt.Fprintf(&detail, "  %-5v %s: %s\n", r.OK, r.ID, r.Detail)
			}
			AddReportEntry("verdict", fmt.Sprintf("%s as %s on %s in %s; artifacts %s\n%s", rep.Verdict, rep.JudgedAs, rep.Version, rep.Duration.Round(time.Second), rep.Dir, detail.String()))
			switch rep.Verdict {
			case runner.Skip:
				Skip(rep.Reason)
			case runner.Pass:
			default:
				Fail(fmt.Sprintf("%s: %s\n%sartifacts: %s", rep.Verdict, rep.Reason, detail.String(), rep.Dir))
			}
		}, SpecTimeout(f.Timeout.D()+5*time.Minute))
	}
})

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/jobsim/jobsim/scenarios/cylc"
)

// `jobsim run` with two cylc installs (here the one Cylc 8.0.2, reached
// through two paths: a matrix needs no second release to be tested) runs
// the suite against each and prints one table: a row per scenario, a
// column per install; JOBSIM_CYLC=a:b does the same.
func TestRunVersionMatrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	real, err := cylc.Locate(ctx)
	if err != nil {
		t.Skipf("real Cylc not available: %v", err)
	}
	bin := buildJobsim(t)
	other := filepath.Join(t.TempDir(), "cylc")
	if err := os.WriteFile(other, []byte(fmt.Sprintf("#!/bin/sh\nexec %q \"$@\"\n", real.Path())), 0o755); err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	wf := filepath.Join(filepath.Dir(file), "..", "..", "fixtures", "workflows", "two-task")
	dir := t.TempDir()
	scen := filepath.Join(dir, "local.yaml")
	if err := os.WriteFile(scen, []byte(`name: matrix-local
timeout: 2m
topology:
  hosts: [{name: fakehpc}]
system:
  cylc: {workflow: `+wf+`}
timeline:
  - do: start
expect:
  - {id: bar-done, task: 1/bar, reaches: succeeded, within: 60s}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	art := filepath.Join(dir, "out")
	for _, how := range []struct {
		name string
		args []string
		env  []string
	}{
		{"flags", []string{"--cylc", real.Path(), "--cylc", other}, nil},
		{"env", nil, []string{cylc.EnvExecutable + "=" + real.Path() + ":" + other}},
	} {
		t.Run(how.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, append(append([]string{"run", "--artifacts", art, "--junit", filepath.Join(art, "junit.xml")}, how.args...), scen)...)
			cmd.Env = append(os.Environ(), how.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("jobsim run: %v\n%s\n%s", err, stdout.String(), stderr.String())
			}
			out := stdout.String()
			head := regexp.MustCompile(`SCENARIO\s+8\.\S+\s+8\.\S+ \(` + regexp.QuoteMeta(other) + `\)`)
			if !head.MatchString(out) || !regexp.MustCompile(`matrix-local\s+PASS\s+PASS`).MatchString(out) {
				t.Fatalf("matrix:\n%s\n%s", out, stderr.String())
			}
			cols, _ := filepath.Glob(filepath.Join(art, "cylc-8.*"))
			if len(cols) != 2 {
				t.Fatalf("artifacts folders %v, want one per install", cols)
			}
			for _, c := range cols {
				for _, f := range []string{"matrix-local/transcript.md", "index.html", "junit.xml"} {
					if _, err := os.Stat(filepath.Join(c, f)); err != nil {
						t.Errorf("artifacts of the column: %v", err)
					}
				}
			}
			if err := os.RemoveAll(art); err != nil {
				t.Fatal(err)
			}
		})
	}
}

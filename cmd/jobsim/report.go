package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/scenarios/htmlreport"
	"github.com/jobsim/jobsim/scenarios/runner"
)

func newReportCommand() *cobra.Command {
	var (
		out   string
		junit string
	)
	cmd := &cobra.Command{
		Use:   "report ARTIFACTS...",
		Short: "Draw the HTML report of runs again, and merge the artifacts of several machines into one report",
		Long: `Read the artifacts that jobsim run left (each scenario's report.json and
events.jsonl) and write one index.html over all of them, each scenario's
report.html drawn again, and optionally one JUnit file.

This is the merge step of a suite spread over several machines with
jobsim run --shard K/N: copy each machine's artifacts folder into one place
and run jobsim report over them.`,
		Example: `  # Two machines ran half of a suite each; one report for both (long run)
  jobsim run --shard 1/2 --artifacts out/shard1 fixtures/scenarios/hub/local-three-users.yaml fixtures/scenarios/hub/named-servers.yaml
  jobsim run --shard 2/2 --artifacts out/shard2 fixtures/scenarios/hub/local-three-users.yaml fixtures/scenarios/hub/named-servers.yaml
  jobsim report --out out --junit out/junit.xml out/shard1 out/shard2   # then open out/index.html`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reps, err := runner.LoadReports(args...)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			for _, r := range reps {
				if err := runner.RedrawHTML(r); err != nil {
					return err
				}
			}
			var links []htmlreport.Link
			if junit != "" {
				if err := os.MkdirAll(filepath.Dir(junit), 0o755); err != nil {
					return err
				}
				f, err := os.Create(junit)
				if err != nil {
					return err
				}
				if err := runner.WriteJUnit(f, "jobsim", reps); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				if rel, err := filepath.Rel(out, junit); err == nil {
					links = append(links, htmlreport.Link{Name: "JUnit", Href: filepath.ToSlash(rel)})
				}
			}
			if err := runner.WriteHTMLIndex(out, reps, links...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d scenarios: %s\n", len(reps), filepath.Join(out, "index.html"))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "out", "folder for index.html")
	cmd.Flags().StringVar(&junit, "junit", "", "also write one JUnit XML file for every scenario found")
	return cmd
}

package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/sim/control"
)

// otherBatchHint turns the control client's *WrongBatchError into a message
// naming the command for the batch system the host does run.
func otherBatchHint(err error) error {
	var wb *control.WrongBatchError
	if !errors.As(err, &wb) {
		return err
	}
	cmd := map[string]string{"PBS": "jobsim pbs jobs", "Slurm": "jobsim slurm jobs"}[wb.Runs]
	return fmt.Errorf("%w: list its jobs with `%s` (add --history for finished ones, -o json for JSON)", err, cmd)
}

func newSlurmCommand() *cobra.Command {
	var cf controlFlags
	cmd := &cobra.Command{
		Use:   "slurm",
		Short: "Inspect the Slurm controller of a running host",
	}
	cf.register(cmd)
	var history bool
	jobs := &cobra.Command{
		Use:   "jobs",
		Short: "List the Slurm jobs of a host (with --history, finished ones too)",
		Long: `List the jobs of the host's Slurm controller: the ones slurmctld holds, and
with --history the accounting records of finished ones too. With --output
json, the jobs as fakeslurm.Job objects (times in RFC 3339).`,
		Example: `  # Every job, finished ones too, as JSON
  jobsim slurm jobs --history -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			js, err := c.SlurmJobs(cmd.Context(), history)
			if err != nil {
				return otherBatchHint(err)
			}
			return cf.print(cmd.OutOrStdout(), js, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tNAME\tUSER\tPARTITION\tSTATE\tNODELIST\tEXIT")
				for _, j := range js {
					exit := ""
					if j.State.Finished() {
						exit = fmt.Sprintf("%d:%d", j.ExitCode, j.ExitSignal)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.User, j.Partition, j.State, j.NodeList, exit)
				}
			})
		},
	}
	jobs.Flags().BoolVarP(&history, "history", "x", false, "include finished jobs (accounting records)")
	cmd.AddCommand(jobs)
	return cmd
}

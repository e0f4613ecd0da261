package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/sim/control"
)

func newEventsCommand() *cobra.Command {
	var (
		cf     controlFlags
		since  int64
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the event history of a host or topology (ssh commands, PBS calls, job states, fault activations)",
		Long: `Show the event history: every ssh command with its exit code and timing,
every PBS call with its output, every job state change and every fault
activation, in order. With --follow, keep printing new events until Ctrl-C.
With --output json, one JSON object per line (the format of artifact files).`,
		Example: `  # The history so far, then each new event as it comes (until Ctrl-C)
  jobsim events --follow

  # The fault activations after event #120, as JSON
  jobsim events --since 120 -o json | jq 'select(.kind=="fault.activation")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			show := func(e events.Event) error {
				if cf.output == "json" {
					return enc.Encode(e)
				}
				_, err := fmt.Fprintln(out, e.String())
				return err
			}
			if follow {
				return c.StreamEvents(cmd.Context(), since, show)
			}
			evs, err := c.Events(cmd.Context(), since)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if err := show(e); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().Int64Var(&since, "since", 0, "only events after this sequence number")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream new events until interrupted")
	return cmd
}

func newPBSCommand() *cobra.Command {
	var cf controlFlags
	cmd := &cobra.Command{
		Use:   "pbs",
		Short: "Inspect or restart the PBS server of a running host",
	}
	cf.register(cmd)
	var history bool
	jobs := &cobra.Command{
		Use:   "jobs",
		Short: "List the PBS jobs of a host (with --history, finished ones too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			js, err := c.PBSJobs(cmd.Context(), history)
			if err != nil {
				return otherBatchHint(err)
			}
			return cf.print(cmd.OutOrStdout(), js, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tNAME\tUSER\tQUEUE\tSTATE\tEXEC HOST\tEXIT")
				for _, j := range js {
					exit := ""
					if j.ExitStatus != nil {
						exit = fmt.Sprint(*j.ExitStatus)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.User, j.Queue, j.State, j.ExecHost, exit)
				}
			})
		},
	}
	jobs.Flags().BoolVarP(&history, "history", "x", false, "include finished jobs the server still keeps")
	var restart control.PBSRestart
	var down time.Duration
	rs := &cobra.Command{
		Use:   "restart",
		Short: "Stop the PBS server of a host and start it again",
		Long: `Stop the PBS server and start it again after --down. While it is down every
PBS command on the host is refused as with OpenPBS's server down
("Connection refused", qstat exit 255) and no job starts.

By default the jobs survive, as with OpenPBS's qterm -t quick: running jobs
keep running and their ends are kept. With --lose-jobs the server comes back
with an empty datastore: every job and the history are gone (running scripts
killed), and clients asking about them get "Unknown Job Id".`,
		Example: `  # Away for 2 s (the default), back with an empty datastore: every job and the history gone
  jobsim pbs restart --lose-jobs

  # Once it is back (a restart while it is down is refused): away for 30 s, its jobs kept
  sleep 3; jobsim pbs restart --down 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if down <= 0 {
				// The server's zero means its default, which is not what
				// a user who typed 0s asked for.
				return fmt.Errorf("--down %v: a restarting server is down for some time; give a positive duration (default %v)", down, fakepbs.DefaultRestartDown)
			}
			restart.Down = fault.Duration(down)
			if err := c.RestartPBS(cmd.Context(), restart); err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), restart, func(tw *tabwriter.Writer) {
				fate := "kept"
				if restart.LoseJobs {
					fate = "lost"
				}
				fmt.Fprintf(tw, "PBS server down for %v; jobs %s\n", down, fate)
			})
		},
	}
	rs.Flags().DurationVar(&down, "down", fakepbs.DefaultRestartDown, "how long the server does not answer")
	rs.Flags().BoolVar(&restart.LoseJobs, "lose-jobs", false, "come back with an empty datastore (every job and the history gone)")
	cmd.AddCommand(jobs, rs)
	return cmd
}

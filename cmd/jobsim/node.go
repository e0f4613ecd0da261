package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/backend/containers/node"
)

func newNodeCommand() *cobra.Command {
	var debug bool
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a job-host container's node: a standalone host, a cluster's login node or a compute node",
		Long: `Run the fake host a jobsim container holds (package backend/containers/node): the
configuration is JSON in $JOBSIM_NODE_CONFIG, written by the containers
backend and jobsim up. It is the container's entry point, not meant to be
run by hand; use jobsim host for a host on this machine.

Roles: host (ssh, optionally PBS or Slurm running jobs here), login (ssh
and the PBS server or Slurm controller, running each job on the MoM of the
compute node it was placed on, and serving PBS on TCP port 15001 or Slurm
on 6817), compute (ssh and the MoM on port 7071).
It prints one JSON line when healthy and serves until SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if handled, code := node.Init(); handled {
				if code != 0 {
					return exitError{code: code, err: fmt.Errorf("node exited with status %d", code)}
				}
				return nil
			}
			c, err := node.FromEnv()
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return node.Run(cmd.Context(), c, cmd.OutOrStdout(), logger)
		},
	}
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level")
	return cmd
}

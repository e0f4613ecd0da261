package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "jobsim",
		Short: "Fake HPC job hosts that fail on command, and scenario suites that drive real Cylc and JupyterHub against them",
		Long: `jobsim stands up fake job hosts (an ssh server, a PBS batch system faithful
to OpenPBS, a filesystem with injectable faults) in-process or as containers,
and runs scenario files that drive the real systems under test against them.

Invoked as qsub, qstat, qdel, qsig, qhold, qrls or pbsnodes (for example
through a symlink), jobsim is the PBS client of the server named by
$JOBSIM_PBS_SERVER.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newHostCommand(), newUpCommand(), newNodeCommand(), newSweepCommand(),
		newFaultCommand(), newEventsCommand(), newPBSCommand(), newWatchCommand(),
		newRunCommand(), newUIServerCommand(),
	)
	return root
}

package main

import (
	"github.com/spf13/cobra"
)

// commandFactories holds the constructors of the top-level subcommands; each
// file of this package registers its own in an init function so that the
// command tree grows without one file that everybody edits.
var commandFactories []func() *cobra.Command

func registerCommand(f func() *cobra.Command) { commandFactories = append(commandFactories, f) }

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
	for _, f := range commandFactories {
		root.AddCommand(f())
	}
	return root
}

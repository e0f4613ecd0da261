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
through a symlink), jobsim is a PBS client. It finds its server as OpenPBS's
clients do, in the pbs.conf named by $PBS_CONF_FILE, else /etc/pbs.conf
(PBS_SERVER, with jobsim's own JOBSIM_PBS_SERVER=unix:/path or tcp:host:port
for the address), the environment winning over the file; $JOBSIM_PBS_SERVER
overrides both.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newHostCommand(), newUpCommand(), newNodeCommand(), newSweepCommand(),
		newFaultCommand(), newEventsCommand(), newPBSCommand(), newSlurmCommand(), newWatchCommand(),
		newRunCommand(), newReportCommand(), newUIServerCommand(), newAuthzServiceCommand(),
	)
	return root
}

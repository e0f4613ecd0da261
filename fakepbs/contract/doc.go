// Package contract holds the contract tests of the real clients of a PBS job
// host: Cylc's PBS job runner, JupyterHub batchspawner's PBSSpawner and
// dask-jobqueue's PBSJob. What each client runs and how it reads the
// answers is data in fixtures/pbs/clients/*.yaml; the tests drive a job
// through its whole life on the fake PBS server (queued, running, finished,
// deleted, unknown) and under the faults that matter to each client, and
// check that the client's conclusion is the one it reaches against OpenPBS.
// Cylc's own polling code (Debian's cylc-flow) is also run against the real
// PBS executables when it is installed.
package contract

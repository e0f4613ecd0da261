// Package mom runs PBS jobs of a fake cluster on the node the scheduler
// placed them on. A compute node serves the MoM endpoint (Server): it starts
// a job's script on its own real executor, keeps the job's output and exit
// status, and streams them to whoever attaches. The login node's PBS server
// runs jobs through a Dispatcher, a batch.Executor that sends each job to
// the MoM of RunSpec.Node and turns the stream back into a batch.Process.
//
// The Dispatcher also watches every node's MoM the way pbs_server watches
// its MoMs: a node that stops answering is marked down in the PBS server
// (pbsnodes shows state = down, comment "node down: ..."), and a job whose
// node stays down for node_fail_requeue ends with Exit_status -20
// (JOB_EXEC_RERUN_MS_FAIL), as OpenPBS's node_down_requeue sets it. A node
// that answers again before then gets its jobs back: the stream is resumed
// from the last byte received.
//
// The protocol is HTTP+JSON with a bearer token:
//
//	POST /v1/mom/jobs                    start a job (JobRequest) → 201
//	GET  /v1/mom/jobs/{id}/stream?out=N&err=M   NDJSON Frames from those offsets
//	POST /v1/mom/jobs/{id}/signal        {"signal": 15} → 204
//	DELETE /v1/mom/jobs/{id}             kill (if running) and forget → 204
//	GET  /v1/mom/health                  {"node": name, "jobs": n, "job_ids": [...]} → 200
package mom

import (
	"syscall"

	"github.com/jobsim/jobsim/sim/batch"
)

// JobRequest is a job as the Dispatcher sends it to a MoM: the fields of
// batch.RunSpec that cross the wire.
type JobRequest struct {
	JobID  string `json:"job_id"`
	User   string `json:"user"`
	Node   string `json:"node"`
	Script []byte `json:"script"`
	// NodeFile is the content of $PBS_NODEFILE as the server computed it
	// (one line per MPI process of each chunk).
	NodeFile string   `json:"node_file,omitempty"`
	Shell    string   `json:"shell,omitempty"`
	Env      []string `json:"env"`
	Dir      string   `json:"dir"`
}

// Frame is one line of a job's stream: output bytes, a heartbeat, or the
// job's end.
type Frame struct {
	Out  []byte      `json:"out,omitempty"`
	Err  []byte      `json:"err,omitempty"`
	Beat bool        `json:"beat,omitempty"`
	Exit *ExitStatus `json:"exit,omitempty"`
	Lost string      `json:"lost,omitempty"` // the MoM cannot report the job any more (it is shutting down)
}

// ExitStatus is how a job's script ended on its node.
type ExitStatus struct {
	Code   int            `json:"code"`
	Signal syscall.Signal `json:"signal,omitempty"`
	Usage  batch.Usage    `json:"usage"`
}

// SignalRequest is the body of POST /v1/mom/jobs/{id}/signal.
type SignalRequest struct {
	Signal syscall.Signal `json:"signal"`
}

// Health is the body of GET /v1/mom/health.
type Health struct {
	Node string `json:"node"`
	Jobs int    `json:"jobs"`
	// JobIDs are the jobs the MoM knows (running or ended, not forgotten).
	JobIDs []string `json:"job_ids,omitempty"`
}

// ExitNodeFailed is the Exit_status OpenPBS gives a job whose primary
// execution host went down (JOB_EXEC_RERUN_MS_FAIL in src/include/job.h).
const ExitNodeFailed = -20

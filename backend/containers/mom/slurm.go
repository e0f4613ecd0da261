package mom

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/sim/batch"
	"github.com/jobsim/jobsim/sim/executor"
)

// SlurmExecutor is the Dispatcher as a Slurm controller's job executor
// (fakeslurm.WithExecutor): each batch script runs on the MoM of the node
// the controller placed it on, the one slurmd's environment names
// (SLURMD_NODENAME), as slurmd runs it on its own node. The command the
// controller gives is the script file's invocation; the file lies in the
// SlurmdSpoolDir every node of the cluster shares. Attach SlurmNodes so
// that the controller learns of nodes going down (and takes their jobs
// off them) rather than the Dispatcher ending those jobs itself after
// node_fail_requeue with PBS's ExitNodeFailed.
func (d *Dispatcher) SlurmExecutor() executor.Executor { return slurmExecutor{d} }

type slurmExecutor struct{ d *Dispatcher }

func (x slurmExecutor) Start(ctx context.Context, cmd executor.Command) (executor.Process, error) {
	var node, id string
	for _, kv := range cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "SLURMD_NODENAME":
			node = v
		case "SLURM_JOB_ID":
			id = v
		}
	}
	if node == "" || id == "" {
		return nil, errors.New("mom: a Slurm batch script without SLURMD_NODENAME and SLURM_JOB_ID in its environment: no node to run it on")
	}
	p, err := x.d.Start(ctx, batch.RunSpec{
		JobID: id, User: cmd.User, Node: node, Script: []byte(cmd.Script), Shell: cmd.Shell,
		Env: cmd.Env, Dir: cmd.Dir, Stdout: cmd.Stdout, Stderr: cmd.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("mom: Slurm job %s: %w", id, err)
	}
	return slurmProc{p}, nil
}

// slurmProc is a remote job as an executor.Process.
type slurmProc struct{ p batch.Process }

func (p slurmProc) Signal(sig syscall.Signal) error { return p.p.Signal(sig) }

// Resize implements executor.Process: batch scripts have no terminal.
func (p slurmProc) Resize(executor.Window) error { return nil }

// Wait reports the script's end; a script that could not run at all
// (code -1) ends as one whose execve failed.
func (p slurmProc) Wait() executor.Status {
	st := p.p.Wait()
	if st.Code == -1 && st.Signal == 0 {
		return executor.Status{Code: 1, Err: errors.New("the job script could not be run on its node")}
	}
	return executor.Status{Code: st.Code, Signal: st.Signal, Usage: st.Usage}
}

// NotResponding is the reason slurmctld gives a node whose slurmd stopped
// answering, and the one SlurmNodes sets and clears.
const NotResponding = "Not responding"

// SlurmController is the part of a Slurm controller (*fakeslurm.Server)
// that SlurmNodes tells about nodes.
type SlurmController interface {
	Nodes(ctx context.Context) ([]fakeslurm.Node, error)
	FailNode(ctx context.Context, name, reason string) error
	ResumeNode(ctx context.Context, name string) error
}

// SlurmNodes is a Slurm controller as the Dispatcher's NodeStater: a node
// whose MoM stops answering fails as one whose slurmd does (DOWN, "Not
// responding"; its batch jobs requeued, or NODE_FAIL when they may not
// be), and returns to service when it answers again, as with
// ReturnToService=2 (a node an administrator took down or drained stays
// so). The Dispatcher declares a node down after a few missed probes
// (seconds), where slurmctld waits SlurmdTimeout (300 s by default).
func SlurmNodes(s SlurmController) NodeStater { return slurmNodes{s} }

type slurmNodes struct{ s SlurmController }

func (n slurmNodes) SetNodeState(name, state, _ string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch state {
	case "down":
		return n.s.FailNode(ctx, name, NotResponding)
	case "free":
		nodes, err := n.s.Nodes(ctx)
		if err != nil {
			return err
		}
		for _, nd := range nodes {
			if nd.Name == name && strings.HasPrefix(nd.State, "DOWN") && nd.Reason == NotResponding {
				return n.s.ResumeNode(ctx, name)
			}
		}
		return nil
	}
	return fmt.Errorf("mom: node state %q has no Slurm counterpart", state)
}

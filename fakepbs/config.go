package fakepbs

import "time"

// Config is a PBS server's site configuration as data (JSON): what a job
// host's pbs block says, carried by the container node daemon's
// configuration and mapped from the scenario format by the runner's
// backends. Options turns it into server options.
type Config struct {
	// Server is the job id suffix (default: the host name).
	Server string `json:"server,omitempty"`
	// Queues are the server's queues, the first the default (default workq).
	Queues []QueueConfig `json:"queues,omitempty"`
	// Nodes are the execution nodes (default: one named after the host).
	Nodes []NodeConfig `json:"nodes,omitempty"`
	// History keeps finished jobs (job_history_enable).
	History bool `json:"history,omitempty"`
	// NodeFailRequeue is node_fail_requeue, for servers whose nodes can
	// die (0: OpenPBS's default).
	NodeFailRequeue time.Duration `json:"node_fail_requeue,omitempty"`
}

// QueueConfig is one queue of a Config.
type QueueConfig struct {
	Name     string `json:"name"`
	Disabled bool   `json:"disabled,omitempty"`
}

// Options returns the server options c stands for.
func (c Config) Options() []Option {
	var opts []Option
	if c.Server != "" {
		opts = append(opts, WithName(c.Server))
	}
	if c.History {
		opts = append(opts, WithHistory(true, 0))
	}
	if len(c.Queues) > 0 {
		qs := make([]Queue, len(c.Queues))
		for i, q := range c.Queues {
			qs[i] = Queue{Name: q.Name, Enabled: !q.Disabled, Started: true}
		}
		opts = append(opts, WithQueues(qs...), WithDefaultQueue(qs[0].Name))
	}
	if len(c.Nodes) > 0 {
		opts = append(opts, WithNodes(c.Nodes...))
	}
	return opts
}

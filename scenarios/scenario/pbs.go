package scenario

import "github.com/jobsim/jobsim/fakepbs"

// ServerOptions maps a host's PBS block to the PBS server's options, the
// same for every backend.
func (p PBS) ServerOptions() []fakepbs.Option {
	var opts []fakepbs.Option
	if p.Server != "" {
		opts = append(opts, fakepbs.WithName(p.Server))
	}
	if p.History {
		opts = append(opts, fakepbs.WithHistory(true, 0))
	}
	if len(p.Queues) > 0 {
		qs := make([]fakepbs.Queue, len(p.Queues))
		for i, q := range p.Queues {
			qs[i] = fakepbs.Queue{Name: q.Name, Enabled: !q.Disabled, Started: true}
		}
		opts = append(opts, fakepbs.WithQueues(qs...), fakepbs.WithDefaultQueue(qs[0].Name))
	}
	if len(p.Nodes) > 0 {
		ns := make([]fakepbs.NodeConfig, len(p.Nodes))
		for i, n := range p.Nodes {
			ns[i] = fakepbs.NodeConfig{Name: n.Name, NCPUs: n.NCPUs, Mem: n.Mem}
		}
		opts = append(opts, fakepbs.WithNodes(ns...))
	}
	return opts
}

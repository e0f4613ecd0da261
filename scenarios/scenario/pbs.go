package scenario

import "github.com/jobsim/jobsim/fakepbs"

// Config maps a host's PBS block to the PBS server's configuration, the
// same for every backend.
func (p PBS) Config() fakepbs.Config {
	c := fakepbs.Config{Server: p.Server, History: p.History, NodeFailRequeue: p.NodeFailRequeue.D()}
	for _, q := range p.Queues {
		c.Queues = append(c.Queues, fakepbs.QueueConfig{Name: q.Name, Disabled: q.Disabled})
	}
	for _, n := range p.Nodes {
		c.Nodes = append(c.Nodes, fakepbs.NodeConfig{Name: n.Name, NCPUs: n.NCPUs, Mem: n.Mem})
	}
	return c
}

// ServerOptions maps a host's PBS block to the PBS server's options.
func (p PBS) ServerOptions() []fakepbs.Option { return p.Config().Options() }

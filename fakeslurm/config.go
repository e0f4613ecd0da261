package fakeslurm

import "time"

// Config is a Slurm controller's site configuration as data (JSON): what a
// job host's slurm block says, carried by the container node daemon's
// configuration and mapped from the scenario format by the runner's
// backends, as fakepbs.Config is for PBS. Options turns it into server
// options.
type Config struct {
	// Cluster is ClusterName (default: whatever the host sets).
	Cluster string `json:"cluster,omitempty"`
	// Nodes are the NodeName= lines (default: whatever the host sets).
	Nodes []NodeConfig `json:"nodes,omitempty"`
	// Partitions are the PartitionName= lines (default: "debug" over
	// every node).
	Partitions []PartitionConfig `json:"partitions,omitempty"`
	// MinJobAge is MinJobAge (0: Slurm's 300s).
	MinJobAge time.Duration `json:"min_job_age,omitempty"`
}

// Options returns the server options c stands for.
func (c Config) Options() []Option {
	var opts []Option
	if c.Cluster != "" {
		opts = append(opts, WithClusterName(c.Cluster))
	}
	if len(c.Nodes) > 0 {
		opts = append(opts, WithNodes(c.Nodes...))
	}
	if len(c.Partitions) > 0 {
		opts = append(opts, WithPartitions(c.Partitions...))
	}
	if c.MinJobAge > 0 {
		opts = append(opts, WithMinJobAge(c.MinJobAge))
	}
	return opts
}

package scenario

import (
	"slices"

	"github.com/jobsim/jobsim/fakeslurm"
)

// Slurm configures a host's Slurm controller (fakeslurm): its cluster,
// partitions and nodes, as the lines of a slurm.conf.
type Slurm struct {
	// Cluster is ClusterName (default: the host name).
	Cluster string `yaml:"cluster"`
	// Partitions default to one, "debug", over every node, MaxTime=INFINITE.
	Partitions []SlurmPartition `yaml:"partitions"`
	// Nodes default to one node named after the host, 2 CPUs, 1000 MB.
	Nodes []SlurmNode `yaml:"nodes"`
	// MinJobAge is how long a finished job stays visible to squeue and
	// scontrol (default Slurm's 300s); sacct keeps it for ever.
	MinJobAge Duration `yaml:"min_job_age"`
}

// SlurmPartition is one PartitionName= line.
type SlurmPartition struct {
	Name    string   `yaml:"name"`
	Nodes   []string `yaml:"nodes"` // default: every node
	Default bool     `yaml:"default"`
	Down    bool     `yaml:"down"`     // State=DOWN
	MaxTime Duration `yaml:"max_time"` // default INFINITE
}

// SlurmNode is one NodeName= line.
type SlurmNode struct {
	Name   string `yaml:"name"`
	CPUs   int    `yaml:"cpus"`   // default 2
	Memory int64  `yaml:"memory"` // RealMemory in MB; default 1000
}

// validate checks the block; at is its place in the file.
func (s *Slurm) validate(p positions, at []any) error {
	var nodes []string
	for j, n := range s.Nodes {
		if n.Name == "" || !nameRe.MatchString(n.Name) || n.CPUs < 0 || n.Memory < 0 {
			return p.errorf(append(at, "nodes", j), "a Slurm node needs a name (letters, digits, '.', '_', '-'), cpus >= 0 and memory >= 0")
		}
		if slices.Contains(nodes, n.Name) {
			return p.errorf(append(at, "nodes", j, "name"), "Slurm node %q is defined twice", n.Name)
		}
		nodes = append(nodes, n.Name)
	}
	var parts []string
	for j, q := range s.Partitions {
		if q.Name == "" || !nameRe.MatchString(q.Name) {
			return p.errorf(append(at, "partitions", j), "a Slurm partition needs a name (letters, digits, '.', '_', '-')")
		}
		if slices.Contains(parts, q.Name) {
			return p.errorf(append(at, "partitions", j, "name"), "Slurm partition %q is defined twice", q.Name)
		}
		parts = append(parts, q.Name)
		for k, n := range q.Nodes {
			if len(s.Nodes) > 0 && !slices.Contains(nodes, n) {
				return p.errorf(append(at, "partitions", j, "nodes", k), "partition %s: node %q is not one of the Slurm nodes (%v)", q.Name, n, nodes)
			}
		}
	}
	return nil
}

// Config maps a host's Slurm block to the controller's configuration,
// the same for every backend that carries Slurm.
func (s Slurm) Config() fakeslurm.Config {
	c := fakeslurm.Config{Cluster: s.Cluster, MinJobAge: s.MinJobAge.D()}
	for _, n := range s.Nodes {
		c.Nodes = append(c.Nodes, fakeslurm.NodeConfig{Name: n.Name, CPUs: n.CPUs, MemMB: n.Memory})
	}
	for _, q := range s.Partitions {
		c.Partitions = append(c.Partitions, fakeslurm.PartitionConfig{Name: q.Name, Nodes: q.Nodes, Default: q.Default, Down: q.Down, MaxTime: q.MaxTime.D()})
	}
	return c
}

// ServerOptions maps a host's Slurm block to the controller's options.
func (s Slurm) ServerOptions() []fakeslurm.Option { return s.Config().Options() }

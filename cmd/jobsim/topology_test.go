package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jobsim up reads a scenario file's topology, a topology: block or a
// hosts: list, and says where a file is wrong.
func TestLoadTopologyKindsAndErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, body, want, err string }{
		{"hosts list", "hosts:\n  - name: login\n    pbs: {nodes: [{name: cn1}]}\n", "login", ""},
		{"topology block", "topology:\n  hosts: [{name: fakehpc}]\n", "fakehpc", ""},
		{"scenario", "name: s\ntopology:\n  hosts: [{name: h1, executor: virtual}]\nsystem:\n  hub: {users: [alice]}\ntimeline:\n  - do: start\n", "h1", ""},
		{"unknown key", "hosts:\n  - name: login\n    cpus: 4\n", "", "unknown.yaml:3:5: unknown field \"cpus\""},
		{"a bad scenario says why", "name: s\ntopology:\n  hosts: [{name: h1}]\nsystem:\n  hub: {users: [alice]}\ntimeline:\n  - wait: {for: -1s}\n", "", "a bad scenario says why.yaml:7:17: duration \"-1s\": must not be negative"},
		{"empty", "# nothing\n", "", "empty.yaml: no topology"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".yaml")
			if c.name == "unknown key" {
				p = filepath.Join(dir, "unknown.yaml")
			}
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			topo, err := loadTopology(p)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || len(topo.Hosts) == 0 || topo.Hosts[0].Name != c.want {
				t.Fatalf("topology %+v, %v; want host %s", topo, err, c.want)
			}
		})
	}
}

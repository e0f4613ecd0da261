package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobsim/jobsim/backend/containers/mom"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakeslurm"
)

func TestConfigValidationSaysWhatIsMissing(t *testing.T) {
	ok := Config{Name: "login", Role: RoleLogin, Users: []string{"alice"}, Token: "t", PBS: &fakepbs.Config{}, Nodes: []mom.Node{{Name: "cn1", URL: "http://cn1:7071"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	slurmLogin := ok
	slurmLogin.PBS, slurmLogin.Slurm = nil, &fakeslurm.Config{}
	if err := slurmLogin.Validate(); err != nil {
		t.Errorf("a Slurm login node: %v", err)
	}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.PBS = nil }, "login node runs the PBS server"},
		{func(c *Config) { c.Nodes = nil }, "needs compute nodes"},
		{func(c *Config) { c.Role = RoleCompute }, "needs pbs_server"},
		{func(c *Config) { c.Role = "gateway" }, `role "gateway"`},
		{func(c *Config) { c.Token = "" }, "token is required"},
		{func(c *Config) { c.Users = nil }, "at least one user"},
		{func(c *Config) { c.NodeFailRequeue = "soon" }, "node_fail_requeue"},
		{func(c *Config) { c.Role, c.Slurm = RoleHost, &fakeslurm.Config{} }, "PBS and Slurm together"},
		{func(c *Config) {
			c.Role, c.PBS, c.PBSServer, c.SlurmServer = RoleCompute, nil, "login:15001", "login:6817"
		}, "one of them"},
		{func(c *Config) {
			c.Role, c.PBS, c.Slurm, c.SlurmServer = RoleCompute, nil, &fakeslurm.Config{}, "login:6817"
		}, "runs no PBS server or Slurm controller"},
	} {
		cfg := ok
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error containing %q, got %v", c.want, err)
		}
	}
}

func TestFromEnvRejectsUnknownFields(t *testing.T) {
	t.Setenv(EnvConfig, `{"name":"h","role":"host","users":["a"],"token":"t","colour":"blue"}`)
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field: %v", err)
	}
	t.Setenv(EnvConfig, "")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvConfig) {
		t.Errorf("empty config: %v", err)
	}
}

func TestAddUsersAppendsOnce(t *testing.T) {
	etc := t.TempDir()
	if err := os.WriteFile(filepath.Join(etc, "passwd"), []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "group"), []byte("root:x:0:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := addUsers(etc, []string{"alice", "bob", "root"}); err != nil {
			t.Fatal(err)
		}
	}
	pw, _ := os.ReadFile(filepath.Join(etc, "passwd"))
	gr, _ := os.ReadFile(filepath.Join(etc, "group"))
	want := "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:alice:/home/alice:/bin/bash\nbob:x:1001:1001:bob:/home/bob:/bin/bash\n"
	if string(pw) != want {
		t.Errorf("passwd:\n%s\nwant\n%s", pw, want)
	}
	if string(gr) != "root:x:0:\nalice:x:1000:\nbob:x:1001:\n" {
		t.Errorf("group:\n%s", gr)
	}
}

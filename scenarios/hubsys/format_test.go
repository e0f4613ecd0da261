package hubsys

import (
	"strings"
	"testing"
)

const hubPBS = `name: hub-pbs
topology:
  hosts: [{name: fakehpc}]
system:
  hub:
    spawner: batch-pbs
    users: [alice, bob]
    server: {slow_start: 2s}
    server_for: {bob: {never_ready: http, slow_start: 1s}}
    config: {JupyterHub.log_level: '"DEBUG"'}
timeline:
  - do: start
  - spawn: [alice]
expect:
  - {server: alice, ready: true, within: 30s}
`

func TestHubBatchPBSDefaults(t *testing.T) {
	f, err := testVocabulary.Parse("hub.yaml", []byte(hubPBS))
	if err != nil {
		t.Fatal(err)
	}
	h := ConfigOf(f)
	if h.Host != "fakehpc" {
		t.Errorf("host %q, want the only host", h.Host)
	}
	host := f.Topology.Hosts[0]
	if host.PBS == nil || strings.Join(host.Users, ",") != "alice,bob" {
		t.Errorf("host %+v: want PBS added and the hub users as host users", host)
	}
	for user, want := range map[string]string{
		"alice": "slow-start=2s",
		"bob":   "never-ready=http,slow-start=1s",
	} {
		got, err := h.ServerFaults(user)
		if err != nil || got != want {
			t.Errorf("ServerFaults(%s) = %q, %v; want %q", user, got, err, want)
		}
	}
}

func TestHubLocalNeedsNoHost(t *testing.T) {
	src := `name: hub-local
topology: {hosts: []}
system: {hub: {users: [alice]}}
timeline: [{do: start}]
`
	f, err := testVocabulary.Parse("local.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if ConfigOf(f).Spawner != SpawnerLocal {
		t.Errorf("spawner %q, want the default local", ConfigOf(f).Spawner)
	}
}

func TestHubErrors(t *testing.T) {
	for _, tc := range []struct{ name, replace, with, want string }{
		{"unknown spawner", "spawner: batch-pbs", "spawner: slurm", "hub.yaml:6:14: spawner \"slurm\": want local, local-unix, batch-pbs, batch-slurm, ssh"},
		{"unknown fault key", "slow_start: 2s", "explode: 2s", "server fault \"explode\""},
		{"bad fault value", "never_ready: http", "never_ready: maybe", "never-ready=\"maybe\""},
		{"server_for stranger", "bob: {never_ready", "eve: {never_ready", "server_for: \"eve\" is not one of the hub users"},
		{"bad config key", "JupyterHub.log_level", "log_level", "config key \"log_level\""},
		{"virtual host", "{name: fakehpc}", "{name: fakehpc, executor: virtual}", "needs executor: real"},
		{"user not on host", "{name: fakehpc}", "{name: fakehpc, users: [alice]}", "hub user \"bob\" is not a user of host fakehpc"},
		{"no users", "users: [alice, bob]", "users: []", "system.hub.users: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(hubPBS, tc.replace, tc.with, 1)
			_, err := testVocabulary.Parse("hub.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

package hubsys

import (
	"strings"
	"testing"
)

const hubNamed = `name: hub-named
topology: {hosts: []}
system:
  hub:
    users: [alice, bob]
    allow_named_servers: true
    named_server_limit_per_user: 2
timeline:
  - do: start
  - spawn: [alice, alice/lab, bob/pbs]
  - wait: {server: alice/lab, ready: true, within: 30s}
  - request: [{as: alice, server: alice/lab, path: api/status, want: 200}]
  - stop_server: [alice/lab]
  - remove_server: [alice/lab]
expect:
  - {server: bob/pbs, ready: true, within: 30s}
`

func TestHubNamedServers(t *testing.T) {
	f, err := testVocabulary.Parse("named.yaml", []byte(hubNamed))
	if err != nil {
		t.Fatal(err)
	}
	h := ConfigOf(f)
	if !h.AllowNamedServers || h.NamedServerLimitPerUser != 2 {
		t.Errorf("hub %+v: want named servers allowed, limit 2", h)
	}
	var refs []ServerRef
	spawn := f.Timeline[1].Action.(ServerAction).Servers
	for _, s := range spawn {
		refs = append(refs, MustServerRef(s))
	}
	want := []ServerRef{{User: "alice"}, {User: "alice", Name: "lab"}, {User: "bob", Name: "pbs"}}
	for i := range want {
		if refs[i] != want[i] || refs[i].String() != spawn[i] || refs[i].Named() != (want[i].Name != "") {
			t.Errorf("ref %d = %+v (%s), want %+v", i, refs[i], refs[i], want[i])
		}
	}
	if got := f.Timeline[5].Action.(ServerAction); got.Verb != "remove_server" || len(got.Servers) != 1 || got.Servers[0] != "alice/lab" {
		t.Errorf("remove_server %v", got)
	}
	if got := f.Timeline[5].Action.(ServerAction).Servers; len(got) != 1 || got[0] != "alice/lab" {
		t.Errorf("remove_server %v", got)
	}
}

// TestHubNamedServerErrors: each mistake is reported at its place in the
// file, before anything starts.
func TestHubNamedServerErrors(t *testing.T) {
	for _, tc := range []struct{ name, replace, with, want string }{
		{"named server not allowed", "    allow_named_servers: true\n    named_server_limit_per_user: 2\n", "",
			"named.yaml:8:20: step 2: spawn: alice/lab is a named server (lab of alice), but system.hub.allow_named_servers is not true"},
		{"limit without allow", "allow_named_servers: true", "allow_named_servers: false",
			"named.yaml:7:34: named_server_limit_per_user needs allow_named_servers: true"},
		{"negative limit", "limit_per_user: 2", "limit_per_user: -1",
			"named.yaml:7:34: named_server_limit_per_user -1: want 0 (no limit) or more"},
		{"set through config", "named_server_limit_per_user: 2", "config: {JupyterHub.allow_named_servers: 'True'}",
			"named.yaml:7:46: config JupyterHub.allow_named_servers: set system.hub.allow_named_servers instead"},
		{"remove the default server", "remove_server: [alice/lab]", "remove_server: [alice]",
			"named.yaml:14:21: step 6: remove_server: alice is a default server, which cannot be removed"},
		{"empty name", "spawn: [alice, alice/lab", "spawn: [alice, alice/",
			"named.yaml:10:20: step 2: spawn: server \"alice/\": the server name \"\" after the '/'"},
		{"stranger", "bob/pbs]", "eve/pbs]", "named.yaml:10:31: step 2: spawn: \"eve\" is not one of the hub users [alice bob]"},
		{"twice in a step", "spawn: [alice, alice/lab, bob/pbs]", "spawn: [alice, alice/lab, alice/lab]",
			"named.yaml:10:31: step 2: spawn: alice/lab is named twice"},
		{"condition on a stranger", "wait: {server: alice/lab", "wait: {server: eve/lab",
			"named.yaml:11:20: server condition: \"eve\" is not one of the hub users"},
		{"request to a stranger's server", "server: alice/lab, path", "server: eve/lab, path",
			"named.yaml:12:15: step 4: request 1: server: \"eve\" is not one of the hub users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(hubNamed, tc.replace, tc.with, 1)
			if src == hubNamed {
				t.Fatalf("replacing %q changed nothing", tc.replace)
			}
			_, err := testVocabulary.Parse("named.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestHubNamedServerConditionNotAllowed: a condition or expectation on a
// named server is refused when the hub runs none, even with no step
// naming one.
func TestHubNamedServerConditionNotAllowed(t *testing.T) {
	src := `name: hub-named
topology: {hosts: []}
system: {hub: {users: [alice]}}
timeline:
  - do: start
  - spawn: [alice]
expect:
  - {server: alice/lab, ready: true, within: 30s}
`
	_, err := testVocabulary.Parse("cond.yaml", []byte(src))
	want := "cond.yaml:8:14: expectation expect-1: alice/lab is a named server (lab of alice), but system.hub.allow_named_servers is not true"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to contain %q", err, want)
	}
}

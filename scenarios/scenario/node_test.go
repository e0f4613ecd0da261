package scenario_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/scenarios/pbsbatch"
)

func TestNodeStepsNameAMachineAndAnAction(t *testing.T) {
	body := strings.Replace(good, "  - do: reload\n", "  - node: {name: cn1, action: disconnect}\n  - node: {name: fakehpc, action: restart}\n  - do: reload\n", 1)
	f, err := vocab.Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if !f.HasNodeSteps() || f.Timeline[2].Node.Name != "cn1" || f.Timeline[2].Node.Action != "disconnect" {
		t.Fatalf("node step not parsed: %+v", f.Timeline[2])
	}
	if g, _ := vocab.Load(write(t, good)); g.HasNodeSteps() {
		t.Error("a timeline without node steps says it has some")
	}
	for _, c := range []struct{ step, want string }{
		{"  - node: {name: cn9, action: pause}\n", `s.yaml:16:18: step 3: node "cn9" is not a topology host or PBS node (have fakehpc, cn1)`},
		{"  - node: {name: cn1, action: reboot}\n", `s.yaml:16:31: step 3: node action "reboot": want one of disconnect, reconnect, pause, unpause, kill, restart`},
		{"  - node: {name: cn1, action: kill}\n    note: x\n", "one action per step, found note and node"},
	} {
		body := strings.Replace(good, "  - do: reload\n", c.step, 1)
		_, err := vocab.Load(write(t, body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("step %q: error %v, want %q", c.step, err, c.want)
		}
	}
}

func TestPBSStepsRestartAHostsServer(t *testing.T) {
	body := strings.Replace(good, "  - do: reload\n", "  - pbs: {action: restart, down: 10s, jobs: lost}\n  - do: reload\n", 1)
	f, err := vocab.Load(write(t, body))
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := f.Timeline[2].Action.(*pbsbatch.Step)
	if ps == nil || ps.Host != "fakehpc" || ps.Action != "restart" || ps.Down.D() != 10*time.Second || ps.Jobs != "lost" {
		t.Fatalf("pbs step not parsed (or its host not defaulted to the only PBS host): %+v", ps)
	}
	if f.HasNodeSteps() {
		t.Error("a pbs step made the scenario need a node-capable backend")
	}
	for _, c := range []struct{ step, want string }{
		{"  - pbs: {action: reboot}\n", `s.yaml:16:19: step 3: pbs: action "reboot": want one of restart`},
		{"  - pbs: {action: restart, jobs: some}\n", `step 3: pbs: jobs "some": want kept or lost`},
		{"  - pbs: {host: other, action: restart}\n", `step 3: pbs: host "other" does not run a PBS server (hosts with pbs: fakehpc)`},
		{"  - pbs: {action: restart}\n    note: x\n", "one action per step, found note and pbs"},
	} {
		body := strings.Replace(good, "  - do: reload\n", c.step, 1)
		_, err := vocab.Load(write(t, body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("step %q: error %v, want %q", c.step, err, c.want)
		}
	}
}

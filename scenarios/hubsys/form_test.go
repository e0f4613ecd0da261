package hubsys

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
)

// siteForm is the spawn form a PBS site offers: a queue, a walltime, memory.
var siteForm = []hub.FormField{
	{Name: "queue", Label: "Queue", Choices: []string{"workq", "express"}, Default: "workq"},
	{Name: "runtime", Label: "Walltime", Pattern: `[0-9]{2}:[0-5][0-9]:[0-5][0-9]`, Default: "01:00:00",
		Message: "Walltime: want HH:MM:SS"},
	{Name: "memory", Label: "Memory", Choices: []string{"1gb", "2gb", "4gb"}, Default: "1gb"},
}

// TestOptionsFormReachesPBSJob: alice logs in, fills the hub's spawn form
// and the real PBSSpawner submits her job with her answers: the queue and
// the Resource_List PBS shows. A refused answer re-renders the form with
// its message and submits nothing.
func TestOptionsFormReachesPBSJob(t *testing.T) {
	needHub(t)
	f := parse(t, `name: form
topology:
  hosts:
    - name: fakehpc
      pbs: {history: true, queues: [{name: workq}, {name: express}], nodes: [{name: cn1, ncpus: 4}]}
system:
  hub: {spawner: batch-pbs, users: [alice], start_timeout: 60s, http_timeout: 30s}
timeline: [{do: start}]
`)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := runner.Env{Dir: t.TempDir(), Log: events.NewLog(), User: "alice"}
	topo, err := hostBackend(t).Start(ctx, f.Topology, env)
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close(context.Background())
	s, err := New(ctx, f, topo, env, env.Log, WithJobsim(jobsimBin), WithOptionsForm(siteForm...))
	var skip *runner.SkipError
	if errors.As(err, &skip) {
		t.Skip(skip.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	c := s.Hub().Client()
	sess, err := c.Login(ctx, "alice", "any")
	if err != nil {
		t.Fatal(err)
	}
	page, err := sess.SpawnForm(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<select class="form-control" id="queue" name="queue">`, `<option value="express">`, `name="runtime" value="01:00:00"`} {
		if !strings.Contains(page, want) {
			t.Errorf("spawn form lacks %q", want)
		}
	}
	host, _ := topo.Host("fakehpc")
	jobs := func() int {
		js, err := host.Control().PBSJobs(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		return len(js)
	}

	_, err = sess.SubmitSpawnForm(ctx, "alice", url.Values{"queue": {"express"}, "runtime": {"half an hour"}, "memory": {"2gb"}})
	var refused *hub.FormRefusedError
	if !errors.As(err, &refused) || refused.Message != "Walltime: want HH:MM:SS" {
		t.Fatalf("a walltime the form refuses: %v, want the form's message", err)
	}
	if st, err := c.ServerStatus(ctx, "alice"); err != nil || st.Pending != "" || st.Ready {
		t.Errorf("after the refused form: %+v %v, want nothing spawning", st, err)
	}
	if n := jobs(); n != 0 {
		t.Errorf("%d jobs submitted after the refused form, want none", n)
	}

	next, err := sess.SubmitSpawnForm(ctx, "alice", url.Values{"queue": {"express"}, "runtime": {"00:30:00"}, "memory": {"2gb"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(next, "/hub/spawn-pending/alice") {
		t.Errorf("after the form the browser goes to %q, want the spawn-pending page", next)
	}
	if _, err := c.WaitReady(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	js, err := host.Control().PBSJobs(ctx, true)
	if err != nil || len(js) != 1 {
		t.Fatalf("jobs %v %v, want alice's one", js, err)
	}
	j := js[0]
	if j.Queue != "express" || j.Resources["walltime"] != "00:30:00" || !strings.Contains(j.Resources["select"], "mem=2gb") {
		t.Errorf("job %s: queue %q, Resource_List %v; want the form's express, 00:30:00, mem=2gb", j.ID, j.Queue, j.Resources)
	}
	if _, err := c.StopServer(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitStopped(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
}

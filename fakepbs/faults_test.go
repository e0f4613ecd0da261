package fakepbs_test

import (
	"context"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
)

func faultServer(t *testing.T, opts ...fakepbs.Option) (*fakepbs.Server, *fault.Set, *events.Log, afero.Fs, *clock.Virtual) {
	t.Helper()
	log := events.NewLog()
	fs := homeFS(t)
	v := clock.NewVirtual(epoch, clock.AutoAdvance())
	set := fault.NewSet(fault.WithClock(v), fault.WithRecorder(log))
	srv, _ := serverOn(t, v, append([]fakepbs.Option{fakepbs.WithRecorder(log), fakepbs.WithFS(fs),
		fakepbs.WithHistory(true, 0), fakepbs.WithFaults(set)}, opts...)...)
	return srv, set, log, fs, v
}

func addRule(t *testing.T, set *fault.Set, r fault.Rule) fault.Rule {
	t.Helper()
	r.Layer = fault.PBS
	got, err := set.Add(r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFaultVanishAtStart(t *testing.T) {
	srv, set, log, _, v := faultServer(t)
	addRule(t, set, fault.Rule{Ops: []string{"run"}, Job: "1", Effect: fault.Effect{Kind: fault.Vanish}})
	lost := submit(t, srv, fakepbs.SubmitRequest{Name: "lost", Script: []byte("sleep 10\n")})
	kept := submit(t, srv, fakepbs.SubmitRequest{Name: "kept", Script: []byte("sleep 10\n")})
	settle(t, v)
	_, err := srv.Job(context.Background(), lost.ID, true)
	wantCode(t, err, fakepbs.ErrUnknownJob, "Unknown Job Id 1.fakepbs")
	if k := job(t, srv, kept.ID); k.State != fakepbs.Finished || exitOf(k) != "0" {
		t.Fatalf("unselected job: %s %s", k.State, exitOf(k))
	}
	var gone, fired bool
	for _, e := range log.All() {
		gone = gone || e.Kind == events.PBSJobState && e.Fields["job"] == lost.ID && e.Fields["to"] == ""
		fired = fired || e.Kind == events.FaultActivate && e.Fields["job"] == lost.ID
	}
	if !gone || !fired {
		t.Fatalf("events: gone %v, fault activation %v", gone, fired)
	}
}

func TestFaultVanishRunningJob(t *testing.T) {
	srv, set, _, fs, v := faultServer(t, fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 1}))
	release := v.Hold() // the jobs stay running while the rules are added
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "victim", Script: []byte("echo hi\nsleep 3600\n")})
	if j.State != fakepbs.Running {
		t.Fatalf("state %s", j.State)
	}
	// Adding the rule is enough: the server applies it to running jobs at once.
	addRule(t, set, fault.Rule{Job: j.ID, Effect: fault.Effect{Kind: fault.Vanish}})
	_, err := srv.Job(context.Background(), j.ID, true)
	wantCode(t, err, fakepbs.ErrUnknownJob, "")
	if n := srv.Nodes(context.Background())[0]; n.State != "free" || len(n.Jobs) != 0 {
		t.Fatalf("node after the job vanished: %+v", n)
	}
	if n := srv.ApplyFaults(); n != 0 {
		t.Fatalf("ApplyFaults found %d more jobs to take hold of after the rule was applied on adding it", n)
	}
	// A rule added for a job not started yet takes it too.
	next := submit(t, srv, fakepbs.SubmitRequest{Name: "next", Script: []byte("sleep 3600\n")})
	addRule(t, set, fault.Rule{Job: next.ID, Effect: fault.Effect{Kind: fault.Vanish}})
	other := submit(t, srv, fakepbs.SubmitRequest{Name: "other", Script: []byte("sleep 1\n")})
	if _, err := srv.Job(context.Background(), next.ID, true); pbsCode(err) != fakepbs.ErrUnknownJob {
		t.Fatalf("job %s survived a vanish rule: %v", next.ID, err)
	}
	release()
	settle(t, v)
	if o := job(t, srv, other.ID); o.State != fakepbs.Finished {
		t.Fatalf("other job %s", o.State)
	}
	if _, err := fs.Stat("/home/alice/work/victim.o1"); err == nil {
		t.Fatal("a vanished job staged its output")
	}
}

func TestFaultStuckQueued(t *testing.T) {
	srv, set, _, _, v := faultServer(t)
	rule := addRule(t, set, fault.Rule{Ops: []string{"run"}, Job: "1.fakepbs", Effect: fault.Effect{Kind: fault.Stuck, State: "Q"}})
	stuck := submit(t, srv, fakepbs.SubmitRequest{Name: "stuck", Script: []byte("sleep 10\n")})
	free := submit(t, srv, fakepbs.SubmitRequest{Name: "free", Script: []byte("sleep 10\n")})
	settle(t, v)
	if s := job(t, srv, stuck.ID); s.State != fakepbs.Queued {
		t.Fatalf("stuck job: %s", s.State)
	}
	if f := job(t, srv, free.ID); f.State != fakepbs.Finished {
		t.Fatalf("other job: %s", f.State)
	}
	// Clearing the rule is enough: the job starts at once, before Remove
	// returns, with no other server event to wake the scheduler.
	release := v.Hold()
	set.Remove(rule.ID)
	if s := job(t, srv, stuck.ID); s.State != fakepbs.Running {
		t.Fatalf("right after clearing the rule: %s", s.State)
	}
	release()
	settle(t, v)
	if s := job(t, srv, stuck.ID); s.State != fakepbs.Finished || !s.Stime.Equal(epoch.Add(10*time.Second)) {
		t.Fatalf("after clearing the rule: %s started %v", s.State, s.Stime)
	}
}

func TestFaultStuckRunningAndExiting(t *testing.T) {
	srv, set, _, fs, v := faultServer(t)
	r := addRule(t, set, fault.Rule{Job: "1", Effect: fault.Effect{Kind: fault.Stuck, State: "R"}})
	e := addRule(t, set, fault.Rule{Job: "2", Effect: fault.Effect{Kind: fault.Stuck, State: "E"}})
	j1 := submit(t, srv, fakepbs.SubmitRequest{Name: "r", Script: []byte("echo done\nsleep 10\nexit 4\n")})
	j2 := submit(t, srv, fakepbs.SubmitRequest{Name: "e", Script: []byte("sleep 20\n")})
	settle(t, v)
	if g := job(t, srv, j1.ID); g.State != fakepbs.Running {
		t.Fatalf("stuck-R job %s after its script ended", g.State)
	}
	if g := job(t, srv, j2.ID); g.State != fakepbs.Exiting {
		t.Fatalf("stuck-E job %s", g.State)
	}
	if _, err := fs.Stat("/home/alice/work/r.o1"); err == nil {
		t.Fatal("stuck job staged its output")
	}
	// qdel does not get through to a job whose MOM never answers.
	if err := srv.Delete(context.Background(), "alice", j1.ID, false); err != nil {
		t.Fatal(err)
	}
	if g := job(t, srv, j1.ID); g.State != fakepbs.Running {
		t.Fatalf("stuck job after qdel: %s", g.State)
	}
	set.Remove(r.ID)
	set.Remove(e.ID)
	settle(t, v)
	g := job(t, srv, j1.ID)
	if g.State != fakepbs.Finished || exitOf(g) != "4" || !g.Obittime.Equal(epoch.Add(10*time.Second)) {
		t.Fatalf("released stuck-R job: %s Exit_status %s obittime %v", g.State, exitOf(g), g.Obittime)
	}
	if out, _ := afero.ReadFile(fs, "/home/alice/work/r.o1"); string(out) != "done\n" {
		t.Fatalf("output after release %q", out)
	}
	if g := job(t, srv, j2.ID); g.State != fakepbs.Finished {
		t.Fatalf("released stuck-E job: %s", g.State)
	}
}

func TestFaultRunEffects(t *testing.T) {
	srv, set, _, fs, v := faultServer(t)
	code := 2
	addRule(t, set, fault.Rule{Ops: []string{"run"}, Job: "1", Effect: fault.Effect{Kind: fault.Exit, ExitCode: &code, Stderr: "cannot start job\n"}})
	addRule(t, set, fault.Rule{Ops: []string{"run"}, Job: "2", Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(5 * time.Minute)}})
	failed := submit(t, srv, fakepbs.SubmitRequest{Name: "f", Script: []byte("echo never\n")})
	slow := submit(t, srv, fakepbs.SubmitRequest{Name: "s", Script: []byte("sleep 10\n")})
	settle(t, v)
	f := job(t, srv, failed.ID)
	if exitOf(f) != "2" {
		t.Fatalf("exit fault: Exit_status %s", exitOf(f))
	}
	if e, _ := afero.ReadFile(fs, "/home/alice/work/f.e1"); string(e) != "cannot start job\n" {
		t.Fatalf("exit fault stderr %q", e)
	}
	if o, _ := afero.ReadFile(fs, "/home/alice/work/f.o1"); len(o) != 0 {
		t.Fatalf("the script ran despite the exit fault: %q", o)
	}
	if s := job(t, srv, slow.ID); !s.Obittime.Equal(epoch.Add(5*time.Minute + 10*time.Second)) {
		t.Fatalf("latency fault: obittime %v", s.Obittime)
	}
}

func TestFaultHangAtStart(t *testing.T) {
	v := clock.NewVirtual(epoch, clock.AutoAdvance())
	set := fault.NewSet(fault.WithClock(v))
	srv, ex := serverOn(t, v, fakepbs.WithHistory(true, 0), fakepbs.WithFaults(set))
	rule, err := set.Add(fault.Rule{Layer: fault.PBS, Ops: []string{"run"}, Effect: fault.Effect{Kind: fault.Hang}})
	if err != nil {
		t.Fatal(err)
	}
	j := submit(t, srv, fakepbs.SubmitRequest{Name: "h", Script: []byte("sleep 10\n")})
	time.Sleep(50 * time.Millisecond)
	if got := job(t, srv, j.ID); got.State != fakepbs.Running || len(ex.specs()) != 0 {
		t.Fatalf("hung start: %s with %d scripts started", got.State, len(ex.specs()))
	}
	set.Remove(rule.ID)
	settle(t, v)
	if got := job(t, srv, j.ID); got.State != fakepbs.Finished || len(ex.specs()) != 1 {
		t.Fatalf("after the hang: %s with %d scripts started", got.State, len(ex.specs()))
	}
}

func TestFaultStuckHeldAndWaiting(t *testing.T) {
	srv, set, _, _, v := faultServer(t)
	ctx := context.Background()
	addRule(t, set, fault.Rule{Job: "1", Effect: fault.Effect{Kind: fault.Stuck, State: "H"}})
	addRule(t, set, fault.Rule{Job: "2", Effect: fault.Effect{Kind: fault.Stuck, State: "W"}})
	release := v.Hold()
	held := submit(t, srv, fakepbs.SubmitRequest{Name: "h", Hold: true, Script: []byte("sleep 10\n")})
	waiting := submit(t, srv, fakepbs.SubmitRequest{Name: "w", StartAt: epoch.Add(time.Minute), Script: []byte("sleep 10\n")})
	if err := srv.Release(ctx, "alice", held.ID, "u"); err != nil {
		t.Fatal(err)
	}
	release()
	settle(t, v)
	if g := job(t, srv, held.ID); g.State != fakepbs.Held || g.HoldTypes != "n" {
		t.Fatalf("stuck-H job after qrls: %s Hold_Types %q", g.State, g.HoldTypes)
	}
	if g := job(t, srv, waiting.ID); g.State != fakepbs.Waiting {
		t.Fatalf("stuck-W job after its start time: %s", g.State)
	}
	if n := set.Clear(fault.PBS); n != 2 {
		t.Fatalf("cleared %d rules", n)
	}
	settle(t, v)
	for _, id := range []string{held.ID, waiting.ID} {
		if g := job(t, srv, id); g.State != fakepbs.Finished || exitOf(g) != "0" {
			t.Fatalf("%s after clearing its rule: %s %s", id, g.State, exitOf(g))
		}
	}
}

// A vanish rule added while a stuck rule keeps the job takes the job.
func TestFaultVanishTakesStuckJob(t *testing.T) {
	for _, state := range []string{"Q", "R", "H"} {
		t.Run(state, func(t *testing.T) {
			srv, set, _, _, v := faultServer(t)
			addRule(t, set, fault.Rule{Job: "1", Effect: fault.Effect{Kind: fault.Stuck, State: state}})
			j := submit(t, srv, fakepbs.SubmitRequest{Name: "kept", Hold: state == "H", Script: []byte("sleep 10\n")})
			settle(t, v)
			if g := job(t, srv, j.ID); g.State != fakepbs.State(state[0]) {
				t.Fatalf("stuck job in %s, want %s", g.State, state)
			}
			addRule(t, set, fault.Rule{Job: j.ID, Effect: fault.Effect{Kind: fault.Vanish}})
			_, err := srv.Job(context.Background(), j.ID, true)
			wantCode(t, err, fakepbs.ErrUnknownJob, "")
		})
	}
}

// A rule's time window is kept as clearing is: a stuck rule lets its job go
// when its window closes, a vanish rule whose window opens later takes the
// job running then.
func TestFaultRuleWindows(t *testing.T) {
	srv, set, _, _, v := faultServer(t, fakepbs.WithNodes(fakepbs.NodeConfig{Name: "cn1", NCPUs: 2}))
	release := v.Hold() // the clock stays at the epoch until both jobs are there
	addRule(t, set, fault.Rule{Job: "1", For: fault.Duration(time.Minute), Effect: fault.Effect{Kind: fault.Stuck, State: "Q"}})
	addRule(t, set, fault.Rule{Job: "2", Start: fault.Duration(30 * time.Second), Effect: fault.Effect{Kind: fault.Vanish}})
	kept := submit(t, srv, fakepbs.SubmitRequest{Name: "kept", Script: []byte("sleep 10\n")})
	lost := submit(t, srv, fakepbs.SubmitRequest{Name: "lost", Script: []byte("sleep 3600\n")})
	release()
	settle(t, v)
	g := job(t, srv, kept.ID)
	if g.State != fakepbs.Finished || !g.Stime.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("job kept by a 1m stuck rule: %s, started %v, want finished and started at +1m", g.State, g.Stime)
	}
	if _, err := srv.Job(context.Background(), lost.ID, true); pbsCode(err) != fakepbs.ErrUnknownJob {
		t.Fatalf("job %s survived a vanish rule armed at +30s: %v", lost.ID, err)
	}
}

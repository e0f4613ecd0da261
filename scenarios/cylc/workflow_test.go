package cylc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTwoTaskWorkflowSucceeds(t *testing.T) {
	c := locateOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := newTestEnv(t, c)

	wf, err := env.Install(ctx, fixture(t, "two-task"))
	if err != nil {
		t.Fatal(err)
	}
	if wf.ID() != "two-task/run1" {
		t.Errorf("ID = %q, want two-task/run1", wf.ID())
	}
	if _, err := wf.TaskStates(ctx); err == nil {
		t.Error("TaskStates before play: want ErrNoDatabase")
	}
	start := time.Now()
	if err := wf.Play(ctx); err != nil {
		t.Fatal(err)
	}
	if wf.SchedulerPID() <= 0 {
		t.Errorf("SchedulerPID = %d after Play", wf.SchedulerPID())
	}
	snap, err := wf.WaitFor(ctx, AllTasksAre(StatusSucceeded))
	if err != nil {
		t.Fatal(err)
	}
	succeeded := time.Since(start)
	if len(snap.Tasks) != 2 {
		t.Fatalf("tasks = %s, want 1/foo and 1/bar", snap)
	}
	for _, id := range []string{"1/foo", "1/bar"} {
		task, ok := snap.Task(id)
		if !ok || task.SubmitNum != 1 {
			t.Errorf("task %s = %+v, want submit_num 1", id, task)
		}
		job, ok := snap.LatestJob(id)
		if !ok {
			t.Fatalf("no job for %s in %+v", id, snap.Jobs)
		}
		if job.SubmitStatus == nil || *job.SubmitStatus != 0 || job.RunStatus == nil || *job.RunStatus != 0 {
			t.Errorf("job %s: submit_status %v run_status %v, want 0 and 0", job.ID(), job.SubmitStatus, job.RunStatus)
		}
		if job.Platform != "localhost" || job.JobRunner != "background" || job.JobID == "" {
			t.Errorf("job %s: platform %q runner %q id %q", job.ID(), job.Platform, job.JobRunner, job.JobID)
		}
		if job.TimeRunExit.IsZero() || job.TimeRunExit.Before(job.TimeSubmit) {
			t.Errorf("job %s: times submit %s run exit %s", job.ID(), job.TimeSubmit, job.TimeRunExit)
		}
	}
	name := map[string]string{"1/foo": "foo", "1/bar": "bar"}
	for id, task := range name {
		out := readFile(t, filepath.Join(wf.JobLogDir("1", task, 1), "job.out"))
		contains(t, id+" job.out", out, "hello from "+task)
	}
	// bar only ran after foo succeeded (foo => bar).
	foo, _ := snap.LatestJob("1/foo")
	bar, _ := snap.LatestJob("1/bar")
	if bar.TimeSubmit.Before(foo.TimeRunExit) {
		t.Errorf("bar submitted at %s before foo finished at %s", bar.TimeSubmit, foo.TimeRunExit)
	}
	// A finished workflow shuts down by itself.
	if err := wf.WaitStopped(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("two-task local workflow: play -> all succeeded %s, -> scheduler exited %s",
		succeeded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	contains(t, "scheduler log", readFile(t, wf.SchedulerLog()), "INFO - DONE")
}

func TestFailingTaskIsFailed(t *testing.T) {
	c := locateOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := newTestEnv(t, c)
	wf := playedWorkflow(t, ctx, env, "failing")

	snap, err := wf.WaitFor(ctx, func(s Snapshot) bool {
		return TaskIs("1/bad", StatusFailed)(s) && TaskIs("1/good", StatusSucceeded)(s)
	})
	if err != nil {
		t.Fatal(err)
	}
	job, _ := snap.LatestJob("1/bad")
	if job.SubmitStatus == nil || *job.SubmitStatus != 0 {
		t.Errorf("1/bad submit_status = %v, want 0 (submitted fine)", job.SubmitStatus)
	}
	if job.RunStatus == nil || *job.RunStatus != 1 {
		t.Errorf("1/bad run_status = %v, want 1 (failed)", job.RunStatus)
	}
	contains(t, "1/bad job.err", readFile(t, filepath.Join(wf.JobLogDir("1", "bad", 0), "job.err")), "about to fail")
	if err := wf.Stop(ctx, StopNow); err != nil {
		t.Fatal(err)
	}
	if wf.Running() {
		t.Error("scheduler still running after Stop")
	}
}

// Pause, hold, trigger, reload and release on one running workflow.
func TestSchedulerControl(t *testing.T) {
	c := locateOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env := newTestEnv(t, c)
	wf := playedWorkflow(t, ctx, env, "control", "--pause")

	t.Run("paused submits nothing", func(t *testing.T) {
		snap, err := wf.WaitFor(ctx, func(s Snapshot) bool { return s.Paused() && len(s.Tasks) > 0 })
		if err != nil {
			t.Fatal(err)
		}
		// A running scheduler submits a waiting task within a second or
		// two; paused, it must not.
		time.Sleep(3 * time.Second)
		if snap, err = wf.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		if len(snap.Jobs) != 0 || !TaskIs("1/foo", StatusWaiting)(snap) {
			t.Fatalf("paused workflow: states %s, jobs %+v; want 1/foo waiting and no jobs", snap, snap.Jobs)
		}
	})

	t.Run("held task waits after resume", func(t *testing.T) {
		if err := wf.Hold(ctx, "1/bar"); err != nil {
			t.Fatal(err)
		}
		if err := wf.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		snap, err := wf.WaitFor(ctx, func(s Snapshot) bool {
			return !s.Paused() && TaskIs("1/foo", StatusSucceeded)(s) && TaskIs("1/bar", StatusWaiting)(s)
		})
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := snap.Task("1/bar"); !s.Held {
			t.Errorf("1/bar = %+v, want held", s)
		}
		time.Sleep(3 * time.Second)
		if snap, err = wf.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := snap.LatestJob("1/bar"); ok || !TaskIs("1/bar", StatusWaiting)(snap) {
			t.Fatalf("held 1/bar was submitted: %s", snap)
		}
	})

	t.Run("trigger reruns a succeeded task", func(t *testing.T) {
		if err := wf.Trigger(ctx, "1/foo"); err != nil {
			t.Fatal(err)
		}
		snap, err := wf.WaitFor(ctx, func(s Snapshot) bool {
			j, ok := s.LatestJob("1/foo")
			return ok && j.SubmitNum == 2 && j.RunStatus != nil
		})
		if err != nil {
			t.Fatal(err)
		}
		j, _ := snap.LatestJob("1/foo")
		if !j.ManualSubmit || *j.RunStatus != 0 {
			t.Errorf("triggered job %s: manual %v run_status %d", j.ID(), j.ManualSubmit, *j.RunStatus)
		}
		if _, err := os.Stat(filepath.Join(wf.JobLogDir("1", "foo", 2), "job.out")); err != nil {
			t.Errorf("second job's log: %v", err)
		}
	})

	t.Run("reload then release runs the new definition", func(t *testing.T) {
		flow := readFile(t, wf.FlowFile())
		if !strings.Contains(flow, "bar version 1") {
			t.Fatalf("installed flow.cylc lacks the version line:\n%s", flow)
		}
		if err := os.WriteFile(wf.FlowFile(), []byte(strings.Replace(flow, "bar version 1", "bar version 2", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := wf.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := wf.WaitFor(ctx, func(Snapshot) bool {
			log, _ := os.ReadFile(wf.SchedulerLog())
			return strings.Contains(string(log), "Reload completed")
		}); err != nil {
			t.Fatal(err)
		}
		// The hold survives the reload.
		time.Sleep(2 * time.Second)
		snap, err := wf.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if bar, _ := snap.Task("1/bar"); !bar.Held || bar.Status != StatusWaiting {
			t.Errorf("after reload 1/bar = %+v, want waiting and held", bar)
		}
		if err := wf.Release(ctx, "1/bar"); err != nil {
			t.Fatal(err)
		}
		if _, err := wf.WaitFor(ctx, TaskIs("1/bar", StatusSucceeded)); err != nil {
			t.Fatal(err)
		}
		contains(t, "1/bar job.out", readFile(t, filepath.Join(wf.JobLogDir("1", "bar", 1), "job.out")), "bar version 2")
	})

	if err := wf.WaitStopped(ctx); err != nil {
		t.Errorf("completed workflow did not shut down: %v", err)
	}
}

// sleeperRunning plays the "long" workflow in a new Env and waits until
// its sleeper task runs; ctx ends with the test, or after 3 minutes.
func sleeperRunning(t *testing.T) (context.Context, *Env, *Workflow) {
	t.Helper()
	c := locateOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	env := newTestEnv(t, c)
	wf := playedWorkflow(t, ctx, env, "long")
	if _, err := wf.WaitFor(ctx, TaskIs("1/sleeper", StatusRunning)); err != nil {
		t.Fatal(err)
	}
	return ctx, env, wf
}

// cylc stop --now orphans a running job; Close must still leave nothing.
func TestStopNowAndCleanup(t *testing.T) {
	ctx, env, wf := sleeperRunning(t)
	start := time.Now()
	if err := wf.Stop(ctx, StopNow); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop --now: scheduler gone after %s", time.Since(start).Round(time.Millisecond))
	if wf.Running() {
		t.Fatal("scheduler running after Stop returned")
	}
	contains(t, "scheduler log", readFile(t, wf.SchedulerLog()), "Orphaned task jobs")
	procs, err := env.Processes()
	if err != nil {
		t.Fatal(err)
	}
	orphan := false
	for _, p := range procs {
		if strings.Contains(p.Command, filepath.Join(wf.JobLogDir("1", "sleeper", 1), "job")) {
			orphan = true
		}
	}
	if !orphan {
		t.Errorf("expected the orphaned job among the Env's processes, got %+v", procs)
	}
	if err := env.Close(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoProcesses(t, env)
}

// A test that fails half way leaves a running scheduler and job behind;
// the cleanup alone must end them.
func TestCloseKillsRunningWorkflow(t *testing.T) {
	ctx, env, wf := sleeperRunning(t)
	if !wf.Running() {
		t.Fatal("scheduler not running")
	}
	start := time.Now()
	if err := env.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close of a running workflow took %s", time.Since(start).Round(time.Millisecond))
	assertNoProcesses(t, env)
	if err := wf.Play(ctx); err == nil {
		t.Error("Play on a closed Env succeeded")
	}
}

func TestTaskIDValidation(t *testing.T) {
	w := &Workflow{id: "x/run1"}
	for _, bad := range []string{"foo", "1/", "/foo", "1/foo/01", "1/ foo"} {
		if _, err := w.taskArgs("trigger", []string{bad}); err == nil {
			t.Errorf("task id %q accepted", bad)
		}
	}
	if _, err := w.taskArgs("trigger", nil); err == nil {
		t.Error("no task ids accepted")
	}
	args, err := w.taskArgs("trigger", []string{"1/foo", "2/*"})
	if err != nil || strings.Join(args, " ") != "x/run1//1/foo x/run1//2/*" {
		t.Errorf("taskArgs = %v, %v", args, err)
	}
}

// BenchmarkTwoTaskWorkflow measures install + play + all succeeded +
// scheduler exit of the two-task workflow on the local background runner.
func BenchmarkTwoTaskWorkflow(b *testing.B) {
	c := locateOrSkip(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	env, err := c.NewEnv(ctx, b.TempDir(), WithGlobalConfig(fastGlobal))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = env.Close(context.Background()) })
	src := fixture(b, "two-task")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wf, err := env.Install(ctx, src)
		if err != nil {
			b.Fatal(err)
		}
		if err := wf.Play(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := wf.WaitFor(ctx, AllTasksAre(StatusSucceeded)); err != nil {
			b.Fatal(err)
		}
		if err := wf.WaitStopped(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

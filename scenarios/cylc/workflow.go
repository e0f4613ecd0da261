package cylc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Workflow is one installed workflow run in an Env (id such as
// "two-task/run1"). Its methods run the real `cylc` commands against it.
type Workflow struct {
	env    *Env
	id     string
	runDir string

	mu     sync.Mutex
	pid    int  // scheduler pid, once played
	played bool // Play succeeded at least once
}

// ID is the workflow id Cylc knows it by, e.g. "two-task/run1".
func (w *Workflow) ID() string { return w.id }

// Env is the environment the workflow lives in.
func (w *Workflow) Env() *Env { return w.env }

// RunDir is the run directory, Home()/cylc-run/<id>.
func (w *Workflow) RunDir() string { return w.runDir }

// DBPath is the public workflow database, log/db.
func (w *Workflow) DBPath() string { return filepath.Join(w.runDir, "log", "db") }

// SchedulerLog is the current scheduler log, log/scheduler/log.
func (w *Workflow) SchedulerLog() string {
	return filepath.Join(w.runDir, "log", "scheduler", "log")
}

// FlowFile is the installed flow.cylc; edit it, then Reload.
func (w *Workflow) FlowFile() string { return filepath.Join(w.runDir, "flow.cylc") }

// ContactFile is .service/contact, present while the scheduler runs.
func (w *Workflow) ContactFile() string { return filepath.Join(w.runDir, ".service", "contact") }

// JobLogDir is the job log directory of one submission on the scheduler
// side, log/job/<cycle>/<task>/<NN>; submitNum <= 0 gives the "NN" link to
// the latest. For remote platforms job.out/job.err/job.status stay on the
// job host unless `retrieve job logs` is set.
func (w *Workflow) JobLogDir(cycle, task string, submitNum int) string {
	nn := "NN"
	if submitNum > 0 {
		nn = fmt.Sprintf("%02d", submitNum)
	}
	return filepath.Join(w.runDir, "log", "job", cycle, task, nn)
}

// run runs `cylc <sub> args...` and wraps a failure with the workflow id.
func (w *Workflow) run(ctx context.Context, sub string, args ...string) (Result, error) {
	res, err := w.env.Run(ctx, append([]string{sub}, args...)...)
	if err != nil {
		return res, fmt.Errorf("workflow %s: %s: %w", w.id, sub, err)
	}
	return res, nil
}

var pidRE = regexp.MustCompile(`(?m)PID=(\d+)\s*$`)

// Play starts the scheduler detached (`cylc play <id> [args]`, e.g.
// "--pause", "--hold-after=1") and records its pid. It returns once Cylc
// has daemonized; use WaitFor to see progress.
func (w *Workflow) Play(ctx context.Context, args ...string) error {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return fmt.Errorf("workflow %s: play: argument %q is not an option", w.id, a)
		}
	}
	if err := w.env.checkOpen(); err != nil {
		return fmt.Errorf("workflow %s: play: %w", w.id, err)
	}
	res, err := w.run(ctx, "play", append([]string{w.id}, args...)...)
	if err != nil {
		return err
	}
	pid := 0
	if m := pidRE.FindStringSubmatch(res.Stdout); m != nil {
		pid, _ = strconv.Atoi(m[1])
	}
	if pid == 0 {
		contact, err := w.Contact()
		if err != nil {
			return fmt.Errorf("workflow %s: play: no PID in output %q and %w", w.id, res.Stdout, err)
		}
		pid, _ = strconv.Atoi(contact["CYLC_WORKFLOW_PID"])
	}
	w.mu.Lock()
	w.pid, w.played = pid, true
	w.mu.Unlock()
	w.env.logger.Info("cylc workflow playing", "id", w.id, "pid", pid)
	return nil
}

// Contact reads .service/contact (KEY=VALUE lines); it exists only while
// the scheduler runs.
func (w *Workflow) Contact() (map[string]string, error) {
	f, err := os.Open(w.ContactFile())
	if err != nil {
		return nil, fmt.Errorf("workflow %s: contact file: %w", w.id, err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}

// SchedulerPID is the pid of the scheduler started by Play (0 before).
func (w *Workflow) SchedulerPID() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pid
}

// Running tells whether the scheduler process started by Play is alive.
func (w *Workflow) Running() bool {
	return processAlive(w.SchedulerPID(), w.env.marker)
}

// taskArgs turns "1/foo" style task ids into "<id>//1/foo".
func (w *Workflow) taskArgs(sub string, tasks []string) ([]string, error) {
	if len(tasks) == 0 {
		return nil, fmt.Errorf("workflow %s: %s: no tasks given (want ids like 1/foo)", w.id, sub)
	}
	out := make([]string, len(tasks))
	for i, t := range tasks {
		cycle, name, ok := strings.Cut(t, "/")
		if !ok || cycle == "" || name == "" || strings.ContainsAny(t, " \t\n") || strings.Contains(name, "/") {
			return nil, fmt.Errorf("workflow %s: %s: task id %q: want <cycle>/<task>, e.g. 1/foo", w.id, sub, t)
		}
		out[i] = w.id + "//" + t
	}
	return out, nil
}

func (w *Workflow) taskCommand(ctx context.Context, sub string, tasks []string, opts ...string) error {
	args, err := w.taskArgs(sub, tasks)
	if err != nil {
		return err
	}
	_, err = w.run(ctx, sub, append(opts, args...)...)
	return err
}

// Reload makes the scheduler re-read the installed flow.cylc (`cylc reload`).
func (w *Workflow) Reload(ctx context.Context) error {
	_, err := w.run(ctx, "reload", w.id)
	return err
}

// Trigger manually triggers tasks, e.g. Trigger(ctx, "1/foo").
func (w *Workflow) Trigger(ctx context.Context, tasks ...string) error {
	return w.taskCommand(ctx, "trigger", tasks)
}

// Poll asks the scheduler to poll the tasks' jobs now.
func (w *Workflow) Poll(ctx context.Context, tasks ...string) error {
	return w.taskCommand(ctx, "poll", tasks)
}

// Kill asks the scheduler to kill the tasks' jobs.
func (w *Workflow) Kill(ctx context.Context, tasks ...string) error {
	return w.taskCommand(ctx, "kill", tasks)
}

// Hold holds tasks (also ones not yet spawned): they are not submitted
// until released.
func (w *Workflow) Hold(ctx context.Context, tasks ...string) error {
	return w.taskCommand(ctx, "hold", tasks)
}

// Release releases held tasks.
func (w *Workflow) Release(ctx context.Context, tasks ...string) error {
	return w.taskCommand(ctx, "release", tasks)
}

// Pause stops the scheduler from submitting jobs (`cylc pause`).
func (w *Workflow) Pause(ctx context.Context) error {
	_, err := w.run(ctx, "pause", w.id)
	return err
}

// Resume resumes a paused workflow. Cylc 8.0 has no `cylc resume`:
// `cylc play` on a running workflow resumes it.
func (w *Workflow) Resume(ctx context.Context) error {
	_, err := w.run(ctx, "play", w.id)
	return err
}

// StopMode selects how `cylc stop` ends the workflow.
type StopMode int

const (
	// StopClean (`cylc stop`) waits for active tasks to finish.
	StopClean StopMode = iota
	// StopNow (`cylc stop --now`) stops without waiting for active tasks
	// (they are orphaned), but finishes job polls/kills in progress.
	StopNow
	// StopNowNow (`cylc stop --now --now`) stops immediately.
	StopNowNow
	// StopKill (`cylc stop --kill`) kills active tasks, then stops.
	StopKill
)

func (m StopMode) args() ([]string, error) {
	switch m {
	case StopClean:
		return nil, nil
	case StopNow:
		return []string{"--now"}, nil
	case StopNowNow:
		return []string{"--now", "--now"}, nil
	case StopKill:
		return []string{"--kill"}, nil
	}
	return nil, fmt.Errorf("unknown stop mode %d", int(m))
}

// Stop asks the scheduler to stop, then waits until its process is gone.
// The wait is bounded by ctx and, if ctx has no deadline, by the command
// timeout (WithCommandTimeout). It does not kill anything; Close does.
func (w *Workflow) Stop(ctx context.Context, mode StopMode) error {
	opts, err := mode.args()
	if err != nil {
		return fmt.Errorf("workflow %s: stop: %w", w.id, err)
	}
	if _, err := w.run(ctx, "stop", append(opts, w.id)...); err != nil {
		w.mu.Lock()
		played := w.played
		w.mu.Unlock()
		if played && !w.Running() {
			return nil // it stopped by itself meanwhile
		}
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.env.cylc.commandTimeout)
		defer cancel()
	}
	return w.WaitStopped(ctx)
}

// WaitStopped waits until the scheduler process started by Play is gone.
func (w *Workflow) WaitStopped(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for w.Running() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("workflow %s: scheduler pid %d still running: %w; log tail: %s",
				w.id, w.SchedulerPID(), ctx.Err(), w.LogTail(5))
		case <-tick.C:
		}
	}
	return nil
}

// LogTail returns the last n lines of the scheduler log, joined with " | "
// (for error messages); "" if there is none.
func (w *Workflow) LogTail(n int) string {
	data, err := os.ReadFile(w.SchedulerLog())
	if err != nil {
		return ""
	}
	return lastLines(string(data), n)
}

// Close makes sure the scheduler is gone: `cylc stop --now --now` with a
// bounded wait, then SIGKILL. Orphaned jobs are left to Env.Close's sweep.
func (w *Workflow) Close(ctx context.Context) error {
	if !w.Running() {
		return nil
	}
	stopCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := w.Stop(stopCtx, StopNowNow)
	cancel()
	if err == nil {
		return nil
	}
	pid := w.SchedulerPID()
	w.env.logger.Warn("cylc scheduler did not stop, killing it", "id", w.id, "pid", pid, "err", err)
	if kerr := syscall.Kill(pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
		return fmt.Errorf("workflow %s: kill scheduler pid %d: %w (after stop failed: %v)", w.id, pid, kerr, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return w.WaitStopped(waitCtx)
}

package cylc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite" for the workflow database
)

// Task statuses as Cylc 8 writes them to task_states.status.
const (
	StatusWaiting      = "waiting"
	StatusPreparing    = "preparing"
	StatusSubmitted    = "submitted"
	StatusRunning      = "running"
	StatusSucceeded    = "succeeded"
	StatusFailed       = "failed"
	StatusSubmitFailed = "submit-failed"
	StatusExpired      = "expired"
)

// ErrNoDatabase reports that the workflow database does not exist yet
// (the workflow has not been played).
var ErrNoDatabase = errors.New("workflow database does not exist yet")

// TaskState is one row of task_states, plus the held flag of task_pool.
type TaskState struct {
	Cycle     string
	Name      string
	Status    string
	SubmitNum int
	FlowNums  string // e.g. "[1]"
	Held      bool   // task_pool.is_held; only tasks in the pool can be held
	Updated   time.Time
}

// ID is "<cycle>/<name>", e.g. "1/foo".
func (t TaskState) ID() string { return t.Cycle + "/" + t.Name }

// Job is one row of task_jobs: one submission of a task.
type Job struct {
	Cycle        string
	Name         string
	SubmitNum    int
	TryNum       int
	ManualSubmit bool
	// SubmitStatus is 0 for a successful submission, 1 for a failed one,
	// nil while unknown. RunStatus likewise for the run (0 succeeded,
	// 1 failed).
	SubmitStatus   *int
	RunStatus      *int
	RunSignal      string
	Platform       string
	JobRunner      string
	JobID          string
	TimeSubmit     time.Time
	TimeSubmitExit time.Time
	TimeRun        time.Time
	TimeRunExit    time.Time
}

// ID is "<cycle>/<name>/<NN>", e.g. "1/foo/01".
func (j Job) ID() string { return fmt.Sprintf("%s/%s/%02d", j.Cycle, j.Name, j.SubmitNum) }

// TaskID is "<cycle>/<name>".
func (j Job) TaskID() string { return j.Cycle + "/" + j.Name }

// Snapshot is the workflow's state read in one database transaction.
type Snapshot struct {
	Tasks  []TaskState       // ordered by cycle, name
	Jobs   []Job             // ordered by cycle, name, submit number
	Params map[string]string // workflow_params, e.g. "is_paused": "1"
	// Running tells whether the scheduler process was alive right after
	// the read.
	Running bool
}

// Task finds a task by id ("1/foo").
func (s Snapshot) Task(id string) (TaskState, bool) {
	for _, t := range s.Tasks {
		if t.ID() == id {
			return t, true
		}
	}
	return TaskState{}, false
}

// LatestJob is the highest submission of a task ("1/foo").
func (s Snapshot) LatestJob(taskID string) (Job, bool) {
	var out Job
	found := false
	for _, j := range s.Jobs {
		if j.TaskID() == taskID && (!found || j.SubmitNum > out.SubmitNum) {
			out, found = j, true
		}
	}
	return out, found
}

// Paused reports the is_paused workflow parameter.
func (s Snapshot) Paused() bool { return s.Params["is_paused"] == "1" }

// String summarises the task states, e.g. "1/foo=succeeded#1 1/bar=waiting#0(held)".
func (s Snapshot) String() string {
	if len(s.Tasks) == 0 {
		return "(no tasks)"
	}
	parts := make([]string, len(s.Tasks))
	for i, t := range s.Tasks {
		parts[i] = fmt.Sprintf("%s=%s#%d", t.ID(), t.Status, t.SubmitNum)
		if t.Held {
			parts[i] += "(held)"
		}
	}
	return strings.Join(parts, " ")
}

// TaskIs is a WaitFor predicate: task id ("1/foo") has one of statuses.
func TaskIs(id string, statuses ...string) func(Snapshot) bool {
	return func(s Snapshot) bool {
		t, ok := s.Task(id)
		if !ok {
			return false
		}
		for _, st := range statuses {
			if t.Status == st {
				return true
			}
		}
		return false
	}
}

// AllTasksAre is a WaitFor predicate: there are tasks and each has one of
// statuses.
func AllTasksAre(statuses ...string) func(Snapshot) bool {
	return func(s Snapshot) bool {
		if len(s.Tasks) == 0 {
			return false
		}
		for _, t := range s.Tasks {
			if !TaskIs(t.ID(), statuses...)(s) {
				return false
			}
		}
		return true
	}
}

func (w *Workflow) openDB() (*sql.DB, error) {
	path := w.DBPath()
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("workflow %s: %s: %w", w.id, path, ErrNoDatabase)
		}
		return nil, fmt.Errorf("workflow %s: %w", w.id, err)
	}
	// Read-only; wait for the scheduler's write locks instead of failing.
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("workflow %s: open %s: %w", w.id, path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Snapshot reads task states, jobs and workflow parameters from log/db in
// one read transaction.
func (w *Workflow) Snapshot(ctx context.Context) (Snapshot, error) {
	db, err := w.openDB()
	if err != nil {
		return Snapshot{}, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Snapshot{}, fmt.Errorf("workflow %s: read %s: %w", w.id, w.DBPath(), err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	var s Snapshot
	if s.Tasks, err = readTasks(ctx, tx); err != nil {
		return Snapshot{}, fmt.Errorf("workflow %s: task_states in %s: %w", w.id, w.DBPath(), err)
	}
	if s.Jobs, err = readJobs(ctx, tx); err != nil {
		return Snapshot{}, fmt.Errorf("workflow %s: task_jobs in %s: %w", w.id, w.DBPath(), err)
	}
	if s.Params, err = readParams(ctx, tx); err != nil {
		return Snapshot{}, fmt.Errorf("workflow %s: workflow_params in %s: %w", w.id, w.DBPath(), err)
	}
	s.Running = w.Running()
	return s, nil
}

// TaskStates reads task_states (with task_pool's held flag) from log/db.
func (w *Workflow) TaskStates(ctx context.Context) ([]TaskState, error) {
	s, err := w.Snapshot(ctx)
	return s.Tasks, err
}

// Jobs reads task_jobs from log/db.
func (w *Workflow) Jobs(ctx context.Context) ([]Job, error) {
	s, err := w.Snapshot(ctx)
	return s.Jobs, err
}

func readTasks(ctx context.Context, tx *sql.Tx) ([]TaskState, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT s.cycle, s.name, COALESCE(s.status, ''), COALESCE(s.submit_num, 0),
		       COALESCE(s.flow_nums, ''), COALESCE(s.time_updated, ''),
		       COALESCE(p.is_held, 0)
		FROM task_states s
		LEFT JOIN task_pool p
		  ON p.cycle = s.cycle AND p.name = s.name AND p.flow_nums = s.flow_nums
		ORDER BY s.cycle, s.name, s.flow_nums`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TaskState
	for rows.Next() {
		var t TaskState
		var updated string
		var held int
		if err := rows.Scan(&t.Cycle, &t.Name, &t.Status, &t.SubmitNum, &t.FlowNums, &updated, &held); err != nil {
			return nil, err
		}
		t.Updated = parseCylcTime(updated)
		t.Held = held != 0
		out = append(out, t)
	}
	return out, rows.Err()
}

func readJobs(ctx context.Context, tx *sql.Tx) ([]Job, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT cycle, name, submit_num, COALESCE(try_num, 0), COALESCE(is_manual_submit, 0),
		       submit_status, run_status, COALESCE(run_signal, ''),
		       COALESCE(platform_name, ''), COALESCE(job_runner_name, ''), COALESCE(job_id, ''),
		       COALESCE(time_submit, ''), COALESCE(time_submit_exit, ''),
		       COALESCE(time_run, ''), COALESCE(time_run_exit, '')
		FROM task_jobs ORDER BY cycle, name, submit_num`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var manual int
		var submitStatus, runStatus sql.NullInt64
		var ts, tse, tr, tre string
		if err := rows.Scan(&j.Cycle, &j.Name, &j.SubmitNum, &j.TryNum, &manual,
			&submitStatus, &runStatus, &j.RunSignal, &j.Platform, &j.JobRunner, &j.JobID,
			&ts, &tse, &tr, &tre); err != nil {
			return nil, err
		}
		j.ManualSubmit = manual != 0
		if submitStatus.Valid {
			v := int(submitStatus.Int64)
			j.SubmitStatus = &v
		}
		if runStatus.Valid {
			v := int(runStatus.Int64)
			j.RunStatus = &v
		}
		j.TimeSubmit, j.TimeSubmitExit = parseCylcTime(ts), parseCylcTime(tse)
		j.TimeRun, j.TimeRunExit = parseCylcTime(tr), parseCylcTime(tre)
		out = append(out, j)
	}
	return out, rows.Err()
}

func readParams(ctx context.Context, tx *sql.Tx) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT key, COALESCE(value, '') FROM workflow_params`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// parseCylcTime reads Cylc's database times ("2026-11-26T03:01:40Z", or
// with a numeric offset); anything else gives the zero time.
func parseCylcTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// WaitFor reads the database every poll interval until pred holds, and
// returns the snapshot that satisfied it. It fails when ctx ends, or when
// the scheduler (after Play) has exited and a final read still does not
// satisfy pred; the error then quotes the last states and the log tail.
// Transient read errors (no database yet, tables being created, locks)
// are retried.
func (w *Workflow) WaitFor(ctx context.Context, pred func(Snapshot) bool) (Snapshot, error) {
	tick := time.NewTicker(w.env.pollInterval)
	defer tick.Stop()
	var last Snapshot
	var lastErr error
	for {
		w.mu.Lock()
		played := w.played
		w.mu.Unlock()
		s, err := w.Snapshot(ctx)
		if err == nil {
			last, lastErr = s, nil
			if pred(s) {
				return s, nil
			}
			if played && !s.Running {
				// The scheduler may have written its last rows as it exited.
				if s2, err := w.Snapshot(ctx); err == nil {
					if pred(s2) {
						return s2, nil
					}
					last = s2
				}
				return last, fmt.Errorf("workflow %s: scheduler exited before the condition held; states: %s; log tail: %s",
					w.id, last, w.LogTail(8))
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("workflow %s: condition not met: %v; states: %s", w.id, ctx.Err(), last)
			if lastErr != nil {
				msg += fmt.Sprintf("; last read error: %v", lastErr)
			}
			return last, fmt.Errorf("%s; log tail: %s: %w", msg, w.LogTail(8), ctx.Err())
		case <-tick.C:
		}
	}
}

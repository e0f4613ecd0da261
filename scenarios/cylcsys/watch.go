package cylcsys

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/cylc"
)

// taskObs is what the watcher last saw of one task.
type taskObs struct {
	state     string
	submitNum int
	jobID     string
	platform  string
	held      bool
}

// watcher turns the workflow database into cylc.task events and the
// scheduler log into cylc.log events. poll may be called from any
// goroutine; each change is recorded exactly once.
type watcher struct {
	wf       *cylc.Workflow
	log      *events.Log
	platform string // default platform for events of tasks with no job yet

	pollMu   sync.Mutex // one read-and-record at a time, so changes are recorded in order
	mu       sync.Mutex
	tasks    map[string]taskObs
	changed  time.Time
	pid      int
	ran      bool // the scheduler was seen running (or started)
	exited   bool
	logTail  logTailer
	finished bool
	// entries are the first lines of the scheduler log entries seen so
	// far (all levels), so an action can wait for its command to be
	// actioned.
	entries []string
}

func newWatcher(wf *cylc.Workflow, log *events.Log, platform string) *watcher {
	return &watcher{wf: wf, log: log, platform: platform, tasks: map[string]taskObs{}, changed: time.Now(),
		logTail: logTailer{path: wf.SchedulerLog()}}
}

func (w *watcher) schedulerStarted(pid int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := map[string]any{"state": "started", "pid": pid, "workflow": w.wf.ID()}
	what := "started"
	if w.ran {
		f["restart"], what = true, "restarted"
	}
	w.pid, w.ran, w.exited = pid, true, false
	w.log.Record(events.Event{Kind: SchedulerEvent, Msg: fmt.Sprintf("scheduler of %s %s (pid %d)", w.wf.ID(), what, pid), Fields: f})
}

func (w *watcher) everRan() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ran
}

func (w *watcher) lastChange() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// run polls until ctx ends.
func (w *watcher) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads the database and the scheduler log once, records what
// changed, and returns the current task states and whether the scheduler
// runs. A database that cannot be read yet (not created, locked) leaves the
// last known states.
func (w *watcher) poll(ctx context.Context) (map[string]taskObs, bool) {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	snap, err := w.wf.Snapshot(ctx)
	w.mu.Lock()
	defer w.mu.Unlock()
	running := w.wf.Running()
	if err == nil {
		w.observe(snap)
		running = snap.Running
	}
	w.readLog(false)
	if w.ran && !running && !w.exited {
		w.exited = true
		w.readLog(true)
		tail := w.wf.LogTail(6)
		w.log.Record(events.Event{Kind: SchedulerEvent, Msg: fmt.Sprintf("scheduler of %s exited", w.wf.ID()),
			Fields: map[string]any{"state": "exited", "pid": w.pid, "workflow": w.wf.ID(), "log_tail": tail}})
	}
	out := make(map[string]taskObs, len(w.tasks))
	for k, v := range w.tasks {
		out[k] = v
	}
	return out, running
}

// finish flushes the last scheduler log entry.
func (w *watcher) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.finished {
		w.finished = true
		w.readLog(true)
	}
}

// observe records the task changes between the last snapshot and snap.
// Called with w.mu held.
func (w *watcher) observe(snap cylc.Snapshot) {
	for _, ch := range diffTasks(w.tasks, currentTasks(snap, w.platform)) {
		w.tasks[ch.id] = ch.now
		w.changed = time.Now()
		w.log.Record(ch.event())
	}
}

// currentTasks collapses the snapshot to one observation per task id (a
// task may have rows for several flows: the latest update wins).
func currentTasks(snap cylc.Snapshot, platform string) map[string]taskObs {
	latest := map[string]cylc.TaskState{}
	for _, t := range snap.Tasks {
		prev, ok := latest[t.ID()]
		if !ok || t.Updated.After(prev.Updated) || (t.Updated.Equal(prev.Updated) && t.SubmitNum > prev.SubmitNum) {
			latest[t.ID()] = t
		}
	}
	out := make(map[string]taskObs, len(latest))
	for id, t := range latest {
		o := taskObs{state: t.Status, submitNum: t.SubmitNum, held: t.Held, platform: platform}
		for _, j := range snap.Jobs {
			if j.TaskID() == id && j.SubmitNum == t.SubmitNum {
				o.jobID = j.JobID
				if j.Platform != "" {
					o.platform = j.Platform
				}
			}
		}
		out[id] = o
	}
	return out
}

// change is one task's transition.
type change struct {
	id       string
	was, now taskObs
	first    bool
}

// diffTasks lists the tasks whose state, submit number, job id or hold
// changed, in id order (the order of one database read is otherwise
// meaningless).
func diffTasks(before, now map[string]taskObs) []change {
	var out []change
	for id, o := range now {
		b, seen := before[id]
		if seen && b == o {
			continue
		}
		out = append(out, change{id: id, was: b, now: o, first: !seen})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// event is the cylc.task event of a change, e.g. "1/foo preparing →
// submitted (job 3.fakehpc)".
func (c change) event() events.Event {
	msg := c.id + " "
	if c.first {
		msg += "→ " + c.now.state
	} else {
		msg += c.was.state + " → " + c.now.state
	}
	var notes []string
	if c.now.jobID != "" {
		notes = append(notes, "job "+c.now.jobID)
	}
	if !c.first && c.now.submitNum != c.was.submitNum {
		notes = append(notes, "submit "+strconv.Itoa(c.now.submitNum))
	}
	if c.now.held != c.was.held {
		if c.now.held {
			notes = append(notes, "held")
		} else if !c.first {
			notes = append(notes, "released")
		}
	}
	if len(notes) > 0 {
		msg += " (" + strings.Join(notes, ", ") + ")"
	}
	f := map[string]any{"task": c.id, "state": c.now.state, "submit_num": c.now.submitNum, "platform": c.now.platform}
	if c.now.jobID != "" {
		f["job_id"] = c.now.jobID
	}
	if c.now.held {
		f["held"] = true
	}
	if !c.first {
		f["from"] = c.was.state
	}
	return events.Event{Kind: TaskState, Msg: msg, Fields: f}
}

// logTailer reads the scheduler log as it grows and yields its entries
// (a timestamped line plus its indented continuation lines).
type logTailer struct {
	path    string
	offset  int64
	partial []byte      // an incomplete last line
	entry   []string    // the entry being assembled
	file    os.FileInfo // the file last read, to see a new one replace it
}

var logEntryRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) - `)

// progressRE picks the INFO entries that mark the scheduler's progress with
// a job host, which an incident's reader looks for between the states:
// remote init and file install, a submission, commands actioned, reloads,
// restarts and stops (the "progress" field of their cylc.log events).
var progressRE = regexp.MustCompile(`remote init|file install|REMOTE INIT|submitted to |Command (succeeded|actioned|failed)|^\[command\]|[Rr]eload|Run: \(re\)start|Workflow shutting down|DONE`)

// readLog records the INFO, WARNING, ERROR and CRITICAL entries appended
// since the last call. An entry is complete when the next one starts; flush
// also emits the last. Called with w.mu held.
func (w *watcher) readLog(flush bool) {
	for _, e := range w.logTail.read(flush) {
		w.entries = append(w.entries, e[0])
		m := logEntryRE.FindStringSubmatch(e[0])
		if m == nil {
			continue
		}
		level := m[1]
		if level == "DEBUG" {
			continue
		}
		first := strings.TrimSpace(e[0][len(m[0]):])
		if len(first) > 240 {
			first = first[:240] + "…"
		}
		f := map[string]any{"level": level, "text": strings.Join(e, "\n")}
		if level == "INFO" && progressRE.MatchString(first) {
			f["progress"] = true
		}
		w.log.Record(events.Event{Kind: LogEvent, Msg: level + " " + first, Fields: f})
	}
}

// read returns the entries completed since the last call.
func (t *logTailer) read(flush bool) [][]string {
	var out [][]string
	f, err := os.Open(t.path)
	if err == nil {
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			if t.file != nil && !os.SameFile(t.file, st) || st.Size() < t.offset {
				// A new log file replaced the old (a restart's log, to
				// which the log link now points).
				if len(t.entry) > 0 {
					out = append(out, t.entry)
					t.entry = nil
				}
				t.offset, t.partial = 0, nil
			}
			t.file = st
		}
		if _, err := f.Seek(t.offset, io.SeekStart); err == nil {
			data, _ := io.ReadAll(io.LimitReader(f, 4<<20))
			t.offset += int64(len(data))
			data = append(t.partial, data...)
			cut := bytes.LastIndexByte(data, '\n')
			t.partial = append([]byte(nil), data[cut+1:]...)
			sc := bufio.NewScanner(bytes.NewReader(data[:cut+1]))
			sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				if logEntryRE.MatchString(line) {
					if len(t.entry) > 0 {
						out = append(out, t.entry)
					}
					t.entry = []string{line}
				} else if len(t.entry) > 0 {
					t.entry = append(t.entry, line)
				}
			}
		}
	}
	if flush && len(t.entry) > 0 {
		out = append(out, t.entry)
		t.entry = nil
	}
	return out
}

// logMark is how many scheduler log entries have been seen.
func (w *watcher) logMark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.entries)
}

// logFind returns the first entry after mark that matches re.
func (w *watcher) logFind(mark int, re *regexp.Regexp) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.entries[min(mark, len(w.entries)):] {
		if re.MatchString(e) {
			return e, true
		}
	}
	return "", false
}

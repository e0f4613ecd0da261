package cli

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
)

// fakeBackend is a small in-memory fakepbs.Backend for the front end's own
// tests: jobs stay where the test puts them (no scheduler), so every output
// can be set up exactly. Integration tests use the real fakepbs server.
type fakeBackend struct {
	mu      sync.Mutex
	info    fakepbs.ServerInfo
	queues  []fakepbs.Queue
	nodes   []fakepbs.Node
	jobs    []*fakepbs.Job
	seq     int
	now     func() time.Time
	submits []fakepbs.SubmitRequest
}

func newFake() *fakeBackend {
	return &fakeBackend{
		info:   fakepbs.ServerInfo{Name: "pbs", Host: "pbs", Version: "22.05.11", DefaultQueue: "workq", HistoryEnable: true},
		queues: []fakepbs.Queue{{Name: "workq", Enabled: true, Started: true}},
		seq:    0,
		now:    func() time.Time { return time.Date(2024, 3, 14, 16, 57, 24, 0, time.UTC) },
	}
}

func (f *fakeBackend) Info(context.Context) fakepbs.ServerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info
}

func (f *fakeBackend) Submit(_ context.Context, req fakepbs.SubmitRequest) (fakepbs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := req.Queue
	if q == "" {
		q = f.info.DefaultQueue
	}
	found := false
	for _, qu := range f.queues {
		found = found || qu.Name == q
	}
	if !found {
		return fakepbs.Job{}, &fakepbs.Error{Code: fakepbs.ErrUnknownQueue, Text: "Unknown queue"}
	}
	f.submits = append(f.submits, req)
	f.seq++
	id := strconv.Itoa(f.seq)
	if req.Array != "" {
		id += "[]"
	}
	id += "." + f.info.Name
	now := f.now()
	res := map[string]string{"ncpus": "1", "nodect": "1", "place": "pack", "select": "1:ncpus=1"}
	for k, v := range req.Resources {
		res[k] = v
	}
	out := req.OutputPath
	if out == "" {
		out = req.SubmitHost + ":" + path.Join(req.WorkDir, req.Name+".o"+strconv.Itoa(f.seq))
	}
	errp := req.ErrorPath
	if errp == "" {
		errp = req.SubmitHost + ":" + path.Join(req.WorkDir, req.Name+".e"+strconv.Itoa(f.seq))
	}
	j := &fakepbs.Job{
		ID: id, Seq: f.seq, Name: req.Name, Owner: req.Owner + "@" + req.SubmitHost, User: req.Owner,
		Queue: q, State: fakepbs.Queued, HoldTypes: "n", Resources: res, OutputPath: out, ErrorPath: errp,
		Join: req.Join, Variables: req.Variables, DependOn: req.DependOn, Ctime: now, Mtime: now, Qtime: now, Etime: now,
		SubmitArgs: strings.Join(req.Args, " "), SubmitHost: req.SubmitHost, Account: req.Account, Array: req.Array,
	}
	if req.Hold {
		j.State, j.HoldTypes, j.Etime = fakepbs.Held, "u", time.Time{}
	}
	f.jobs = append(f.jobs, j)
	return *j, nil
}

// find returns the job with id (full or bare sequence number).
func (f *fakeBackend) find(id string) *fakepbs.Job {
	seq, _, _ := strings.Cut(id, ".")
	for _, j := range f.jobs {
		if j.ID == id || (!strings.Contains(id, ".") && strings.HasPrefix(j.ID, seq+".")) {
			return j
		}
	}
	return nil
}

func unknown(id string) error {
	return &fakepbs.Error{Code: fakepbs.ErrUnknownJob, Text: "Unknown Job Id", JobID: id}
}

func (f *fakeBackend) Job(_ context.Context, id string, history bool) (fakepbs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.find(id)
	if j == nil {
		return fakepbs.Job{}, unknown(id)
	}
	if j.State == fakepbs.Finished {
		if !f.info.HistoryEnable {
			return fakepbs.Job{}, unknown(id)
		}
		if !history {
			return fakepbs.Job{}, &fakepbs.Error{Code: fakepbs.ErrJobFinished, Text: "Job has finished", JobID: id}
		}
	}
	return *j, nil
}

func (f *fakeBackend) Jobs(_ context.Context, history bool) []fakepbs.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakepbs.Job
	for _, j := range f.jobs {
		if j.State == fakepbs.Finished && !(history && f.info.HistoryEnable) {
			continue
		}
		out = append(out, *j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out
}

func (f *fakeBackend) Delete(_ context.Context, user, id string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.find(id)
	if j == nil || (j.State == fakepbs.Finished && !f.info.HistoryEnable) {
		return unknown(id)
	}
	if j.State == fakepbs.Finished {
		return &fakepbs.Error{Code: fakepbs.ErrJobFinished, Text: "Job has finished", JobID: id}
	}
	if j.User != user && user != "root" {
		return &fakepbs.Error{Code: fakepbs.ErrPermission, Text: "Unauthorized Request ", JobID: id}
	}
	j.State = fakepbs.Finished
	if j.Stime.IsZero() {
		j.Substate = 91
	} else {
		st := 271
		j.ExitStatus = &st
	}
	return nil
}

func (f *fakeBackend) Signal(_ context.Context, user, id, sig string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.find(id)
	if j == nil || j.State == fakepbs.Finished {
		return unknown(id)
	}
	switch sig {
	case "suspend":
		if j.State != fakepbs.Running {
			return &fakepbs.Error{Code: fakepbs.ErrBadState, Text: "Request invalid for state of job", JobID: id}
		}
		j.State = fakepbs.Suspended
	case "resume":
		if j.State != fakepbs.Suspended {
			return &fakepbs.Error{Code: fakepbs.ErrBadState, Text: "Request invalid for state of job", JobID: id}
		}
		j.State = fakepbs.Running
	default:
		s := strings.TrimPrefix(sig, "SIG")
		if _, err := strconv.Atoi(s); err != nil && !map[string]bool{"TERM": true, "KILL": true, "HUP": true, "INT": true, "USR1": true, "USR2": true}[s] {
			return &fakepbs.Error{Code: fakepbs.ErrUnknownSignal, Text: "Unknown/illegal signal name", JobID: id}
		}
		if j.State != fakepbs.Running {
			return &fakepbs.Error{Code: fakepbs.ErrBadState, Text: "Request invalid for state of job", JobID: id}
		}
	}
	return nil
}

func (f *fakeBackend) Hold(_ context.Context, user, id, types string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.find(id)
	if j == nil || j.State == fakepbs.Finished {
		return unknown(id)
	}
	j.HoldTypes = types
	if j.State == fakepbs.Queued {
		j.State = fakepbs.Held
	}
	return nil
}

func (f *fakeBackend) Release(_ context.Context, user, id, types string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.find(id)
	if j == nil || j.State == fakepbs.Finished {
		return unknown(id)
	}
	j.HoldTypes = "n"
	if j.State == fakepbs.Held {
		j.State = fakepbs.Queued
	}
	return nil
}

func (f *fakeBackend) Down() bool { return false }

func (f *fakeBackend) Restart(context.Context, fakepbs.RestartOptions) error {
	return errors.New("fakeBackend: no restart")
}

func (f *fakeBackend) Nodes(context.Context) []fakepbs.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakepbs.Node(nil), f.nodes...)
}

func (f *fakeBackend) Queues(context.Context) []fakepbs.Queue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakepbs.Queue(nil), f.queues...)
}

// add stores a job exactly as given (for golden tests).
func (f *fakeBackend) add(j fakepbs.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j.Seq == 0 {
		seq, _, _ := strings.Cut(j.ID, ".")
		seq, _, _ = strings.Cut(seq, "[")
		j.Seq, _ = strconv.Atoi(seq)
	}
	if j.Seq > f.seq {
		f.seq = j.Seq
	}
	f.jobs = append(f.jobs, &j)
}

// run starts a job on node.
func (f *fakeBackend) run(id, node string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.find(id)
	j.State = fakepbs.Running
	j.Substate = 0
	j.ExecHost = node + "/0"
	j.ExecVnode = fmt.Sprintf("(%s:ncpus=1)", node)
	j.Stime = f.now()
	j.RunCount = 1
	j.SessionID = 4242
	j.ResourcesUsed = map[string]string{"cput": "00:00:00", "walltime": "00:00:00", "ncpus": "1"}
}

// finish ends a job with an exit status.
func (f *fakeBackend) finish(id string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.find(id)
	j.State = fakepbs.Finished
	j.ExitStatus = &status
	j.Obittime = f.now()
}

// fakeJob is a queued job of alice.
func fakeJob(id string) fakepbs.Job {
	return fakepbs.Job{ID: id, Name: "j", Owner: "alice@h", User: "alice", Queue: "workq", State: fakepbs.Queued}
}

package mom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/internal/httpx"
	"github.com/jobsim/jobsim/sim/batch"
)

// maxOutput bounds the output a MoM keeps per job stream (stdout, stderr);
// more is dropped with a note, as a full spool would.
const maxOutput = 64 << 20

// maxJobRequest bounds the body of a job start (script, environment): a
// larger one is answered 413.
const maxJobRequest = 64 << 20

// beatEvery is how often a stream sends a heartbeat while nothing happens.
const beatEvery = time.Second

// DefaultSpool is where a MoM writes a job's script ($PBS_HOME/mom_priv/jobs).
const DefaultSpool = "/var/spool/pbs/mom_priv/jobs"

// Server is the MoM endpoint of a compute node. Create it with NewServer,
// serve it as an http.Handler, and Close it to kill the jobs it runs.
type Server struct {
	node   string
	token  string
	spool  string
	exec   batch.Executor
	rec    events.Recorder
	log    *slog.Logger
	mux    http.Handler
	life   context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	jobs   map[string]*momJob
	closed bool
	wg     sync.WaitGroup
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithRecorder records job starts and ends on the node (kind pbs.mom).
func WithRecorder(r events.Recorder) ServerOption { return func(s *Server) { s.rec = r } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.log = l } }

// WithSpool sets where job scripts are written (default DefaultSpool).
func WithSpool(dir string) ServerOption { return func(s *Server) { s.spool = dir } }

// EventMom is the event kind of a MoM's job starts and ends.
const EventMom events.Kind = "pbs.mom"

// NewServer returns the MoM of node, running jobs on exec (a real executor
// adapted with executor.ForBatch). token protects every request.
func NewServer(node, token string, exec batch.Executor, opts ...ServerOption) (*Server, error) {
	if token == "" {
		return nil, errors.New("mom: a token is required")
	}
	if exec == nil {
		return nil, errors.New("mom: an executor is required")
	}
	s := &Server{node: node, token: token, spool: DefaultSpool, exec: exec, rec: events.Discard{}, log: slog.New(slog.DiscardHandler), jobs: map[string]*momJob{}}
	for _, o := range opts {
		o(s)
	}
	s.life, s.cancel = context.WithCancel(context.Background())
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/mom/jobs", s.start)
	m.HandleFunc("GET /v1/mom/jobs/{id}/stream", s.stream)
	m.HandleFunc("POST /v1/mom/jobs/{id}/signal", s.signal)
	m.HandleFunc("DELETE /v1/mom/jobs/{id}", s.forget)
	m.HandleFunc("GET /v1/mom/health", s.health)
	s.mux = httpx.Bearer(token, "jobsim mom", m)
	return s, nil
}

// ServeHTTP checks the token and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close kills every job and waits for them to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// momJob is one job on this node.
type momJob struct {
	id     string
	proc   batch.Process
	cancel context.CancelFunc

	mu       sync.Mutex
	signaled bool // a signal came through the MoM (qdel, qsig, walltime)
	out      []byte
	err      []byte
	dropped  bool
	exit     *ExitStatus
	changed  chan struct{} // closed and replaced whenever something is appended or the job ends
}

func (j *momJob) notify() {
	close(j.changed)
	j.changed = make(chan struct{})
}

// sink is the io.Writer of one of a job's streams.
type sink struct {
	j      *momJob
	stderr bool
}

func (w sink) Write(p []byte) (int, error) {
	j := w.j
	j.mu.Lock()
	defer j.mu.Unlock()
	buf := &j.out
	if w.stderr {
		buf = &j.err
	}
	room := maxOutput - len(*buf)
	switch {
	case room <= 0:
		j.dropped = true
	case len(p) > room:
		*buf = append(*buf, p[:room]...)
		j.dropped = true
	default:
		*buf = append(*buf, p...)
	}
	j.notify()
	return len(p), nil
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	if !httpx.ReadJSON(w, r, maxJobRequest, "decode job", &req) {
		return
	}
	if req.JobID == "" || req.User == "" {
		httpError(w, http.StatusBadRequest, "a job needs job_id and user")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "mom of %s is shutting down", s.node)
		return
	}
	if _, dup := s.jobs[req.JobID]; dup {
		s.mu.Unlock()
		httpError(w, http.StatusConflict, "job %s already runs on %s", req.JobID, s.node)
		return
	}
	j := &momJob{id: req.JobID, changed: make(chan struct{})}
	s.jobs[req.JobID] = j
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(s.life)
	j.cancel = cancel
	files, scriptPath := s.prepare(req)
	proc, err := s.exec.Start(ctx, batch.RunSpec{
		JobID: req.JobID, User: req.User, Node: req.Node, Script: req.Script, ScriptPath: scriptPath, Shell: req.Shell,
		Env: req.Env, Dir: req.Dir, Stdout: sink{j: j}, Stderr: sink{j: j, stderr: true},
	})
	if err != nil {
		cleanup(files)
		cancel()
		s.mu.Lock()
		delete(s.jobs, req.JobID)
		s.mu.Unlock()
		httpError(w, http.StatusInternalServerError, "start job %s on %s: %v", req.JobID, s.node, err)
		return
	}
	j.proc = proc
	s.rec.Record(events.Event{Kind: EventMom, Msg: fmt.Sprintf("job %s started on %s for %s", req.JobID, s.node, req.User),
		Fields: map[string]any{"job": req.JobID, "node": s.node, "user": req.User, "state": "started"}})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		st := proc.Wait()
		cleanup(files)
		j.mu.Lock()
		signaled := j.signaled
		j.mu.Unlock()
		if st.Signal != 0 && !signaled {
			// Killed from outside the MoM: most likely the node itself is
			// going down (docker kill takes everything at once). A MoM
			// that is still alive a moment later reports it; one that is
			// gone never does, as on a crashed node.
			select {
			case <-time.After(time.Second):
			case <-s.life.Done():
				return
			}
		}
		j.mu.Lock()
		j.exit = &ExitStatus{Code: st.Code, Signal: st.Signal, Usage: st.Usage}
		j.notify()
		j.mu.Unlock()
		s.rec.Record(events.Event{Kind: EventMom, Msg: fmt.Sprintf("job %s ended on %s: code %d signal %d", req.JobID, s.node, st.Code, st.Signal),
			Fields: map[string]any{"job": req.JobID, "node": s.node, "state": "ended", "code": st.Code, "signal": int(st.Signal)}})
	}()
	httpx.WriteJSON(w, http.StatusCreated, map[string]string{"job_id": req.JobID, "node": s.node})
}

// prepare writes what a MoM puts on the execution host before a job runs:
// the script file (so that $0 is a path, as Cylc's job scripts need), the
// node file named by PBS_NODEFILE and the job's TMPDIR. It returns what to
// remove at the job's end and the script's path ("" when it could not be
// written: the text runs instead).
func (s *Server) prepare(req JobRequest) (files []string, scriptPath string) {
	if err := os.MkdirAll(s.spool, 0o755); err == nil {
		p := filepath.Join(s.spool, filepath.Base(req.JobID)+".SC")
		if err := os.WriteFile(p, req.Script, 0o700); err == nil {
			scriptPath = p
			files = append(files, p)
		} else {
			s.log.Warn("mom: cannot write the job script; running its text", "job", req.JobID, "err", err)
		}
	}
	env := map[string]string{}
	for _, kv := range req.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if nf := env["PBS_NODEFILE"]; filepath.IsAbs(nf) {
		if _, err := os.Stat(nf); errors.Is(err, os.ErrNotExist) && os.MkdirAll(filepath.Dir(nf), 0o755) == nil {
			lines := req.NodeFile
			if lines == "" {
				lines = s.node + "\n" // a server that sent none: this node, once
			}
			if os.WriteFile(nf, []byte(lines), 0o644) == nil {
				files = append(files, nf)
			}
		}
	}
	if td := env["TMPDIR"]; filepath.IsAbs(td) && strings.Contains(filepath.Base(td), req.JobID) {
		if err := os.MkdirAll(td, 0o700); err == nil {
			files = append(files, td)
		}
	}
	return files, scriptPath
}

func cleanup(files []string) {
	for _, f := range files {
		_ = os.RemoveAll(f)
	}
}

func (s *Server) job(id string) *momJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id]
}

func offset(r *http.Request, name string) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// stream sends the job's output from the given offsets, heartbeats while
// it runs, and its exit status at the end.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	j := s.job(r.PathValue("id"))
	if j == nil {
		httpError(w, http.StatusNotFound, "no job %s on %s", r.PathValue("id"), s.node)
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	outAt, errAt := offset(r, "out"), offset(r, "err")
	beat := time.NewTicker(beatEvery)
	defer beat.Stop()
	for {
		j.mu.Lock()
		var f Frame
		if outAt < len(j.out) {
			f.Out = bytes.Clone(j.out[outAt:])
			outAt = len(j.out)
		}
		if errAt < len(j.err) {
			f.Err = bytes.Clone(j.err[errAt:])
			errAt = len(j.err)
		}
		exit := j.exit
		changed := j.changed
		j.mu.Unlock()
		if f.Out != nil || f.Err != nil {
			if enc.Encode(f) != nil {
				return
			}
		}
		if exit != nil {
			_ = enc.Encode(Frame{Exit: exit})
			if fl != nil {
				fl.Flush()
			}
			return
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-changed:
		case <-beat.C:
			if enc.Encode(Frame{Beat: true}) != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.life.Done():
			_ = enc.Encode(Frame{Lost: "mom of " + s.node + " is shutting down"})
			return
		}
	}
}

func (s *Server) signal(w http.ResponseWriter, r *http.Request) {
	j := s.job(r.PathValue("id"))
	if j == nil {
		httpError(w, http.StatusNotFound, "no job %s on %s", r.PathValue("id"), s.node)
		return
	}
	var req SignalRequest
	if !httpx.ReadJSON(w, r, 4096, `want {"signal": N}`, &req) {
		return
	}
	if req.Signal <= 0 || req.Signal > 64 {
		httpError(w, http.StatusBadRequest, `want {"signal": N} with N from 1 to 64, got %d`, req.Signal)
		return
	}
	j.mu.Lock()
	j.signaled = true
	j.mu.Unlock()
	if err := j.proc.Signal(req.Signal); err != nil {
		httpError(w, http.StatusConflict, "signal job %s: %v", j.id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) forget(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j := s.jobs[r.PathValue("id")]
	delete(s.jobs, r.PathValue("id"))
	s.mu.Unlock()
	if j == nil {
		httpError(w, http.StatusNotFound, "no job %s on %s", r.PathValue("id"), s.node)
		return
	}
	j.cancel()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.jobs))
	for id := range s.jobs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	httpx.WriteJSON(w, http.StatusOK, Health{Node: s.node, Jobs: len(ids), JobIDs: ids})
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	httpx.WriteError(w, code, format, args...)
}

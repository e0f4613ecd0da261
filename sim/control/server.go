// Package control is the HTTP+JSON control API of a fake job host (or a
// topology of them) and the Go client that mirrors it one to one: health
// that proves ssh and PBS answer, fault rules, the event history and its
// live stream, PBS jobs and the clock. Every request needs the bearer token.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/httpx"
	"github.com/jobsim/jobsim/sim/batch"
)

// DefaultMaxBody bounds a request body (a fault rule, an event): a larger
// one is answered 413 and not kept.
const DefaultMaxBody = 256 << 10

// Check is one readiness probe: it returns nil when the part it checks
// really answers (an ssh command ran, qstat answered), not merely when a
// port is open.
type Check func(ctx context.Context) error

// Health is the body of GET /v1/health.
type Health struct {
	OK     bool                   `json:"ok"`
	Host   string                 `json:"host"`
	Checks map[string]CheckResult `json:"checks"`
	Notes  []string               `json:"notes,omitempty"` // e.g. "FUSE unavailable: ..."
}

// CheckResult is the outcome of one Check.
type CheckResult struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	Duration string `json:"duration"`
}

// ClockState is the body of GET /v1/clock.
type ClockState struct {
	Now     time.Time `json:"now"`
	Virtual bool      `json:"virtual"`
}

// Server serves the control API of one host or topology.
type Server struct {
	name    string
	token   string
	faults  *fault.Set
	log     *events.Log
	batch   batch.System
	clock   clock.Clock
	checks  map[string]Check
	notes   []string
	logger  *slog.Logger
	maxBody int64
	handler http.Handler
}

// Option configures a Server.
type Option func(*Server)

// WithName names the host in health answers.
func WithName(name string) Option { return func(s *Server) { s.name = name } }

// WithFaults serves the rule set.
func WithFaults(f *fault.Set) Option { return func(s *Server) { s.faults = f } }

// WithEvents serves the history.
func WithEvents(l *events.Log) Option { return func(s *Server) { s.log = l } }

// WithBatch serves the host's batch system: its jobs and its restarts
// (under /v1/pbs/ for a PBS server).
func WithBatch(b batch.System) Option { return func(s *Server) { s.batch = b } }

// WithClock serves the clock; a *clock.Virtual can be advanced through the API.
func WithClock(c clock.Clock) Option { return func(s *Server) { s.clock = c } }

// WithCheck adds a named readiness probe to health.
func WithCheck(name string, c Check) Option { return func(s *Server) { s.checks[name] = c } }

// WithNote adds a line health reports, such as why a feature is off.
func WithNote(note string) Option { return func(s *Server) { s.notes = append(s.notes, note) } }

// WithMaxBody bounds request bodies to n bytes (default DefaultMaxBody).
func WithMaxBody(n int64) Option { return func(s *Server) { s.maxBody = n } }

// WithLogger logs requests that fail.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// NewServer returns the API handler. token must not be empty.
func NewServer(token string, opts ...Option) (*Server, error) {
	if token == "" {
		return nil, errors.New("control: a token is required")
	}
	s := &Server{token: token, checks: map[string]Check{}, clock: clock.Real{}, logger: slog.Default(), maxBody: DefaultMaxBody}
	for _, o := range opts {
		o(s)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/health", s.health)
	m.HandleFunc("GET /v1/faults", s.listFaults)
	m.HandleFunc("POST /v1/faults", s.addFault)
	m.HandleFunc("DELETE /v1/faults/{id}", s.removeFault)
	m.HandleFunc("DELETE /v1/faults", s.clearFaults)
	m.HandleFunc("GET /v1/events", s.listEvents)
	m.HandleFunc("GET /v1/events/stream", s.streamEvents)
	m.HandleFunc("POST /v1/events", s.addEvent)
	m.HandleFunc("GET /v1/pbs/jobs", s.listJobs)
	m.HandleFunc("POST /v1/pbs/restart", s.restartPBS)
	m.HandleFunc("GET /v1/clock", s.getClock)
	m.HandleFunc("POST /v1/clock/advance", s.advanceClock)
	s.handler = httpx.Bearer(token, "jobsim", m)
	return s, nil
}

// ServeHTTP checks the bearer token, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// APIError is the body of every error answer.
type APIError = httpx.Error

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	h := Health{OK: true, Host: s.name, Checks: map[string]CheckResult{}, Notes: s.notes}
	for name, c := range s.checks {
		start := time.Now()
		err := c(ctx)
		res := CheckResult{OK: err == nil, Duration: time.Since(start).Round(time.Microsecond).String()}
		if err != nil {
			res.Error = err.Error()
			h.OK = false
		}
		h.Checks[name] = res
	}
	code := http.StatusOK
	if !h.OK {
		code = http.StatusServiceUnavailable
	}
	httpx.WriteJSON(w, code, h)
}

func (s *Server) needFaults(w http.ResponseWriter) bool {
	if s.faults == nil {
		httpx.WriteError(w, http.StatusNotFound, "this host has no fault rules")
		return false
	}
	return true
}

func (s *Server) listFaults(w http.ResponseWriter, r *http.Request) {
	if s.needFaults(w) {
		httpx.WriteJSON(w, http.StatusOK, s.faults.Status())
	}
}

func (s *Server) addFault(w http.ResponseWriter, r *http.Request) {
	if !s.needFaults(w) {
		return
	}
	var rule fault.Rule
	if !httpx.ReadJSON(w, r, s.maxBody, "fault rule", &rule) {
		return
	}
	if rule.Layer == fault.UI {
		httpx.WriteError(w, http.StatusBadRequest, "layer: a host has no stand-in UI server: give ui rules to it (JOBSIM_UISERVER_FAULT or --fault of jobsim uiserver)")
		return
	}
	added, err := s.faults.Add(rule)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, added)
}

func (s *Server) removeFault(w http.ResponseWriter, r *http.Request) {
	if !s.needFaults(w) {
		return
	}
	id := r.PathValue("id")
	if !s.faults.Remove(id) {
		httpx.WriteError(w, http.StatusNotFound, "no fault rule with id %s", httpx.Quote(id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Cleared is the body of DELETE /v1/faults.
type Cleared struct {
	Removed int `json:"removed"`
}

func (s *Server) clearFaults(w http.ResponseWriter, r *http.Request) {
	if !s.needFaults(w) {
		return
	}
	var layers []fault.Layer
	for _, l := range r.URL.Query()["layer"] {
		if _, ok := fault.LayerKinds[fault.Layer(l)]; !ok {
			httpx.WriteError(w, http.StatusBadRequest, "layer: unknown layer %s", httpx.Quote(l))
			return
		}
		layers = append(layers, fault.Layer(l))
	}
	httpx.WriteJSON(w, http.StatusOK, Cleared{Removed: s.faults.Clear(layers...)})
}

func (s *Server) needEvents(w http.ResponseWriter) bool {
	if s.log == nil {
		httpx.WriteError(w, http.StatusNotFound, "this host keeps no event history")
		return false
	}
	return true
}

func sinceParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("since: %s is not a sequence number", httpx.Quote(v))
	}
	return n, nil
}

// eventsSince reads ?since= of a request for the history, answering the
// error itself (false) when there is no history or since is bad.
func (s *Server) eventsSince(w http.ResponseWriter, r *http.Request) (int64, bool) {
	if !s.needEvents(w) {
		return 0, false
	}
	since, err := sinceParam(r)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return 0, false
	}
	return since, true
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	since, ok := s.eventsSince(w, r)
	if !ok {
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s.log.Since(since))
}

// streamEvents sends the history after ?since= and then live events, one
// JSON object per line, until the client goes away.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	since, ok := s.eventsSince(w, r)
	if !ok {
		return
	}
	live := s.log.Subscribe(r.Context(), 1024)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	last := since
	for _, e := range s.log.Since(since) {
		_ = enc.Encode(e)
		last = e.Seq
	}
	flush()
	for e := range live {
		if e.Seq <= last {
			continue
		}
		if err := enc.Encode(e); err != nil {
			return
		}
		last = e.Seq
		flush()
	}
}

func (s *Server) addEvent(w http.ResponseWriter, r *http.Request) {
	if !s.needEvents(w) {
		return
	}
	var e events.Event
	if !httpx.ReadJSON(w, r, s.maxBody, "event", &e) {
		return
	}
	if e.Kind == "" {
		httpx.WriteError(w, http.StatusBadRequest, "event: kind is required")
		return
	}
	e.Seq = 0
	s.log.Record(e)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	if s.batch == nil {
		httpx.WriteError(w, http.StatusNotFound, "this host runs no PBS server")
		return
	}
	history := r.URL.Query().Get("history") == "true" || r.URL.Query().Get("history") == "1"
	httpx.WriteJSON(w, http.StatusOK, s.batch.Jobs(r.Context(), history))
}

// PBSRestart is the body of POST /v1/pbs/restart.
type PBSRestart struct {
	Down     fault.Duration `json:"down,omitempty"`      // how long the server is down (default fakepbs.DefaultRestartDown)
	LoseJobs bool           `json:"lose_jobs,omitempty"` // come back with an empty datastore
}

func (s *Server) restartPBS(w http.ResponseWriter, r *http.Request) {
	if s.batch == nil {
		httpx.WriteError(w, http.StatusNotFound, "this host runs no PBS server")
		return
	}
	var req PBSRestart
	if !httpx.ReadJSON(w, r, s.maxBody, `restart: want {"down": "<duration>", "lose_jobs": true|false}`, &req) {
		return
	}
	if req.Down < 0 {
		httpx.WriteError(w, http.StatusBadRequest, "restart: down %v is negative", req.Down.D())
		return
	}
	if err := s.batch.Restart(r.Context(), batch.RestartOptions{Down: req.Down.D(), LoseJobs: req.LoseJobs}); err != nil {
		httpx.WriteError(w, http.StatusConflict, "%v", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getClock(w http.ResponseWriter, r *http.Request) {
	_, virtual := s.clock.(*clock.Virtual)
	httpx.WriteJSON(w, http.StatusOK, ClockState{Now: s.clock.Now(), Virtual: virtual})
}

// Advance is the body of POST /v1/clock/advance.
type Advance struct {
	By fault.Duration `json:"by"`
}

func (s *Server) advanceClock(w http.ResponseWriter, r *http.Request) {
	v, ok := s.clock.(*clock.Virtual)
	if !ok {
		httpx.WriteError(w, http.StatusConflict, "the clock is real: only a virtual clock can be advanced")
		return
	}
	var a Advance
	if !httpx.ReadJSON(w, r, s.maxBody, `advance: want {"by": "<positive duration>"}`, &a) {
		return
	}
	if a.By <= 0 {
		httpx.WriteError(w, http.StatusBadRequest, `advance: want {"by": "<positive duration>"}, got %v`, a.By.D())
		return
	}
	v.Advance(a.By.D())
	httpx.WriteJSON(w, http.StatusOK, ClockState{Now: v.Now(), Virtual: true})
}

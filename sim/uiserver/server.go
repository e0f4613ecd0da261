// Package uiserver is a stand-in for the per-user UI server (a notebook
// or Jupyter server) that a JupyterHub spawner starts. It reads the
// JUPYTERHUB_* environment a spawner gives it, binds the address the hub
// chose, answers under the user's URL prefix, checks callers' tokens with
// the hub the way jupyterhub-singleuser does, and can be told to fail:
// start slowly, never become ready, crash after a while with a chosen exit
// status, or answer 5xx. Each request can be recorded to a JSON-lines file
// so a test can see who reached the server with which token.
//
// It is the fake half of the hub scenarios: the hub, its proxy and its
// spawners are real, the server they start is this one.
package uiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/httpx"
	"github.com/jobsim/jobsim/internal/huboauth"
)

// The operations of the "ui" fault layer (fault.LayerOps[fault.UI]).
const (
	opListen  = "listen"  // binding the address
	opRequest = "request" // answering one request; a rule's command matches the path
	opRun     = "run"     // running once listening: an exit rule ends the server
)

// ExitError is returned by Serve when an exit fault rule fires: the
// process running the server should exit with Code.
type ExitError struct {
	Code  int
	After time.Duration
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("uiserver: crash fault after %v, exit status %d", e.After, e.Code)
}

// Record is one request as seen by the server, written as one JSON line.
type Record struct {
	Time time.Time `json:"time"`
	// Server is the prefix of the server that answered ("/user/alice/").
	Server string `json:"server"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Remote is the peer address; ForwardedFor the X-Forwarded-For header
	// the proxy adds.
	Remote       string `json:"remote"`
	ForwardedFor string `json:"forwarded_for,omitempty"`
	UserAgent    string `json:"user_agent,omitempty"`
	// TokenSource is "header" (Authorization), "query" (?token=) or "".
	TokenSource string `json:"token_source,omitempty"`
	Token       string `json:"token,omitempty"`
	// Caller and CallerKind are the token's owner as the hub named it.
	Caller     string `json:"caller,omitempty"`
	CallerKind string `json:"caller_kind,omitempty"`
	// Status is the HTTP status answered.
	Status int `json:"status"`
	// Fault names the fault that shaped the answer, if any.
	Fault string `json:"fault,omitempty"`
}

// Server is one stand-in UI server. Create it with New, run it with Serve.
type Server struct {
	cfg    config
	log    *slog.Logger
	client *http.Client
	faults *fault.Set

	ready   chan struct{}
	addr    atomic.Value // string, set once bound
	started time.Time

	recMu sync.Mutex
	rec   io.Writer

	// oauth logs browsers in through the hub (nil: no OAuth client).
	oauth *huboauth.Client
}

// New returns a server configured by opts. Without options it binds
// 127.0.0.1:8888 and answers under "/"; in a spawned process pass
// FromEnv(os.LookupEnv).
func New(opts ...Option) (*Server, error) {
	cfg := config{
		addr:             "127.0.0.1:8888",
		prefix:           "/",
		version:          "6.4.12",
		activityInterval: 5 * time.Minute,
	}
	for i, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("uiserver: option %d: %w", i+1, err)
		}
	}
	if err := cfg.faults.Validate(); err != nil {
		return nil, fmt.Errorf("uiserver: faults: %w", err)
	}
	log := cfg.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set := cfg.set
	if set == nil {
		set = fault.NewSet()
	}
	for _, r := range cfg.faults.AsRules() {
		if _, err := set.Add(r); err != nil {
			return nil, fmt.Errorf("uiserver: faults: %w", err)
		}
	}
	srv := &Server{
		cfg:    cfg,
		log:    log.With("server", cfg.prefix),
		client: &http.Client{Timeout: 10 * time.Second},
		faults: set,
		ready:  make(chan struct{}),
		rec:    cfg.record,
	}
	if cfg.oauth != nil {
		oc := *cfg.oauth
		if oc.CookiePath == "" {
			oc.CookiePath = cfg.prefix
		}
		var err error
		if srv.oauth, err = huboauth.New(oc, srv.client); err != nil {
			return nil, fmt.Errorf("uiserver: %w", err)
		}
	}
	return srv, nil
}

// Faults is the set of fault rules the server acts on: the rules of its
// options, in the set given with WithFaultSet or one of its own. Rules of
// layer "ui" added or cleared while it runs take effect at once.
func (s *Server) Faults() *fault.Set { return s.faults }

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the bound host:port, "" before Ready.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

// Prefix is the URL prefix the server answers under.
func (s *Server) Prefix() string { return s.cfg.prefix }

// Serve runs the server until ctx is done (then it shuts down gracefully
// and returns nil) or until a crash fault fires (then it stops at once and
// returns an *ExitError). Faults that delay or prevent binding are acted
// on here. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	s.started = time.Now()
	if s.cfg.recordPath != "" {
		f, err := os.OpenFile(s.cfg.recordPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("uiserver: record file: %w", err)
		}
		defer f.Close()
		if s.rec != nil {
			s.rec = io.MultiWriter(s.rec, f)
		} else {
			s.rec = f
		}
	}
	// Rules on binding: a latency delays it (slow start), a hang prevents it
	// until the rule is cleared (never ready: the hub sees refused).
	ln, err := s.listen(ctx)
	if err != nil || ln == nil {
		return err
	}
	s.addr.Store(ln.Addr().String())
	srv := &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	close(s.ready)
	s.log.Info("listening", "addr", ln.Addr().String(), "prefix", s.cfg.prefix, "user", s.cfg.user, "faults", ruleIDs(s.faults.List()))

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopBG(); wg.Wait() }()
	if s.cfg.activityURL != "" && s.cfg.apiToken != "" {
		wg.Go(func() { s.reportActivity(bg) })
	}

	crash := s.watchExits(bg, &wg)
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "cause", context.Cause(ctx))
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
			return fmt.Errorf("uiserver: shutdown: %w", err)
		}
		return nil
	case exit := <-crash:
		s.log.Warn("exit fault: exiting", "rule", exit.rule, "after", exit.After, "exit_code", exit.Code)
		srv.Close()
		return exit.ExitError
	case err := <-served:
		return fmt.Errorf("uiserver: serve: %w", err)
	}
}

// listen binds the server's address, after the delay of the fault rules
// on binding; it returns nil, nil when ctx ends first. During the delay the
// address is reserved (see reservation) where it can be, so that connecting
// is refused as before a server starts and yet the port stays this
// server's.
func (s *Server) listen(ctx context.Context) (net.Listener, error) {
	fired := s.faults.Check(fault.Op{Layer: fault.UI, Name: opListen, User: s.cfg.user})
	if len(fired) == 0 {
		return s.listenNow()
	}
	s.log.Info("fault rules delay binding", "rules", ruleIDs(fired))
	res, err := reserve(s.cfg.addr)
	if err != nil {
		s.log.Debug("cannot reserve the address during the delay", "addr", s.cfg.addr, "err", err)
	}
	if err := s.faults.Wait(ctx, fired); err != nil {
		if res != nil {
			res.release()
		}
		s.log.Info("stopped before binding", "cause", context.Cause(ctx))
		return nil, nil
	}
	if res == nil {
		return s.listenNow()
	}
	ln, err := res.listen()
	if err != nil {
		return nil, fmt.Errorf("uiserver: listen on %s: %w", s.cfg.addr, err)
	}
	return ln, nil
}

func (s *Server) listenNow() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("uiserver: listen on %s: %w", s.cfg.addr, err)
	}
	return ln, nil
}

// crashing is an exit rule that came due.
type crashing struct {
	*ExitError
	rule string
}

// watchExits arms the exit rules for op "run", those there now and those
// added while the server runs: each ends the server with its exit code
// after its latency (counted from when it fired), unless it is cleared
// first. The returned channel gets the first that comes due.
func (s *Server) watchExits(ctx context.Context, wg *sync.WaitGroup) <-chan crashing {
	due := make(chan crashing, 1)
	op := fault.Op{Layer: fault.UI, Name: opRun, User: s.cfg.user}
	arm := func(fired []fault.Rule) {
		r, ok := fault.First(fired, fault.Exit)
		if !ok {
			return
		}
		code := 1
		if r.Effect.ExitCode != nil {
			code = *r.Effect.ExitCode
		}
		after := r.Effect.Latency.D()
		wg.Go(func() {
			t := time.NewTimer(after)
			defer t.Stop()
			select {
			case <-t.C:
				select {
				case due <- crashing{ExitError: &ExitError{Code: code, After: after}, rule: r.ID}:
				default:
				}
			case <-s.faults.Cleared(r):
				s.log.Info("exit fault cleared before it came due", "rule", r.ID)
			case <-ctx.Done():
			}
		})
	}
	isExit := func(r fault.Rule) bool { return r.Effect.Kind == fault.Exit }
	stop := s.faults.Subscribe(ctx, func(c fault.Change) {
		for _, r := range c.Added {
			if r.Layer == fault.UI && isExit(r) {
				id := r.ID
				arm(s.faults.CheckWhere(op, func(x fault.Rule) bool { return x.ID == id }))
			}
		}
	})
	context.AfterFunc(ctx, stop)
	arm(s.faults.CheckWhere(op, isExit))
	return due
}

func ruleIDs(rs []fault.Rule) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

// reportActivity POSTs the server's last activity to the hub now and then
// every activity interval, as jupyterhub-singleuser does.
func (s *Server) reportActivity(ctx context.Context) {
	for {
		if err := s.postActivity(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("activity report failed", "err", err)
		}
		if s.cfg.activityInterval <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.activityInterval):
		}
	}
}

func (s *Server) postActivity(ctx context.Context) error {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	body, _ := json.Marshal(map[string]any{
		"last_activity": now,
		"servers":       map[string]any{s.cfg.serverName: map[string]string{"last_activity": now}},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.activityURL, strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("activity request: %w", err)
	}
	req.Header.Set("Authorization", "token "+s.cfg.apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", s.cfg.activityURL, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", s.cfg.activityURL, resp.Status)
	}
	s.log.Debug("activity reported", "status", resp.StatusCode)
	return nil
}

// handle answers every request: faults first, then the prefix routes.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	rec := Record{
		Time:         time.Now().UTC(),
		Server:       s.cfg.prefix,
		Method:       r.Method,
		Path:         r.URL.Path,
		Remote:       r.RemoteAddr,
		ForwardedFor: r.Header.Get("X-Forwarded-For"),
		UserAgent:    r.UserAgent(),
	}
	token, source := requestToken(r)
	rec.Token, rec.TokenSource = token, source
	defer func() { s.record(rec) }()

	reply := func(status int, v any) {
		rec.Status = status
		httpx.WriteJSON(w, status, v)
	}
	// Rules on requests: latencies and hangs hold the answer (until the
	// caller goes away or the rule is cleared), a status rule answers it.
	if fired := s.faults.Check(fault.Op{Layer: fault.UI, Name: opRequest, Command: r.URL.Path, User: s.cfg.user}); len(fired) > 0 {
		if err := s.faults.Wait(r.Context(), fired); err != nil {
			rec.Fault = strings.Join(ruleIDs(fired), ",")
			return
		}
		if st, ok := fault.First(fired, fault.HTTPStatus); ok {
			rec.Fault = st.ID
			reply(st.Effect.Status, map[string]string{"message": fmt.Sprintf("jobsim uiserver: %s fault (%d)", st.ID, st.Effect.Status)})
			return
		}
	}

	prefix := s.cfg.prefix
	if r.URL.Path+"/" == prefix {
		rec.Status = http.StatusMovedPermanently
		http.Redirect(w, r, prefix, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		reply(http.StatusNotFound, map[string]string{"message": "not under " + prefix})
		return
	}

	// Identify any caller that shows a token, so the record says who it was.
	var id *Identity
	var idErr error
	if token != "" {
		id, idErr = s.identify(r.Context(), token)
		if id != nil {
			rec.Caller, rec.CallerKind = id.Name, id.Kind
		}
	}

	// A browser (no token) is logged in through the hub's OAuth, as
	// jupyterhub-singleuser does, when the hub gave an OAuth client.
	if token == "" && s.oauth != nil {
		switch {
		case r.URL.Path == s.oauth.CallbackPath():
			sw := &statusWriter{ResponseWriter: w}
			s.oauth.Callback(sw, r)
			rec.Status = sw.status
			return
		case rest == "":
			s.browserPage(w, r, &rec)
			return
		}
	}

	switch rest {
	case "":
		reply(http.StatusOK, map[string]string{"server": "jobsim-uiserver", "user": s.cfg.user, "prefix": prefix})
		return
	case "api", "api/":
		reply(http.StatusOK, map[string]string{"version": s.cfg.version})
		return
	case "api/status", "api/me":
	default:
		reply(http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}

	// Authenticated endpoints.
	switch {
	case token == "":
		reply(http.StatusForbidden, map[string]string{"message": "Forbidden: no token (Authorization: token ... or ?token=)"})
		return
	case errors.Is(idErr, errInvalidToken):
		reply(http.StatusForbidden, map[string]string{"message": "Forbidden: the hub does not recognise this token"})
		return
	case idErr != nil:
		s.log.Warn("cannot check token with the hub", "err", idErr)
		reply(http.StatusBadGateway, map[string]string{"message": "cannot check token with the hub: " + idErr.Error()})
		return
	}
	if req := s.requiredScopes(); req != nil && !ScopesGrant(req, id.Scopes) {
		reply(http.StatusForbidden, map[string]string{
			"message": fmt.Sprintf("Forbidden: %s %s may not access this server (needs one of %s)", id.Kind, id.Name, strings.Join(req, ", ")),
		})
		return
	}
	switch rest {
	case "api/status":
		reply(http.StatusOK, map[string]any{
			"started":       s.started.UTC().Format(time.RFC3339Nano),
			"last_activity": time.Now().UTC().Format(time.RFC3339Nano),
			"connections":   0,
			"kernels":       0,
		})
	case "api/me":
		reply(http.StatusOK, map[string]any{"identity": map[string]string{"username": id.Name, "kind": id.Kind}})
	}
}

// browserPage answers a browser at the prefix: without a session it goes
// to the hub's authorize page; with one, the hub says who it is now and
// the server admits it if its token's scopes grant access to this server
// (as jupyterhub-singleuser checks JUPYTERHUB_OAUTH_ACCESS_SCOPES).
func (s *Server) browserPage(w http.ResponseWriter, r *http.Request, rec *Record) {
	id, err := s.oauth.User(r)
	if err != nil {
		rec.Status = http.StatusBadGateway
		http.Error(w, "cannot ask the hub who you are: "+err.Error(), rec.Status)
		return
	}
	if id == nil {
		rec.Status = http.StatusFound
		s.oauth.Login(w, r)
		return
	}
	rec.Caller, rec.CallerKind = id.Name, id.Kind
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if req := s.requiredScopes(); req != nil && !ScopesGrant(req, id.Scopes) {
		rec.Status = http.StatusForbidden
		w.WriteHeader(rec.Status)
		fmt.Fprintf(w, "<!DOCTYPE html><title>403 Forbidden</title><h1>403 Forbidden</h1><p id=\"refused\">%s %s may not access the server of %s.</p>\n",
			html.EscapeString(id.Kind), html.EscapeString(id.Name), html.EscapeString(s.cfg.user))
		return
	}
	rec.Status = http.StatusOK
	fmt.Fprintf(w, "<!DOCTYPE html><title>%[1]s's UI server</title><h1 id=\"owner\">UI server of %[1]s</h1><p id=\"viewer\">Signed in as %[2]s</p>\n",
		html.EscapeString(s.cfg.user), html.EscapeString(id.Name))
}

// statusWriter remembers the status written, for the request record.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// record writes one request record, if recording.
func (s *Server) record(rec Record) {
	s.log.Debug("request", "method", rec.Method, "path", rec.Path, "status", rec.Status, "caller", rec.Caller, "fault", rec.Fault)
	if s.rec == nil {
		return
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if _, err := s.rec.Write(append(line, '\n')); err != nil {
		s.log.Warn("cannot write request record", "err", err)
	}
}

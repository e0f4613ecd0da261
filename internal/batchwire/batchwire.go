// Package batchwire is the transport between a batch system's command-line
// executables and the fake server that runs them, written once for every
// batch system (fakepbs/remote and fakeslurm/remote use it): the jobsim
// binary, run as qsub or sbatch on a job host, sends one invocation as a
// JSON HTTP POST and gets back the command's stdout, stderr and exit status.
//
// The server listens on a unix socket or TCP. On a unix socket it reads the
// calling process's uid (SO_PEERCRED) and refuses a request made in another
// user's name, unless the caller is root; a shared token can be required on
// either. What a batch system's commands are, what a request carries
// besides the user, how a command runs and what a client prints when the
// server is down stay with the batch system: this package knows none of it.
package batchwire

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// MaxRequest bounds a request body: a script and its stdin. A client reads
// at most half of it from its standard input.
const MaxRequest = 64 << 20

// Response is what the command wrote and how it exited.
type Response struct {
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr"`
	Exit   int    `json:"exit"`
}

// Claim is who a request says it comes from: a user name and, for batch
// systems whose clients send it, a uid.
type Claim struct {
	User   string
	UID    int
	HasUID bool
}

// Handler is one batch system's side of the server, for its request type
// Req.
type Handler[Req any] struct {
	// Path is the endpoint requests are POSTed to.
	Path string
	// Check refuses a request that is not one of the batch system's
	// commands; its error text is the 400 answer.
	Check func(*Req) error
	// Claim says whom the request acts for, for the peer check.
	Claim func(*Req) Claim
	// Run runs the command; an error is answered 400 with its text.
	Run func(context.Context, *Req) (Response, error)
}

// ServerConfig is how a server authenticates its callers.
type ServerConfig struct {
	// Token, when set, must come with every request (Authorization:
	// Bearer).
	Token string
	// PeerAuth turns the unix-socket user check on.
	PeerAuth bool
	// Lookup turns a peer's uid into a user name (nil: LookupUID).
	Lookup func(uid uint32) (string, error)
	// Log receives refused requests (nil: discarded).
	Log *slog.Logger
}

type peerKey struct{}

// peer is the credential of a unix-socket client.
type peer struct {
	uid uint32
	ok  bool
}

// Serve answers h's requests on ln until ctx ends or ln is closed, then
// stops: after ctx ended it closes the listener and waits up to 5s for the
// requests in progress; a closed listener ends them at once. It returns nil
// in both cases and an error when the listener fails otherwise.
func Serve[Req any](ctx context.Context, ln net.Listener, h Handler[Req], cfg ServerConfig) error {
	if cfg.Lookup == nil {
		cfg.Lookup = LookupUID
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+h.Path, func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, &h, &cfg)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(c context.Context, conn net.Conn) context.Context {
			if uc, ok := conn.(*net.UnixConn); ok {
				return context.WithValue(c, peerKey{}, peerOf(uc))
			}
			return c
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		// The listener failed or was closed by the caller: stop the
		// requests in progress too.
		_ = srv.Close()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = srv.Close()
	<-errc
	return nil
}

func peerOf(c *net.UnixConn) peer {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil || cred == nil {
		return peer{}
	}
	return peer{uid: cred.Uid, ok: true}
}

// LookupUID is a uid's name in the host's user database.
func LookupUID(uid uint32) (string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", fmt.Errorf("uid %d: %w", uid, err)
	}
	return u.Username, nil
}

// The log messages below keep the "remote:" prefix of the two packages
// (fakepbs/remote, fakeslurm/remote) that serve through this one.
func handle[Req any](w http.ResponseWriter, r *http.Request, h *Handler[Req], cfg *ServerConfig) {
	if cfg.Token != "" {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(cfg.Token)) != 1 {
			cfg.Log.Warn("remote: request without the right token", "remote", r.RemoteAddr)
			http.Error(w, "missing or wrong token", http.StatusUnauthorized)
			return
		}
	}
	var req Req
	if err := json.NewDecoder(io.LimitReader(r.Body, MaxRequest)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := h.Check(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if p, ok := r.Context().Value(peerKey{}).(peer); ok && cfg.PeerAuth {
		if !p.ok {
			http.Error(w, "cannot read the peer's credentials", http.StatusForbidden)
			return
		}
		if p.uid != 0 {
			c := h.Claim(&req)
			name, err := cfg.Lookup(p.uid)
			if err != nil || name != c.User || (c.HasUID && uint32(c.UID) != p.uid) {
				cfg.Log.Warn("remote: request in another user's name refused", "uid", p.uid, "user", c.User, "err", err)
				msg := fmt.Sprintf("uid %d may not act as %q", p.uid, c.User)
				if c.HasUID {
					msg += fmt.Sprintf(" (uid %d)", c.UID)
				}
				http.Error(w, msg, http.StatusForbidden)
				return
			}
		}
	}
	res, err := h.Run(r.Context(), &req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// FilesFS is a filesystem holding only files (by absolute path; others are
// skipped): what a command sees of the files its client read for it.
func FilesFS(files map[string][]byte) (afero.Fs, error) {
	mem := afero.NewMemMapFs()
	for p, b := range files {
		if !path.IsAbs(p) {
			continue
		}
		_ = mem.MkdirAll(path.Dir(p), 0o755)
		if err := afero.WriteFile(mem, p, b, 0o644); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
	}
	return mem, nil
}

// Target is the server a client calls.
type Target struct {
	// Addr is "unix:/path", "tcp:host:port", "/path" or "host:port".
	Addr string
	// URL is the request's URL: "http://NAME" and the handler's Path.
	URL string
	// Token goes with the request when set.
	Token string
	// DialTimeout bounds connecting.
	DialTimeout time.Duration
}

// Failure is the step of a call that failed.
type Failure int

// The ways a call fails.
const (
	// Cancelled: the caller's context ended before an answer came.
	Cancelled Failure = iota + 1
	// Unreachable: the server could not be reached.
	Unreachable
	// Refused: the server answered with an error status.
	Refused
	// BadAnswer: the server's answer could not be decoded.
	BadAnswer
)

// CallError is a call that got no command result; the batch system turns
// it into what its commands print in that case.
type CallError struct {
	Failure Failure
	// Err is the underlying error (for Refused, the status and the
	// server's message as "STATUS: TEXT").
	Err error
	// Status and Text are the server's answer (Refused).
	Status, Text string
}

func (e *CallError) Error() string { return e.Err.Error() }

func (e *CallError) Unwrap() error { return e.Err }

// Call POSTs req as JSON to t and decodes the command's Response (Stdout
// and Stderr never nil). Every error is a *CallError.
func Call(ctx context.Context, t Target, req any) (Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("encode request: %w", err)
	}
	network, address := SplitAddr(t.Addr)
	dialer := &net.Dialer{Timeout: t.DialTimeout}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, address)
		},
		DisableKeepAlives: true,
	}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	if t.Token != "" {
		hreq.Header.Set("Authorization", "Bearer "+t.Token)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, &CallError{Failure: Cancelled, Err: ctx.Err()}
		}
		return Response{}, &CallError{Failure: Unreachable, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		text := strings.TrimSpace(string(msg))
		return Response{}, &CallError{Failure: Refused, Err: fmt.Errorf("%s: %s", resp.Status, text), Status: resp.Status, Text: text}
	}
	var out Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return Response{}, &CallError{Failure: BadAnswer, Err: err}
	}
	if out.Stdout == nil {
		out.Stdout = []byte{}
	}
	if out.Stderr == nil {
		out.Stderr = []byte{}
	}
	return out, nil
}

// SplitAddr turns "unix:/path", "tcp:host:port", "/path" or "host:port"
// into a network and address for net.Dial.
func SplitAddr(addr string) (string, string) {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		return "unix", strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "tcp:"):
		return "tcp", strings.TrimPrefix(addr, "tcp:")
	case strings.HasPrefix(addr, "/"):
		return "unix", addr
	}
	return "tcp", addr
}

// Listen opens a listener for addr in SplitAddr's syntax. A unix socket is
// created with mode (0o666 lets every local user connect; the peer check
// still stops them acting for others); an existing stale socket file is
// replaced, one a server still answers on is refused.
func Listen(addr string, mode os.FileMode) (net.Listener, error) {
	network, address := SplitAddr(addr)
	if network == "unix" {
		if fi, err := os.Lstat(address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
				_ = c.Close()
				return nil, fmt.Errorf("listen on %s: a server is already listening", address)
			}
			_ = os.Remove(address)
		}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if network == "unix" {
		if err := os.Chmod(address, mode); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("chmod %s: %w", address, err)
		}
	}
	return ln, nil
}

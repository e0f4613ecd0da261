// Package remote carries PBS commands from real executables to a fake PBS
// server: the jobsim binary, run as qsub, qstat, ... on a job host, sends
// each invocation (argv, environment, working directory, user, standard
// input when the command reads it, the script file qsub reads) in one HTTP
// POST to the server, which runs fakepbs/cli against its backend and
// answers with the command's stdout, stderr and exit status.
//
// The server listens on a unix socket or TCP. On a unix socket it knows the
// calling process's uid (SO_PEERCRED) and refuses a request made in another
// user's name, unless the caller is root; on TCP a shared token can be
// required. A client that cannot reach the server prints what OpenPBS's
// commands print when their server is down, with their exit status.
package remote

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

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/spf13/afero"
)

// runPath is the one endpoint of the protocol.
const runPath = "/v1/run"

// maxRequest bounds a request body: a script and its stdin.
const maxRequest = 64 << 20

// Request is one command invocation as the client sends it.
type Request struct {
	Command   string   `json:"command"`
	Args      []string `json:"args"`
	Env       []string `json:"env"`
	Cwd       string   `json:"cwd"`
	User      string   `json:"user"`
	Host      string   `json:"host"`
	StdinTTY  bool     `json:"stdin_tty,omitempty"`
	StdoutTTY bool     `json:"stdout_tty,omitempty"`
	// Stdin is the command's standard input, sent only when it reads it.
	Stdin []byte `json:"stdin,omitempty"`
	// Files are files the client read for the command (qsub's script), by
	// absolute path. With ReadFiles set, the command sees only these files:
	// a file missing here is one the calling user could not read.
	Files     map[string][]byte `json:"files,omitempty"`
	ReadFiles bool              `json:"read_files,omitempty"`
}

// Response is what the command wrote and how it exited.
type Response struct {
	Stdout []byte `json:"stdout"`
	Stderr []byte `json:"stderr"`
	Exit   int    `json:"exit"`
}

// Option configures Serve.
type Option func(*serveConfig)

type serveConfig struct {
	host     string
	token    string
	peerAuth bool
	cliOpts  []cli.Option
	fs       afero.Fs
	log      *slog.Logger
	lookup   func(uid uint32) (string, error)
}

// WithToken requires every request to carry token (Authorization: Bearer).
func WithToken(token string) Option { return func(c *serveConfig) { c.token = token } }

// WithHost makes every command run as if on host name (PBS_O_HOST,
// Job_Owner's host), whatever host name the client reports: the name of the
// simulated host whose processes reach the server through this socket.
func WithHost(name string) Option { return func(c *serveConfig) { c.host = name } }

// WithPeerAuth turns the unix-socket user check on (the default) or off:
// a request naming a user other than the connecting process's is refused,
// root excepted.
func WithPeerAuth(on bool) Option { return func(c *serveConfig) { c.peerAuth = on } }

// WithCLIOptions passes options (faults, recorder, clock, time zone) to
// every command the server runs.
func WithCLIOptions(opts ...cli.Option) Option {
	return func(c *serveConfig) { c.cliOpts = append(c.cliOpts, opts...) }
}

// WithFS sets the filesystem commands read when the client sent no files
// (default: the operating system's).
func WithFS(fs afero.Fs) Option { return func(c *serveConfig) { c.fs = fs } }

// WithLogger logs refused requests and transport errors.
func WithLogger(l *slog.Logger) Option { return func(c *serveConfig) { c.log = l } }

// WithUserLookup replaces how a peer's uid becomes a user name (default:
// the host's user database).
func WithUserLookup(f func(uid uint32) (string, error)) Option {
	return func(c *serveConfig) { c.lookup = f }
}

type peerKey struct{}

// peer is the credential of a unix-socket client.
type peer struct {
	uid uint32
	ok  bool
}

// Serve answers PBS command requests on ln until ctx ends or ln is closed,
// then stops: after ctx ended it closes the listener and waits up to 5s for
// the requests in progress; a closed listener ends them at once. It returns
// nil in both cases and an error when the listener fails otherwise.
func Serve(ctx context.Context, ln net.Listener, backend fakepbs.Backend, opts ...Option) error {
	cfg := serveConfig{peerAuth: true, fs: afero.NewOsFs(), log: slog.New(slog.DiscardHandler), lookup: lookupUID}
	for _, o := range opts {
		o(&cfg)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+runPath, func(w http.ResponseWriter, r *http.Request) {
		handle(w, r, backend, &cfg)
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
		return fmt.Errorf("remote: serve on %s: %w", ln.Addr(), err)
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

func lookupUID(uid uint32) (string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", fmt.Errorf("uid %d: %w", uid, err)
	}
	return u.Username, nil
}

func handle(w http.ResponseWriter, r *http.Request, backend fakepbs.Backend, cfg *serveConfig) {
	if cfg.token != "" {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(cfg.token)) != 1 {
			cfg.log.Warn("remote: request without the right token", "remote", r.RemoteAddr)
			http.Error(w, "missing or wrong token", http.StatusUnauthorized)
			return
		}
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRequest)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !cli.IsCommand(req.Command) {
		http.Error(w, fmt.Sprintf("%q is not a PBS command", req.Command), http.StatusBadRequest)
		return
	}
	if p, ok := r.Context().Value(peerKey{}).(peer); ok && cfg.peerAuth {
		if !p.ok {
			http.Error(w, "cannot read the peer's credentials", http.StatusForbidden)
			return
		}
		if p.uid != 0 {
			name, err := cfg.lookup(p.uid)
			if err != nil || name != req.User {
				cfg.log.Warn("remote: request in another user's name refused", "uid", p.uid, "user", req.User, "err", err)
				http.Error(w, fmt.Sprintf("uid %d may not act as %q", p.uid, req.User), http.StatusForbidden)
				return
			}
		}
	}
	fs := cfg.fs
	if req.ReadFiles {
		mem := afero.NewMemMapFs()
		for p, b := range req.Files {
			if !path.IsAbs(p) {
				continue
			}
			_ = mem.MkdirAll(path.Dir(p), 0o755)
			if err := afero.WriteFile(mem, p, b, 0o644); err != nil {
				http.Error(w, "files: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		fs = mem
	}
	inv := cli.Invocation{
		Command: req.Command, Args: req.Args, Env: req.Env, Cwd: req.Cwd, User: req.User, Host: req.Host,
		StdinTTY: req.StdinTTY, StdoutTTY: req.StdoutTTY, FS: fs,
	}
	if cfg.host != "" {
		inv.Host = cfg.host
	}
	if req.Stdin != nil {
		inv.Stdin = bytes.NewReader(req.Stdin)
	}
	res := cli.Run(r.Context(), backend, inv, cfg.cliOpts...)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Response{Stdout: res.Stdout, Stderr: res.Stderr, Exit: res.ExitCode})
}

// CallOption configures Call.
type CallOption func(*callConfig)

type callConfig struct {
	prompt     io.Writer
	token      string
	serverName string
	stdin      io.Reader
}

// CallToken sends token with the request (Serve's WithToken).
func CallToken(token string) CallOption { return func(c *callConfig) { c.token = token } }

// CallServerName is the server name the "cannot connect" messages show
// (default: $PBS_SERVER from the invocation's environment, else the host
// part of the address, else "localhost").
func CallServerName(name string) CallOption { return func(c *callConfig) { c.serverName = name } }

// CallStdin is the command's standard input; it is read only when the
// command reads it (cli.NeedsStdin), so an open stdin never blocks.
func CallStdin(r io.Reader) CallOption { return func(c *callConfig) { c.stdin = r } }

// CallPrompt is where qsub's "Job script will be read from standard input"
// prompt goes when standard input is a terminal: the client prints it
// before it reads the terminal (normally the command's stdout).
func CallPrompt(w io.Writer) CallOption { return func(c *callConfig) { c.prompt = w } }

// ErrUnreachable reports that the server could not be reached; the Result
// Call returns with it holds OpenPBS's messages for that case.
var ErrUnreachable = errors.New("PBS server unreachable")

// Call runs inv on the server at addr ("unix:/path", "tcp:host:port" or
// "host:port") and returns the command's result. The result is always what
// the command line should print and exit with: when the server cannot be
// reached it is OpenPBS's "cannot connect" output, and the error wraps
// ErrUnreachable. inv.Stdin and inv.FS are not used: the standard input
// comes from CallStdin and qsub's script is read from the local filesystem
// here, as the calling user.
func Call(ctx context.Context, addr string, inv cli.Invocation, opts ...CallOption) (cli.Result, error) {
	cfg := callConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	network, address := splitAddr(addr)
	cmd := path.Base(inv.Command)
	if cfg.serverName == "" {
		cfg.serverName = envValue(inv.Env, "PBS_SERVER")
	}
	if cfg.serverName == "" {
		if h, _, err := net.SplitHostPort(address); err == nil && network == "tcp" {
			cfg.serverName = h
		}
	}
	if cfg.serverName == "" {
		cfg.serverName = "localhost"
	}
	req := Request{
		Command: cmd, Args: inv.Args, Env: inv.Env, Cwd: inv.Cwd, User: inv.User, Host: inv.Host,
		StdinTTY: inv.StdinTTY, StdoutTTY: inv.StdoutTTY,
	}
	if cli.NeedsStdin(cmd, inv.Args) && cfg.stdin != nil {
		if inv.StdinTTY && cfg.prompt != nil {
			_, _ = io.WriteString(cfg.prompt, cli.ReadScriptPrompt)
			req.StdinTTY = false // printed here, before the user types
		}
		b, err := io.ReadAll(io.LimitReader(cfg.stdin, maxRequest/2))
		if err != nil {
			return cli.Result{Stdout: []byte{}, Stderr: []byte("qsub: error reading script file\n"), ExitCode: 5}, fmt.Errorf("remote: read stdin: %w", err)
		}
		req.Stdin = b
	}
	if script, ok := cli.ScriptFile(cmd, inv.Args); ok {
		p := script
		if !path.IsAbs(p) {
			p = path.Join(inv.Cwd, p)
		}
		req.ReadFiles = true
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				req.Files = map[string][]byte{p: b}
			}
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return cli.Result{}, fmt.Errorf("remote: encode request: %w", err)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, address)
		},
		DisableKeepAlives: true,
	}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://pbs"+runPath, bytes.NewReader(body))
	if err != nil {
		return cli.Result{}, fmt.Errorf("remote: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if cfg.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+cfg.token)
	}
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return cli.Result{Stdout: []byte{}, Stderr: []byte{}, ExitCode: 128 + 15}, fmt.Errorf("remote: %w", ctx.Err())
		}
		res := cli.Unreachable(cmd, cfg.serverName, "refused")
		var op *net.OpError
		if errors.As(err, &op) && errors.Is(err, os.ErrDeadlineExceeded) {
			res = cli.Unreachable(cmd, cfg.serverName, "cannot-connect")
		}
		return res, fmt.Errorf("remote: %s: %w: %v", addr, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		text := strings.TrimSpace(string(msg))
		// The server refused us: what an OpenPBS command prints when the
		// server rejects its credentials (cnt2server's PBSE_PERM case).
		return noPermission(cmd, cfg.serverName), fmt.Errorf("remote: %s: server answered %s: %s", addr, resp.Status, text)
	}
	var out Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		res := cli.Result{Stdout: []byte{}, Stderr: []byte(fmt.Sprintf("%s: Premature end of message\n", cmd)), ExitCode: 15031 & 0xff}
		return res, fmt.Errorf("remote: %s: decode response: %w", addr, err)
	}
	if out.Stdout == nil {
		out.Stdout = []byte{}
	}
	if out.Stderr == nil {
		out.Stderr = []byte{}
	}
	return cli.Result{Stdout: out.Stdout, Stderr: out.Stderr, ExitCode: out.Exit}, nil
}

// noPermission is the output of a command whose server refused its
// credentials: "No Permission." from cnt2server, then the command's
// "cannot connect" line with pbs_errno 15007 (PBSE_PERM).
func noPermission(cmd, server string) cli.Result {
	code := fakepbs.ErrPermission & 0xff
	var msg string
	switch cmd {
	case "qstat":
		msg = fmt.Sprintf("qstat: cannot connect to server %s (errno=%d)\n", server, fakepbs.ErrPermission)
		code = 255
	case "pbsnodes":
		msg = fmt.Sprintf("pbsnodes: cannot connect to server %s, error=%d\n", server, fakepbs.ErrPermission)
		code = 1
	default:
		msg = fmt.Sprintf("%s: cannot connect to server %s (errno=%d)\n", cmd, server, fakepbs.ErrPermission)
	}
	return cli.Result{Stdout: []byte{}, Stderr: []byte("No Permission.\n" + msg), ExitCode: code}
}

// splitAddr turns "unix:/path", "tcp:host:port" or "host:port" into a
// network and address for net.Dial.
func splitAddr(addr string) (string, string) {
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

// Listen opens a listener for addr in Call's syntax. A unix socket is
// created with mode (0o666 lets every local user connect; the peer check
// still stops them acting for others); an existing stale socket file is
// replaced.
func Listen(addr string, mode os.FileMode) (net.Listener, error) {
	network, address := splitAddr(addr)
	if network == "unix" {
		if fi, err := os.Lstat(address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
				_ = c.Close()
				return nil, fmt.Errorf("remote: listen on %s: a server is already listening", address)
			}
			_ = os.Remove(address)
		}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("remote: listen on %s: %w", addr, err)
	}
	if network == "unix" {
		if err := os.Chmod(address, mode); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("remote: chmod %s: %w", address, err)
		}
	}
	return ln, nil
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

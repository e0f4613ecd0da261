// Package remote carries Slurm commands from real executables to a fake
// Slurm controller: the jobsim binary, run as sbatch, squeue, ... on a job
// host, sends each invocation (argv, environment, working directory, user,
// the script sbatch reads) in one HTTP POST to the controller, which runs
// fakeslurm/cli against its backend and answers with the command's stdout,
// stderr and exit status. The listener is fakepbs/remote's (unix socket or
// TCP); a shared token can be required.
//
// A client that cannot reach its controller behaves as Slurm's: it spends
// MessageTimeout (from its slurm.conf) trying, then prints the command's
// "Unable to contact slurm controller" message with its exit status.
package remote

import (
	"bufio"
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

	pbsremote "github.com/jobsim/jobsim/fakepbs/remote"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
)

const runPath = "/v1/slurm/run"

const maxRequest = 64 << 20

// Request is one command invocation as the client sends it.
type Request struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     []string          `json:"env"`
	Cwd     string            `json:"cwd"`
	User    string            `json:"user"`
	UID     int               `json:"uid"`
	GID     int               `json:"gid"`
	Host    string            `json:"host"`
	Stdin   []byte            `json:"stdin,omitempty"`
	Files   map[string][]byte `json:"files,omitempty"` // the script sbatch read, by absolute path
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
	token    string
	host     string
	cliOpts  []cli.Option
	log      *slog.Logger
	peerAuth bool
	lookup   func(uid uint32) (string, error)
}

// WithToken requires every request to carry token (Authorization: Bearer).
func WithToken(token string) Option { return func(c *serveConfig) { c.token = token } }

// WithHost makes every command run as if on host name (SLURM_SUBMIT_HOST).
func WithHost(name string) Option { return func(c *serveConfig) { c.host = name } }

// WithCLIOptions passes options (faults, recorder, clock) to every command.
func WithCLIOptions(opts ...cli.Option) Option {
	return func(c *serveConfig) { c.cliOpts = append(c.cliOpts, opts...) }
}

// WithLogger logs refused requests.
func WithLogger(l *slog.Logger) Option { return func(c *serveConfig) { c.log = l } }

// WithPeerAuth turns the unix-socket user check on (the default) or off: a
// request naming a user or uid other than the connecting process's is
// refused, root excepted — as munge stops a Slurm client lying about who
// it is.
func WithPeerAuth(on bool) Option { return func(c *serveConfig) { c.peerAuth = on } }

// WithUserLookup replaces how a peer's uid becomes a user name (default:
// the host's user database).
func WithUserLookup(f func(uid uint32) (string, error)) Option {
	return func(c *serveConfig) { c.lookup = f }
}

type peerKey struct{}

// peer is the credential of a unix-socket client (SO_PEERCRED). The same
// check guards fakepbs/remote; the two could share it from one package.
type peer struct {
	uid uint32
	ok  bool
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

// Listen opens a listener for addr ("unix:/path", "tcp:host:port" or
// "host:port"), as fakepbs/remote does.
func Listen(addr string, mode os.FileMode) (net.Listener, error) { return pbsremote.Listen(addr, mode) }

// Serve answers Slurm command requests on ln until ctx ends or ln is
// closed; it then waits up to 5s for the requests in progress.
func Serve(ctx context.Context, ln net.Listener, backend cli.Backend, opts ...Option) error {
	cfg := serveConfig{log: slog.New(slog.DiscardHandler), peerAuth: true, lookup: lookupUID}
	for _, o := range opts {
		o(&cfg)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+runPath, func(w http.ResponseWriter, r *http.Request) { handle(w, r, backend, &cfg) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx },
		ConnContext: func(c context.Context, conn net.Conn) context.Context {
			if uc, ok := conn.(*net.UnixConn); ok {
				return context.WithValue(c, peerKey{}, peerOf(uc))
			}
			return c
		}}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
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

func handle(w http.ResponseWriter, r *http.Request, backend cli.Backend, cfg *serveConfig) {
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
		http.Error(w, fmt.Sprintf("%q is not a Slurm command", req.Command), http.StatusBadRequest)
		return
	}
	if p, ok := r.Context().Value(peerKey{}).(peer); ok && cfg.peerAuth {
		if !p.ok {
			http.Error(w, "cannot read the peer's credentials", http.StatusForbidden)
			return
		}
		if p.uid != 0 {
			name, err := cfg.lookup(p.uid)
			if err != nil || name != req.User || uint32(req.UID) != p.uid {
				cfg.log.Warn("remote: request in another user's name refused", "uid", p.uid, "user", req.User, "err", err)
				http.Error(w, fmt.Sprintf("uid %d may not act as %q (uid %d)", p.uid, req.User, req.UID), http.StatusForbidden)
				return
			}
		}
	}
	fs := afero.NewMemMapFs()
	for p, b := range req.Files {
		if !path.IsAbs(p) {
			continue
		}
		_ = fs.MkdirAll(path.Dir(p), 0o755)
		if err := afero.WriteFile(fs, p, b, 0o644); err != nil {
			http.Error(w, "files: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	inv := cli.Invocation{Command: req.Command, Args: req.Args, Env: req.Env, Cwd: req.Cwd, User: req.User,
		UID: req.UID, GID: req.GID, Host: req.Host, FS: fs, Stdin: bytes.NewReader(req.Stdin)}
	if cfg.host != "" {
		inv.Host = cfg.host
	}
	res := cli.Run(r.Context(), backend, inv, cfg.cliOpts...)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Response{Stdout: res.Stdout, Stderr: res.Stderr, Exit: res.ExitCode})
}

// Conf is what a client reads from its slurm.conf.
type Conf struct {
	ClusterName    string
	ControlHost    string
	MessageTimeout time.Duration
	// Controller is the fake controller's address, from a
	// "#JobsimController=ADDR" line (a comment to a real Slurm).
	Controller string
}

// ReadConf reads the keys a client needs from a slurm.conf (Key=Value
// lines, case-insensitive keys, # comments).
func ReadConf(r io.Reader) (Conf, error) {
	c := Conf{ControlHost: "localhost", MessageTimeout: 10 * time.Second}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "#JobsimController="); ok {
			c.Controller = strings.TrimSpace(v)
			continue
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			switch strings.ToLower(k) {
			case "clustername":
				c.ClusterName = v
			case "slurmctldhost", "controlmachine":
				h, _, _ := strings.Cut(v, "(")
				c.ControlHost = h
			case "messagetimeout":
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return c, fmt.Errorf("MessageTimeout=%s: want a whole number of seconds", v)
				}
				c.MessageTimeout = time.Duration(n) * time.Second
			}
		}
	}
	return c, sc.Err()
}

// CallOption configures Call.
type CallOption func(*callConfig)

type callConfig struct {
	token string
	stdin io.Reader
	conf  Conf
	sleep func(context.Context, time.Duration) error
}

// CallToken sends token with the request.
func CallToken(token string) CallOption { return func(c *callConfig) { c.token = token } }

// CallStdin is the command's standard input, read only when sbatch reads
// its script from it.
func CallStdin(r io.Reader) CallOption { return func(c *callConfig) { c.stdin = r } }

// CallConf is the client's slurm.conf (MessageTimeout, SlurmctldHost).
func CallConf(c Conf) CallOption { return func(cc *callConfig) { cc.conf = c } }

// ErrUnreachable reports that the controller could not be reached; the
// Result returned with it is Slurm's output for that case.
var ErrUnreachable = errors.New("slurm controller unreachable")

// Call runs inv on the controller at addr and returns the command's
// result. When the controller cannot be reached it waits as a Slurm client
// does (MessageTimeout) and returns Slurm's message, with an error wrapping
// ErrUnreachable. sbatch's script file is read here, as the calling user.
func Call(ctx context.Context, addr string, inv cli.Invocation, opts ...CallOption) (cli.Result, error) {
	cfg := callConfig{conf: Conf{ControlHost: "localhost", MessageTimeout: 10 * time.Second}, sleep: sleepCtx}
	for _, o := range opts {
		o(&cfg)
	}
	cmd := path.Base(inv.Command)
	req := Request{Command: cmd, Args: inv.Args, Env: inv.Env, Cwd: inv.Cwd, User: inv.User, UID: inv.UID, GID: inv.GID, Host: inv.Host}
	if cmd == "sbatch" {
		script, stdin := cli.SbatchInput(inv.Args)
		switch {
		case stdin && cfg.stdin != nil:
			b, err := io.ReadAll(io.LimitReader(cfg.stdin, maxRequest/2))
			if err != nil {
				return cli.Result{Stdout: []byte{}, Stderr: []byte("sbatch: error: unable to read script from stdin\n"), ExitCode: 1}, fmt.Errorf("remote: read stdin: %w", err)
			}
			req.Stdin = b
		case script != "":
			p := script
			if !path.IsAbs(p) {
				p = path.Join(inv.Cwd, p)
			}
			if b, err := os.ReadFile(p); err == nil {
				req.Files = map[string][]byte{p: b}
			}
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return cli.Result{}, fmt.Errorf("remote: encode request: %w", err)
	}
	network, address := splitAddr(addr)
	dialer := &net.Dialer{Timeout: cfg.conf.MessageTimeout}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, address)
		},
		DisableKeepAlives: true,
	}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://slurmctld"+runPath, bytes.NewReader(body))
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
		errno := fakeslurm.ErrCtldConnect
		if errors.Is(err, os.ErrDeadlineExceeded) {
			errno = fakeslurm.ErrSocketTimeout
		}
		_ = cfg.sleep(ctx, cli.UnreachableDelay(cmd, inv.Args, errno, cfg.conf.MessageTimeout))
		return cli.Unreachable(cmd, inv.Args, errno, cfg.conf.ControlHost), fmt.Errorf("remote: %s: %w: %v", addr, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		res := cli.Result{Stdout: []byte{}, Stderr: []byte(fmt.Sprintf("%s: error: Access/permission denied\n", cmd)), ExitCode: 1}
		return res, fmt.Errorf("remote: %s: controller answered %s: %s", addr, resp.Status, strings.TrimSpace(string(msg)))
	}
	var out Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		res := cli.Unreachable(cmd, inv.Args, fakeslurm.ErrSocketTimeout, cfg.conf.ControlHost)
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

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// splitAddr turns "unix:/path", "tcp:host:port", "/path" or "host:port"
// into a network and address (the syntax of fakepbs/remote).
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

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
// commands print when their server is down, with their exit status. The
// transport itself is internal/batchwire's, shared with fakeslurm/remote.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/internal/batchwire"
	"github.com/spf13/afero"
)

// runPath is the one endpoint of the protocol.
const runPath = "/v1/run"

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
type Response = batchwire.Response

// Option configures Serve.
type Option func(*serveConfig)

type serveConfig struct {
	batchwire.ServerConfig // token, peer check, user lookup, logger
	host                   string
	cliOpts                []cli.Option
	fs                     afero.Fs
}

// WithToken requires every request to carry token (Authorization: Bearer).
func WithToken(token string) Option { return func(c *serveConfig) { c.Token = token } }

// WithHost makes every command run as if on host name (PBS_O_HOST,
// Job_Owner's host), whatever host name the client reports: the name of the
// simulated host whose processes reach the server through this socket.
func WithHost(name string) Option { return func(c *serveConfig) { c.host = name } }

// WithPeerAuth turns the unix-socket user check on (the default) or off:
// a request naming a user other than the connecting process's is refused,
// root excepted.
func WithPeerAuth(on bool) Option { return func(c *serveConfig) { c.PeerAuth = on } }

// WithCLIOptions passes options (faults, recorder, clock, time zone) to
// every command the server runs.
func WithCLIOptions(opts ...cli.Option) Option {
	return func(c *serveConfig) { c.cliOpts = append(c.cliOpts, opts...) }
}

// WithFS sets the filesystem commands read when the client sent no files
// (default: the operating system's).
func WithFS(fs afero.Fs) Option { return func(c *serveConfig) { c.fs = fs } }

// WithLogger logs refused requests and transport errors.
func WithLogger(l *slog.Logger) Option { return func(c *serveConfig) { c.Log = l } }

// WithUserLookup replaces how a peer's uid becomes a user name (default:
// the host's user database).
func WithUserLookup(f func(uid uint32) (string, error)) Option {
	return func(c *serveConfig) { c.Lookup = f }
}

// Serve answers PBS command requests on ln until ctx ends or ln is closed,
// then stops: after ctx ended it closes the listener and waits up to 5s for
// the requests in progress; a closed listener ends them at once. It returns
// nil in both cases and an error when the listener fails otherwise.
func Serve(ctx context.Context, ln net.Listener, backend fakepbs.Backend, opts ...Option) error {
	cfg := serveConfig{ServerConfig: batchwire.ServerConfig{PeerAuth: true}, fs: afero.NewOsFs()}
	for _, o := range opts {
		o(&cfg)
	}
	h := batchwire.Handler[Request]{
		Path: runPath,
		Check: func(req *Request) error {
			if !cli.IsCommand(req.Command) {
				return fmt.Errorf("%q is not a PBS command", req.Command)
			}
			return nil
		},
		Claim: func(req *Request) batchwire.Claim { return batchwire.Claim{User: req.User} },
		Run: func(ctx context.Context, req *Request) (Response, error) {
			return run(ctx, req, backend, &cfg)
		},
	}
	err := batchwire.Serve(ctx, ln, h, cfg.ServerConfig)
	if err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	return nil
}

// run runs one checked request: against the files the client sent when
// it read them for the command, else against the server's filesystem.
func run(ctx context.Context, req *Request, backend fakepbs.Backend, cfg *serveConfig) (Response, error) {
	fs := cfg.fs
	if req.ReadFiles {
		mem, err := batchwire.FilesFS(req.Files)
		if err != nil {
			return Response{}, err
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
	res := cli.Run(ctx, backend, inv, cfg.cliOpts...)
	return Response{Stdout: res.Stdout, Stderr: res.Stderr, Exit: res.ExitCode}, nil
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
	network, address := batchwire.SplitAddr(addr)
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
		b, err := io.ReadAll(io.LimitReader(cfg.stdin, batchwire.MaxRequest/2))
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
	out, err := batchwire.Call(ctx, batchwire.Target{Addr: addr, URL: "http://pbs" + runPath, Token: cfg.token, DialTimeout: 10 * time.Second}, req)
	var ce *batchwire.CallError
	if !errors.As(err, &ce) {
		if err != nil {
			return cli.Result{}, fmt.Errorf("remote: %w", err)
		}
		return cli.Result{Stdout: out.Stdout, Stderr: out.Stderr, ExitCode: out.Exit}, nil
	}
	switch ce.Failure {
	case batchwire.Cancelled:
		return cli.Result{Stdout: []byte{}, Stderr: []byte{}, ExitCode: 128 + 15}, fmt.Errorf("remote: %w", ce.Err)
	case batchwire.Unreachable:
		res := cli.Unreachable(cmd, cfg.serverName, "refused")
		var op *net.OpError
		if errors.As(ce.Err, &op) && errors.Is(ce.Err, os.ErrDeadlineExceeded) {
			res = cli.Unreachable(cmd, cfg.serverName, "cannot-connect")
		}
		return res, fmt.Errorf("remote: %s: %w: %v", addr, ErrUnreachable, ce.Err)
	case batchwire.Refused:
		// The server refused us: what an OpenPBS command prints when the
		// server rejects its credentials (cnt2server's PBSE_PERM case).
		return noPermission(cmd, cfg.serverName), fmt.Errorf("remote: %s: server answered %s: %s", addr, ce.Status, ce.Text)
	default:
		res := cli.Result{Stdout: []byte{}, Stderr: []byte(fmt.Sprintf("%s: Premature end of message\n", cmd)), ExitCode: 15031 & 0xff}
		return res, fmt.Errorf("remote: %s: decode response: %w", addr, ce.Err)
	}
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

// Listen opens a listener for addr in Call's syntax. A unix socket is
// created with mode (0o666 lets every local user connect; the peer check
// still stops them acting for others); an existing stale socket file is
// replaced.
func Listen(addr string, mode os.FileMode) (net.Listener, error) {
	ln, err := batchwire.Listen(addr, mode)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
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

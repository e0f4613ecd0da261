// Package remote carries Slurm commands from real executables to a fake
// Slurm controller: the jobsim binary, run as sbatch, squeue, ... on a job
// host, sends each invocation (argv, environment, working directory, user,
// the script sbatch reads) in one HTTP POST to the controller, which runs
// fakeslurm/cli against its backend and answers with the command's stdout,
// stderr and exit status. The transport (unix socket or TCP, SO_PEERCRED
// peer check, token) is internal/batchwire's, shared with fakepbs/remote.
//
// A client that cannot reach its controller behaves as Slurm's: it spends
// MessageTimeout (from its slurm.conf) trying, then prints the command's
// "Unable to contact slurm controller" message with its exit status.
package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/fakeslurm"
	"github.com/jobsim/jobsim/fakeslurm/cli"
	"github.com/jobsim/jobsim/internal/batchwire"
)

const runPath = "/v1/slurm/run"

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
type Response = batchwire.Response

// Option configures Serve.
type Option func(*serveConfig)

type serveConfig struct {
	batchwire.ServerConfig // token, peer check, user lookup, logger
	host                   string
	cliOpts                []cli.Option
}

// WithToken requires every request to carry token (Authorization: Bearer).
func WithToken(token string) Option { return func(c *serveConfig) { c.Token = token } }

// WithHost makes every command run as if on host name (SLURM_SUBMIT_HOST).
func WithHost(name string) Option { return func(c *serveConfig) { c.host = name } }

// WithCLIOptions passes options (faults, recorder, clock) to every command.
func WithCLIOptions(opts ...cli.Option) Option {
	return func(c *serveConfig) { c.cliOpts = append(c.cliOpts, opts...) }
}

// WithLogger logs refused requests.
func WithLogger(l *slog.Logger) Option { return func(c *serveConfig) { c.Log = l } }

// WithPeerAuth turns the unix-socket user check on (the default) or off: a
// request naming a user or uid other than the connecting process's is
// refused, root excepted — as munge stops a Slurm client lying about who
// it is.
func WithPeerAuth(on bool) Option { return func(c *serveConfig) { c.PeerAuth = on } }

// WithUserLookup replaces how a peer's uid becomes a user name (default:
// the host's user database).
func WithUserLookup(f func(uid uint32) (string, error)) Option {
	return func(c *serveConfig) { c.Lookup = f }
}

// Listen opens a listener for addr ("unix:/path", "tcp:host:port" or
// "host:port"), as fakepbs/remote does.
func Listen(addr string, mode os.FileMode) (net.Listener, error) {
	ln, err := batchwire.Listen(addr, mode)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	return ln, nil
}

// Serve answers Slurm command requests on ln until ctx ends or ln is
// closed; it then waits up to 5s for the requests in progress.
func Serve(ctx context.Context, ln net.Listener, backend cli.Backend, opts ...Option) error {
	cfg := serveConfig{ServerConfig: batchwire.ServerConfig{PeerAuth: true}}
	for _, o := range opts {
		o(&cfg)
	}
	h := batchwire.Handler[Request]{
		Path: runPath,
		Check: func(req *Request) error {
			if !cli.IsCommand(req.Command) {
				return fmt.Errorf("%q is not a Slurm command", req.Command)
			}
			return nil
		},
		// As munge stops a Slurm client lying about who it is: the uid
		// sent must be the peer's too.
		Claim: func(req *Request) batchwire.Claim {
			return batchwire.Claim{User: req.User, UID: req.UID, HasUID: true}
		},
		Run: func(ctx context.Context, req *Request) (Response, error) {
			fs, err := batchwire.FilesFS(req.Files)
			if err != nil {
				return Response{}, err
			}
			inv := cli.Invocation{Command: req.Command, Args: req.Args, Env: req.Env, Cwd: req.Cwd, User: req.User,
				UID: req.UID, GID: req.GID, Host: req.Host, FS: fs, Stdin: bytes.NewReader(req.Stdin)}
			if cfg.host != "" {
				inv.Host = cfg.host
			}
			res := cli.Run(ctx, backend, inv, cfg.cliOpts...)
			return Response{Stdout: res.Stdout, Stderr: res.Stderr, Exit: res.ExitCode}, nil
		},
	}
	err := batchwire.Serve(ctx, ln, h, cfg.ServerConfig)
	if err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	return nil
}

// Conf is what a client reads from its slurm.conf.
type Conf struct {
	ClusterName    string
	ControlHost    string
	MessageTimeout time.Duration
	// Controller is the fake controller's address, from a
	// "#JobsimController=ADDR" line (a comment to a real Slurm).
	Controller string
	// Token is the fake controller's token, from a "#JobsimToken=TOKEN"
	// line, for clients without $JOBSIM_SLURM_TOKEN (a compute node's
	// commands run from a non-login ssh session).
	Token string
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
		if v, ok := strings.CutPrefix(line, "#JobsimToken="); ok {
			c.Token = strings.TrimSpace(v)
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
	cfg := callConfig{conf: Conf{ControlHost: "localhost", MessageTimeout: 10 * time.Second}, sleep: clock.Real{}.Sleep}
	for _, o := range opts {
		o(&cfg)
	}
	cmd := path.Base(inv.Command)
	req := Request{Command: cmd, Args: inv.Args, Env: inv.Env, Cwd: inv.Cwd, User: inv.User, UID: inv.UID, GID: inv.GID, Host: inv.Host}
	if cmd == "sbatch" {
		script, stdin := cli.SbatchInput(inv.Args)
		switch {
		case stdin && cfg.stdin != nil:
			b, err := io.ReadAll(io.LimitReader(cfg.stdin, batchwire.MaxRequest/2))
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
	out, err := batchwire.Call(ctx, batchwire.Target{Addr: addr, URL: "http://slurmctld" + runPath, Token: cfg.token, DialTimeout: cfg.conf.MessageTimeout}, req)
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
		errno := fakeslurm.ErrCtldConnect
		if errors.Is(ce.Err, os.ErrDeadlineExceeded) {
			errno = fakeslurm.ErrSocketTimeout
		}
		_ = cfg.sleep(ctx, cli.UnreachableDelay(cmd, inv.Args, errno, cfg.conf.MessageTimeout))
		return cli.Unreachable(cmd, inv.Args, errno, cfg.conf.ControlHost), fmt.Errorf("remote: %s: %w: %v", addr, ErrUnreachable, ce.Err)
	case batchwire.Refused:
		res := cli.Result{Stdout: []byte{}, Stderr: []byte(fmt.Sprintf("%s: error: Access/permission denied\n", cmd)), ExitCode: 1}
		return res, fmt.Errorf("remote: %s: controller answered %s: %s", addr, ce.Status, ce.Text)
	default:
		res := cli.Unreachable(cmd, inv.Args, fakeslurm.ErrSocketTimeout, cfg.conf.ControlHost)
		return res, fmt.Errorf("remote: %s: decode response: %w", addr, ce.Err)
	}
}

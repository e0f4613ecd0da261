// Package cylc drives the real Cylc 8 command line for jobsim's scenarios.
//
// It finds a cylc executable (Locate), writes an isolated configuration
// (global.cylc with platforms pointing at fake job hosts, and the ssh config
// that maps their host aliases to loopback ports) into a directory the caller
// owns (NewEnv), installs and plays workflows there (Env.Install,
// Workflow.Play), sends them commands (reload, trigger, poll, kill, hold,
// release, pause, resume, stop) and reads their task and job states from the
// workflow database (Workflow.TaskStates, Workflow.Jobs, Workflow.WaitFor).
//
// Nothing it does touches the user's ~/.cylc or ~/cylc-run: every command
// runs with HOME and CYLC_CONF_PATH inside the Env's directory, and every
// process it starts carries a marker in its environment so that Env.Close
// can kill whatever the scheduler left behind (orphaned jobs included).
//
// See NOTES.md in this directory for how Cylc 8.0.2 behaves against a remote
// job host, and scripts/setup-cylc.sh for the default cylc this package uses.
package cylc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// EnvExecutable names the environment variable that selects the cylc
// executable (a path, or a name looked up on PATH) when no WithExecutable
// option is given.
const EnvExecutable = "JOBSIM_CYLC"

// DefaultVersion is the Cylc version scripts/setup-cylc.sh prepares.
const DefaultVersion = "8.0.2"

// ErrNotFound reports that no usable cylc executable was found. Tests skip
// on it (see SkipReason).
var ErrNotFound = errors.New("cylc executable not found")

// SkipReason says how to get a cylc; tests skip with it when cylc is absent.
const SkipReason = "run `make setup-cylc` (scripts/setup-cylc.sh, needs root for apt-get) " +
	"or set " + EnvExecutable + " to a cylc executable"

// Cylc is a located cylc executable. It holds no state beyond its
// configuration and is safe for concurrent use.
type Cylc struct {
	path           string
	logger         *slog.Logger
	commandTimeout time.Duration
}

type options struct {
	path           string
	logger         *slog.Logger
	commandTimeout time.Duration
	getenv         func(string) string
}

// Option configures Locate.
type Option func(*options)

// WithExecutable names the cylc executable to use (absolute path, relative
// path, or a name looked up on PATH). It wins over $JOBSIM_CYLC.
func WithExecutable(path string) Option { return func(o *options) { o.path = path } }

// WithLogger sets the logger for the commands run (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCommandTimeout bounds every cylc command whose context has no earlier
// deadline (default 2 minutes). Zero or negative keeps the default.
func WithCommandTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.commandTimeout = d
		}
	}
}

// DefaultExecutable is where scripts/setup-cylc.sh puts its wrapper:
// ${JOBSIM_CACHE:-$HOME/.cache/jobsim}/cylc-8.0.2/bin/cylc.
func DefaultExecutable() string { return defaultExecutable(os.Getenv) }

func defaultExecutable(getenv func(string) string) string {
	cache := getenv("JOBSIM_CACHE")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			if h, err := os.UserHomeDir(); err == nil {
				home = h
			}
		}
		cache = filepath.Join(home, ".cache", "jobsim")
	}
	return filepath.Join(cache, "cylc-"+DefaultVersion, "bin", "cylc")
}

// Locate finds the cylc executable: the WithExecutable option, else
// $JOBSIM_CYLC, else the wrapper of scripts/setup-cylc.sh. An explicit
// choice that is not executable is an error naming it; when nothing is
// found at the default place the error wraps ErrNotFound. Locate does not
// run cylc (see Version).
func Locate(ctx context.Context, opts ...Option) (*Cylc, error) {
	o := options{logger: slog.Default(), commandTimeout: 2 * time.Minute, getenv: os.Getenv}
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	source, want := "WithExecutable", o.path
	if want == "" {
		source, want = "$"+EnvExecutable, o.getenv(EnvExecutable)
	}
	var path string
	if want != "" {
		p, err := resolveExecutable(want)
		if err != nil {
			return nil, fmt.Errorf("cylc executable from %s (%q): %w", source, want, err)
		}
		path = p
	} else {
		def := defaultExecutable(o.getenv)
		if _, err := os.Stat(def); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no %s and no $%s; %s", ErrNotFound, def, EnvExecutable, SkipReason)
		}
		p, err := resolveExecutable(def)
		if err != nil {
			return nil, fmt.Errorf("default cylc %s: %w; %s", def, err, SkipReason)
		}
		path = p
	}
	return &Cylc{path: path, logger: o.logger, commandTimeout: o.commandTimeout}, nil
}

func resolveExecutable(p string) (string, error) {
	if !strings.ContainsRune(p, filepath.Separator) {
		found, err := exec.LookPath(p)
		if err != nil {
			return "", errors.New("not found on PATH")
		}
		p = found
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist", abs)
	}
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

// Path is the absolute path of the cylc executable.
func (c *Cylc) Path() string { return c.path }

// BinDir is the directory holding the executable: the value for a
// platform's `cylc path` when the job host shares this machine's files.
func (c *Cylc) BinDir() string { return filepath.Dir(c.path) }

var versionRE = regexp.MustCompile(`^\d+\.\d+\.\d+\S*$`)

// Version runs `cylc version` (in a scratch environment, so no user
// configuration is read) and returns what it prints, e.g. "8.0.2".
func (c *Cylc) Version(ctx context.Context) (string, error) {
	res, err := c.run(ctx, nil, "", nil, "version")
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(res.Stdout)
	if !versionRE.MatchString(v) {
		return "", fmt.Errorf("cylc version (%s): unexpected output %q (stderr %q)", c.path, v, strings.TrimSpace(res.Stderr))
	}
	return v, nil
}

// Result is what one cylc command did.
type Result struct {
	Args     []string // cylc's arguments (without the executable)
	Stdout   string
	Stderr   string
	ExitCode int // -1 when it did not exit normally (killed, not started)
	Duration time.Duration
}

// CommandError is returned when a cylc command fails to start, exits
// non-zero or is cut off by its context. It carries the full Result.
type CommandError struct {
	Result
	Err error // the underlying cause (exec error, context error)
}

func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cylc %s", strings.Join(e.Args, " "))
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, ": exit status %d", e.ExitCode)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if msg := lastLines(e.Stderr, 6); msg != "" {
		fmt.Fprintf(&b, "; stderr: %s", msg)
	} else if msg := lastLines(e.Stdout, 6); msg != "" {
		fmt.Fprintf(&b, "; stdout: %s", msg)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, " | ")
}

// run runs cylc with env (nil: a minimal scratch environment) in dir.
func (c *Cylc) run(ctx context.Context, env []string, dir string, stdin []byte, args ...string) (Result, error) {
	// An earlier deadline of the caller's context still wins.
	ctx, cancel := context.WithTimeout(ctx, c.commandTimeout)
	defer cancel()
	if env == nil {
		scratch, err := os.MkdirTemp("", "jobsim-cylc-")
		if err != nil {
			return Result{Args: args, ExitCode: -1}, fmt.Errorf("cylc %s: scratch home: %w", strings.Join(args, " "), err)
		}
		defer os.RemoveAll(scratch)
		env = isolatedEnviron(os.Environ(), map[string]string{"HOME": scratch, "CYLC_CONF_PATH": scratch})
	}
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Env = env
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Own process group, so a cut-off command takes its children with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A daemon that kept our pipes open must not hang us.
	cmd.WaitDelay = 5 * time.Second

	start := time.Now()
	err := cmd.Run()
	res := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1, Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	c.logger.Debug("cylc", "args", args, "exit", res.ExitCode, "duration", res.Duration)
	if err != nil {
		cause := err
		if ctxErr := ctx.Err(); ctxErr != nil {
			cause = fmt.Errorf("%w (after %s)", ctxErr, res.Duration.Round(time.Millisecond))
		} else if _, ok := err.(*exec.ExitError); ok {
			cause = nil
		}
		return res, &CommandError{Result: res, Err: cause}
	}
	return res, nil
}

// isolatedEnviron returns base without variables that would make cylc read
// or write the user's own Cylc set-up (CYLC_*, HOME), plus set.
func isolatedEnviron(base []string, set map[string]string) []string {
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok || strings.HasPrefix(k, "CYLC_") || k == "PWD" || k == "OLDPWD" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

package cylc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// MarkerVar is the environment variable every process started through an
// Env carries (with the Env's own random value). Cylc passes the
// environment on to the scheduler daemon, its job commands, ssh clients and
// local jobs, so Env.Close can find and kill all of them.
const MarkerVar = "JOBSIM_CYLC_ENV"

// Env is one isolated place to run Cylc: HOME (holding cylc-run) and
// CYLC_CONF_PATH (holding global.cylc) inside a directory the caller owns,
// typically t.TempDir(). Several workflows may live in one Env. Close it
// when done: it stops the schedulers and kills what they left running.
type Env struct {
	cylc         *Cylc
	logger       *slog.Logger
	dir          string
	home         string
	confDir      string
	sshConfig    string
	marker       string
	extra        map[string]string
	pollInterval time.Duration

	mu        sync.Mutex
	workflows []*Workflow
	closed    bool
}

type envOptions struct {
	global       *GlobalConfig
	ssh          *SSHConfig
	extra        map[string]string
	pollInterval time.Duration
}

// EnvOption configures NewEnv.
type EnvOption func(*envOptions)

// WithGlobalConfig writes g as the Env's global.cylc (default: an empty
// one, so Cylc's defaults apply and no site or user config is read).
func WithGlobalConfig(g GlobalConfig) EnvOption {
	return func(o *envOptions) { o.global = &g }
}

// WithSSHConfig writes s as the Env's ssh config; platforms without their
// own ssh command then use SSHCommand(Env.SSHConfigPath()).
func WithSSHConfig(s SSHConfig) EnvOption {
	return func(o *envOptions) { o.ssh = &s }
}

// WithEnvVar sets an environment variable for every cylc command (and so
// for the scheduler and its local jobs). HOME, CYLC_CONF_PATH and the
// marker cannot be overridden.
func WithEnvVar(key, value string) EnvOption {
	return func(o *envOptions) {
		if o.extra == nil {
			o.extra = map[string]string{}
		}
		o.extra[key] = value
	}
}

// WithPollInterval sets how often WaitFor reads the workflow database
// (default 200ms).
func WithPollInterval(d time.Duration) EnvOption {
	return func(o *envOptions) {
		if d > 0 {
			o.pollInterval = d
		}
	}
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewEnv prepares dir (which must exist) as an isolated Cylc environment:
// dir/home is HOME, dir/conf is CYLC_CONF_PATH with global.cylc, and
// dir/ssh_config the ssh config when one is given.
func (c *Cylc) NewEnv(ctx context.Context, dir string, opts ...EnvOption) (*Env, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o := envOptions{pollInterval: 200 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cylc env %q: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("cylc env: %q must be an existing directory (stat: %v)", abs, err)
	}
	for k := range o.extra {
		if !envKeyRE.MatchString(k) {
			return nil, fmt.Errorf("cylc env: environment variable name %q is not valid", k)
		}
		if k == "HOME" || k == "CYLC_CONF_PATH" || k == MarkerVar {
			return nil, fmt.Errorf("cylc env: %s is set by the Env and cannot be overridden", k)
		}
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("cylc env: marker: %w", err)
	}
	e := &Env{
		cylc:         c,
		logger:       c.logger,
		dir:          abs,
		home:         filepath.Join(abs, "home"),
		confDir:      filepath.Join(abs, "conf"),
		marker:       hex.EncodeToString(raw[:]),
		extra:        o.extra,
		pollInterval: o.pollInterval,
	}
	for _, d := range []string{e.home, e.confDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cylc env: %w", err)
		}
	}
	if o.ssh != nil {
		if err := e.WriteSSHConfig(*o.ssh); err != nil {
			return nil, err
		}
	}
	g := GlobalConfig{}
	if o.global != nil {
		g = *o.global
	}
	if err := e.WriteGlobalConfig(g); err != nil {
		return nil, err
	}
	return e, nil
}

// Cylc is the executable this Env runs.
func (e *Env) Cylc() *Cylc { return e.cylc }

// Dir is the directory the Env lives in.
func (e *Env) Dir() string { return e.dir }

// Home is the HOME of every cylc command; workflows live in Home()/cylc-run.
func (e *Env) Home() string { return e.home }

// ConfDir is CYLC_CONF_PATH.
func (e *Env) ConfDir() string { return e.confDir }

// GlobalConfigPath is ConfDir()/global.cylc.
func (e *Env) GlobalConfigPath() string { return filepath.Join(e.confDir, "global.cylc") }

// SSHConfigPath is the ssh config written by WithSSHConfig or
// WriteSSHConfig, or "" when there is none.
func (e *Env) SSHConfigPath() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sshConfig
}

// Marker is the value of MarkerVar in the environment of every process
// this Env starts.
func (e *Env) Marker() string { return e.marker }

// WriteGlobalConfig (re)writes global.cylc. Platforms without an ssh
// command use the Env's ssh config, so write that first. A running
// scheduler does not re-read global.cylc (Cylc 8.0 reloads only the
// workflow's own configuration), but new job commands on the job host do.
func (e *Env) WriteGlobalConfig(g GlobalConfig) error {
	text, err := g.Render(e.SSHConfigPath())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(e.GlobalConfigPath(), text, 0o644); err != nil {
		return fmt.Errorf("cylc env: write global.cylc: %w", err)
	}
	return nil
}

// WriteSSHConfig (re)writes the ssh config at Dir()/ssh_config.
func (e *Env) WriteSSHConfig(s SSHConfig) error {
	text, err := s.Render()
	if err != nil {
		return err
	}
	path := filepath.Join(e.dir, "ssh_config")
	if err := writeFileAtomic(path, text, 0o600); err != nil {
		return fmt.Errorf("cylc env: write ssh config: %w", err)
	}
	e.mu.Lock()
	e.sshConfig = path
	e.mu.Unlock()
	return nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Environ is the environment cylc commands run with: the caller's, minus
// CYLC_* variables, plus HOME, CYLC_CONF_PATH, the marker and WithEnvVar's.
func (e *Env) Environ() []string {
	set := map[string]string{"HOME": e.home, "CYLC_CONF_PATH": e.confDir, MarkerVar: e.marker}
	for k, v := range e.extra {
		set[k] = v
	}
	return isolatedEnviron(os.Environ(), set)
}

// Run runs `cylc args...` in the Env (working directory Home()) and
// returns its output; a non-zero exit is a *CommandError.
func (e *Env) Run(ctx context.Context, args ...string) (Result, error) {
	return e.cylc.run(ctx, e.Environ(), e.home, nil, args...)
}

type installOptions struct {
	name string
}

// InstallOption configures Env.Install.
type InstallOption func(*installOptions)

// WithWorkflowName installs under this name (default: the source
// directory's base name). Cylc adds a run directory: name/run1, run2...
func WithWorkflowName(name string) InstallOption {
	return func(o *installOptions) { o.name = name }
}

var (
	installedRE    = regexp.MustCompile(`(?m)^INSTALLED (\S+) from `)
	workflowNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)
)

// Install runs `cylc install <src> --workflow-name=<name>` and returns a
// handle on the installed run. src must be a directory with a flow.cylc.
func (e *Env) Install(ctx context.Context, src string, opts ...InstallOption) (*Workflow, error) {
	var o installOptions
	for _, opt := range opts {
		opt(&o)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("cylc install %q: %w", src, err)
	}
	if _, err := os.Stat(filepath.Join(abs, "flow.cylc")); err != nil {
		return nil, fmt.Errorf("cylc install: %s is not a workflow source (no flow.cylc): %w", abs, err)
	}
	if o.name == "" {
		o.name = filepath.Base(abs)
	}
	if !workflowNameRE.MatchString(o.name) || strings.Contains(o.name, "..") {
		return nil, fmt.Errorf("cylc install %s: workflow name %q: want letters, digits, '_', '.', '-' and '/'", abs, o.name)
	}
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	res, err := e.Run(ctx, "install", abs, "--workflow-name="+o.name)
	if err != nil {
		return nil, fmt.Errorf("install workflow %s: %w", abs, err)
	}
	m := installedRE.FindStringSubmatch(res.Stdout)
	if m == nil {
		return nil, fmt.Errorf("cylc install %s: no 'INSTALLED <id> from' line in output %q", abs, res.Stdout)
	}
	w := &Workflow{env: e, id: m[1], runDir: filepath.Join(e.home, "cylc-run", filepath.FromSlash(m[1]))}
	if _, err := os.Stat(filepath.Join(w.runDir, "flow.cylc")); err != nil {
		return nil, fmt.Errorf("cylc install %s: installed run %s has no flow.cylc: %w", abs, w.runDir, err)
	}
	e.mu.Lock()
	e.workflows = append(e.workflows, w)
	e.mu.Unlock()
	e.logger.Info("cylc workflow installed", "id", w.id, "run_dir", w.runDir)
	return w, nil
}

func (e *Env) checkOpen() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("cylc env is closed")
	}
	return nil
}

// Processes lists the live processes carrying this Env's marker (the
// schedulers, their job commands and local jobs). Linux only; elsewhere it
// returns an error.
func (e *Env) Processes() ([]Process, error) {
	return markedProcesses(e.marker)
}

// Close stops every workflow's scheduler (`cylc stop --now --now`, then
// SIGKILL if it does not go within the bound) and kills every process
// still carrying the Env's marker, e.g. orphaned jobs. It does not remove
// the directory (the caller owns it, and its logs are the artifacts).
// Safe to call more than once; the context bounds the whole of it.
func (e *Env) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	wfs := append([]*Workflow(nil), e.workflows...)
	e.mu.Unlock()
	var errs []error
	for _, w := range wfs {
		if err := w.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	killed, err := sweepMarked(ctx, e.marker)
	if len(killed) > 0 {
		e.logger.Info("cylc env: killed leftover processes", "pids", killed)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("cylc env %s: %w", e.dir, err))
	}
	return errors.Join(errs...)
}

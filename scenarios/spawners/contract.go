// Package spawners holds the contracts of JupyterHub spawners that reach a
// job host: the exact commands each runs (through the real OpenSSH client),
// what it feeds them, and how it reads their output, as data in
// fixtures/spawners/*.yaml. The tests play every contract against an
// in-process fake job host (sim.NewHost with real processes, PBS where the
// spawner submits jobs) so that the fake hosts are proven to serve the
// real spawners; the hub scenarios (scenarios/hubsys) then rely on that.
//
// A contract is a list of cases; a case is a list of steps run in order
// on a fresh host. A step runs one shell line on the test machine (so
// `ssh`, `scp` and their options are the real client's), optionally with
// a fault rule added on the host first, and checks or captures what came
// back. See fixtures/spawners/README.md for the format.
package spawners

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/syncio"
	"github.com/jobsim/jobsim/internal/yamlfile"
)

// Contract is one spawner's contract (one fixtures/spawners/*.yaml file).
type Contract struct {
	Path   string `yaml:"-"`
	Name   string `yaml:"name"`
	Source string `yaml:"source"`
	// Host says what the fake host needs.
	Host struct {
		PBS bool `yaml:"pbs"`
	} `yaml:"host"`
	// User is the host user the spawner acts as (default alice).
	User string `yaml:"user"`
	// Vars are templates available to every step as {name}; they may use
	// the built-in variables and earlier vars.
	Vars yaml.MapSlice `yaml:"vars"`
	// Files are written into {local_dir} before a case starts (mode 0700),
	// after template expansion: what the spawner writes on the hub side.
	Files map[string]string `yaml:"files"`
	Cases []Case            `yaml:"cases"`
	// Keys starting with x- are free: YAML anchors shared by steps.

	vars [][2]string // Vars in file order
}

// Case is one run of the spawner against a fresh host.
type Case struct {
	Name  string `yaml:"name"`
	Steps []Step `yaml:"steps"`
}

// Step is one command of the spawner, or a check of what it caused.
type Step struct {
	Name string `yaml:"name"`
	// Fault is added on the host before the step runs.
	Fault *fault.Rule `yaml:"fault"`
	// ClearFaults removes every rule before the step runs.
	ClearFaults bool `yaml:"clear_faults"`

	// Run is a shell line (bash -c) run on the test machine.
	Run   string            `yaml:"run"`
	Stdin string            `yaml:"stdin"`
	Env   map[string]string `yaml:"env"`
	// Background starts Run and goes on; the process is ended when the
	// case ends (or checked with Exited).
	Background bool `yaml:"background"`
	// Until repeats Run every Every (default 500ms, as batchspawner's
	// startup_poll_interval) until its stdout matches (Python re.search),
	// for at most Within (default 30s).
	Until string `yaml:"until"`
	// UntilNot repeats Run until its stdout no longer matches.
	UntilNot string `yaml:"until_not"`
	// UntilNonZero repeats Run until it fails (a poll that finds the
	// process gone).
	UntilNonZero bool     `yaml:"until_nonzero"`
	Every        Duration `yaml:"every"`
	Within       Duration `yaml:"within"`
	// Timeout bounds one run (default 30s).
	Timeout Duration `yaml:"timeout"`

	// HTTP is a URL that must answer with Status (default 200) within
	// Within (default 30s).
	HTTP   string `yaml:"http"`
	Status int    `yaml:"status"`

	// Exited names a background step whose process must have ended within
	// Within (default 10s).
	Exited string `yaml:"exited"`
	// Gone checks that no process the case started (by the marker in
	// Target.Env) is left running, within Within (default 10s).
	Gone bool `yaml:"gone"`

	Expect  Expect            `yaml:"expect"`
	Capture map[string]string `yaml:"capture"` // variable -> regex with one group over stdout

	// Gap names a known shortcoming of the fake host this step runs into:
	// if the step fails, the rest of the case is skipped with this text
	// (a visible skip, not a pass); once the step passes, the gap is
	// closed and the field should go.
	Gap string `yaml:"gap"`
}

// Expect is what a run must show; zero fields are not checked.
type Expect struct {
	Exit      *int   `yaml:"exit"`
	NonZero   bool   `yaml:"nonzero"`
	Stdout    string `yaml:"stdout"`
	StdoutNot string `yaml:"stdout_not"`
	Stderr    string `yaml:"stderr"`
}

// Duration is a Go duration string in YAML.
type Duration = fault.Duration

// Load reads and checks a contract file.
func Load(path string) (*Contract, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	c := &Contract{Path: path}
	if err := yamlfile.Unmarshal(path, b, c, yaml.AllowFieldPrefixes("x-")); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	if c.User == "" {
		c.User = "alice"
	}
	for _, kv := range c.Vars {
		k, kok := kv.Key.(string)
		v, vok := kv.Value.(string)
		if !kok || !vok {
			return nil, fmt.Errorf("contract %s: vars: want a mapping of name: template, got %v: %v", path, kv.Key, kv.Value)
		}
		c.vars = append(c.vars, [2]string{k, v})
	}
	if c.Name == "" || len(c.Cases) == 0 {
		return nil, fmt.Errorf("contract %s: needs a name and at least one case", path)
	}
	for i, cs := range c.Cases {
		for j, s := range cs.Steps {
			n := 0
			for _, set := range []bool{s.Run != "", s.HTTP != "", s.Exited != "", s.Gone} {
				if set {
					n++
				}
			}
			if n != 1 {
				return nil, fmt.Errorf("contract %s: case %d (%s) step %d (%s): give exactly one of run, http, exited, gone", path, i+1, cs.Name, j+1, s.Name)
			}
			if s.Fault != nil {
				if err := s.Fault.Validate(); err != nil {
					return nil, fmt.Errorf("contract %s: case %s step %s: fault: %w", path, cs.Name, s.Name, err)
				}
			}
			for k, re := range s.Capture {
				if _, err := regexp.Compile(re); err != nil {
					return nil, fmt.Errorf("contract %s: case %s step %s: capture %s: %w", path, cs.Name, s.Name, k, err)
				}
			}
			for _, re := range []string{s.Until, s.UntilNot, s.Expect.Stdout, s.Expect.StdoutNot, s.Expect.Stderr} {
				if _, err := regexp.Compile(pyRegexp(re)); err != nil {
					return nil, fmt.Errorf("contract %s: case %s step %s: %w", path, cs.Name, s.Name, err)
				}
			}
		}
	}
	return c, nil
}

// LoadAll loads every *.yaml file in dir, in name order.
func LoadAll(dir string) ([]*Contract, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*Contract
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("contract: no *.yaml in %s", dir)
	}
	return out, nil
}

// pyRegexp turns Python's \Z into Go's \z.
func pyRegexp(re string) string { return strings.ReplaceAll(re, `\Z`, `\z`) }

// Target is the fake host a case runs against, as the runner needs it.
type Target struct {
	// Vars are the built-in variables: host (the ssh alias), user,
	// ssh_config, local_dir, jobsim, and any the caller adds.
	Vars map[string]string
	// Env is added to every run's environment (a process marker, say).
	Env []string
	// AddFault and ClearFaults change the host's fault rules.
	AddFault    func(context.Context, fault.Rule) error
	ClearFaults func(context.Context) error
	// Processes lists the live processes the case started (by marker).
	Processes func() ([]string, error)
}

// StepResult is what one step did.
type StepResult struct {
	Step     string
	Command  string
	Exit     int
	Stdout   string
	Stderr   string
	Duration time.Duration
	Tries    int
}

// Runner plays a case's steps against a target.
type Runner struct {
	c      *Contract
	t      Target
	vars   map[string]string
	bg     map[string]*exec.Cmd
	bgWait map[string]chan error
	log    io.Writer
}

// NewRunner prepares a case run: it expands the contract's vars and writes
// its files into {local_dir}.
func NewRunner(c *Contract, t Target, log io.Writer) (*Runner, error) {
	r := &Runner{c: c, t: t, vars: map[string]string{}, bg: map[string]*exec.Cmd{}, bgWait: map[string]chan error{}, log: log}
	if r.log == nil {
		r.log = io.Discard
	} else {
		// Background steps write their output here while later steps log.
		r.log = &syncio.Writer{W: r.log}
	}
	for k, v := range t.Vars {
		r.vars[k] = v
	}
	for _, kv := range c.vars {
		v, err := r.expand(kv[1])
		if err != nil {
			return nil, fmt.Errorf("vars.%s: %w", kv[0], err)
		}
		r.vars[kv[0]] = v
	}
	dir := r.vars["local_dir"]
	for name, body := range c.Files {
		text, err := r.expand(body)
		if err != nil {
			return nil, fmt.Errorf("files.%s: %w", name, err)
		}
		if dir == "" {
			return nil, errors.New("files need {local_dir}")
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o700); err != nil {
			return nil, err
		}
	}
	return r, nil
}

var varRe = regexp.MustCompile(`\{([a-z_][a-z0-9_]*)\}`)

// expand replaces {name} with variables; an unknown name is an error.
func (r *Runner) expand(s string) (string, error) {
	var missing []string
	out := varRe.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := r.vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %v in %q", missing, s)
	}
	return out, nil
}

// Var returns a variable's value (after captures).
func (r *Runner) Var(name string) string { return r.vars[name] }

// Close ends the background processes (their whole process groups).
func (r *Runner) Close() {
	for name, cmd := range r.bg {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-r.bgWait[name]:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-r.bgWait[name]
		}
	}
	r.bg = map[string]*exec.Cmd{}
}

func orDefault(d Duration, def time.Duration) time.Duration {
	if d.D() > 0 {
		return d.D()
	}
	return def
}

// Step plays one step and checks it.
func (r *Runner) Step(ctx context.Context, s Step) (StepResult, error) {
	res := StepResult{Step: s.Name}
	if s.ClearFaults && r.t.ClearFaults != nil {
		if err := r.t.ClearFaults(ctx); err != nil {
			return res, fmt.Errorf("clear faults: %w", err)
		}
	}
	if s.Fault != nil {
		if r.t.AddFault == nil {
			return res, errors.New("the target takes no faults")
		}
		rule := *s.Fault
		for _, f := range []*string{&rule.Job, &rule.Path, &rule.Command, &rule.User} {
			v, err := r.expand(*f)
			if err != nil {
				return res, fmt.Errorf("fault: %w", err)
			}
			*f = v
		}
		if err := r.t.AddFault(ctx, rule); err != nil {
			return res, fmt.Errorf("add fault: %w", err)
		}
	}
	switch {
	case s.HTTP != "":
		return res, r.httpStep(ctx, s)
	case s.Gone:
		return res, r.gone(ctx, orDefault(s.Within, 10*time.Second))
	case s.Exited != "":
		ch, ok := r.bgWait[s.Exited]
		if !ok {
			return res, fmt.Errorf("exited: no background step %q", s.Exited)
		}
		select {
		case err := <-ch:
			ch2 := make(chan error, 1)
			ch2 <- err
			r.bgWait[s.Exited] = ch2
			delete(r.bg, s.Exited)
			return res, nil
		case <-time.After(orDefault(s.Within, 10*time.Second)):
			return res, fmt.Errorf("background step %q still runs after %s", s.Exited, orDefault(s.Within, 10*time.Second))
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	line, err := r.expand(s.Run)
	if err != nil {
		return res, err
	}
	res.Command = line
	stdin, err := r.expand(s.Stdin)
	if err != nil {
		return res, err
	}
	env := append(os.Environ(), r.t.Env...)
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := r.expand(s.Env[k])
		if err != nil {
			return res, err
		}
		env = append(env, k+"="+v)
	}
	if s.Background {
		cmd := exec.Command("bash", "-c", line)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = r.log, r.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return res, fmt.Errorf("start %q: %w", line, err)
		}
		ch := make(chan error, 1)
		go func() { ch <- cmd.Wait() }()
		r.bg[s.Name], r.bgWait[s.Name] = cmd, ch
		return res, nil
	}
	var until, untilNot *regexp.Regexp
	if s.Until != "" {
		until = regexp.MustCompile(pyRegexp(s.Until))
	}
	if s.UntilNot != "" {
		untilNot = regexp.MustCompile(pyRegexp(s.UntilNot))
	}
	deadline := time.Now().Add(orDefault(s.Within, 30*time.Second))
	begin := time.Now()
	for {
		res.Tries++
		res.Exit, res.Stdout, res.Stderr, err = run(ctx, line, stdin, env, orDefault(s.Timeout, 30*time.Second))
		if err != nil {
			return res, err
		}
		fmt.Fprintf(r.log, "$ %s\n  exit %d\n  stdout %q\n  stderr %q\n", line, res.Exit, clip(res.Stdout), clip(res.Stderr))
		if (until == nil || until.MatchString(res.Stdout)) && (untilNot == nil || !untilNot.MatchString(res.Stdout)) && (!s.UntilNonZero || res.Exit != 0) {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%q: stdout never matched %q (or kept matching %q) within %s (last exit %d, stdout %q, stderr %q)", line, s.Until, s.UntilNot, orDefault(s.Within, 30*time.Second), res.Exit, clip(res.Stdout), clip(res.Stderr))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(orDefault(s.Every, 500*time.Millisecond)):
		}
	}
	res.Duration = time.Since(begin)
	if err := check(s.Expect, res); err != nil {
		return res, fmt.Errorf("%q: %w", line, err)
	}
	for name, re := range s.Capture {
		m := regexp.MustCompile(pyRegexp(re)).FindStringSubmatch(res.Stdout)
		if len(m) < 2 {
			return res, fmt.Errorf("%q: capture %s: %q does not match stdout %q", line, name, re, clip(res.Stdout))
		}
		r.vars[name] = m[1]
	}
	return res, nil
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + "..."
	}
	return s
}

func check(e Expect, res StepResult) error {
	if e.Exit != nil && res.Exit != *e.Exit {
		return fmt.Errorf("exit %d, want %d (stdout %q, stderr %q)", res.Exit, *e.Exit, clip(res.Stdout), clip(res.Stderr))
	}
	if e.NonZero && res.Exit == 0 {
		return fmt.Errorf("exit 0, want a failure (stdout %q)", clip(res.Stdout))
	}
	if e.Stdout != "" && !regexp.MustCompile(pyRegexp(e.Stdout)).MatchString(res.Stdout) {
		return fmt.Errorf("stdout %q does not match %q", clip(res.Stdout), e.Stdout)
	}
	if e.StdoutNot != "" && regexp.MustCompile(pyRegexp(e.StdoutNot)).MatchString(res.Stdout) {
		return fmt.Errorf("stdout %q matches %q, which it must not", clip(res.Stdout), e.StdoutNot)
	}
	if e.Stderr != "" && !regexp.MustCompile(pyRegexp(e.Stderr)).MatchString(res.Stderr) {
		return fmt.Errorf("stderr %q does not match %q", clip(res.Stderr), e.Stderr)
	}
	return nil
}

// run runs a shell line to its end (its process group is killed after
// timeout) and returns exit status and output.
func run(ctx context.Context, line, stdin string, env []string, timeout time.Duration) (int, string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String(), nil
	case ctx.Err() != nil:
		return -1, out.String(), errb.String(), fmt.Errorf("%q: no end within %s (stdout %q, stderr %q)", line, timeout, clip(out.String()), clip(errb.String()))
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String(), nil
	}
	return -1, out.String(), errb.String(), fmt.Errorf("%q: %w", line, err)
}

// gone waits until no process of the case is left.
func (r *Runner) gone(ctx context.Context, within time.Duration) error {
	if r.t.Processes == nil {
		return errors.New("the target cannot list processes")
	}
	deadline := time.Now().Add(within)
	for {
		left, err := r.t.Processes()
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still running after %s: %v", within, left)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *Runner) httpStep(ctx context.Context, s Step) error {
	url, err := r.expand(s.HTTP)
	if err != nil {
		return err
	}
	want := s.Status
	if want == 0 {
		want = http.StatusOK
	}
	deadline := time.Now().Add(orDefault(s.Within, 30*time.Second))
	var last string
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == want {
				cancel()
				fmt.Fprintf(r.log, "GET %s: %d\n", url, resp.StatusCode)
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: want %d within %s, last: %s", url, want, orDefault(s.Within, 30*time.Second), last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

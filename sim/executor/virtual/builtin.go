package virtual

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/afero"
	"mvdan.cc/sh/v3/expand"

	"github.com/jobsim/jobsim/base/clock"
)

// Builtin is a command of the virtual host, implemented in Go. It returns
// the exit code; messages go to c.Stderr as the real command would print
// them.
type Builtin func(ctx context.Context, c *Call) int

// Call is one run of a builtin: its arguments, where it runs and for whom,
// and its standard streams. File access must go through FS (paths made
// absolute with Abs) so that the host's faults apply, and waiting through
// Clock with ctx so that a virtual clock can skip it.
type Call struct {
	Args   []string // the command name first, as typed
	Dir    string   // working directory
	User   User
	Host   string // host name
	Pid    int    // virtual pid of the calling process
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	FS     afero.Fs
	Clock  clock.Clock

	env   expand.Environ
	p     *process
	shell string // "bash: line N: ", for messages of the shell's own builtins
}

// Getenv returns the value of an exported or shell variable.
func (c *Call) Getenv(key string) string {
	if c.env == nil {
		return ""
	}
	return c.env.Get(key).String()
}

// Environ returns the exported environment as KEY=value, sorted.
func (c *Call) Environ() []string {
	if c.env == nil {
		return nil
	}
	return exported(c.env)
}

// Abs resolves name against the working directory.
func (c *Call) Abs(name string) string { return absPath(c.Dir, name) }

// Run runs another command (a builtin or a script on the host) with the
// same streams, directory and environment, and returns its exit code.
func (c *Call) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		return 0
	}
	c2 := *c
	c2.Args = args
	return c.p.dispatch(ctx, &c2)
}

// RunWith runs another command as Run does, with env (KEY=value) as its
// whole environment and its output to stdout and stderr. Several may run
// at once (srun's tasks).
func (c *Call) RunWith(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	c2 := c.withEnv(env)
	c2.Stdout, c2.Stderr = stdout, stderr
	return c2.Run(ctx, args)
}

// withEnv returns a copy of c whose environment is env (KEY=value).
func (c *Call) withEnv(env []string) *Call {
	e := newEnviron()
	e.setList(env)
	c2 := *c
	c2.env = e
	return &c2
}

func (c *Call) errorf(format string, args ...any) {
	fmt.Fprintf(c.Stderr, format, args...)
}

// name is the command name without its directory, as GNU tools print it.
func (c *Call) name() string {
	n := c.Args[0]
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		n = n[i+1:]
	}
	return n
}

// coreBuiltins are the standard commands of a virtual host, filled in by
// init functions of the files that implement them.
var coreBuiltins = map[string]Builtin{}

// internalBuiltins are reached through names the call handler rewrites to.
var internalBuiltins = map[string]Builtin{}

// Builtins lists the names of the standard builtins, for documentation and
// for hosts that want to know what a virtual host offers.
func Builtins() []string {
	out := make([]string, 0, len(coreBuiltins))
	for k := range coreBuiltins {
		out = append(out, k)
	}
	return out
}

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

// flags is the result of parsing GNU-style options.
type flags struct {
	set  map[byte]int
	vals map[byte]string   // the last value given
	all  map[byte][]string // every value given, in order
}

func (f flags) has(b byte) bool           { return f.set[b] > 0 }
func (f flags) val(b byte) (string, bool) { v, ok := f.vals[b]; return v, ok }

// parseFlags reads GNU-style options: bundled short flags (-la), values
// attached or separate (-n5, -n 5), long options mapped to short letters
// (--lines=5), options after operands, and -- ending them. bools and
// values list the letters; long maps long names to letters. A bad option is
// reported in GNU's words and ok is false.
func parseFlags(c *Call, args []string, bools, values string, long map[string]byte) (f flags, operands []string, ok bool) {
	f = flags{set: map[byte]int{}, vals: map[byte]string{}, all: map[byte][]string{}}
	cmd := c.name()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			operands = append(operands, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a[2:], "=")
			b, known := long[name]
			if !known {
				c.errorf("%s: unrecognized option '%s'\nTry '%s --help' for more information.\n", cmd, a, cmd)
				return f, nil, false
			}
			if strings.IndexByte(values, b) >= 0 {
				if !hasVal {
					if i+1 >= len(args) {
						c.errorf("%s: option '--%s' requires an argument\nTry '%s --help' for more information.\n", cmd, name, cmd)
						return f, nil, false
					}
					i++
					val = args[i]
				}
				f.vals[b] = val
				f.all[b] = append(f.all[b], val)
			}
			f.set[b]++
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			operands = append(operands, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			b := a[j]
			switch {
			case strings.IndexByte(values, b) >= 0:
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						c.errorf("%s: option requires an argument -- '%c'\nTry '%s --help' for more information.\n", cmd, b, cmd)
						return f, nil, false
					}
					i++
					val = args[i]
				}
				f.vals[b] = val
				f.all[b] = append(f.all[b], val)
				f.set[b]++
				j = len(a)
			case strings.IndexByte(bools, b) >= 0:
				f.set[b]++
			default:
				c.errorf("%s: invalid option -- '%c'\nTry '%s --help' for more information.\n", cmd, b, cmd)
				return f, nil, false
			}
		}
	}
	return f, operands, true
}

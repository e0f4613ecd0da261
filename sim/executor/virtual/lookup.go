package virtual

import (
	"bytes"
	"context"
	"strings"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// command -v, command -V and type answer from the host: its builtins and
// the scripts on its PATH in the host filesystem. The interpreter's own
// versions would search the real machine's PATH on the real disk, so they
// only answer for shell functions, and then with PATH set to noPATH, a
// list in which no real file can be found.

// noPATH is the PATH the interpreter's type and command -v run with.
const noPATH = "/dev/null/no-real-path"

// lookupPATH reports whether the call is the interpreter's own lookup,
// run by lookupCommand.
func lookupPATH(ctx context.Context) bool {
	return interp.HandlerCtx(ctx).Env.Get("PATH").String() == noPATH
}

// lookupCommand runs `command -v|-V NAME` or `type [-tpP] NAME...`.
func (p *process) lookupCommand(ctx context.Context, hc interp.HandlerContext, args []string) error {
	var names []string
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			names = append(names, a)
		}
	}
	for _, name := range names {
		if !p.isFunction(ctx, hc, name) {
			continue
		}
		if args[0] == "command" && args[1] == "-V" {
			args = []string{"type", name} // the interpreter's command lacks -V
		}
		return hc.Builtin(ctx, []string{"eval", "PATH=" + noPATH + " " + quoteArgs(args)})
	}
	name := "type"
	if args[0] == "command" {
		name = "command-v"
	}
	c := p.newCall(ctx, hc, append([]string{name}, args[1:]...))
	return exitError(internalBuiltins[name](ctx, c))
}

// isFunction asks the interpreter whether name is a shell function, with
// its answer captured through a /dev/fd/N of the process.
func (p *process) isFunction(ctx context.Context, hc interp.HandlerContext, name string) bool {
	if syntax.IsKeyword(name) || interp.IsBuiltin(name) {
		return false
	}
	var out bytes.Buffer // written before Builtin returns
	fd, err := p.addPsub(&psubEnd{stdout: &out, f: frameOf(ctx)})
	if err != nil {
		return false
	}
	defer p.forgetPsub(fd)
	_ = hc.Builtin(ctx, []string{"eval", "PATH=" + noPATH + " type -t " + quoteArgs([]string{name}) + " >" + fd + " 2>/dev/null"})
	return strings.TrimSpace(out.String()) == "function"
}

// rewriteSource finds the file of `source NAME` on the host (the
// interpreter would search the real machine's PATH for a NAME without a
// slash) and names it by its path there. A file that uses process
// substitution becomes eval of its rewritten text, as the interpreter
// reads sourced files itself (see psub.go); with arguments it is left as
// it is.
func (p *process) rewriteSource(ctx context.Context, args []string) []string {
	if len(args) < 2 {
		return args
	}
	hc := interp.HandlerCtx(ctx)
	name := args[1]
	var candidates []string
	if strings.Contains(name, "/") {
		candidates = []string{absPath(hc.Dir, name)}
	} else {
		for _, dir := range strings.Split(hc.Env.Get("PATH").String(), ":") {
			if dir != "" {
				candidates = append(candidates, absPath(hc.Dir, dir+"/"+name))
			}
		}
		candidates = append(candidates, absPath(hc.Dir, name))
	}
	for _, c := range candidates {
		fi, err := p.stat(c)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		byPath := append([]string{args[0], c}, args[2:]...)
		b, err := p.readFile(c)
		if err != nil || len(args) > 2 {
			return byPath
		}
		if text, ok := p.rewriteText(string(b), name); ok {
			return []string{"eval", text}
		}
		return byPath
	}
	return args
}

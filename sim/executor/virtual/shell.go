package virtual

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"

	"github.com/jobsim/jobsim/sim/executor"
)

// Internal command names the call handler rewrites commands to, so that they
// reach the exec handler. They start with a NUL byte, which no script can type.
const (
	cmdRunTraps = "\x00run-traps"
	cmdPrefix   = "\x00"
	// Called from eval'd text, so without NUL.
	cmdTrapDone = "__jobsim_trap_done"
	cmdBg       = "__jobsim_bg"
	cmdBgRun    = "__jobsim_bgrun"
	cmdWait     = "\x00wait"
	cmdLookup   = "\x00lookup"
)

// environ is the environment a shell starts with.
type environ struct{ vars map[string]expand.Variable }

func newEnviron() *environ { return &environ{vars: map[string]expand.Variable{}} }

func (e *environ) Get(name string) expand.Variable { return e.vars[name] }

func (e *environ) Each(f func(string, expand.Variable) bool) {
	for k, v := range e.vars {
		if !f(k, v) {
			return
		}
	}
}

func (e *environ) set(name, value string) {
	e.vars[name] = expand.Variable{Set: true, Exported: true, Kind: expand.String, Str: value}
}

func (e *environ) setList(kvs []string) {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			e.set(k, v)
		}
	}
}

// exported lists the exported string variables of env as KEY=value, sorted.
func exported(env expand.Environ) []string {
	m := map[string]string{}
	env.Each(func(name string, vr expand.Variable) bool {
		if vr.Exported && vr.IsSet() && vr.Kind == expand.String {
			m[name] = vr.Str
		} else {
			delete(m, name)
		}
		return true
	})
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// baseEnviron is the environment of the top shell of a command.
func (p *process) baseEnviron() *environ {
	e := newEnviron()
	u := p.user
	e.set("HOME", u.Home)
	e.set("USER", u.Name)
	e.set("LOGNAME", u.Name)
	e.set("SHELL", u.Shell)
	e.set("PATH", p.e.path)
	e.set("HOSTNAME", p.e.hostname)
	e.set("LANG", "C.UTF-8")
	if p.cmd.TTY != nil {
		term := p.cmd.TTY.Term
		if term == "" {
			term = "xterm"
		}
		e.set("TERM", term)
	}
	e.setList(p.e.env)
	e.setList(p.cmd.Env)
	for _, k := range []string{"UID", "EUID"} {
		e.vars[k] = expand.Variable{Set: true, ReadOnly: true, Kind: expand.String, Str: strconv.Itoa(u.UID)}
	}
	e.vars["GID"] = expand.Variable{Set: true, ReadOnly: true, Kind: expand.String, Str: strconv.Itoa(u.GID)}
	return e
}

// shellSpec is one shell to run.
type shellSpec struct {
	name    string       // $0
	file    *syntax.File // the script, parsed; nil to read commands from src
	src     io.Reader    // commands, read as they come
	prompt  bool         // interactive: print prompts
	params  []string     // $1...
	opts    []string     // set options, such as -e or -o pipefail
	env     *environ     // the starting environment
	dir     string       // the working directory
	stdin   *os.File     // nil for none
	stdout  io.Writer    // never nil
	stderr  io.Writer    // never nil
	login   bool         // read the profile files first
	onStart func(*frame) // called once the shell's frame exists
}

// run is the body of a process: its top shell.
func (p *process) run(actx context.Context) executor.Status {
	spec := shellSpec{
		name:   "bash",
		env:    p.baseEnviron(),
		dir:    p.dir,
		stdin:  p.stdin,
		stdout: p.stdout,
		stderr: p.stderr,
		login:  p.cmd.Login,
	}
	if p.cmd.Script != "" {
		f, err := parseScript(p.cmd.Script, "bash")
		if err != nil {
			fmt.Fprintf(p.stderr, "bash: -c: %s\n", syntaxMessage(err))
			return executor.Status{Code: 2}
		}
		spec.file = f
	} else {
		// Commands read the rest of the input, as with bash reading a
		// script from its standard input.
		spec.src = p.stdin
		spec.prompt = p.cmd.TTY != nil
	}
	code, sig := p.runShell(actx, spec)
	return executor.Status{Code: code, Signal: sig}
}

func parseScript(src, name string) (*syntax.File, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func syntaxMessage(err error) string {
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: syntax error: %s", pe.Pos.Line(), pe.Text)
	}
	return err.Error()
}

// rewritePID replaces each plain $$ in f by the virtual pid.
func rewritePID(f syntax.Node, pid int) {
	lit := strconv.Itoa(pid)
	fix := func(parts []syntax.WordPart) {
		for i, wp := range parts {
			pe, ok := wp.(*syntax.ParamExp)
			if !ok || pe.Param == nil || pe.Param.Value != "$" {
				continue
			}
			if pe.Excl || pe.Length || pe.Width || pe.Index != nil || pe.Slice != nil || pe.Repl != nil || pe.Exp != nil {
				continue
			}
			parts[i] = &syntax.Lit{ValuePos: pe.Pos(), ValueEnd: pe.End(), Value: lit}
		}
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Word:
			fix(n.Parts)
		case *syntax.DblQuoted:
			fix(n.Parts)
		}
		return true
	})
}

// prepare rewrites a parsed script before it runs in shell fr: $$ becomes
// the virtual pid and background jobs become clock actors of their own. It
// also notes the lines of redirections, for bash's error messages.
func (p *process) prepare(fr *frame, f *syntax.File) *syntax.File {
	rewritePID(f, p.pid)
	if fr != nil {
		p.mu.Lock() // background jobs read the map
		syntax.Walk(f, func(n syntax.Node) bool {
			if rd, ok := n.(*syntax.Redirect); ok && rd.Word != nil {
				if lit := rd.Word.Lit(); lit != "" {
					if _, seen := fr.redirLines[lit]; !seen {
						fr.redirLines[lit] = int(rd.Pos().Line())
					}
				}
			}
			return true
		})
		p.mu.Unlock()
	}
	// Process substitutions first: a background job's text must hold the
	// rewritten form, as it runs through eval.
	p.rewriteProcSubst(f)
	p.rewriteBackground(f)
	return f
}

// msgPrefix is what bash puts before its own messages: "$0: line N: ".
func msgPrefix(ctx context.Context, line uint) string {
	name := "bash"
	if f := frameOf(ctx); f != nil && f.name != "" {
		name = f.name
	}
	if line > 0 {
		return fmt.Sprintf("%s: line %d: ", name, line)
	}
	return name + ": "
}

// posLine is the line of pos, or 0.
func posLine(pos syntax.Pos) uint {
	if !pos.IsValid() {
		return 0
	}
	return pos.Line()
}

// rewriteBackground replaces each `X &` by `__jobsim_bg TOKEN`, whose
// handler makes the clock count a new actor before it starts X in the
// background (the interpreter's own background goroutines are invisible to
// the clock, which would then jump while they run).
func (p *process) rewriteBackground(f *syntax.File) {
	var bg []*syntax.Stmt
	syntax.Walk(f, func(n syntax.Node) bool {
		if st, ok := n.(*syntax.Stmt); ok && (st.Background || st.Disown) && !st.Coprocess {
			bg = append(bg, st)
		}
		return true
	})
	if len(bg) == 0 {
		return
	}
	printer := syntax.NewPrinter()
	// Innermost first, so that an outer job's text holds the rewritten
	// inner ones.
	for i := len(bg) - 1; i >= 0; i-- {
		st := bg[i]
		cp := *st
		cp.Background, cp.Disown = false, false
		cp.Comments = nil
		var b bytes.Buffer
		if err := printer.Print(&b, &cp); err != nil {
			continue
		}
		p.mu.Lock()
		p.nextID++
		tok := strconv.Itoa(p.nextID)
		p.bgSrc[tok] = b.String()
		p.mu.Unlock()
		pos := st.Pos()
		word := func(s string) *syntax.Word {
			return &syntax.Word{Parts: []syntax.WordPart{&syntax.Lit{ValuePos: pos, ValueEnd: pos, Value: s}}}
		}
		*st = syntax.Stmt{Position: st.Position, Semicolon: st.Semicolon,
			Cmd: &syntax.CallExpr{Args: []*syntax.Word{word(cmdBg), word(tok)}}}
	}
}

// startBackground runs the background job of token tok: it holds the clock
// for it, then starts it with the interpreter's own `&` (so that $! and
// wait work).
func (p *process) startBackground(ctx context.Context, hc interp.HandlerContext, tok string) error {
	release := p.e.clock.Hold()
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.holds[id] = bgHold{f: frameOf(ctx), release: release}
	p.mu.Unlock()
	err := hc.Builtin(ctx, []string{"eval", cmdBgRun + " " + tok + " " + strconv.Itoa(id) + " &"})
	if err != nil {
		p.releaseHold(id)
	}
	return err
}

// waitJobs is the wait builtin: the interpreter's, run aside while the
// shell sleeps on the host clock as long as a background job of the shell
// is running, so that a virtual clock counts a shell waiting for its jobs
// as idle (the jobs are actors of their own). A job that ends wakes the
// sleep before it lets go of the clock; the shell then stays busy while
// the interpreter notices the end, so that the clock cannot jump in
// between.
func (p *process) waitJobs(ctx context.Context, hc interp.HandlerContext, args []string) error {
	f := frameOf(ctx)
	finished := make(chan struct{})
	var err error
	go func() {
		defer close(finished)
		err = hc.Builtin(ctx, append([]string{"wait"}, args...))
	}()
	for {
		p.mu.Lock()
		running := 0
		for _, h := range p.holds {
			if h.f == f {
				running++
			}
		}
		ended := f.bgEnded
		sctx, cancel := context.WithCancel(ctx)
		if running > 0 {
			f.waitWake = append(f.waitWake, cancel)
		}
		p.mu.Unlock()
		if running == 0 {
			cancel()
			<-finished // no job of ours runs: the wait ends at once, or with the shell
			return err
		}
		go func() {
			select {
			case <-finished:
				cancel()
			case <-sctx.Done():
			}
		}()
		_ = p.sleep(sctx, time.Hour)
		cancel()
		select {
		case <-finished:
			return err
		default:
		}
		if ctx.Err() != nil {
			<-finished // the jobs end with the shell's context
			return err
		}
		p.mu.Lock()
		jobEnded := f.bgEnded != ended
		p.mu.Unlock()
		if jobEnded {
			select {
			case <-finished:
				return err
			case <-time.After(50 * time.Millisecond):
				// not the job this wait is for
			}
		}
	}
}

// runBackground is the body of a background job started by startBackground.
func (p *process) runBackground(ctx context.Context, hc interp.HandlerContext, tok, idText string) error {
	id, _ := strconv.Atoi(idText)
	defer func() {
		// Wake a shell waiting for jobs before the clock may move on.
		f := frameOf(ctx)
		p.mu.Lock()
		h, held := p.holds[id]
		delete(p.holds, id)
		f.bgEnded++
		for _, wake := range f.waitWake {
			wake()
		}
		f.waitWake = nil
		p.mu.Unlock()
		if held {
			h.release()
		}
	}()
	p.mu.Lock()
	src := p.bgSrc[tok]
	p.mu.Unlock()
	return hc.Builtin(ctx, []string{"eval", src})
}

func (p *process) releaseHold(id int) {
	p.mu.Lock()
	h, ok := p.holds[id]
	delete(p.holds, id)
	p.mu.Unlock()
	if ok {
		h.release()
	}
}

// releaseHolds releases the holds of background jobs of f that never ran.
func (p *process) releaseHolds(f *frame) {
	p.mu.Lock()
	var rel []func()
	for id, h := range p.holds {
		if h.f == f {
			rel = append(rel, h.release)
			delete(p.holds, id)
		}
	}
	p.mu.Unlock()
	for _, r := range rel {
		r()
	}
}

// newRunner builds the interpreter for one shell.
func (p *process) newRunner(s shellSpec) (*interp.Runner, error) {
	userTmp, hadTmp := s.env.vars["TMPDIR"]
	// The interpreter takes its FIFO directory from TMPDIR when it is reset
	// (and opens paths there past the open handler): give it one that no
	// real path can be (see psub.go), then put the user's TMPDIR (or none)
	// back.
	s.env.set("TMPDIR", noFIFODir)
	opts := []interp.RunnerOption{
		interp.Env(s.env),
		func(r *interp.Runner) error { r.Dir = s.dir; return nil }, // interp.Dir would stat the real disk
		interp.StdIO(s.stdin, s.stdout, s.stderr),
		interp.OpenHandler(p.openHandler),
		interp.ReadDirHandler2(p.readDirHandler),
		interp.StatHandler(p.statHandler),
		interp.AccessHandler(p.accessHandler),
		interp.CallHandler(p.callHandler),
		interp.ExecHandlers(func(interp.ExecHandlerFunc) interp.ExecHandlerFunc { return p.execHandler }),
	}
	params := append(slices.Clone(s.opts), "--")
	params = append(params, s.params...)
	opts = append(opts, interp.Params(params...))
	r, err := interp.New(opts...)
	if err != nil {
		return nil, err
	}
	r.Reset()
	if hadTmp {
		s.env.vars["TMPDIR"] = userTmp
	} else {
		delete(s.env.vars, "TMPDIR")
	}
	return r, nil
}

// runShell runs one shell to its end and returns its exit code and, when a
// signal ended it, the signal.
func (p *process) runShell(ctx context.Context, s shellSpec) (code int, killed syscall.Signal) {
	f := p.pushFrame(ctx, s.prompt)
	f.name = s.name
	defer p.popFrame(f)
	if s.onStart != nil {
		s.onStart(f)
	}
	f.stdout = s.stdout
	// A killed shell may be blocked on a process substitution's pipe.
	stop := context.AfterFunc(f.ctx, func() { p.closeFramePsubs(f) })
	defer stop()
	r, err := p.newRunner(s)
	if err != nil {
		fmt.Fprintf(s.stderr, "bash: %v\n", err)
		return 1, 0
	}
	exited := false
	if s.login {
		code, exited = p.readProfile(f, r, s)
	}
	if !exited && f.ctx.Err() == nil {
		if s.file != nil {
			p.prepare(f, s.file)
			err = r.Run(f.runCtx(), s.file)
			code, exited = statusOf(err), r.Exited()
		} else {
			code, exited = p.interactive(f, r, s)
		}
	}
	killed = f.killedBy()
	if killed == 0 && !exited {
		// Traps of signals that came during the last command.
		if c, ex, ran := p.runPendingTraps(f, r, s.name); ran {
			if ex {
				code, exited = c, true
			}
		}
	}
	if killed != syscall.SIGKILL && p.ctx.Err() == nil {
		if exitTrap, ok := f.trap("EXIT"); ok && exitTrap != "" {
			if killed != 0 {
				f.rearm()
			}
			f.setInTrap(true)
			tf, perr := parseScript(exitTrap, s.name)
			if perr == nil {
				p.prepare(f, tf)
				err := r.Run(f.runCtx(), tf)
				if r.Exited() {
					code, killed = statusOf(err), 0
				}
			}
			f.setInTrap(false)
		}
	}
	if killed != 0 {
		code = 128 + int(killed)
	}
	// Background jobs die with their shell; wait for them to be gone. A
	// process substitution's job may block on a pipe nobody opened: close
	// the shell's pipes.
	f.endJobs(errShellExited)
	p.closeFramePsubs(f)
	f.setInTrap(true)
	p.mu.Lock()
	f.ending = true
	p.mu.Unlock()
	_ = r.Run(context.WithValue(context.WithoutCancel(f.base), frameKey{}, f), waitStmt())
	p.releaseHolds(f)
	return code, killed
}

func waitStmt() *syntax.File {
	f, _ := parseScript("wait", "bash")
	return f
}

// statusOf turns a Run result into an exit code.
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	var es interp.ExitStatus
	if errors.As(err, &es) {
		return int(es)
	}
	return 1
}

// runPendingTraps runs the traps of signals that arrived since the last
// command boundary. It reports the status if a trap exited the shell.
func (p *process) runPendingTraps(f *frame, r *interp.Runner, name string) (code int, exited, ran bool) {
	for {
		trapCode, ok := f.nextTrap()
		if !ok {
			return code, exited, ran
		}
		ran = true
		tf, err := parseScript(trapCode, name)
		if err != nil {
			continue
		}
		p.prepare(f, tf)
		f.setInTrap(true)
		err = r.Run(f.runCtx(), tf)
		f.setInTrap(false)
		if r.Exited() || f.ctx.Err() != nil {
			return statusOf(err), true, true
		}
	}
}

// readProfile runs the login files: /etc/profile, then the first of
// ~/.bash_profile, ~/.bash_login and ~/.profile, from the host filesystem.
func (p *process) readProfile(f *frame, r *interp.Runner, s shellSpec) (int, bool) {
	home := s.env.Get("HOME").Str
	files := []string{"/etc/profile"}
	for _, n := range []string{".bash_profile", ".bash_login", ".profile"} {
		name := path.Join(home, n)
		if _, err := p.fs.Stat(name); err == nil {
			files = append(files, name)
			break
		}
	}
	for _, name := range files {
		b, err := afReadFile(p.fs, name)
		if err != nil {
			if !isNotExist(err) {
				fmt.Fprintf(s.stderr, "bash: %s: %s\n", name, errText(err))
			}
			continue
		}
		pf, err := parseScript(string(b), name)
		if err != nil {
			fmt.Fprintf(s.stderr, "bash: %s: %s\n", name, syntaxMessage(err))
			continue
		}
		p.prepare(f, pf)
		err = r.Run(f.runCtx(), pf)
		if r.Exited() || f.ctx.Err() != nil {
			return statusOf(err), true
		}
	}
	return 0, false
}

// interactive reads commands from s.src as they come and runs them, with
// prompts when s.prompt is set.
func (p *process) interactive(f *frame, r *interp.Runner, s shellSpec) (code int, exited bool) {
	if file, ok := s.src.(*os.File); ok {
		stop := context.AfterFunc(f.ctx, func() { _ = file.SetReadDeadline(time.Now()) })
		defer stop()
	}
	prompt := func(ps string) {
		if s.prompt {
			fmt.Fprint(s.stderr, ps)
		}
	}
	parser := syntax.NewParser(syntax.Variant(syntax.LangBash))
	prompt(p.ps1(r))
	for stmts, err := range parser.InteractiveSeq(s.src) {
		if err != nil {
			if f.ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				fmt.Fprintf(s.stderr, "bash: %s\n", syntaxMessage(err))
				code = 2
				if s.prompt {
					prompt(p.ps1(r))
					continue
				}
			}
			return code, false
		}
		if parser.Incomplete() {
			prompt("> ")
			continue
		}
		for _, st := range stmts {
			file := p.prepare(f, &syntax.File{Name: s.name, Stmts: []*syntax.Stmt{st}})
			err := r.Run(f.runCtx(), file)
			code = statusOf(err)
			if r.Exited() {
				return code, true
			}
			if f.ctx.Err() != nil {
				return code, false
			}
		}
		if c, ex, _ := p.runPendingTraps(f, r, s.name); ex {
			return c, true
		}
		prompt(p.ps1(r))
	}
	return code, false
}

func (p *process) ps1(r *interp.Runner) string {
	dir := r.Dir
	if dir == p.user.Home {
		dir = "~"
	} else if strings.HasPrefix(dir, p.user.Home+"/") {
		dir = "~" + dir[len(p.user.Home):]
	}
	sign := "$"
	if p.user.UID == 0 {
		sign = "#"
	}
	host, _, _ := strings.Cut(p.e.hostname, ".")
	return fmt.Sprintf("%s@%s:%s%s ", p.user.Name, host, dir, sign)
}

// callHandler runs before every simple command: it honours SIGSTOP, runs
// pending traps, and takes over the builtins the interpreter lacks or gets
// wrong (trap for signals, kill, cd's messages, command -v and type).
func (p *process) callHandler(ctx context.Context, args []string) ([]string, error) {
	if err := p.pauseIfStopped(ctx); err != nil {
		return nil, err
	}
	f := frameOf(ctx)
	if f != nil {
		if line := posLine(interp.HandlerCtx(ctx).Pos); line > 0 {
			f.lastLine.Store(int64(line))
		}
	}
	if f != nil && !strings.HasPrefix(args[0], "__jobsim_") && f.hasPending() {
		return append([]string{cmdRunTraps}, args...), nil
	}
	switch args[0] {
	case "echo", "printf":
		// They always write: to a pipe with no reader that is SIGPIPE,
		// which kills the (sub)shell they run in (see sigpipe.go).
		if f != nil && readerGone(interp.HandlerCtx(ctx).Stdout) {
			if _, trapped := f.trap("PIPE"); !trapped {
				return []string{"exit", strconv.Itoa(sigpipeStatus)}, nil
			}
		}
	case "exec":
		if len(args) > 1 && f != nil {
			// The command replaces the shell: signals are the new
			// command's business, the shell's traps are gone.
			p.mu.Lock()
			f.execing = true
			p.mu.Unlock()
		}
	case "trap":
		return p.trapCommand(ctx, f, args)
	case "eval":
		return p.rewriteEval(args), nil
	case "source", ".":
		return p.rewriteSource(ctx, args), nil
	case "cd":
		return p.cdCheck(ctx, args), nil
	case "command":
		if len(args) == 3 && (args[1] == "-v" || args[1] == "-V") && !lookupPATH(ctx) {
			return append([]string{cmdLookup}, args...), nil
		}
	case "type":
		if len(args) >= 2 && !lookupPATH(ctx) {
			return append([]string{cmdLookup}, args...), nil
		}
	case "wait":
		if f != nil && !f.isEnding() {
			return append([]string{cmdWait}, args[1:]...), nil
		}
	case "kill", "ulimit", "umask", "jobs", "disown", "suspend":
		return append([]string{cmdPrefix + args[0]}, args[1:]...), nil
	}
	return args, nil
}

// cdCheck prints bash's messages for a directory cd cannot enter; the
// interpreter's own are worded differently.
func (p *process) cdCheck(ctx context.Context, args []string) []string {
	if len(args) != 2 || args[1] == "-" || args[1] == "" {
		return args
	}
	hc := interp.HandlerCtx(ctx)
	target := args[1]
	abs := absPath(hc.Dir, target)
	fi, err := p.fs.Stat(abs)
	msg := ""
	switch {
	case err != nil:
		msg = errText(err)
	case !fi.IsDir():
		msg = "Not a directory"
	case p.access(abs, interp.AccessExec) != nil:
		msg = "Permission denied"
	}
	if msg == "" {
		return args
	}
	fmt.Fprintf(hc.Stderr, "%scd: %s: %s\n", msgPrefix(ctx, posLine(hc.Pos)), target, msg)
	return []string{"false"}
}

// trapCommand handles trap: signal traps are kept by the executor (the
// interpreter knows only EXIT and ERR); ERR is also handed to the
// interpreter, which runs it.
func (p *process) trapCommand(ctx context.Context, f *frame, args []string) ([]string, error) {
	hc := interp.HandlerCtx(ctx)
	a := args[1:]
	printMode := false
	for len(a) > 0 && len(a[0]) > 1 && a[0][0] == '-' {
		opt := a[0]
		a = a[1:]
		if opt == "--" {
			break
		}
		switch opt {
		case "-p":
			printMode = true
		case "-l":
			printSignalList(hc.Stdout)
			return []string{":"}, nil
		default:
			fmt.Fprintf(hc.Stderr, "%strap: %s: invalid option\ntrap: usage: trap [-lp] [[arg] signal_spec ...]\n", msgPrefix(ctx, posLine(hc.Pos)), opt)
			return []string{cmdPrefix + "exit", "2"}, nil
		}
	}
	if f == nil {
		return []string{":"}, nil
	}
	if len(a) == 0 || printMode {
		p.printTraps(hc.Stdout, f, a)
		return []string{":"}, nil
	}
	code, reset := "", false
	if len(a) == 1 {
		reset = true
	} else if _, isNum := strconv.Atoi(a[0]); isNum == nil {
		reset = true // "trap 1 2" resets both, as bash does
	} else {
		code, a = a[0], a[1:]
		reset = code == "-"
	}
	bad := false
	passERR := false
	p.mu.Lock()
	for _, s := range a {
		name, ok := trapName(s)
		if !ok {
			fmt.Fprintf(hc.Stderr, "%strap: %s: invalid signal specification\n", msgPrefix(ctx, posLine(hc.Pos)), s)
			bad = true
			continue
		}
		if name == "ERR" {
			passERR = true
		}
		if reset {
			delete(f.traps, name)
		} else {
			f.traps[name] = code
		}
	}
	p.mu.Unlock()
	if passERR {
		if reset {
			return []string{"trap", "-", "ERR"}, nil
		}
		return []string{"trap", code, "ERR"}, nil
	}
	if bad {
		return []string{"false"}, nil
	}
	return []string{":"}, nil
}

// trapName normalises a trap sigspec: EXIT, ERR, DEBUG, RETURN, or a signal
// name without SIG.
func trapName(s string) (string, bool) {
	switch u := strings.ToUpper(s); u {
	case "EXIT", "0":
		return "EXIT", true
	case "ERR", "DEBUG", "RETURN":
		return u, true
	}
	sig, ok := parseSignal(s)
	if !ok || sig == 0 {
		return "", false
	}
	return sigName(sig), true
}

func (p *process) printTraps(w io.Writer, f *frame, only []string) {
	p.mu.Lock()
	traps := make(map[string]string, len(f.traps))
	for k, v := range f.traps {
		traps[k] = v
	}
	p.mu.Unlock()
	var names []string
	if len(only) > 0 {
		for _, s := range only {
			if n, ok := trapName(s); ok {
				names = append(names, n)
			}
		}
	} else {
		names = append(names, "EXIT")
		for i := 1; i < len(signalNames); i++ {
			names = append(names, signalNames[i])
		}
		names = append(names, "DEBUG", "ERR", "RETURN")
	}
	for _, n := range names {
		code, ok := traps[n]
		if !ok {
			continue
		}
		label := n
		if n != "EXIT" && n != "ERR" && n != "DEBUG" && n != "RETURN" {
			label = "SIG" + n
		}
		fmt.Fprintf(w, "trap -- %s %s\n", shellQuote(code), label)
	}
}

func printSignalList(w io.Writer) {
	var b strings.Builder
	col := 0
	for i := 1; i < len(signalNames); i++ {
		fmt.Fprintf(&b, "%2d) SIG%-7s", i, signalNames[i])
		col++
		if col == 5 {
			b.WriteString("\n")
			col = 0
		} else {
			b.WriteString("\t")
		}
	}
	if col != 0 {
		b.WriteString("\n")
	}
	_, _ = io.WriteString(w, b.String())
}

// shellQuote quotes s in single quotes as bash prints it.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quoteArgs turns args back into a command line that expands to them.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		s, err := syntax.Quote(a, syntax.LangBash)
		if err != nil {
			s = shellQuote(a)
		}
		q[i] = s
	}
	return strings.Join(q, " ")
}

// execHandler runs every command that is not a shell builtin or function.
func (p *process) execHandler(ctx context.Context, args []string) error {
	if err := p.pauseIfStopped(ctx); err != nil {
		return err
	}
	hc := interp.HandlerCtx(ctx)
	f := frameOf(ctx)
	switch args[0] {
	case cmdRunTraps:
		for {
			code, ok := f.nextTrap()
			if !ok {
				break
			}
			f.setInTrap(true)
			if text, ok := p.rewriteText(code, "bash"); ok {
				code = text
			}
			err := hc.Builtin(ctx, []string{"eval", code + "\n" + cmdTrapDone})
			p.mu.Lock()
			done := f.trapDone
			f.inTrap = false
			p.mu.Unlock()
			if !done {
				return err // the trap exited, returned or failed under set -e
			}
		}
		return hc.Builtin(ctx, []string{"eval", quoteArgs(args[1:])})
	case cmdTrapDone:
		p.mu.Lock()
		f.trapDone = true
		p.mu.Unlock()
		return nil
	case cmdWait:
		return p.waitJobs(ctx, hc, args[1:])
	case cmdBg:
		if len(args) == 2 {
			return p.startBackground(ctx, hc, args[1])
		}
	case cmdBgRun:
		if len(args) == 3 {
			return p.runBackground(ctx, hc, args[1], args[2])
		}
	case cmdLookup:
		return p.lookupCommand(ctx, hc, args[1:])
	case cmdPsub:
		if len(args) == 3 {
			return p.startProcSubst(ctx, hc, args[1], args[2])
		}
	}
	c := p.newCall(ctx, hc, args)
	return exitError(p.dispatch(ctx, c))
}

// exitError turns an exit code into what an exec handler returns (nil for
// success: an ExitStatus(0) would panic the interpreter).
func exitError(code int) error {
	if code == 0 {
		return nil
	}
	return interp.ExitStatus(uint8(code))
}

func (p *process) newCall(ctx context.Context, hc interp.HandlerContext, args []string) *Call {
	var in io.Reader = hc.Stdin
	if f, ok := hc.Stdin.(*os.File); ok && f == nil || hc.Stdin == nil {
		in = strings.NewReader("")
	}
	return &Call{
		Args:   args,
		Dir:    hc.Dir,
		User:   p.user,
		Host:   p.e.hostname,
		Pid:    p.pid,
		Stdin:  in,
		Stdout: hc.Stdout,
		Stderr: hc.Stderr,
		FS:     p.fs,
		Clock:  p.e.clock,
		env:    hc.Env,
		p:      p,
		shell:  msgPrefix(ctx, posLine(hc.Pos)),
	}
}

// standardBinDirs are where the builtins pretend to live.
var standardBinDirs = []string{"/bin", "/usr/bin", "/usr/local/bin", "/sbin", "/usr/sbin"}

// lookupBuiltin finds the builtin for a command name or a path to one of the
// standard bin directories.
func (p *process) lookupBuiltin(name string) Builtin {
	if strings.Contains(name, "/") {
		dir, base := path.Split(name)
		if !slices.Contains(standardBinDirs, path.Clean(dir)) {
			return nil
		}
		name = base
	}
	if fn, ok := p.e.extra[name]; ok {
		return fn
	}
	return coreBuiltins[name]
}

// dispatch runs one command: a builtin, or a script from the host
// filesystem, or reports it missing.
func (p *process) dispatch(ctx context.Context, c *Call) int {
	name := c.Args[0]
	if strings.HasPrefix(name, cmdPrefix) {
		if fn := internalBuiltins[name[1:]]; fn != nil {
			return p.runBuiltin(ctx, c, fn)
		}
	}
	if strings.Contains(name, "/") {
		// Files in the standard bin directories of a virtual host stand
		// for the builtins of the same name.
		if fn := p.lookupBuiltin(name); fn != nil {
			return p.runBuiltin(ctx, c, fn)
		}
		return p.execFile(ctx, c, c.Abs(name))
	}
	if fn := p.lookupBuiltin(name); fn != nil {
		return p.runBuiltin(ctx, c, fn)
	}
	if file := p.searchPath(c, name); file != "" {
		c.Args[0] = file // bash runs it with the path it found as $0
		return p.execFile(ctx, c, file)
	}
	fmt.Fprintf(c.Stderr, "%s%s: command not found\n", c.shell, name)
	return 127
}

// runsCommands are the builtins that run other commands; those commands,
// not the builtin, are the shell's foreground children.
var runsCommands = map[string]bool{"bash": true, "sh": true, "env": true, "nohup": true, "timeout": true, "xargs": true}

// runBuiltin runs fn as the shell's foreground child: a signal that would
// kill a real child ends its context, and a read from standard input.
func (p *process) runBuiltin(ctx context.Context, c *Call, fn Builtin) int {
	if runsCommands[c.name()] {
		return fn(ctx, c)
	}
	fctx, done := frameOf(ctx).foreground(ctx)
	defer done()
	fctx, sigpipe := withSIGPIPE(fctx, c)
	if file, ok := c.Stdin.(*os.File); ok && file != nil {
		stop := context.AfterFunc(fctx, func() { _ = file.SetReadDeadline(time.Now()) })
		defer func() {
			if !stop() {
				_ = file.SetReadDeadline(time.Time{})
			}
		}()
	}
	return sigpipe(fn(fctx, c))
}

// searchPath looks name up in PATH on the host filesystem.
func (p *process) searchPath(c *Call, name string) string {
	for _, dir := range strings.Split(c.Getenv("PATH"), ":") {
		if dir == "" {
			dir = "."
		}
		file := c.Abs(path.Join(dir, name))
		fi, err := p.fs.Stat(file)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return file
		}
	}
	return ""
}

// execFile runs a file of the host filesystem: a shell script (with or
// without a #! line naming a shell). Nothing else can run on a virtual host.
func (p *process) execFile(ctx context.Context, c *Call, file string) int {
	name := c.Args[0]
	fi, err := p.fs.Stat(file)
	if err != nil {
		fmt.Fprintf(c.Stderr, "%s%s: %s\n", c.shell, name, errText(err))
		if errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	if fi.IsDir() {
		fmt.Fprintf(c.Stderr, "%s%s: Is a directory\n", c.shell, name)
		return 126
	}
	if p.access(file, interp.AccessExec) != nil {
		fmt.Fprintf(c.Stderr, "%s%s: Permission denied\n", c.shell, name)
		return 126
	}
	b, err := p.readFile(file)
	if err != nil {
		fmt.Fprintf(c.Stderr, "%s%s: %s\n", c.shell, name, errText(err))
		return 126
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if bytes.HasPrefix(first, []byte("#!")) {
		fields := strings.Fields(string(first[2:]))
		if len(fields) == 0 || !runsAsShell(fields) {
			fmt.Fprintf(c.Stderr, "%s%s: cannot execute: required file not found\n", c.shell, name)
			return 127
		}
	} else if bytes.IndexByte(first, 0) >= 0 {
		fmt.Fprintf(c.Stderr, "%s%s: cannot execute binary file: Exec format error\n", c.shell, name)
		return 126
	}
	sf, err := parseScript(string(b), name)
	if err != nil {
		fmt.Fprintf(c.Stderr, "%s: %s\n", name, syntaxMessage(err))
		return 2
	}
	env := newEnviron()
	env.setList(c.Environ())
	code, _ := p.runShell(ctx, shellSpec{
		name: name, file: sf, params: c.Args[1:], env: env, dir: c.Dir,
		stdin: stdinFile(c.Stdin), stdout: c.Stdout, stderr: c.Stderr,
	})
	return code
}

// runsAsShell reports whether a #! line names a shell the interpreter can
// stand in for (directly or through env).
func runsAsShell(fields []string) bool {
	if isShell(fields[0]) {
		return true
	}
	if path.Base(fields[0]) == "env" {
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, "-") {
				continue
			}
			return isShell(f)
		}
	}
	return false
}

// stdinFile returns r as the *os.File a nested interpreter needs, or nil.
func stdinFile(r io.Reader) *os.File {
	if f, ok := r.(*os.File); ok {
		return f
	}
	return nil
}

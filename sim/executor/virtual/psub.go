package virtual

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// Process substitution without the real disk.
//
// The interpreter implements <(...) and >(...) with a named pipe made by
// mkfifo in $TMPDIR or os.TempDir, and opens such paths itself, past the
// open handler: a shell user could learn that real directory
// (`echo <(true)`) and create files in it. Instead, prepare rewrites each
// process substitution to a command substitution of the __jobsim_psub
// builtin, which makes an in-memory pipe named /dev/fd/N (N from 63 down,
// as bash numbers them), starts the substituted commands in the background
// of the current shell with one end of the pipe as their standard output
// (<(...)) or input (>(...)), and prints the name. Opening /dev/fd/N, by a
// redirection or a builtin, gives the other end. The pipes of a shell are
// closed when it ends, so that nothing blocks on them.
//
// The interpreter's own FIFO directory is set to a path with a NUL byte,
// which no file name can hold: should a process substitution reach it (in
// a file sourced with arguments), mkfifo fails and nothing is created.

const cmdPsub = "__jobsim_psub"

// noFIFODir is the interpreter's temporary directory: no real path.
const noFIFODir = "/\x00no-fifos"

// psubEnd is one registered /dev/fd/N: a pipe of a process substitution,
// or the shell's standard output handed to a >(...) job.
type psubEnd struct {
	r      *io.PipeReader
	w      *io.PipeWriter
	stdout io.Writer // set for the standard output of a >(...) job
	in     bool      // <(...): the job writes, the command reads
	f      *frame
}

// rewriteProcSubst replaces each process substitution in n, innermost
// first, by $(__jobsim_psub in|out TOKEN), TOKEN naming its commands' text.
func (p *process) rewriteProcSubst(n syntax.Node) {
	type site struct {
		w *syntax.Word
		i int
	}
	var sites []site
	syntax.Walk(n, func(n syntax.Node) bool {
		if w, ok := n.(*syntax.Word); ok {
			for i, part := range w.Parts {
				if _, ok := part.(*syntax.ProcSubst); ok {
					sites = append(sites, site{w, i})
				}
			}
		}
		return true
	})
	printer := syntax.NewPrinter()
	for i := len(sites) - 1; i >= 0; i-- {
		s := sites[i]
		ps := s.w.Parts[s.i].(*syntax.ProcSubst)
		pos := ps.Pos()
		lit := func(v string) *syntax.Word {
			return &syntax.Word{Parts: []syntax.WordPart{&syntax.Lit{ValuePos: pos, ValueEnd: pos, Value: v}}}
		}
		if len(ps.Stmts) == 0 {
			s.w.Parts[s.i] = &syntax.Lit{ValuePos: pos, ValueEnd: pos, Value: os.DevNull}
			continue
		}
		var b bytes.Buffer
		for _, st := range ps.Stmts {
			if err := printer.Print(&b, st); err != nil {
				continue
			}
			b.WriteByte('\n')
		}
		dir := "in"
		if ps.Op == syntax.CmdOut {
			dir = "out"
		}
		p.mu.Lock()
		p.nextID++
		tok := strconv.Itoa(p.nextID)
		p.bgSrc[tok] = b.String()
		p.mu.Unlock()
		s.w.Parts[s.i] = &syntax.CmdSubst{Left: pos, Right: pos, Stmts: []*syntax.Stmt{{
			Position: pos, Cmd: &syntax.CallExpr{Args: []*syntax.Word{lit(cmdPsub), lit(dir), lit(tok)}},
		}}}
	}
}

// hasProcSubst reports whether n holds a process substitution.
func hasProcSubst(n syntax.Node) bool {
	found := false
	syntax.Walk(n, func(n syntax.Node) bool {
		if _, ok := n.(*syntax.ProcSubst); ok {
			found = true
		}
		return !found
	})
	return found
}

// rewriteEval rewrites the process substitutions of eval'd text.
func (p *process) rewriteEval(args []string) []string {
	if text, ok := p.rewriteText(strings.Join(args[1:], " "), "bash"); ok {
		return []string{"eval", text}
	}
	return args
}

// rewriteText rewrites the process substitutions of shell text that the
// interpreter would parse itself; ok is false when it has none.
func (p *process) rewriteText(src, name string) (string, bool) {
	if !strings.Contains(src, "(") {
		return "", false
	}
	f, err := parseScript(src, name)
	if err != nil || !hasProcSubst(f) {
		return "", false
	}
	p.rewriteProcSubst(f)
	var b bytes.Buffer
	if err := syntax.NewPrinter().Print(&b, f); err != nil {
		return "", false
	}
	return b.String(), true
}

// startProcSubst is the __jobsim_psub builtin: it starts the commands of
// token tok in the background of the calling shell, connected to a new
// /dev/fd/N, and prints that name (the value of the substitution).
func (p *process) startProcSubst(ctx context.Context, hc interp.HandlerContext, dir, tok string) error {
	f := frameOf(ctx)
	p.mu.Lock()
	src, ok := p.bgSrc[tok]
	p.mu.Unlock()
	if !ok || f == nil {
		return interp.ExitStatus(1)
	}
	r, w := io.Pipe()
	end := &psubEnd{r: r, w: w, in: dir == "in", f: f}
	name, err := p.addPsub(end)
	if err != nil {
		fmt.Fprintf(hc.Stderr, "bash: %v\n", err)
		return interp.ExitStatus(1)
	}
	var text string
	if end.in {
		text = "{ " + src + "} >" + name + " &"
	} else {
		out, err := p.addPsub(&psubEnd{stdout: f.stdout, f: f})
		if err != nil {
			p.closePsub(name)
			fmt.Fprintf(hc.Stderr, "bash: %v\n", err)
			return interp.ExitStatus(1)
		}
		text = "{ " + src + "} <" + name + " >" + out + " &"
	}
	if err := hc.Builtin(ctx, []string{"eval", text}); err != nil {
		p.closePsub(name)
		return err
	}
	_, err = io.WriteString(hc.Stdout, name)
	return err
}

// addPsub registers an end under the highest free /dev/fd/N below 64.
func (p *process) addPsub(e *psubEnd) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.psubs == nil {
		p.psubs = map[string]*psubEnd{}
	}
	for n := 63; n >= 10; n-- {
		name := "/dev/fd/" + strconv.Itoa(n)
		if _, used := p.psubs[name]; !used {
			p.psubs[name] = e
			return name, nil
		}
	}
	return "", errors.New("too many process substitutions")
}

// forgetPsub unregisters /dev/fd/N: later opens fail as for a closed
// descriptor.
func (p *process) forgetPsub(name string) {
	p.mu.Lock()
	delete(p.psubs, name)
	p.mu.Unlock()
}

// closePsub closes both ends of /dev/fd/N and forgets it.
func (p *process) closePsub(name string) {
	p.mu.Lock()
	e := p.psubs[name]
	delete(p.psubs, name)
	p.mu.Unlock()
	if e != nil && e.r != nil {
		_ = e.r.CloseWithError(syscall.EPIPE)
		_ = e.w.Close()
	}
}

// closeFramePsubs closes the pipes the shell of f made: its jobs and
// readers stop waiting on them.
func (p *process) closeFramePsubs(f *frame) {
	p.mu.Lock()
	var names []string
	for name, e := range p.psubs {
		if e.f == f {
			names = append(names, name)
		}
	}
	p.mu.Unlock()
	for _, name := range names {
		p.closePsub(name)
	}
}

// isPsub reports whether name is a process substitution's /dev/fd/N.
func (p *process) isPsub(name string) bool {
	if !strings.HasPrefix(name, "/dev/fd/") && !strings.HasPrefix(name, "/proc/self/fd/") {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.psubs["/dev/fd/"+name[strings.LastIndexByte(name, '/')+1:]]
	return ok
}

// openPsub opens /dev/fd/N when it is a process substitution's pipe: the
// write end for writing, else the read end. ok is false for other names.
func (p *process) openPsub(name string, flag int) (f *psubFile, ok bool) {
	if !strings.HasPrefix(name, "/dev/fd/") && !strings.HasPrefix(name, "/proc/self/fd/") {
		return nil, false
	}
	name = "/dev/fd/" + name[strings.LastIndexByte(name, '/')+1:]
	p.mu.Lock()
	e, ok := p.psubs[name]
	if ok && e.stdout != nil {
		delete(p.psubs, name) // handed to one job
	}
	p.mu.Unlock()
	if !ok {
		return nil, false
	}
	pf := &psubFile{name: name}
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	switch {
	case e.stdout != nil:
		pf.w = writeOnly{e.stdout} // the shell's, not closed
	case write && e.in: // the job's end of <(...)
		pf.w, pf.close = e.w, func() { _ = e.w.Close() }
	case e.in: // the command's end of <(...): the job's writes now fail
		pf.r, pf.close = e.r, func() { _ = e.r.CloseWithError(syscall.EPIPE); p.forgetPsub(name) }
	case write: // the command's end of >(...): the job reads to the end
		pf.w, pf.close = e.w, func() { _ = e.w.Close(); p.forgetPsub(name) }
	default: // the job's end of >(...)
		pf.r, pf.close = e.r, func() { _ = e.r.CloseWithError(syscall.EPIPE) }
	}
	return pf, true
}

// psubFile is an open end of a process substitution, as an afero.File.
type psubFile struct {
	name  string
	r     io.Reader
	w     io.Writer
	close func() // nil: nothing to close
	once  sync.Once
}

func (f *psubFile) Read(b []byte) (int, error) {
	if f.r == nil {
		return 0, syscall.EBADF
	}
	return f.r.Read(b)
}

func (f *psubFile) Write(b []byte) (int, error) {
	if f.w == nil {
		return 0, syscall.EBADF
	}
	n, err := f.w.Write(b)
	if errors.Is(err, io.ErrClosedPipe) {
		err = syscall.EPIPE
	}
	return n, err
}

func (f *psubFile) Close() error {
	if f.close != nil {
		f.once.Do(f.close)
	}
	return nil
}

func (f *psubFile) Name() string { return f.name }
func (f *psubFile) Stat() (fs.FileInfo, error) {
	return psubInfo{name: f.name[strings.LastIndexByte(f.name, '/')+1:]}, nil
}
func (f *psubFile) ReadAt([]byte, int64) (int, error)  { return 0, syscall.ESPIPE }
func (f *psubFile) WriteAt([]byte, int64) (int, error) { return 0, syscall.ESPIPE }
func (f *psubFile) Seek(int64, int) (int64, error)     { return 0, syscall.ESPIPE }
func (f *psubFile) Readdir(int) ([]fs.FileInfo, error) { return nil, syscall.ENOTDIR }
func (f *psubFile) Readdirnames(int) ([]string, error) { return nil, syscall.ENOTDIR }
func (f *psubFile) Sync() error                        { return nil }
func (f *psubFile) Truncate(int64) error               { return syscall.EINVAL }
func (f *psubFile) WriteString(s string) (int, error)  { return f.Write([]byte(s)) }

var _ afero.File = (*psubFile)(nil)

// psubInfo describes /dev/fd/N: a pipe.
type psubInfo struct{ name string }

func (i psubInfo) Name() string       { return i.name }
func (i psubInfo) Size() int64        { return 0 }
func (i psubInfo) Mode() fs.FileMode  { return fs.ModeNamedPipe | 0o600 }
func (i psubInfo) ModTime() time.Time { return time.Time{} }
func (i psubInfo) IsDir() bool        { return false }
func (i psubInfo) Sys() any           { return nil }

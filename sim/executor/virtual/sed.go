package virtual

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

var errIsDir = syscall.EISDIR

func isDirErr(err error) bool { return errors.Is(err, syscall.EISDIR) }

// sedCmd is a small sed: addresses (N, $, /re/, ranges), and the commands
// s (with g, p, I and N flags), d, p and q; -n, -e, -E/-r and -i.
func sedCmd(ctx context.Context, c *Call) int {
	var args []string
	inPlace := false
	for _, a := range c.Args[1:] {
		if a == "-i" || strings.HasPrefix(a, "--in-place") || strings.HasPrefix(a, "-i.") {
			inPlace = true
			continue
		}
		args = append(args, a)
	}
	f, ops, ok := parseFlags(c, args, "nErsuz", "e", map[string]byte{
		"quiet": 'n', "silent": 'n', "expression": 'e', "regexp-extended": 'E',
	})
	if !ok {
		return c.usageStatus()
	}
	scripts := f.all('e')
	if len(scripts) == 0 {
		if len(ops) == 0 {
			return c.usageError("")
		}
		scripts, ops = []string{ops[0]}, ops[1:]
	}
	prog, err := parseSed(strings.Join(scripts, "\n"), f.has('E') || f.has('r'))
	if err != nil {
		c.warnf("-e expression #1, char 0: %s", err)
		return 1
	}
	quiet := f.has('n')
	if inPlace {
		status := 0
		for _, op := range ops {
			abs := c.Abs(op)
			data, err := c.p.readFile(abs)
			if err != nil {
				c.warnf("can't read %s: %s", op, errText(err))
				status = 2
				continue
			}
			out, _ := prog.run(string(data), quiet)
			fh, err := c.p.openFile(abs, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				c.warnf("couldn't open file %s: %s", op, errText(err))
				status = 4
				continue
			}
			_, _ = io.WriteString(fh, out)
			fh.Close()
		}
		return status
	}
	if len(ops) == 0 {
		ops = []string{"-"}
	}
	var all strings.Builder
	status := 0
	for _, op := range ops {
		r, err := c.input(op)
		if err != nil {
			c.warnf("can't read %s: %s", op, errText(err))
			status = 2
			continue
		}
		data, _ := io.ReadAll(r)
		r.Close()
		all.Write(data)
	}
	out, _ := prog.run(all.String(), quiet)
	_, _ = io.WriteString(c.Stdout, out)
	return status
}

type sedAddr struct {
	line int // >0: a line number; -1: the last line
	re   *regexp.Regexp
}

type sedCmdT struct {
	a1, a2  *sedAddr
	cmd     byte
	re      *regexp.Regexp
	repl    string
	global  bool
	nth     int
	print   bool
	inRange bool
}

type sedProg []*sedCmdT

func parseSed(src string, ere bool) (sedProg, error) {
	var prog sedProg
	i := 0
	readAddr := func() (*sedAddr, error) {
		switch {
		case i < len(src) && src[i] == '$':
			i++
			return &sedAddr{line: -1}, nil
		case i < len(src) && src[i] >= '0' && src[i] <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(src[i:j])
			i = j
			return &sedAddr{line: n}, nil
		case i < len(src) && src[i] == '/':
			j := strings.IndexByte(src[i+1:], '/')
			if j < 0 {
				return nil, errors.New("unterminated address regex")
			}
			re, err := compilePOSIX(src[i+1:i+1+j], ere, false)
			if err != nil {
				return nil, err
			}
			i += j + 2
			return &sedAddr{re: re}, nil
		}
		return nil, nil
	}
	for i < len(src) {
		for i < len(src) && strings.IndexByte(" \t\n;", src[i]) >= 0 {
			i++
		}
		if i >= len(src) {
			break
		}
		cmd := &sedCmdT{}
		var err error
		if cmd.a1, err = readAddr(); err != nil {
			return nil, err
		}
		if cmd.a1 != nil && i < len(src) && src[i] == ',' {
			i++
			if cmd.a2, err = readAddr(); err != nil {
				return nil, err
			}
		}
		if i >= len(src) {
			return nil, errors.New("missing command")
		}
		cmd.cmd = src[i]
		i++
		switch cmd.cmd {
		case 'd', 'p', 'q':
		case 's':
			if i >= len(src) {
				return nil, errors.New("unterminated `s' command")
			}
			delim := src[i]
			i++
			parts := make([]string, 0, 2)
			for len(parts) < 2 {
				var b strings.Builder
				for i < len(src) && src[i] != delim {
					if src[i] == '\\' && i+1 < len(src) && src[i+1] == delim {
						i++
					}
					if src[i] == '\\' && i+1 < len(src) {
						b.WriteByte(src[i])
						i++
					}
					b.WriteByte(src[i])
					i++
				}
				if i >= len(src) {
					return nil, errors.New("unterminated `s' command")
				}
				i++
				parts = append(parts, b.String())
			}
			flags := ""
			for i < len(src) && strings.IndexByte("gpI0123456789", src[i]) >= 0 {
				flags += string(src[i])
				i++
			}
			if cmd.re, err = compilePOSIX(parts[0], ere, strings.Contains(flags, "I")); err != nil {
				return nil, err
			}
			cmd.repl = sedRepl(parts[1])
			cmd.global = strings.Contains(flags, "g")
			cmd.print = strings.Contains(flags, "p")
			if n := strings.TrimFunc(flags, func(r rune) bool { return r < '0' || r > '9' }); n != "" {
				cmd.nth, _ = strconv.Atoi(n)
			}
		default:
			return nil, fmt.Errorf("unknown command: `%c'", cmd.cmd)
		}
		prog = append(prog, cmd)
	}
	return prog, nil
}

// sedRepl converts a sed replacement (& and \1..\9) to Go's template syntax.
func sedRepl(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '$':
			b.WriteString("$$")
		case ch == '&':
			b.WriteString("${0}")
		case ch == '\\' && i+1 < len(s):
			i++
			switch n := s[i]; {
			case n >= '0' && n <= '9':
				b.WriteString("${" + string(n) + "}")
			case n == 'n':
				b.WriteByte('\n')
			case n == 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(n)
			}
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func (a *sedAddr) match(n int, last bool, line string) bool {
	switch {
	case a.re != nil:
		return a.re.MatchString(line)
	case a.line == -1:
		return last
	}
	return a.line == n
}

func (prog sedProg) run(input string, quiet bool) (string, bool) {
	lines := strings.SplitAfter(input, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var out strings.Builder
	for _, cmd := range prog {
		cmd.inRange = false
	}
	for n, raw := range lines {
		line := strings.TrimSuffix(raw, "\n")
		nl := len(raw) > len(line)
		last := n == len(lines)-1
		deleted, quit := false, false
		for _, cmd := range prog {
			if !cmd.selects(n+1, last, line) {
				continue
			}
			switch cmd.cmd {
			case 'd':
				deleted = true
			case 'p':
				out.WriteString(line + "\n")
			case 'q':
				quit = true
			case 's':
				changed := false
				count := 0
				line = cmd.re.ReplaceAllStringFunc(line, func(m string) string {
					count++
					if (cmd.nth > 0 && count != cmd.nth) || (!cmd.global && cmd.nth == 0 && count > 1) {
						return m
					}
					changed = true
					sub := cmd.re.FindStringSubmatchIndex(m)
					return string(cmd.re.ExpandString(nil, cmd.repl, m, sub))
				})
				if changed && cmd.print {
					out.WriteString(line + "\n")
				}
			}
			if deleted || quit {
				break
			}
		}
		if !deleted && !quiet {
			out.WriteString(line)
			if nl {
				out.WriteByte('\n')
			}
		}
		if quit {
			break
		}
	}
	return out.String(), true
}

func (cmd *sedCmdT) selects(n int, last bool, line string) bool {
	if cmd.a1 == nil {
		return true
	}
	if cmd.a2 == nil {
		return cmd.a1.match(n, last, line)
	}
	if cmd.inRange {
		if cmd.a2.match(n, last, line) || (cmd.a2.re == nil && cmd.a2.line > 0 && n >= cmd.a2.line) {
			cmd.inRange = false
		}
		return true
	}
	if cmd.a1.match(n, last, line) {
		cmd.inRange = !(cmd.a2.re == nil && cmd.a2.line > 0 && cmd.a2.line <= n)
		return true
	}
	return false
}

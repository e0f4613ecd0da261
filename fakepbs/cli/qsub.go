package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakepbs"
	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/internal/getopt"
)

// qsubOptstring is qsub's GETOPT_ARGS (qsub_sup.c).
const qsubOptstring = "a:A:c:C:e:fhIj:J:k:l:m:M:N:o:p:q:r:R:S:u:v:VW:XzP:"

const qsubUsage = "usage: qsub [-a date_time] [-A account_string] [-c interval]\n" +
	"\t[-C directive_prefix] [-e path] [-f ] [-h ] [-I [-X]] [-j oe|eo] [-J X-Y[:Z]]\n" +
	"\t[-k keep] [-l resource_list] [-m mail_options] [-M user_list]\n" +
	"\t[-N jobname] [-o path] [-p priority] [-P project] [-q queue] [-r y|n]\n" +
	"\t[-R o|e|oe] [-S path] [-u user_list] [-W otherattributes=value...]\n" +
	"\t[-v variable_list] [-V ] [-z] [script | -- command [arg1 ...]]\n" +
	"       qsub --version\n"

const (
	passCmdline   = 3 // CMDLINE: options on the command line
	passDirective = 2 // CMDLINE-1: #PBS directives in the script
)

// ReadScriptPrompt is what qsub prints before reading a script from a
// terminal. A remote client prints it itself before it reads the terminal.
const ReadScriptPrompt = "Job script will be read from standard input. Submit with CTRL+D.\n"

const readScriptMsg = ReadScriptPrompt

// qsubState holds the options as qsub's process_opts accumulates them over
// the command line and the script's directives. set records, per option,
// the pass that last set it (OpenPBS's *_opt registers): a directive may
// only set what the command line did not.
type qsubState struct {
	set map[string]int
	now time.Time // what -a's dates are relative to

	startAt     time.Time
	account     string
	project     string
	checkpoint  string
	prefix      string
	errPath     string
	hold        bool
	interactive bool
	join        string
	array       string
	keep        string
	resources   []resource
	mailPoints  string
	mailUsers   string
	name        string
	nameSet     bool
	outPath     string
	priority    string
	destination string
	rerun       string
	remove      string
	shell       string
	userList    string
	vars        []string // -v, expanded
	allEnv      bool     // -V
	depend      string
	umask       string
	block       bool
	attrs       map[string]string
	x11         bool
	quiet       bool // -z
}

// qsubParse is the result of parsing qsub's command line.
type qsubParse struct {
	st         *qsubState
	script     string   // script operand; "" or "-" for standard input
	command    []string // after "--": the executable and its arguments
	usage      bool     // print the usage and exit 2
	exitCode   int      // exit at once with this status when non-zero
	fromStdin  bool
	versionArg bool
	usageMsgs  string // messages printed while parsing, before any usage
}

// NeedsStdin reports whether running cmd with args reads standard input: qsub
// without a script operand (or with "-") that gets as far as reading its
// script. A client that forwards the command elsewhere uses it to avoid
// reading (and blocking on) an open standard input nobody will send.
func NeedsStdin(cmd string, args []string) bool {
	if path.Base(cmd) != "qsub" {
		return false
	}
	p := parseQsubArgs("qsub", args, func(string) (string, bool) { return "x", true }, false, false, time.Now())
	return !p.usage && p.exitCode == 0 && !p.versionArg && p.fromStdin
}

// ScriptFile returns the script file qsub with args would read, as given
// (relative to the working directory), and false when it reads standard
// input, runs a "--" command or stops before reading a script. A client
// that forwards the command elsewhere reads the file itself, as the user.
func ScriptFile(cmd string, args []string) (string, bool) {
	if path.Base(cmd) != "qsub" {
		return "", false
	}
	p := parseQsubArgs("qsub", args, func(string) (string, bool) { return "x", true }, true, true, time.Now())
	if p.usage || p.exitCode != 0 || p.versionArg || len(p.command) > 0 || p.script == "" || p.script == "-" {
		return "", false
	}
	return p.script, true
}

// parseQsubArgs runs qsub's command-line pass. getenv answers -v's bare
// names; stdinTTY and stdoutTTY decide -I.
func parseQsubArgs(prog string, args []string, getenv func(string) (string, bool), stdinTTY, stdoutTTY bool, now time.Time) qsubParse {
	var p qsubParse
	if len(args) == 1 && strings.EqualFold(args[0], "--version") {
		p.versionArg = true
		return p
	}
	st := &qsubState{set: map[string]int{}, attrs: map[string]string{}, now: now}
	p.st = st
	var msgs bytes.Buffer
	g := getopt.Parse(prog, args, getopt.Spec{Short: qsubOptstring})
	errflg, code := st.apply(g.Options, passCmdline, &msgs, getenv, stdinTTY, stdoutTTY)
	p.usageMsgs = msgs.String()
	if code != 0 {
		p.exitCode = code
		return p
	}
	if g.DashDash {
		before := g.Operands[:g.FirstAfterDashDash]
		after := g.Operands[g.FirstAfterDashDash:]
		if len(before) > 0 || len(after) == 0 {
			errflg++
		}
		p.command = after
	} else {
		if len(g.Operands) > 1 {
			errflg++
		}
		if len(g.Operands) == 1 {
			p.script = g.Operands[0]
		}
	}
	if errflg > 0 || g.Permuted {
		p.usage = true
		return p
	}
	p.fromStdin = len(p.command) == 0 && (p.script == "" || p.script == "-") && !st.interactive
	return p
}

// apply is process_opts for one pass; it returns the error count and, for
// errors that end qsub at once, the exit status.
func (st *qsubState) apply(opts []getopt.Option, pass int, msgs *bytes.Buffer, getenv func(string) (string, bool), stdinTTY, stdoutTTY bool) (int, int) {
	errflg := 0
	// illegal writes an option's error message and counts it.
	illegal := func(msg string) {
		msgs.WriteString(msg)
		errflg++
	}
	can := func(k string) bool {
		if st.set[k] <= pass {
			st.set[k] = pass
			return true
		}
		return false
	}
	// setters are the options that only set an attribute; -m and -p drop
	// the value's leading blanks.
	setters := map[rune]*string{
		'A': &st.account, 'P': &st.project, 'e': &st.errPath, 'j': &st.join, 'k': &st.keep,
		'm': &st.mailPoints, 'M': &st.mailUsers, 'o': &st.outPath, 'p': &st.priority,
		'q': &st.destination, 'R': &st.remove, 'S': &st.shell, 'u': &st.userList,
	}
	for _, o := range opts {
		if dst, ok := setters[o.Key]; ok {
			if can(string(o.Key)) {
				*dst = o.Arg
				if o.Key == 'm' || o.Key == 'p' {
					*dst = strings.TrimLeft(o.Arg, " \t")
				}
			}
			continue
		}
		switch o.Key {
		case '?':
			illegal(o.Err)
		case 'a':
			if can("a") {
				t, ok := cvtdate(o.Arg, st.now)
				if !ok {
					illegal("qsub: illegal -a value\n")
					continue
				}
				st.startAt = t
			}
		case 'c':
			if can("c") {
				v := strings.TrimLeft(o.Arg, " \t")
				if v == "u" {
					illegal("qsub: illegal -c value\n")
					continue
				}
				st.checkpoint = v
			}
		case 'C':
			if can("C") {
				st.prefix = o.Arg
				if len(st.prefix) > 32 {
					st.prefix = st.prefix[:32]
				}
			}
		case 'h':
			if can("h") {
				st.hold = true
			}
		case 'f':
		case 'I':
			if st.set["J"] != 0 {
				illegal("qsub: interactive and array job submission cannot be used together\n")
				continue
			}
			if can("I") {
				if st.block {
					msgs.WriteString("qsub (Warning) : setting \"block\" attribute as \"true\" for an interactive job will not return job's exit status\n")
					st.block = false
				}
				if !stdinTTY || !stdoutTTY {
					msgs.WriteString("qsub:\tstandard input and output must be a terminal for\n\tinteractive job submission\n")
					return errflg, 1
				}
				st.interactive = true
			}
		case 'J':
			if st.interactive {
				illegal("qsub: interactive and array job submission cannot be used together\n")
				continue
			}
			if st.rerun == "n" {
				illegal("qsub:  cannot submit non-rerunable Array Job\n")
				continue
			}
			if can("J") {
				if !checkJRange(o.Arg) {
					illegal("qsub: illegal -J value\n")
					continue
				}
				st.array = o.Arg
			}
		case 'l':
			rs, ok := parseResources(o.Arg)
			if !ok {
				illegal("qsub: illegal -l value\n")
				continue
			}
			for _, r := range rs {
				st.addResource(r, pass == passCmdline)
			}
		case 'N':
			if can("N") {
				st.name = o.Arg
				st.nameSet = true
			}
		case 'r':
			if can("r") {
				if o.Arg != "y" && o.Arg != "n" {
					illegal("qsub: illegal -r value\n")
					continue
				}
				if o.Arg == "n" && st.array != "" {
					illegal("qsub:  cannot submit non-rerunable Array Job\n")
					continue
				}
				st.rerun = o.Arg
			}
		case 'v':
			if can("v") {
				vars, ok := expandVarlist(o.Arg, getenv)
				if !ok {
					msgs.WriteString("qsub: cannot send environment with the job\n")
					return errflg, 1
				}
				st.vars = vars
			}
		case 'V':
			if can("V") {
				st.allEnv = true
			}
		case 'W':
			v := strings.TrimLeft(o.Arg, " \t")
			if v == "" {
				illegal("qsub: illegal -W value\n")
				continue
			}
			pairs, ok := parseEqualString(v)
			if !ok {
				illegal("qsub: illegal -W value\n")
				continue
			}
			for _, kv := range pairs {
				switch kv[0] {
				case "depend":
					if can("Wdepend") {
						st.depend = kv[1]
					}
				case "block":
					if can("Wblock") {
						switch strings.ToLower(kv[1]) {
						case "true":
							if st.interactive {
								msgs.WriteString("qsub (Warning) : setting \"block\" attribute as \"true\" for an interactive job will not return job's exit status\n")
							} else {
								st.block = true
							}
						case "false":
						default:
							illegal("qsub: illegal -W value\n")
						}
					}
				case "umask":
					if can("Wumask") {
						st.umask = kv[1]
					}
				case "interactive":
					switch strings.ToLower(kv[1]) {
					case "true":
						if !stdinTTY || !stdoutTTY {
							msgs.WriteString("qsub:\tstandard input and output must be a terminal for\n\tinteractive job submission\n")
							return errflg, 1
						}
						st.interactive = true
					case "false":
					default:
						illegal("qsub: illegal -W value\n")
					}
				default:
					if can("W" + kv[0]) {
						st.attrs[kv[0]] = kv[1]
					}
				}
			}
		case 'X':
			if can("X") {
				st.x11 = true
				if _, ok := getenv("DISPLAY"); !ok {
					illegal("qsub: DISPLAY not set\n")
				}
			}
		case 'z':
			if can("z") {
				st.quiet = true
			}
		default:
			errflg++
		}
	}
	if st.x11 && st.set["X"] == passCmdline && !st.interactive && errflg == 0 {
		msgs.WriteString("qsub: X11 Forwarding possible only for interactive jobs\n")
		return errflg, 1
	}
	if errflg == 0 && st.array == "" && strings.Contains(st.mailPoints, "j") {
		msgs.WriteString("qsub: mail option 'j' can not be used without array job\n")
		return errflg, 1
	}
	return errflg, 0
}

// addResource adds a -l entry: the command line adds regardless (the later
// value wins at the server), a directive only when the resource is not
// already requested (set_resources' add flag).
func (st *qsubState) addResource(r resource, cmdline bool) {
	for i, have := range st.resources {
		if have.Name == r.Name {
			if cmdline {
				st.resources[i].Value = r.Value
			}
			return
		}
	}
	st.resources = append(st.resources, r)
}

// parseEqualString splits "a=b,c=d" into pairs (parse_equal_string): names
// are trimmed, values run to the next unquoted comma.
func parseEqualString(s string) ([][2]string, bool) {
	var out [][2]string
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		k := strings.TrimSpace(s[:eq])
		rest := s[eq+1:]
		v, end, ok := quoteParse(rest, 0)
		if !ok || k == "" {
			return nil, false
		}
		out = append(out, [2]string{k, v})
		if end >= len(rest) {
			break
		}
		s = rest[end+1:]
		if strings.TrimSpace(s) == "" {
			return nil, false
		}
	}
	return out, len(out) > 0
}

// expandVarlist is qsub's expand_varlist: "NAME" takes NAME's value from
// qsub's environment (an unset NAME is an error), "NAME=value" is kept,
// bare PBS_O_* names are dropped. Commas inside quotes stay in the value.
func expandVarlist(list string, getenv func(string) (string, bool)) ([]string, bool) {
	var out []string
	for _, tok := range commaTokens(list) {
		name, value, hasValue := strings.Cut(tok, "=")
		if !hasValue {
			if strings.HasPrefix(name, "PBS_O_") {
				continue
			}
			v, ok := getenv(name)
			if !ok {
				return nil, false
			}
			out = append(out, name+"="+v)
			continue
		}
		v, ok := unquote(value)
		if !ok {
			return nil, false
		}
		if strings.HasPrefix(name, "PBS_O_") {
			continue
		}
		out = append(out, name+"="+v)
	}
	return out, true
}

// commaTokens splits at commas outside quotes (qsub's comma_token).
func commaTokens(s string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '"':
			if quote == c {
				quote = 0
			} else if quote == 0 {
				quote = c
			}
		case c == '\\' && i+1 < len(s):
			i++
		case c == ',' && quote == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// unquote removes the quotes of a -v value; an unterminated quote fails.
func unquote(v string) (string, bool) {
	var b strings.Builder
	var q byte
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case q != 0 && c == q:
			q = 0
		case q == 0 && (c == '"' || c == '\''):
			q = c
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), q == 0
}

// checkJRange validates an array range X-Y[:Z] (chk_Jrange).
func checkJRange(s string) bool {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	rng, step, hasStep := strings.Cut(s, ":")
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return false
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || x < 0 || y <= x {
		return false
	}
	if hasStep {
		z, err := strconv.Atoi(step)
		if err != nil || z < 1 {
			return false
		}
	}
	return true
}

// cvtdate reads qsub -a's [[[[CC]YY]MM]DD]hhmm[.SS] relative to now; fields
// left out are taken from now, rolling to the next day, month or year when
// the time would be in the past.
func cvtdate(s string, now time.Time) (time.Time, bool) {
	sec := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		ss := s[i+1:]
		if len(ss) != 2 || !allDigits(ss) {
			return time.Time{}, false
		}
		sec, _ = strconv.Atoi(ss)
		if sec > 61 {
			return time.Time{}, false
		}
		s = s[:i]
	}
	if !allDigits(s) || len(s)%2 != 0 || len(s) < 4 || len(s) > 12 {
		return time.Time{}, false
	}
	num := func(i int) int { n, _ := strconv.Atoi(s[i : i+2]); return n }
	n := len(s)
	mm, hh := num(n-2), num(n-4)
	if hh > 23 || mm > 59 {
		return time.Time{}, false
	}
	year, month, day := now.Year(), now.Month(), now.Day()
	rollDay, rollMonth, rollYear := n == 4, n == 6, n == 8
	if n >= 6 {
		day = num(n - 6)
	}
	if n >= 8 {
		month = time.Month(num(n - 8))
	}
	if n >= 10 {
		yy := num(n - 10)
		if n == 12 {
			year = num(0)*100 + yy
		} else if yy >= 69 {
			year = 1900 + yy
		} else {
			year = 2000 + yy
		}
	}
	if month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	t := time.Date(year, month, day, hh, mm, sec, 0, now.Location())
	if t.Day() != day {
		return time.Time{}, false
	}
	if t.Before(now) {
		switch {
		case rollDay:
			t = t.AddDate(0, 0, 1)
		case rollMonth:
			t = t.AddDate(0, 1, 0)
		case rollYear:
			t = t.AddDate(1, 0, 0)
		}
	}
	return t, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isExecutable is pbs_isexecutable: the first line that is not blank, not a
// comment, not "#!..." and not a ":" line ends the directive scan.
func isExecutable(line string) bool {
	if strings.HasPrefix(line, ":") || strings.HasPrefix(line, "#!") {
		return false
	}
	l := strings.TrimLeft(line, " \t\n\v\f\r")
	return l != "" && l[0] != '#'
}

// pbsDirective is pbs_ispbsdir: after leading blanks the line starts with
// the prefix; it returns the rest of the line.
func pbsDirective(line, prefix string) (string, bool) {
	if prefix == "" {
		return "", false
	}
	l := strings.TrimLeft(line, " \t\n\v\f\r")
	if strings.HasPrefix(l, prefix) {
		return l[len(prefix):], true
	}
	return "", false
}

// printedError is an error whose text qsub prints as it is.
type printedError string

func (e printedError) Error() string { return string(e) }

// makeArgv splits a directive's options as qsub's make_argv does: blanks
// separate words, quotes group, a backslash takes the next character.
func makeArgv(line string) ([]string, error) {
	var out []string
	var b strings.Builder
	in := false
	i := 0
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	for i < len(line) {
		c := line[i]
		switch {
		case c == '"' || c == '\'':
			q := c
			i++
			for i < len(line) && line[i] != q {
				b.WriteByte(line[i])
				i++
			}
			if i >= len(line) {
				// make_argv prints the character after the quote's
				// end: the string's terminating NUL.
				return nil, printedError("qsub: unmatched \x00\n")
			}
			i++
			in = true
		case c == '\\':
			i++
			if i < len(line) {
				b.WriteByte(line[i])
				i++
			}
			in = true
		case isSpace(c):
			out = append(out, b.String())
			b.Reset()
			in = false
			for i < len(line) && isSpace(line[i]) {
				i++
			}
		default:
			b.WriteByte(c)
			i++
			in = true
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out, nil
}

// scanScript reads the directives of script (get_script): lines until the
// first executable one, continuation lines ending in a backslash joined.
// It returns the message and exit status of the first bad directive.
func (r *run) scanScript(script []byte, prefix string, st *qsubState) (string, int) {
	lines := splitLines(script)
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		rest, ok := pbsDirective(line, prefix)
		if !ok {
			if isExecutable(line) {
				return "", 0
			}
			continue
		}
		for {
			t := strings.TrimRight(rest, "\r\n")
			if !strings.HasSuffix(t, "\\") || i+1 >= len(lines) {
				break
			}
			i++
			rest = t[:len(t)-1] + lines[i]
		}
		argv, err := makeArgv(strings.TrimRight(rest, "\n"))
		if err != nil {
			return err.Error(), 1
		}
		var msgs bytes.Buffer
		g := getopt.Parse("qsub", argv, getopt.Spec{Short: qsubOptstring})
		errflg, code := st.apply(g.Options, passDirective, &msgs, r.getenv, r.inv.StdinTTY, r.inv.StdoutTTY)
		if code != 0 {
			return msgs.String(), code
		}
		if errflg > 0 || len(g.Operands) > 0 || g.DashDash {
			m := msgs.String() + "qsub: directive error: "
			for _, a := range argv {
				m += a + " "
			}
			return m + "\n", 1
		}
		r.stderr.Write(msgs.Bytes())
	}
	return "", 0
}

// splitLines splits after each newline, keeping it, as fgets reads lines.
func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i+1]))
		b = b[i+1:]
	}
	return out
}

// qsub submits a job as OpenPBS's qsub does.
func (r *run) qsub() error {
	p := parseQsubArgs(r.prog, r.inv.Args, r.getenv, r.inv.StdinTTY, r.inv.StdoutTTY, r.cfg.now())
	if p.versionArg {
		fmt.Fprintf(&r.stdout, "pbs_version = %s\n", r.pbsVersion())
		return nil
	}
	r.stderr.WriteString(p.usageMsgs)
	if p.exitCode != 0 {
		return exit(p.exitCode)
	}
	if p.usage {
		r.stderr.WriteString(qsubUsage)
		return exit(2)
	}
	st := p.st

	// Read the script, then its directives.
	var script []byte
	name := ""
	prefix := st.prefix
	if prefix == "" && st.set["C"] == 0 {
		if v, ok := r.getenv("PBS_DPREFIX"); ok {
			prefix = v
		} else {
			prefix = "#PBS"
		}
	}
	switch {
	case len(p.command) > 0:
		script = []byte(shellQuote(p.command) + "\n")
		name = "STDIN"
	case p.script == "" || p.script == "-":
		if r.inv.StdinTTY && !st.interactive {
			r.stdout.WriteString(readScriptMsg)
		}
		name = "STDIN"
		if !st.interactive && r.inv.Stdin != nil {
			b, err := io.ReadAll(io.LimitReader(r.inv.Stdin, r.cfg.stdinMax))
			if err != nil {
				r.stderr.WriteString("qsub: error reading script file\n")
				return exit(5)
			}
			script = b
		}
	default:
		file := p.script
		if !strings.HasPrefix(file, "/") {
			file = path.Join(r.cwd(), file)
		}
		fi, err := r.inv.FS.Stat(file)
		if err != nil {
			fmt.Fprintf(&r.stderr, "qsub: script file:: %s\n", errnoText(err))
			return exit(1)
		}
		if !fi.Mode().IsRegular() {
			r.stderr.WriteString("qsub: script not a file\n")
			return exit(1)
		}
		b, err := afero.ReadFile(r.inv.FS, file)
		if err != nil {
			fmt.Fprintf(&r.stderr, "qsub: opening script file:: %s\n", errnoText(err))
			return exit(8)
		}
		script = b
		name = path.Base(p.script)
	}
	if !st.interactive {
		if msg, code := r.scanScript(script, prefix, st); code != 0 {
			r.stderr.WriteString(msg)
			return exit(code)
		}
	}
	if st.nameSet {
		name = st.name
	}

	// Destination.
	queue, dserver, ok := parseDestination(st.destination)
	if !ok {
		fmt.Fprintf(&r.stderr, "qsub: illegally formed destination: %s\n", st.destination)
		return exit(2)
	}
	_ = dserver

	// Client-side attribute checks (OpenPBS's ECL layer).
	if !validJobName(name) {
		r.stderr.WriteString("qsub: illegal -N value\n" + qsubUsage)
		return exit(2)
	}
	for _, res := range st.resources {
		if !checkResource(res.Name, res.Value) {
			fmt.Fprintf(&r.stderr, "qsub: Illegal attribute or resource value Resource_List.%s\n", res.Name)
			return exit(fakepbs.ErrBadAttrValue)
		}
	}
	for _, c := range []struct {
		ok  bool
		opt string
	}{
		{st.join == "" || validJoin(st.join), "j"},
		{st.keep == "" || validKeep(st.keep), "k"},
		{st.mailPoints == "" || validMailPoints(st.mailPoints), "m"},
		{st.priority == "" || validPriority(st.priority), "p"},
		{st.depend == "" || validDepend(st.depend), "W"},
		{st.umask == "" || allOctal(st.umask), "W"},
	} {
		if !c.ok {
			fmt.Fprintf(&r.stderr, "qsub: illegal -%s value\n%s", c.opt, qsubUsage)
			return exit(2)
		}
	}
	if st.interactive {
		r.stderr.WriteString("qsub: interactive jobs are not supported by this PBS server\n")
		return exit(1)
	}

	req := r.submitRequest(st, name, queue, script)
	job, err := r.b.Submit(r.ctx, req)
	if err != nil {
		code, text := pbsErr(err)
		fmt.Fprintf(&r.stderr, "qsub: %s\n", text)
		if strings.Contains("qsub: "+text, "qsub: illegal -") {
			r.stderr.WriteString(qsubUsage)
		}
		return exit(code)
	}
	if !st.quiet {
		r.stdout.WriteString(job.ID + "\n")
	}
	if st.block {
		return r.block(job.ID)
	}
	return nil
}

// submitRequest builds the request the server gets: options, then the
// Variable_List in OpenPBS's order.
func (r *run) submitRequest(st *qsubState, name, queue string, script []byte) fakepbs.SubmitRequest {
	req := fakepbs.SubmitRequest{
		Owner:       r.inv.User,
		SubmitHost:  r.inv.Host,
		WorkDir:     r.cwd(),
		Name:        name,
		Queue:       queue,
		OutputPath:  st.outPath,
		ErrorPath:   st.errPath,
		Join:        st.join,
		KeepFiles:   st.keep,
		DependOn:    st.depend,
		Umask:       st.umask,
		StartAt:     st.startAt,
		Hold:        st.hold,
		Interactive: st.interactive,
		Shell:       st.shell,
		Array:       st.array,
		Script:      script,
		Args:        append([]string(nil), r.inv.Args...),
		Account:     st.account,
		Project:     st.project,
		MailPoints:  st.mailPoints,
		MailUsers:   st.mailUsers,
		Rerunable:   st.rerun,
		Checkpoint:  st.checkpoint,
		Block:       st.block,
	}
	if req.Shell == "" {
		if v, ok := r.getenv("PBS_SHELL"); ok {
			req.Shell = v
		}
	}
	if st.priority != "" {
		req.Priority, _ = strconv.Atoi(st.priority)
	}
	if len(st.attrs) > 0 {
		req.Attributes = st.attrs
	}
	if len(st.resources) > 0 {
		req.Resources = make(map[string]string, len(st.resources))
		for _, res := range st.resources {
			req.Resources[res.Name] = res.Value
		}
	}
	req.Variables = r.variableList(st, queue)
	return req
}

// variableList builds Variable_List as OpenPBS's qsub and server do:
// job_env_basic's PBS_O_* set, then -v, then -V's whole environment, then
// PBS_O_QUEUE and PBS_O_HOST.
func (r *run) variableList(st *qsubState, queue string) []string {
	vars := make([]string, 0, 12+len(st.vars))
	home, ok := r.getenv("HOME")
	if !ok {
		home = "/"
	}
	vars = append(vars, "PBS_O_HOME="+home)
	for _, k := range []string{"LANG", "LOGNAME", "PATH", "MAIL", "SHELL", "TZ"} {
		if v, ok := r.getenv(k); ok {
			vars = append(vars, "PBS_O_"+k+"="+v)
		}
	}
	vars = append(vars, "PBS_O_WORKDIR="+r.cwd(), "PBS_O_SYSTEM=Linux")
	vars = append(vars, st.vars...)
	if st.allEnv {
		for _, kv := range r.inv.Env {
			if !strings.HasPrefix(kv, "PBS_O_") && strings.Contains(kv, "=") {
				vars = append(vars, kv)
			}
		}
	}
	if queue == "" {
		queue = r.server().DefaultQueue
	}
	if queue != "" {
		vars = append(vars, "PBS_O_QUEUE="+queue)
	}
	if r.inv.Host != "" {
		vars = append(vars, "PBS_O_HOST="+r.inv.Host)
	}
	return vars
}

// block waits for the job to end and exits as qsub -W block=true does
// (block() in OpenPBS's qsub.c): with the job's Exit_status (& 0xff), or,
// when the server sends a message instead (a deleted job), with
// "qsub: <jobid> <message>" and 3. When the server sends no word at all (a
// job that vanished), qsub waits until it is interrupted. Interrupted, it
// says so, deletes the job (bailout) and exits 2.
func (r *run) block(id string) error {
	var job fakepbs.Job
	var err error
	if w, ok := r.b.(Waiter); ok {
		job, err = w.WaitJob(r.ctx, id)
	} else {
		job, err = r.pollUntilDone(r.ctx, id)
	}
	var aborted *fakepbs.AbortedError
	switch {
	case errors.As(err, &aborted):
		fmt.Fprintf(&r.stderr, "qsub: %s %s\n", aborted.JobID, aborted.Message)
		return exit(3)
	case errors.Is(err, fakepbs.ErrNoReply):
		<-r.ctx.Done()
	}
	if err != nil {
		if r.ctx.Err() != nil {
			fmt.Fprintf(&r.stderr, "qsub: wait for job %s interrupted by signal %d\n", id, 15)
			r.bailout(id)
			return exit(2)
		}
		fmt.Fprintf(&r.stderr, "qsub: Bad Request Protocol, %v\n", err)
		return exit(3)
	}
	if job.ExitStatus == nil {
		return nil
	}
	return exit(*job.ExitStatus)
}

// bailout is what an interrupted qsub -W block=true does before it exits:
// it says the job is being deleted and deletes it, whatever the answer.
func (r *run) bailout(id string) {
	fmt.Fprintf(&r.stdout, "Job %s is being deleted\n", id)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 5*time.Second)
	defer cancel()
	_ = r.b.Delete(ctx, r.inv.User, id, false)
}

func (r *run) pollUntilDone(ctx context.Context, id string) (fakepbs.Job, error) {
	t := time.NewTicker(r.cfg.poll)
	defer t.Stop()
	for {
		job, err := r.b.Job(ctx, id, true)
		if err != nil {
			var pe *fakepbs.Error
			if errors.As(err, &pe) && (pe.Code == fakepbs.ErrJobFinished || pe.Code == fakepbs.ErrUnknownJob) {
				// Finished without history: the exit status is not known.
				return fakepbs.Job{ID: id}, nil
			}
			return job, err
		}
		if job.State == fakepbs.Finished {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-t.C:
		}
	}
}

// cwd is the command's working directory.
func (r *run) cwd() string {
	if r.inv.Cwd != "" {
		return r.inv.Cwd
	}
	if v, ok := r.getenv("PWD"); ok {
		return v
	}
	return "/"
}

// parseDestination splits queue[@server] (parse_destination_id).
func parseDestination(d string) (queue, server string, ok bool) {
	if d == "" {
		return "", "", true
	}
	queue, server, hasAt := strings.Cut(d, "@")
	if hasAt && server == "" {
		return "", "", false
	}
	for i := 0; i < len(queue); i++ {
		if c := queue[i]; c <= ' ' || c >= 0x7f {
			return "", "", false
		}
	}
	return queue, server, true
}

func validJobName(n string) bool {
	if n == "" || len(n) > 236 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return false
		}
	}
	return true
}

func validJoin(j string) bool { return j == "oe" || j == "eo" || j == "n" }

func validKeep(k string) bool {
	switch k {
	case "n", "o", "e", "oe", "eo", "d", "do", "de", "doe", "deo", "od", "ed":
		return true
	}
	return false
}

func validMailPoints(m string) bool {
	if m == "n" {
		return true
	}
	for _, c := range m {
		if !strings.ContainsRune("abej", c) {
			return false
		}
	}
	return m != ""
}

func validPriority(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= -1024 && n <= 1023
}

func validDepend(d string) bool {
	for _, part := range strings.Split(d, ",") {
		typ, ids, ok := strings.Cut(part, ":")
		if !ok || ids == "" {
			return false
		}
		switch typ {
		case "after", "afterok", "afternotok", "afterany", "before", "beforeok",
			"beforenotok", "beforeany", "on", "runone":
		default:
			return false
		}
	}
	return true
}

func allOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return s != ""
}

// shellQuote turns "-- command args" into a script line.
func shellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]#~") {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// errnoText is the strerror(3) text perror would print for err.
func errnoText(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, os.ErrPermission):
		return "Permission denied"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return capitalize(pe.Err.Error())
	}
	return capitalize(err.Error())
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// sortedKeysInto returns m's keys in order, reusing buf's storage.
func sortedKeysInto(buf []string, m map[string]string) []string {
	buf = buf[:0]
	for k := range m {
		buf = append(buf, k)
	}
	sort.Strings(buf)
	return buf
}

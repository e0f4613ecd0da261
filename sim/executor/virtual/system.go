package virtual

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

func init() {
	for name, fn := range map[string]Builtin{
		"hostname": hostnameCmd, "uname": unameCmd, "whoami": whoamiCmd, "id": idCmd,
		"date": dateCmd, "sleep": sleepCmd, "kill": killCmd, "env": envCmd, "printenv": printenvCmd,
		"nohup": nohupCmd, "timeout": timeoutCmd, "which": whichCmd, "bash": shCmd, "sh": shCmd,
		"ps": psCmd,
	} {
		coreBuiltins[name] = fn
	}
	for name, fn := range map[string]Builtin{
		"kill": killCmd, "command-v": commandVCmd, "type": typeCmd, "ulimit": ulimitCmd,
		"umask": umaskCmd, "jobs": trueCmd, "disown": trueCmd, "exit": exitCmd,
		"suspend": func(_ context.Context, c *Call) int {
			c.errorf("%ssuspend: cannot suspend a login shell\n", c.shell)
			return 1
		},
	} {
		internalBuiltins[name] = fn
	}
}

func hostnameCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "sfAdi", "", map[string]byte{"short": 's', "fqdn": 'f', "long": 'f'})
	if !ok {
		return c.usageStatus()
	}
	if len(ops) > 0 {
		c.errorf("hostname: you must be root to change the host name\n")
		return 1
	}
	h := c.Host
	switch {
	case f.has('s'):
		h, _, _ = strings.Cut(h, ".")
	case f.has('d'):
		_, h, _ = strings.Cut(h, ".")
	case f.has('i'):
		h = "127.0.1.1"
	}
	fmt.Fprintln(c.Stdout, h)
	return 0
}

func unameCmd(ctx context.Context, c *Call) int {
	f, _, ok := parseFlags(c, c.Args[1:], "asnrvmpio", "", map[string]byte{"all": 'a', "kernel-name": 's', "nodename": 'n'})
	if !ok {
		return c.usageStatus()
	}
	vals := map[byte]string{'s': "Linux", 'n': c.Host, 'r': "6.1.0-jobsim", 'v': "#1 SMP", 'm': "x86_64", 'o': "GNU/Linux"}
	var out []string
	if f.has('a') {
		for _, b := range []byte("snrvmo") {
			out = append(out, vals[b])
		}
	} else {
		for _, b := range []byte("snrvmpio") {
			if f.has(b) {
				v, ok := vals[b]
				if !ok {
					v = "unknown"
				}
				out = append(out, v)
			}
		}
	}
	if len(out) == 0 {
		out = []string{"Linux"}
	}
	fmt.Fprintln(c.Stdout, strings.Join(out, " "))
	return 0
}

func whoamiCmd(ctx context.Context, c *Call) int {
	fmt.Fprintln(c.Stdout, c.User.Name)
	return 0
}

func idCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "ugGnr", "", map[string]byte{"user": 'u', "group": 'g', "groups": 'G', "name": 'n'})
	if !ok {
		return c.usageStatus()
	}
	u := c.User
	if len(ops) > 0 {
		var err error
		if u, err = c.p.e.lookupUser(ops[0]); err != nil {
			c.warnf("‘%s’: no such user", ops[0])
			return 1
		}
	}
	name := f.has('n')
	switch {
	case f.has('u'):
		if name {
			fmt.Fprintln(c.Stdout, u.Name)
		} else {
			fmt.Fprintln(c.Stdout, u.UID)
		}
	case f.has('g') || f.has('G'):
		if name {
			fmt.Fprintln(c.Stdout, u.Group)
		} else {
			fmt.Fprintln(c.Stdout, u.GID)
		}
	default:
		fmt.Fprintf(c.Stdout, "uid=%d(%s) gid=%d(%s) groups=%d(%s)\n", u.UID, u.Name, u.GID, u.Group, u.GID, u.Group)
	}
	return 0
}

// ---- date ----

func dateCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "uRI", "ds", map[string]byte{
		"utc": 'u', "universal": 'u', "date": 'd', "rfc-email": 'R', "iso-8601": 'I', "set": 's',
	})
	if !ok {
		return c.usageStatus()
	}
	if _, ok := f.val('s'); ok {
		c.warnf("cannot set date: Operation not permitted")
		return 1
	}
	t := c.Clock.Now().UTC()
	if d, ok := f.val('d'); ok {
		pt, good := parseDate(d, t)
		if !good {
			c.warnf("invalid date ‘%s’", d)
			return 1
		}
		t = pt
	}
	format := "%a %b %e %H:%M:%S %Z %Y"
	switch {
	case f.has('R'):
		format = "%a, %d %b %Y %H:%M:%S %z"
	case f.has('I'):
		format = "%Y-%m-%d"
	}
	for _, op := range ops {
		if strings.HasPrefix(op, "+") {
			format = op[1:]
			continue
		}
		c.warnf("invalid date ‘%s’", op)
		return 1
	}
	fmt.Fprintln(c.Stdout, strftime(format, t))
	return 0
}

// parseDate reads the date forms scripts commonly give date -d.
func parseDate(s string, now time.Time) (time.Time, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "now", "":
		return now, true
	case "today":
		return now, true
	case "yesterday":
		return now.AddDate(0, 0, -1), true
	case "tomorrow":
		return now.AddDate(0, 0, 1), true
	}
	if strings.HasPrefix(s, "@") {
		f, err := strconv.ParseFloat(s[1:], 64)
		if err != nil {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	for _, layout := range []string{
		time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02 15:04:05Z07:00",
		"2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02", "20060102T150405Z",
		"20060102", time.RFC1123Z, time.RFC1123, time.UnixDate, time.ANSIC,
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	// "N unit[s] [ago]" relative to now
	fields := strings.Fields(s)
	if len(fields) >= 2 {
		n, err := strconv.Atoi(strings.TrimPrefix(fields[0], "+"))
		if err == nil {
			if len(fields) == 3 && fields[2] == "ago" {
				n = -n
			}
			unit := strings.TrimSuffix(fields[1], "s")
			switch unit {
			case "second", "sec":
				return now.Add(time.Duration(n) * time.Second), true
			case "minute", "min":
				return now.Add(time.Duration(n) * time.Minute), true
			case "hour":
				return now.Add(time.Duration(n) * time.Hour), true
			case "day":
				return now.AddDate(0, 0, n), true
			case "week":
				return now.AddDate(0, 0, 7*n), true
			}
		}
	}
	return time.Time{}, false
}

// strftimeLayouts are the conversions of strftime that are a Go time layout.
var strftimeLayouts = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'h': "Jan",
	'B': "January", 'p': "PM", 'Z': "MST", 'z': "-0700",
	'F': "2006-01-02", 'T': "15:04:05", 'R': "15:04", 'D': "01/02/06",
	'x': "01/02/06", 'X': "15:04:05",
}

// strftime formats t as date(1) does, for the common conversions.
func strftime(format string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 >= len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		pad := byte(0)
		if format[i] == '-' || format[i] == '_' || format[i] == '0' {
			pad = format[i]
			if i+1 < len(format) {
				i++
			}
		}
		num := func(v, width int, def byte) {
			p := def
			if pad != 0 {
				p = pad
			}
			switch p {
			case '-':
				b.WriteString(strconv.Itoa(v))
			case '_':
				fmt.Fprintf(&b, "%*d", width, v)
			default:
				fmt.Fprintf(&b, "%0*d", width, v)
			}
		}
		if layout, ok := strftimeLayouts[format[i]]; ok {
			b.WriteString(t.Format(layout))
			continue
		}
		switch format[i] {
		case 'Y':
			num(t.Year(), 4, '0')
		case 'C':
			num(t.Year()/100, 2, '0')
		case 'y':
			num(t.Year()%100, 2, '0')
		case 'm':
			num(int(t.Month()), 2, '0')
		case 'd':
			num(t.Day(), 2, '0')
		case 'e':
			num(t.Day(), 2, '_')
		case 'H':
			num(t.Hour(), 2, '0')
		case 'k':
			num(t.Hour(), 2, '_')
		case 'I', 'l':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			if format[i] == 'I' {
				num(h, 2, '0')
			} else {
				num(h, 2, '_')
			}
		case 'M':
			num(t.Minute(), 2, '0')
		case 'S':
			num(t.Second(), 2, '0')
		case 'N':
			fmt.Fprintf(&b, "%09d", t.Nanosecond())
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'j':
			num(t.YearDay(), 3, '0')
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b.WriteString(strconv.Itoa(wd))
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		case 'c':
			b.WriteString(strftime("%a %b %e %H:%M:%S %Y", t))
		case 'V':
			_, w := t.ISOWeek()
			num(w, 2, '0')
		case 'G':
			y, _ := t.ISOWeek()
			num(y, 4, '0')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

// ---- sleep, kill, timeout ----

// parseDuration reads sleep's and timeout's NUMBER[smhd].
func parseDuration(s string) (time.Duration, bool) {
	if s == "inf" || s == "infinity" {
		return time.Duration(math.MaxInt64), true
	}
	mult := time.Second
	switch {
	case strings.HasSuffix(s, "s"):
		s = s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		s, mult = s[:len(s)-1], time.Minute
	case strings.HasSuffix(s, "h"):
		s, mult = s[:len(s)-1], time.Hour
	case strings.HasSuffix(s, "d"):
		s, mult = s[:len(s)-1], 24*time.Hour
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || strings.ContainsAny(s, "xXpP") {
		return 0, false
	}
	d := f * float64(mult)
	if d >= math.MaxInt64 {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(d), true
}

func sleepCmd(ctx context.Context, c *Call) int {
	if len(c.Args) < 2 {
		return c.usageError("missing operand")
	}
	var total time.Duration
	for _, a := range c.Args[1:] {
		d, ok := parseDuration(a)
		if !ok {
			return c.usageError("invalid time interval ‘%s’", a)
		}
		if total > math.MaxInt64-d {
			total = math.MaxInt64
		} else {
			total += d
		}
	}
	if err := c.p.sleep(ctx, total); err != nil {
		return signalStatus(ctx)
	}
	return 0
}

// signalStatus is the exit code of a command whose context ended: 128+n for
// a signal, 143 (as SIGTERM) otherwise.
func signalStatus(ctx context.Context) int {
	var s signalled
	if errors.As(context.Cause(ctx), &s) {
		return 128 + int(s.sig)
	}
	return 128 + int(syscall.SIGTERM)
}

func killCmd(ctx context.Context, c *Call) int {
	args := c.Args[1:]
	usage := func() int {
		c.errorf("kill: usage: kill [-s sigspec | -n signum | -sigspec] pid | jobspec ... or kill -l [sigspec]\n")
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	sig := syscall.SIGTERM
	badSig := func(s string) int {
		c.errorf("%skill: %s: invalid signal specification\n", c.shell, s)
		return 1
	}
	switch a := args[0]; {
	case a == "-l" || a == "-L":
		if len(args) == 1 {
			printSignalList(c.Stdout)
			return 0
		}
		status := 0
		for _, s := range args[1:] {
			if n, err := strconv.Atoi(s); err == nil {
				if n > 128 {
					n -= 128
				}
				if n > 0 && n < len(signalNames) {
					fmt.Fprintln(c.Stdout, signalNames[n])
					continue
				}
			} else if sg, ok := parseSignal(s); ok {
				fmt.Fprintln(c.Stdout, int(sg))
				continue
			}
			status = badSig(s)
		}
		return status
	case a == "-s" || a == "-n":
		if len(args) < 2 {
			c.errorf("%skill: %s: option requires an argument\n", c.shell, a)
			return usage()
		}
		s, ok := parseSignal(args[1])
		if !ok {
			return badSig(args[1])
		}
		sig, args = s, args[2:]
	case a == "--":
		args = args[1:]
	case len(a) > 1 && a[0] == '-':
		s, ok := parseSignal(a[1:])
		if !ok {
			return badSig(a[1:])
		}
		sig, args = s, args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return usage()
	}
	status := 0
	for _, a := range args {
		n, err := strconv.Atoi(a)
		if err != nil {
			c.errorf("%skill: %s: arguments must be process or job IDs\n", c.shell, a)
			status = 1
			continue
		}
		if n < 0 {
			n = -n // a process group: the virtual process is its own group
		}
		var target *process
		if n == os.Getpid() {
			target = c.p // $$ in text the executor did not rewrite
		} else {
			target = c.p.e.lookup(n)
		}
		if target == nil {
			c.errorf("%skill: (%d) - No such process\n", c.shell, n)
			status = 1
			continue
		}
		if c.User.UID != 0 && target.user.Name != c.User.Name {
			c.errorf("%skill: (%d) - Operation not permitted\n", c.shell, n)
			status = 1
			continue
		}
		if err := target.Signal(sig); err != nil {
			c.errorf("%skill: (%d) - No such process\n", c.shell, n)
			status = 1
		}
	}
	return status
}

func timeoutCmd(ctx context.Context, c *Call) int {
	f, args, ok := parseFlags(c, c.Args[1:], "+v", "k:s", map[string]byte{
		"signal": 's', "kill-after": 'k', "preserve-status": 'P', "foreground": 'F', "verbose": 'v',
	})
	if !ok {
		return c.usageStatus()
	}
	sig := syscall.SIGTERM
	if v, ok := f.val('s'); ok {
		s, ok := parseSignal(v)
		if !ok {
			c.warnf("‘%s’: invalid signal", v)
			return c.usageError("")
		}
		sig = s
	}
	preserve := f.has('P')
	if len(args) < 2 {
		return c.usageError("missing operand")
	}
	d, ok := parseDuration(args[0])
	if !ok {
		return c.usageError("invalid time interval ‘%s’", args[0])
	}
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timedOut := make(chan struct{})
	stop := c.Clock.AfterFunc(d, func() {
		close(timedOut)
		cancel(signalled{sig})
	})
	code := c.Run(tctx, args[1:])
	if !stop() {
		select {
		case <-timedOut:
			if preserve {
				return code
			}
			return 124
		default:
		}
	}
	return code
}

// ---- environment ----

func envCmd(ctx context.Context, c *Call) int {
	args := c.Args[1:]
	env := c.Environ()
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		for i, e := range env {
			if strings.HasPrefix(e, k+"=") {
				env = append(env[:i], env[i+1:]...)
				break
			}
		}
		env = append(env, kv)
	}
	f, args, ok := parseFlags(c, args, "+i0", "u", map[string]byte{
		"ignore-environment": 'i', "null": '0', "unset": 'u',
	})
	if !ok {
		return c.usageStatus()
	}
	if len(args) > 0 && args[0] == "-" {
		f.set('i')
		args = args[1:]
	}
	if f.has('i') {
		env = nil
	}
	for _, name := range f.all('u') {
		for i, e := range env {
			if strings.HasPrefix(e, name+"=") {
				env = append(env[:i], env[i+1:]...)
				break
			}
		}
	}
	nul := f.has('0')
	for len(args) > 0 && strings.Contains(args[0], "=") && !strings.HasPrefix(args[0], "=") {
		set(args[0])
		args = args[1:]
	}
	if len(args) == 0 {
		end := "\n"
		if nul {
			end = "\x00"
		}
		var b strings.Builder
		for _, e := range env {
			b.WriteString(e + end)
		}
		_, _ = io.WriteString(c.Stdout, b.String())
		return 0
	}
	return c.withEnv(env).Run(ctx, args)
}

func printenvCmd(ctx context.Context, c *Call) int {
	if len(c.Args) == 1 {
		for _, e := range c.Environ() {
			fmt.Fprintln(c.Stdout, e)
		}
		return 0
	}
	env := map[string]string{}
	for _, e := range c.Environ() {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	status := 0
	for _, k := range c.Args[1:] {
		v, ok := env[k]
		if !ok {
			status = 1
			continue
		}
		fmt.Fprintln(c.Stdout, v)
	}
	return status
}

func nohupCmd(ctx context.Context, c *Call) int {
	if len(c.Args) < 2 {
		return c.usageError("missing operand")
	}
	return c.Run(ctx, c.Args[1:])
}

// ---- lookups ----

func whichCmd(ctx context.Context, c *Call) int {
	args := c.Args[1:]
	if len(args) > 0 && args[0] == "-a" {
		args = args[1:]
	}
	status := 0
	for _, name := range args {
		if p := c.p.commandPath(c, name); p != "" {
			fmt.Fprintln(c.Stdout, p)
		} else {
			status = 1
		}
	}
	return status
}

// commandPath returns where a command is found: /usr/bin/NAME for a
// builtin, the file for a script on PATH, or "".
func (p *process) commandPath(c *Call, name string) string {
	if strings.Contains(name, "/") {
		abs := c.Abs(name)
		if fi, err := p.fs.Stat(abs); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return name
		}
		if p.lookupBuiltin(name) != nil {
			return name
		}
		return ""
	}
	if p.lookupBuiltin(name) != nil {
		return "/usr/bin/" + name
	}
	return p.searchPath(c, name)
}

// commandVCmd is `command -v|-V NAME` for names that are not shell builtins
// or functions (the call handler leaves those to the interpreter).
func commandVCmd(ctx context.Context, c *Call) int {
	verbose := c.Args[1] == "-V"
	status := 0
	for _, name := range c.Args[2:] {
		if kind := shellKind(name); kind != "" {
			if verbose {
				fmt.Fprintf(c.Stdout, "%s is a shell %s\n", name, kind)
			} else {
				fmt.Fprintln(c.Stdout, name)
			}
			continue
		}
		p := c.p.commandPath(c, name)
		switch {
		case p == "":
			if verbose {
				c.errorf("%scommand: %s: not found\n", c.shell, name)
			}
			status = 1
		case verbose:
			fmt.Fprintf(c.Stdout, "%s is %s\n", name, p)
		default:
			fmt.Fprintln(c.Stdout, p)
		}
	}
	return status
}

// shellKind is "keyword" or "builtin" for names of the shell itself.
func shellKind(name string) string {
	switch {
	case syntax.IsKeyword(name):
		return "keyword"
	case interp.IsBuiltin(name):
		return "builtin"
	}
	return ""
}

func typeCmd(ctx context.Context, c *Call) int {
	args := c.Args[1:]
	mode := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		mode += strings.TrimPrefix(args[0], "-")
		args = args[1:]
	}
	status := 0
	for _, name := range args {
		if kind := shellKind(name); kind != "" {
			switch {
			case strings.Contains(mode, "t"):
				fmt.Fprintln(c.Stdout, kind)
			case strings.ContainsAny(mode, "pP"):
			default:
				fmt.Fprintf(c.Stdout, "%s is a shell %s\n", name, kind)
			}
			continue
		}
		p := c.p.commandPath(c, name)
		switch {
		case p == "":
			if !strings.ContainsAny(mode, "tpP") {
				c.errorf("%stype: %s: not found\n", c.shell, name)
			}
			status = 1
		case strings.Contains(mode, "t"):
			fmt.Fprintln(c.Stdout, "file")
		case strings.ContainsAny(mode, "pP"):
			fmt.Fprintln(c.Stdout, p)
		default:
			fmt.Fprintf(c.Stdout, "%s is %s\n", name, p)
		}
	}
	return status
}

func ulimitCmd(ctx context.Context, c *Call) int {
	args := c.Args[1:]
	if len(args) == 0 || (len(args) == 1 && strings.HasPrefix(args[0], "-")) {
		v := "unlimited"
		if len(args) == 1 {
			switch strings.TrimLeft(args[0], "-SH") {
			case "n":
				v = "1024"
			case "s":
				v = "8192"
			case "u":
				v = "4096"
			case "a":
				fmt.Fprint(c.Stdout, "core file size              (blocks, -c) 0\nfile size                   (blocks, -f) unlimited\nopen files                          (-n) 1024\nstack size                  (kbytes, -s) 8192\ncpu time                   (seconds, -t) unlimited\nmax user processes                  (-u) 4096\nvirtual memory              (kbytes, -v) unlimited\n")
				return 0
			}
		}
		fmt.Fprintln(c.Stdout, v)
	}
	return 0
}

func umaskCmd(ctx context.Context, c *Call) int {
	switch {
	case len(c.Args) == 1:
		fmt.Fprintln(c.Stdout, "0022")
	case len(c.Args) == 2 && c.Args[1] == "-S":
		fmt.Fprintln(c.Stdout, "u=rwx,g=rx,o=rx")
	}
	return 0
}

func exitCmd(ctx context.Context, c *Call) int {
	if len(c.Args) > 1 {
		n, _ := strconv.Atoi(c.Args[1])
		return n
	}
	return 0
}

func psCmd(ctx context.Context, c *Call) int {
	f, _, ok := parseFlags(c, c.Args[1:], "efaxu", "po", map[string]byte{"pid": 'p', "format": 'o'})
	if !ok {
		return c.usageStatus()
	}
	procs := c.p.e.Processes()
	if pl, ok := f.val('p'); ok {
		want := map[int]bool{}
		for _, s := range strings.FieldsFunc(pl, func(r rune) bool { return r == ',' || r == ' ' }) {
			n, _ := strconv.Atoi(s)
			want[n] = true
		}
		var keep []ProcessInfo
		for _, p := range procs {
			if want[p.Pid] {
				keep = append(keep, p)
			}
		}
		procs = keep
	} else if !f.has('e') && !f.has('a') && !f.has('x') {
		var keep []ProcessInfo
		for _, p := range procs {
			if p.User == c.User.Name {
				keep = append(keep, p)
			}
		}
		procs = keep
	}
	cols := []string{"pid", "tty", "time", "cmd"}
	if f.has('f') {
		cols = []string{"user", "pid", "ppid", "stime", "tty", "time", "cmd"}
	}
	header := true
	if o, ok := f.val('o'); ok {
		cols = nil
		header = false
		for _, col := range strings.Split(o, ",") {
			if !strings.HasSuffix(col, "=") {
				header = true
			}
			cols = append(cols, strings.TrimSuffix(col, "="))
		}
	}
	var b strings.Builder
	if header {
		for i, col := range cols {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(psHeader(col))
		}
		b.WriteByte('\n')
	}
	for _, p := range procs {
		for i, col := range cols {
			if i > 0 {
				b.WriteByte(' ')
			}
			switch col {
			case "pid":
				fmt.Fprintf(&b, "%7d", p.Pid)
			case "ppid":
				fmt.Fprintf(&b, "%7d", 1)
			case "user":
				fmt.Fprintf(&b, "%-8s", p.User)
			case "stat", "s", "state":
				if p.Stopped {
					b.WriteString("T")
				} else {
					b.WriteString("S")
				}
			case "stime":
				b.WriteString(p.Started.UTC().Format("15:04"))
			case "tty":
				b.WriteString("?       ")
			case "time":
				b.WriteString("00:00:00")
			case "etime":
				b.WriteString(formatElapsed(c.Clock.Now().Sub(p.Started)))
			case "cmd", "args", "command", "comm":
				cmd := strings.ReplaceAll(p.Command, "\n", " ")
				if cmd == "" {
					cmd = "-bash"
				} else {
					cmd = "bash -c " + cmd
				}
				b.WriteString(cmd)
			default:
				b.WriteString("-")
			}
		}
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(c.Stdout, b.String())
	if _, ok := f.val('p'); ok && len(procs) == 0 {
		return 1
	}
	return 0
}

func psHeader(col string) string {
	switch col {
	case "pid":
		return "    PID"
	case "ppid":
		return "   PPID"
	case "user":
		return "USER    "
	case "tty":
		return "TTY     "
	case "cmd":
		return "CMD"
	}
	return strings.ToUpper(col)
}

func formatElapsed(d time.Duration) string {
	s := int(d.Seconds())
	days, s := s/86400, s%86400
	h, s := s/3600, s%3600
	m, s := s/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, s)
	case h > 0:
		return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", m, s)
}

// ---- bash, sh ----

// shCmd runs a nested shell: bash -c CMD, bash FILE, or commands from
// standard input.
func shCmd(ctx context.Context, c *Call) int {
	args := c.Args[1:]
	var opts []string
	login, cmode, stdinMode := false, false, false
	i := 0
loop:
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--" || a == "-":
			i++
			break loop
		case strings.HasPrefix(a, "--"):
			switch a {
			case "--login":
				login = true
			case "--noprofile", "--norc", "--posix", "--restricted", "--noediting", "--verbose":
			default:
				c.errorf("bash: %s: invalid option\nUsage:\tbash [GNU long option] [option] ...\n", a)
				return 2
			}
		case len(a) > 1 && (a[0] == '-' || a[0] == '+'):
			for j := 1; j < len(a); j++ {
				switch ch := a[j]; ch {
				case 'c':
					cmode = true
				case 'l':
					login = true
				case 's':
					stdinMode = true
				case 'i', 'v', 'r', 'p', 'h', 'm', 'B', 'H', 'P', 'T', 'k', 'b', 'D':
				case 'e', 'u', 'x', 'n', 'f', 'a', 'C':
					opts = append(opts, string(a[0])+string(ch))
				case 'o':
					if i+1 < len(args) {
						i++
						opts = append(opts, string(a[0])+"o", args[i])
					}
				default:
					c.errorf("bash: %c%c: invalid option\nUsage:\tbash [GNU long option] [option] ...\n", a[0], ch)
					return 2
				}
			}
		default:
			break loop
		}
	}
	rest := args[i:]
	env := newEnviron()
	env.setList(c.Environ())
	spec := shellSpec{
		name: c.name(), opts: opts, env: env, dir: c.Dir, login: login,
		stdin: stdinFile(c.Stdin), stdout: c.Stdout, stderr: c.Stderr,
	}
	switch {
	case cmode:
		if len(rest) == 0 {
			c.errorf("bash: -c: option requires an argument\n")
			return 2
		}
		if len(rest) > 1 {
			spec.name, spec.params = rest[1], rest[2:]
		}
		f, err := parseScript(rest[0], spec.name)
		if err != nil {
			c.errorf("%s: -c: %s\n", c.name(), syntaxMessage(err))
			return 2
		}
		spec.file = f
	case len(rest) > 0 && !stdinMode:
		file := rest[0]
		b, err := c.p.readFile(c.Abs(file))
		if err != nil {
			c.errorf("%s: %s: %s\n", c.name(), file, errText(err))
			return 127
		}
		f, err := parseScript(string(b), file)
		if err != nil {
			c.errorf("%s: %s: %s\n", file, c.name(), syntaxMessage(err))
			return 2
		}
		spec.name, spec.params, spec.file = file, rest[1:], f
	default:
		spec.src = c.Stdin
		spec.params = rest
	}
	code, _ := c.p.runShell(ctx, spec)
	return code
}

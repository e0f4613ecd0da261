package virtual

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

func init() {
	for name, fn := range map[string]Builtin{
		"head": headCmd, "tail": tailCmd, "wc": wcCmd, "grep": grepCmd, "egrep": grepCmd, "fgrep": grepCmd,
		"sort": sortCmd, "uniq": uniqCmd, "tr": trCmd, "seq": seqCmd, "cut": cutCmd,
		"echo": echoCmd, "true": trueCmd, "false": falseCmd, "xargs": xargsCmd, "sed": sedCmd,
	} {
		coreBuiltins[name] = fn
	}
}

// input opens an operand for reading: "-" is standard input. A directory
// or a missing file is an error worded by the caller.
func (c *Call) input(op string) (io.ReadCloser, error) {
	if op == "-" {
		return io.NopCloser(c.Stdin), nil
	}
	abs := c.Abs(op)
	fi, err := c.p.stat(abs)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, sysError{errIsDir}
	}
	return c.p.openFile(abs, os.O_RDONLY, 0)
}

// legacyCount turns head/tail's -5 into -n 5.
func legacyCount(args []string) []string {
	out := make([]string, 0, len(args)+1)
	for i, a := range args {
		valueOfPrevious := i > 0 && (args[i-1] == "-n" || args[i-1] == "-c")
		if !valueOfPrevious && len(a) > 1 && a[0] == '-' && a[1] >= '0' && a[1] <= '9' {
			if _, err := strconv.Atoi(a[1:]); err == nil {
				out = append(out, "-n", a[1:])
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func headCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, legacyCount(c.Args[1:]), "qvz", "nc", map[string]byte{"lines": 'n', "bytes": 'c', "quiet": 'q', "verbose": 'v'})
	if !ok {
		return c.usageStatus()
	}
	lines, bytesMode := int64(10), false
	if v, ok := f.val('n'); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			c.warnf("invalid number of lines: ‘%s’", v)
			return 1
		}
		lines = n
	}
	if v, ok := f.val('c'); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			c.warnf("invalid number of bytes: ‘%s’", v)
			return 1
		}
		lines, bytesMode = n, true
	}
	headers := (len(ops) > 1 || f.has('v')) && !f.has('q')
	return c.eachInput(ops, headers, func(r io.Reader) error {
		if lines >= 0 {
			// A count from the start streams: head stops reading once it
			// has its lines, as GNU head does, so that a writer that never
			// ends (yes, a loop) is not waited for but meets SIGPIPE.
			return headStream(c.Stdout, r, lines, bytesMode)
		}
		data, err := io.ReadAll(r)
		if bytesMode {
			_, _ = c.Stdout.Write(data[:max(int64(len(data))+lines, 0)])
			return err
		}
		ls := splitLines(data)
		for _, l := range ls[:max(int64(len(ls))+lines, 0)] {
			_, _ = c.Stdout.Write(l)
		}
		return err
	})
}

// headStream copies the first n lines (bytes with bytesMode) of r to w and
// stops reading there. It returns read errors only: a failed write (a
// reader that has gone) ends the copy and is the caller's SIGPIPE.
func headStream(w io.Writer, r io.Reader, n int64, bytesMode bool) error {
	if bytesMode {
		buf := make([]byte, 32*1024)
		for n > 0 {
			k, err := r.Read(buf[:min(n, int64(len(buf)))])
			if k > 0 {
				if _, werr := w.Write(buf[:k]); werr != nil {
					return nil
				}
				n -= int64(k)
			}
			if err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
		return nil
	}
	br := bufio.NewReader(r)
	for ; n > 0; n-- {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

// eachFile reads each operand as head and tail do (standard input for
// none or "-"), with their messages for a file that cannot be opened or
// read, and "==> NAME <==" before each with headers; fn gets its data.
func (c *Call) eachFile(ops []string, headers bool, fn func(data []byte)) int {
	return c.eachInput(ops, headers, func(r io.Reader) error {
		data, err := io.ReadAll(r)
		fn(data)
		return err
	})
}

// eachInput is eachFile for a command that reads as it goes: fn gets each
// operand's reader and returns its read error.
func (c *Call) eachInput(ops []string, headers bool, fn func(r io.Reader) error) int {
	if len(ops) == 0 {
		ops = []string{"-"}
	}
	status := 0
	for i, op := range ops {
		r, err := c.input(op)
		if err != nil {
			if isDirErr(err) {
				c.warnf("error reading '%s': Is a directory", op)
			} else {
				c.warnf("cannot open '%s' for reading: %s", op, errText(err))
			}
			status = 1
			continue
		}
		if headers {
			if i > 0 {
				fmt.Fprintln(c.Stdout)
			}
			fmt.Fprintf(c.Stdout, "==> %s <==\n", displayName(op))
		}
		err = fn(r)
		r.Close()
		if err != nil {
			c.warnf("error reading '%s': %s", op, errText(err))
			status = 1
		}
	}
	return status
}

func displayName(op string) string {
	if op == "-" {
		return "standard input"
	}
	return op
}

// splitLines splits data after each newline, keeping them.
func splitLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data)
			break
		}
		out = append(out, data[:i+1])
		data = data[i+1:]
	}
	return out
}

func tailCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, legacyCount(c.Args[1:]), "qvzfF", "nc", map[string]byte{"lines": 'n', "bytes": 'c', "quiet": 'q', "verbose": 'v', "follow": 'f'})
	if !ok {
		return c.usageStatus()
	}
	count, from, bytesMode := int64(10), false, false
	parse := func(v, what string) bool {
		if strings.HasPrefix(v, "+") {
			from = true
			v = v[1:]
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(v, "-"), 10, 64)
		if err != nil {
			c.warnf("invalid number of %s: ‘%s’", what, v)
			return false
		}
		count = n
		return true
	}
	if v, ok := f.val('n'); ok && !parse(v, "lines") {
		return 1
	}
	if v, ok := f.val('c'); ok {
		if !parse(v, "bytes") {
			return 1
		}
		bytesMode = true
	}
	headers := (len(ops) > 1 || f.has('v')) && !f.has('q')
	return c.eachFile(ops, headers, func(data []byte) {
		if bytesMode {
			start := int64(len(data)) - count
			if from {
				start = count - 1
			}
			start = max(0, min(start, int64(len(data))))
			_, _ = c.Stdout.Write(data[start:])
			return
		}
		ls := splitLines(data)
		start := int64(len(ls)) - count
		if from {
			start = count - 1
		}
		start = max(0, min(start, int64(len(ls))))
		for _, l := range ls[start:] {
			_, _ = c.Stdout.Write(l)
		}
	})
}

func wcCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "lwcmL", "", map[string]byte{"lines": 'l', "words": 'w', "bytes": 'c', "chars": 'm'})
	if !ok {
		return c.usageStatus()
	}
	show := []byte{}
	for _, b := range []byte("lwmc") {
		if f.has(b) {
			show = append(show, b)
		}
	}
	if len(show) == 0 {
		show = []byte("lwc")
	}
	stdin := len(ops) == 0
	if stdin {
		ops = []string{"-"}
	}
	type counts struct {
		v    map[byte]int64
		name string
	}
	var rows []counts
	total := map[byte]int64{}
	var sizes int64
	nonRegular := false
	status := 0
	for _, op := range ops {
		r, err := c.input(op)
		if err != nil {
			c.warnf("%s: %s", op, errText(err))
			status = 1
			continue
		}
		if op == "-" {
			nonRegular = true
		} else if fi, err := c.FS.Stat(c.Abs(op)); err == nil {
			sizes += fi.Size()
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			c.warnf("%s: %s", op, errText(err))
			status = 1
		}
		v := map[byte]int64{
			'l': int64(bytes.Count(data, []byte("\n"))),
			'w': int64(len(bytes.Fields(data))),
			'c': int64(len(data)),
			'm': int64(len([]rune(string(data)))),
		}
		for k, n := range v {
			total[k] += n
		}
		name := op
		if stdin {
			name = ""
		}
		rows = append(rows, counts{v, name})
	}
	if len(ops) > 1 {
		rows = append(rows, counts{total, "total"})
	}
	width := 1
	if len(show) > 1 || len(ops) > 1 {
		width = len(strconv.FormatInt(sizes, 10))
		if nonRegular {
			width = max(width, 7)
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, k := range show {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%*d", width, r.v[k])
		}
		if r.name != "" {
			b.WriteString(" " + r.name)
		}
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(c.Stdout, b.String())
	return status
}

// ---- grep ----

func grepCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "qvEFGciInlLhHsowxrRaz", "emfABC", map[string]byte{
		"quiet": 'q', "silent": 'q', "invert-match": 'v', "extended-regexp": 'E', "fixed-strings": 'F',
		"count": 'c', "ignore-case": 'i', "line-number": 'n', "files-with-matches": 'l',
		"files-without-match": 'L', "no-filename": 'h', "with-filename": 'H', "no-messages": 's',
		"only-matching": 'o', "word-regexp": 'w', "line-regexp": 'x', "recursive": 'r', "regexp": 'e',
		"max-count": 'm', "file": 'f',
	})
	if !ok {
		return c.usageStatus()
	}
	switch c.name() {
	case "egrep":
		f.set('E')
	case "fgrep":
		f.set('F')
	}
	patterns := f.all('e')
	for _, pf := range f.all('f') {
		r, err := c.input(pf)
		if err != nil {
			c.warnf("%s: %s", pf, errText(err))
			return 2
		}
		data, _ := io.ReadAll(r)
		r.Close()
		patterns = append(patterns, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")...)
	}
	if len(f.all('e')) == 0 && len(f.all('f')) == 0 {
		if len(ops) == 0 {
			return c.usageError("")
		}
		patterns = strings.Split(ops[0], "\n")
		ops = ops[1:]
	}
	re, err := compileGrep(patterns, f)
	if err != nil {
		c.warnf("%s", err)
		return 2
	}
	maxCount := int64(-1)
	if v, ok := f.val('m'); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			c.warnf("invalid max count")
			return 2
		}
		maxCount = n
	}
	recursive := f.has('r') || f.has('R')
	if len(ops) == 0 {
		if recursive {
			ops = []string{"."}
		} else {
			ops = []string{"-"}
		}
	}
	showNames := (len(ops) > 1 || recursive || f.has('H')) && !f.has('h')
	selected, errored := false, false
	var b bytes.Buffer
	var grepOne func(op string) bool // false: stop everything (-q matched)
	grepOne = func(op string) bool {
		if op != "-" {
			abs := c.Abs(op)
			if fi, err := c.FS.Stat(abs); err == nil && fi.IsDir() {
				if !recursive {
					if !f.has('s') {
						c.warnf("%s: Is a directory", op)
					}
					errored = true
					return true
				}
				infos, err := c.p.readDir(abs)
				if err != nil {
					if !f.has('s') {
						c.warnf("%s: %s", op, errText(err))
					}
					errored = true
					return true
				}
				for _, e := range infos {
					if !grepOne(path.Join(op, e.Name())) {
						return false
					}
				}
				return true
			}
		}
		r, err := c.input(op)
		if err != nil {
			if !f.has('s') {
				c.warnf("%s: %s", op, errText(err))
			}
			errored = true
			return true
		}
		defer r.Close()
		name := op
		if op == "-" {
			name = "(standard input)"
		}
		br := bufio.NewReader(r)
		var n, count int64
		for maxCount < 0 || count < maxCount {
			line, err := br.ReadString('\n')
			if line == "" && err != nil {
				if err != io.EOF {
					c.warnf("%s: %s", op, errText(err))
					errored = true
				}
				break
			}
			n++
			text := strings.TrimSuffix(line, "\n")
			if re.MatchString(text) == f.has('v') {
				if err != nil {
					break
				}
				continue
			}
			count++
			selected = true
			if f.has('q') {
				return false
			}
			if f.has('l') || f.has('L') || f.has('c') {
				continue
			}
			prefix := ""
			if showNames {
				prefix = name + ":"
			}
			if f.has('n') {
				prefix += strconv.FormatInt(n, 10) + ":"
			}
			if f.has('o') && !f.has('v') {
				for _, m := range re.FindAllString(text, -1) {
					if m != "" {
						b.WriteString(prefix + m + "\n")
					}
				}
			} else {
				b.WriteString(prefix + text + "\n")
			}
			if b.Len() > 32*1024 {
				_, _ = c.Stdout.Write(b.Bytes())
				b.Reset()
			}
			if err != nil {
				break
			}
		}
		switch {
		case f.has('l') && count > 0:
			b.WriteString(name + "\n")
		case f.has('L') && count == 0:
			b.WriteString(name + "\n")
		case f.has('c') && !f.has('l') && !f.has('L'):
			if showNames {
				b.WriteString(name + ":")
			}
			b.WriteString(strconv.FormatInt(count, 10) + "\n")
		}
		return true
	}
	for _, op := range ops {
		if !grepOne(op) {
			break
		}
	}
	_, _ = c.Stdout.Write(b.Bytes())
	switch {
	case f.has('q') && selected:
		return 0
	case errored:
		return 2
	case selected:
		return 0
	}
	return 1
}

// compileGrep joins grep's patterns into one leftmost-longest expression.
func compileGrep(patterns []string, f flags) (*regexp.Regexp, error) {
	alts := make([]string, len(patterns))
	for i, p := range patterns {
		if f.has('F') {
			p = regexp.QuoteMeta(p)
		} else {
			var err error
			if p, err = posixToRE2(p, f.has('E')); err != nil {
				return nil, err
			}
		}
		if f.has('w') {
			p = `\b(?:` + p + `)\b`
		}
		if f.has('x') {
			p = `^(?:` + p + `)$`
		}
		alts[i] = "(?:" + p + ")"
	}
	return compileRE2(strings.Join(alts, "|"), f.has('i') || f.has('y'))
}

// ---- sort, uniq ----

func readAllInputs(c *Call, cmd string, ops []string) ([]byte, bool) {
	if len(ops) == 0 {
		ops = []string{"-"}
	}
	var all []byte
	for _, op := range ops {
		r, err := c.input(op)
		if err != nil {
			switch cmd {
			case "sort":
				c.warnf("cannot read: %s: %s", op, errText(err))
			default:
				c.warnf("%s: %s", op, errText(err))
			}
			return nil, false
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			c.warnf("%s: %s", op, errText(err))
			return nil, false
		}
		all = append(all, data...)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			all = append(all, '\n')
		}
	}
	return all, true
}

func sortCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "rnufbsVhz", "kto", map[string]byte{
		"reverse": 'r', "numeric-sort": 'n', "unique": 'u', "ignore-case": 'f', "key": 'k',
		"field-separator": 't', "output": 'o', "stable": 's',
	})
	if !ok {
		return c.usageStatus()
	}
	data, ok := readAllInputs(c, "sort", ops)
	if !ok {
		return 2
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(data) == 0 {
		lines = nil
	}
	sep, hasSep := f.val('t')
	keyOf := func(line string) string {
		k, ok := f.val('k')
		if !ok {
			return line
		}
		startS, endS, _ := strings.Cut(k, ",")
		start, _ := strconv.Atoi(strings.TrimRightFunc(startS, unicode.IsLetter))
		end := 0
		if endS != "" {
			end, _ = strconv.Atoi(strings.TrimRightFunc(endS, unicode.IsLetter))
		}
		var fields []string
		if hasSep && sep != "" {
			fields = strings.Split(line, sep[:1])
		} else {
			fields = strings.Fields(line)
		}
		if start < 1 || start > len(fields) {
			return ""
		}
		if end < start || end > len(fields) {
			end = len(fields)
		}
		j := " "
		if hasSep && sep != "" {
			j = sep[:1]
		}
		return strings.Join(fields[start-1:end], j)
	}
	cmp := func(a, b string) int {
		ka, kb := keyOf(a), keyOf(b)
		if f.has('b') {
			ka, kb = strings.TrimLeft(ka, " \t"), strings.TrimLeft(kb, " \t")
		}
		if f.has('n') || f.has('h') {
			na, nb := leadingNumber(ka), leadingNumber(kb)
			switch {
			case na < nb:
				return -1
			case na > nb:
				return 1
			}
			return 0
		}
		if f.has('f') {
			ka, kb = strings.ToUpper(ka), strings.ToUpper(kb)
		}
		return strings.Compare(ka, kb)
	}
	sort.SliceStable(lines, func(i, j int) bool {
		r := cmp(lines[i], lines[j])
		if r == 0 && !f.has('s') && !f.has('u') {
			r = strings.Compare(lines[i], lines[j])
		}
		if f.has('r') {
			return r > 0
		}
		return r < 0
	})
	var b strings.Builder
	for i, l := range lines {
		if f.has('u') && i > 0 && cmp(lines[i-1], l) == 0 {
			continue
		}
		b.WriteString(l + "\n")
	}
	if out, ok := f.val('o'); ok {
		fh, err := c.p.openFile(c.Abs(out), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
		if err != nil {
			c.warnf("open failed: %s: %s", out, errText(err))
			return 2
		}
		_, _ = io.WriteString(fh, b.String())
		fh.Close()
		return 0
	}
	_, _ = io.WriteString(c.Stdout, b.String())
	return 0
}

func leadingNumber(s string) float64 {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' || (end == 0 && s[end] == '-')) {
		end++
	}
	n, _ := strconv.ParseFloat(s[:end], 64)
	return n
}

func uniqCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "cdui", "", map[string]byte{"count": 'c', "repeated": 'd', "unique": 'u', "ignore-case": 'i'})
	if !ok {
		return c.usageStatus()
	}
	in := ops
	var out string
	if len(ops) > 1 {
		in, out = ops[:1], ops[1]
	}
	data, ok := readAllInputs(c, "uniq", in)
	if !ok {
		return 1
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(data) == 0 {
		lines = nil
	}
	eq := func(a, b string) bool {
		if f.has('i') {
			return strings.EqualFold(a, b)
		}
		return a == b
	}
	var b strings.Builder
	for i := 0; i < len(lines); {
		j := i + 1
		for j < len(lines) && eq(lines[i], lines[j]) {
			j++
		}
		n := j - i
		if (!f.has('d') || n > 1) && (!f.has('u') || n == 1) {
			if f.has('c') {
				fmt.Fprintf(&b, "%7d %s\n", n, lines[i])
			} else {
				b.WriteString(lines[i] + "\n")
			}
		}
		i = j
	}
	w := c.Stdout
	if out != "" {
		fh, err := c.p.openFile(c.Abs(out), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
		if err != nil {
			c.warnf("%s: %s", out, errText(err))
			return 1
		}
		defer fh.Close()
		w = fh
	}
	_, _ = io.WriteString(w, b.String())
	return 0
}

// ---- tr ----

func trCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "dscC", "", map[string]byte{"delete": 'd', "squeeze-repeats": 's', "complement": 'c'})
	if !ok {
		return c.usageStatus()
	}
	del, squeeze, compl := f.has('d'), f.has('s'), f.has('c') || f.has('C')
	need := 2
	if del || (squeeze && len(ops) == 1) {
		need = 1
	}
	if len(ops) < need {
		if len(ops) == 0 {
			return c.usageError("missing operand")
		}
		return c.usageError("missing operand after ‘%s’", ops[0])
	}
	set1 := expandTrSet(ops[0])
	var set2 []byte
	if len(ops) > 1 {
		set2 = expandTrSet(ops[1])
	}
	var in1 [256]bool
	for _, b := range set1 {
		in1[b] = true
	}
	if compl {
		for i := range in1 {
			in1[i] = !in1[i]
		}
	}
	var mapping [256]byte
	for i := range mapping {
		mapping[i] = byte(i)
	}
	translate := !del && len(set2) > 0
	if translate {
		if compl {
			last := set2[len(set2)-1]
			for i := range in1 {
				if in1[i] {
					mapping[i] = last
				}
			}
		} else {
			for i, b := range set1 {
				if i < len(set2) {
					mapping[b] = set2[i]
				} else {
					mapping[b] = set2[len(set2)-1]
				}
			}
		}
	}
	var sq [256]bool
	sqSet := set1
	if len(set2) > 0 && (translate || del) {
		sqSet = set2
	}
	for _, b := range sqSet {
		sq[b] = true
	}
	if compl && !translate && !del {
		sq = in1
	}
	data, _ := io.ReadAll(c.Stdin)
	out := make([]byte, 0, len(data))
	var prev int = -1
	for _, b := range data {
		if del && in1[b] {
			continue
		}
		nb := b
		if translate && in1[b] {
			nb = mapping[b]
		}
		if squeeze && sq[nb] && prev == int(nb) {
			continue
		}
		out = append(out, nb)
		prev = int(nb)
	}
	_, _ = c.Stdout.Write(out)
	return 0
}

var trClasses = map[string]func(byte) bool{
	"alpha": func(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' },
	"digit": func(b byte) bool { return b >= '0' && b <= '9' },
	"alnum": func(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' },
	"lower": func(b byte) bool { return b >= 'a' && b <= 'z' },
	"upper": func(b byte) bool { return b >= 'A' && b <= 'Z' },
	"space": func(b byte) bool { return b == ' ' || b >= '\t' && b <= '\r' },
	"blank": func(b byte) bool { return b == ' ' || b == '\t' },
	"punct": func(b byte) bool {
		return b > ' ' && b < 0x7f && !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9')
	},
	"xdigit": func(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' },
	"cntrl":  func(b byte) bool { return b < ' ' || b == 0x7f },
	"print":  func(b byte) bool { return b >= ' ' && b < 0x7f },
	"graph":  func(b byte) bool { return b > ' ' && b < 0x7f },
}

func expandTrSet(s string) []byte {
	var chars []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '[' && i+1 < len(s) && s[i+1] == ':' {
			if j := strings.Index(s[i+2:], ":]"); j >= 0 {
				if fn, ok := trClasses[s[i+2:i+2+j]]; ok {
					for b := 0; b < 256; b++ {
						if fn(byte(b)) {
							chars = append(chars, byte(b))
						}
					}
					i += j + 3
					continue
				}
			}
		}
		b := s[i]
		if b == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b = '\n'
			case 't':
				b = '\t'
			case 'r':
				b = '\r'
			case '\\':
				b = '\\'
			case '0', '1', '2', '3', '4', '5', '6', '7':
				j := i
				for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
					j++
				}
				n, _ := strconv.ParseUint(s[i:j], 8, 8)
				b = byte(n)
				i = j - 1
			default:
				b = s[i]
			}
		}
		if i+2 < len(s) && s[i+1] == '-' {
			hi := s[i+2]
			for x := int(b); x <= int(hi); x++ {
				chars = append(chars, byte(x))
			}
			i += 2
			continue
		}
		chars = append(chars, b)
	}
	return chars
}

// ---- seq, cut, echo, true, false ----

func seqCmd(ctx context.Context, c *Call) int {
	sep, format, equal := "\n", "", false
	var nums []string
	args := c.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-s" && i+1 < len(args):
			i++
			sep = args[i]
		case strings.HasPrefix(a, "-s") && len(a) > 2 && !isNumber(a):
			sep = a[2:]
		case a == "-f" && i+1 < len(args):
			i++
			format = args[i]
		case a == "-w":
			equal = true
		case a == "--":
		case strings.HasPrefix(a, "-") && !isNumber(a):
			return c.usageError("invalid option -- '%s'", strings.TrimLeft(a, "-")[:1])
		default:
			nums = append(nums, a)
		}
	}
	if len(nums) == 0 || len(nums) > 3 {
		if len(nums) == 0 {
			return c.usageError("missing operand")
		}
		return c.usageError("extra operand ‘%s’", nums[3])
	}
	vals := make([]float64, len(nums))
	prec := 0
	for i, n := range nums {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return c.usageError("invalid floating point argument: ‘%s’", n)
		}
		vals[i] = v
		if dot := strings.IndexByte(n, '.'); dot >= 0 && i < 2 || dot >= 0 && len(nums) == 1 {
			prec = max(prec, len(n)-dot-1)
		}
	}
	first, incr, last := 1.0, 1.0, vals[len(vals)-1]
	switch len(vals) {
	case 2:
		first = vals[0]
	case 3:
		first, incr = vals[0], vals[1]
	}
	if incr == 0 {
		return c.usageError("invalid Zero increment value: ‘%s’", nums[1])
	}
	width := 0
	if equal {
		width = max(len(strconv.FormatFloat(first, 'f', prec, 64)), len(strconv.FormatFloat(last, 'f', prec, 64)))
	}
	var b strings.Builder
	n := 0
	for i := 0; ; i++ {
		v := first + float64(i)*incr
		if incr > 0 && v > last+1e-9 || incr < 0 && v < last-1e-9 {
			break
		}
		if n > 0 {
			b.WriteString(sep)
		}
		switch {
		case format != "":
			fmt.Fprintf(&b, strings.ReplaceAll(format, "%g", "%v"), v)
		case equal:
			fmt.Fprintf(&b, "%0*.*f", width, prec, v)
		default:
			b.WriteString(strconv.FormatFloat(v, 'f', prec, 64))
		}
		n++
		if b.Len() > 32*1024 {
			_, _ = io.WriteString(c.Stdout, b.String())
			b.Reset()
		}
	}
	if n > 0 {
		b.WriteString("\n")
	}
	_, _ = io.WriteString(c.Stdout, b.String())
	return 0
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func cutCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "sn", "dfcb", map[string]byte{
		"delimiter": 'd', "fields": 'f', "characters": 'c', "bytes": 'b', "only-delimited": 's',
	})
	if !ok {
		return c.usageStatus()
	}
	list, mode := "", byte(0)
	for _, m := range []byte("fcb") {
		if v, ok := f.val(m); ok {
			list, mode = v, m
		}
	}
	if mode == 0 {
		return c.usageError("you must specify a list of bytes, characters, or fields")
	}
	ranges, ok := parseCutList(list)
	if !ok {
		return c.usageError("invalid field value ‘%s’", list)
	}
	delim := "\t"
	if d, ok := f.val('d'); ok {
		if len(d) != 1 {
			return c.usageError("the delimiter must be a single character")
		}
		delim = d
	}
	in := func(i int) bool {
		for _, r := range ranges {
			if i >= r[0] && (r[1] == 0 || i <= r[1]) {
				return true
			}
		}
		return false
	}
	data, ok := readAllInputs(c, "cut", ops)
	if !ok {
		return 1
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if len(data) == 0 {
			break
		}
		if mode == 'f' {
			if !strings.Contains(line, delim) {
				if !f.has('s') {
					b.WriteString(line + "\n")
				}
				continue
			}
			var out []string
			for i, field := range strings.Split(line, delim) {
				if in(i + 1) {
					out = append(out, field)
				}
			}
			b.WriteString(strings.Join(out, delim) + "\n")
			continue
		}
		for i := 0; i < len(line); i++ {
			if in(i + 1) {
				b.WriteByte(line[i])
			}
		}
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(c.Stdout, b.String())
	return 0
}

func parseCutList(s string) ([][2]int, bool) {
	var out [][2]int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		var r [2]int
		var err error
		if lo == "" {
			r[0] = 1
		} else if r[0], err = strconv.Atoi(lo); err != nil || r[0] < 1 {
			return nil, false
		}
		switch {
		case !isRange:
			r[1] = r[0]
		case hi == "":
			r[1] = 0
		default:
			if r[1], err = strconv.Atoi(hi); err != nil || r[1] < r[0] {
				return nil, false
			}
		}
		out = append(out, r)
	}
	return out, true
}

func echoCmd(ctx context.Context, c *Call) int {
	args := c.Args[1:]
	newline, escapes := true, false
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' && strings.Trim(args[0][1:], "neE") == "" {
		for _, ch := range args[0][1:] {
			switch ch {
			case 'n':
				newline = false
			case 'e':
				escapes = true
			case 'E':
				escapes = false
			}
		}
		args = args[1:]
	}
	s := strings.Join(args, " ")
	if escapes {
		var stop bool
		s, stop = echoEscapes(s)
		if stop {
			newline = false
		}
	}
	if newline {
		s += "\n"
	}
	_, _ = io.WriteString(c.Stdout, s)
	return 0
}

func echoEscapes(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'e':
			b.WriteByte(0x1b)
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case '\\':
			b.WriteByte('\\')
		case 'c':
			return b.String(), true
		case '0':
			j := i + 1
			for j < len(s) && j < i+4 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint("0"+s[i+1:j], 8, 8)
			b.WriteByte(byte(n))
			i = j - 1
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String(), false
}

func trueCmd(context.Context, *Call) int  { return 0 }
func falseCmd(context.Context, *Call) int { return 1 }

// ---- xargs ----

func xargsCmd(ctx context.Context, c *Call) int {
	f, cmd, ok := parseFlags(c, c.Args[1:], "+r0", "nI", map[string]byte{
		"max-args": 'n', "no-run-if-empty": 'r', "null": '0', "replace": 'I',
	})
	if !ok {
		return c.usageStatus()
	}
	maxArgs := 0
	if v, ok := f.val('n'); ok {
		maxArgs, _ = strconv.Atoi(v)
	}
	noRun, nul := f.has('r'), f.has('0')
	replace, _ := f.val('I')
	if len(cmd) == 0 {
		cmd = []string{"echo"}
	}
	data, _ := io.ReadAll(c.Stdin)
	var items []string
	if nul {
		for _, s := range strings.Split(string(data), "\x00") {
			if s != "" {
				items = append(items, s)
			}
		}
	} else if replace != "" {
		for _, s := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if s != "" {
				items = append(items, s)
			}
		}
	} else {
		items = splitXargs(string(data))
	}
	if len(items) == 0 && noRun {
		return 0
	}
	status := 0
	run := func(argv []string) {
		code := c.Run(ctx, argv)
		switch {
		case code == 255:
			status = 124
		case code == 126 || code == 127:
			status = code
		case code != 0 && status == 0:
			status = 123
		}
	}
	if replace != "" {
		for _, it := range items {
			argv := make([]string, len(cmd))
			for j, a := range cmd {
				argv[j] = strings.ReplaceAll(a, replace, it)
			}
			run(argv)
		}
		return status
	}
	if maxArgs <= 0 {
		maxArgs = len(items)
	}
	if len(items) == 0 {
		run(cmd)
		return status
	}
	for len(items) > 0 {
		n := min(maxArgs, len(items))
		run(append(append([]string(nil), cmd...), items[:n]...))
		items = items[n:]
	}
	return status
}

// splitXargs splits input on blanks, honouring quotes and backslashes.
func splitXargs(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

package virtual

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"
	"mvdan.cc/sh/v3/interp"

	"github.com/jobsim/jobsim/base/clock"
)

func init() {
	for name, fn := range map[string]Builtin{
		"ls": lsCmd, "cat": catCmd, "cp": cpCmd, "mv": mvCmd, "rm": rmCmd, "rmdir": rmdirCmd,
		"mkdir": mkdirCmd, "touch": touchCmd, "chmod": chmodCmd, "ln": lnCmd, "tee": teeCmd,
		"basename": basenameCmd, "dirname": dirnameCmd, "readlink": readlinkCmd,
		"realpath": realpathCmd, "mktemp": mktempCmd, "pwd": pwdCmd,
	} {
		coreBuiltins[name] = fn
	}
}

// ---- ls ----

type lsEntry struct {
	name string // as shown
	path string // absolute
	fi   fs.FileInfo
}

func lsCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "laA1drtSFh", "", map[string]byte{
		"all": 'a', "almost-all": 'A', "directory": 'd', "reverse": 'r', "human-readable": 'h', "classify": 'F',
	})
	if !ok {
		return c.usageStatus()
	}
	long := f.has('l')
	if len(ops) == 0 {
		ops = []string{"."}
	}
	status := 0
	var files []lsEntry
	var dirs []lsEntry
	for _, op := range ops {
		abs := c.Abs(op)
		var fi fs.FileInfo
		var err error
		if long || f.has('d') {
			fi, err = c.p.lstat(abs)
		} else {
			fi, err = c.FS.Stat(abs)
			if err != nil {
				if lfi, lerr := c.p.lstat(abs); lerr == nil {
					fi, err = lfi, nil
				}
			}
		}
		if err != nil {
			c.warnf("cannot access '%s': %s", op, errText(err))
			status = 2
			continue
		}
		if fi.IsDir() && !f.has('d') {
			dirs = append(dirs, lsEntry{name: op, path: abs, fi: fi})
		} else {
			files = append(files, lsEntry{name: op, path: abs, fi: fi})
		}
	}
	lsSort(files, f)
	lsSort(dirs, f)
	printed := false
	if len(files) > 0 {
		lsPrint(c, files, f, false)
		printed = true
	}
	header := len(ops) > 1
	for _, d := range dirs {
		infos, err := c.p.readDir(d.path)
		var de *dirError
		if err != nil && errors.As(err, &de) && de.op == "open" {
			c.warnf("cannot open directory '%s': %s", d.name, errText(de.err))
			status = 2
			continue
		}
		if printed {
			fmt.Fprintln(c.Stdout)
		}
		printed = true
		if header {
			fmt.Fprintf(c.Stdout, "%s:\n", d.name)
		}
		if err != nil {
			c.warnf("reading directory '%s': %s", d.name, errText(errors.Unwrap(err)))
			status = 2
			continue
		}
		var entries []lsEntry
		if f.has('a') {
			for _, dot := range []string{".", ".."} {
				p := path.Clean(path.Join(d.path, dot))
				if fi, err := c.FS.Stat(p); err == nil {
					entries = append(entries, lsEntry{name: dot, path: p, fi: fi})
				}
			}
		}
		for _, fi := range infos {
			if strings.HasPrefix(fi.Name(), ".") && !f.has('a') && !f.has('A') {
				continue
			}
			entries = append(entries, lsEntry{name: fi.Name(), path: path.Join(d.path, fi.Name()), fi: fi})
		}
		lsSort(entries, f)
		lsPrint(c, entries, f, true)
	}
	return status
}

func lsSort(es []lsEntry, f flags) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		switch {
		case f.has('t') && !a.fi.ModTime().Equal(b.fi.ModTime()):
			return a.fi.ModTime().After(b.fi.ModTime())
		case f.has('S') && a.fi.Size() != b.fi.Size():
			return a.fi.Size() > b.fi.Size()
		}
		return a.name < b.name
	})
	if f.has('r') {
		for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
			es[i], es[j] = es[j], es[i]
		}
	}
}

func lsPrint(c *Call, es []lsEntry, f flags, isDir bool) {
	if !f.has('l') {
		var b strings.Builder
		for _, e := range es {
			b.WriteString(e.name)
			b.WriteString(classify(e.fi, f))
			b.WriteByte('\n')
		}
		_, _ = io.WriteString(c.Stdout, b.String())
		return
	}
	type row struct{ mode, nlink, owner, group, size, when, name string }
	rows := make([]row, len(es))
	var wl, wo, wg, ws int
	var blocks int64
	now := c.Clock.Now()
	for i, e := range es {
		fi := e.fi
		nlink := int64(1)
		if fi.IsDir() {
			nlink = 2
		}
		size := fi.Size()
		uid, gid := c.p.fileOwner(fi)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			nlink = int64(st.Nlink)
			blocks += st.Blocks / 2
		} else {
			if fi.IsDir() {
				size = 4096
			}
			blocks += (size + 4095) / 4096 * 4
		}
		sz := strconv.FormatInt(size, 10)
		if f.has('h') {
			sz = humanSize(size)
		}
		name := e.name + classify(fi, f)
		if fi.Mode()&fs.ModeSymlink != 0 {
			if lr, ok := c.FS.(afero.LinkReader); ok {
				if target, err := lr.ReadlinkIfPossible(e.path); err == nil {
					name += " -> " + target
				}
			}
		}
		rows[i] = row{
			mode:  modeString(fi.Mode()),
			nlink: strconv.FormatInt(nlink, 10),
			owner: c.p.userName(uid),
			group: c.p.groupName(gid),
			size:  sz,
			when:  lsTime(fi.ModTime(), now),
			name:  name,
		}
		wl = max(wl, len(rows[i].nlink))
		wo = max(wo, len(rows[i].owner))
		wg = max(wg, len(rows[i].group))
		ws = max(ws, len(rows[i].size))
	}
	var b strings.Builder
	if isDir {
		fmt.Fprintf(&b, "total %d\n", blocks)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "%s %*s %-*s %-*s %*s %s %s\n", r.mode, wl, r.nlink, wo, r.owner, wg, r.group, ws, r.size, r.when, r.name)
	}
	_, _ = io.WriteString(c.Stdout, b.String())
}

func classify(fi fs.FileInfo, f flags) string {
	if !f.has('F') {
		return ""
	}
	m := fi.Mode()
	switch {
	case m.IsDir():
		return "/"
	case m&fs.ModeSymlink != 0:
		return "@"
	case m&fs.ModeNamedPipe != 0:
		return "|"
	case m&fs.ModeSocket != 0:
		return "="
	case m&0o111 != 0:
		return "*"
	}
	return ""
}

func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	f := float64(n)
	i := -1
	for f >= 1024 && i < 5 {
		f /= 1024
		i++
	}
	unit := "KMGTPE"[i]
	if f < 10 {
		return fmt.Sprintf("%.1f%c", math.Ceil(f*10)/10, unit)
	}
	return fmt.Sprintf("%.0f%c", math.Ceil(f), unit)
}

// lsTime formats a modification time as GNU ls does: time of day for the
// last six months, the year otherwise.
func lsTime(t, now time.Time) string {
	t = t.UTC()
	halfYear := time.Duration(365.2425 * 24 * 3600 / 2 * float64(time.Second))
	if t.After(now.Add(-halfYear)) && !t.After(now.Add(time.Minute)) {
		return t.Format("Jan _2 15:04")
	}
	return t.Format("Jan _2  2006")
}

func modeString(m fs.FileMode) string {
	b := []byte("----------")
	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<uint(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(i int, set bool, c byte) {
		if !set {
			return
		}
		if b[i] == 'x' {
			b[i] = c
		} else {
			b[i] = c - 'a' + 'A'
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's')
	special(6, m&fs.ModeSetgid != 0, 's')
	special(9, m&fs.ModeSticky != 0, 't')
	return string(b)
}

func (p *process) userName(uid int) string { return idName(uid, p.user.UID, p.user.Name) }

func (p *process) groupName(gid int) string { return idName(gid, p.user.GID, p.user.Group) }

// idName is how ls names a user or group id: the process's own (ownID)
// as name, 0 as root, others by number.
func idName(id, ownID int, name string) string {
	switch id {
	case ownID:
		return name
	case 0:
		return "root"
	}
	return strconv.Itoa(id)
}

// ---- cat ----

func catCmd(ctx context.Context, c *Call) int {
	_, ops, ok := parseFlags(c, c.Args[1:], "u", "", nil)
	if !ok {
		return c.usageStatus()
	}
	if len(ops) == 0 {
		ops = []string{"-"}
	}
	status := 0
	for _, op := range ops {
		if op == "-" {
			_, _ = io.Copy(c.Stdout, c.Stdin)
			continue
		}
		fh, err := c.input(op)
		if err != nil {
			c.warnf("%s: %s", op, errText(err))
			status = 1
			continue
		}
		if _, err := copyFrom(c.Stdout, fh); err != nil {
			c.warnf("%s: %s", op, errText(err))
			status = 1
		}
		fh.Close()
	}
	return status
}

// copyFrom copies src to dst, returning only read errors (a closed output is
// not the file's fault).
func copyFrom(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 32*1024)
	var n int64
	for {
		m, err := src.Read(buf)
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, nil
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// ---- cp, mv ----

func cpCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "rRapfvinLPd", "", map[string]byte{
		"recursive": 'r', "archive": 'a', "force": 'f', "verbose": 'v', "preserve": 'p',
	})
	if !ok {
		return c.usageStatus()
	}
	recursive := f.has('r') || f.has('R') || f.has('a')
	preserve := f.has('p') || f.has('a')
	srcs, dst, ok := twoOperands(c, ops)
	if !ok {
		return 1
	}
	dstAbs, dstDir, ok := c.intoDir(dst, len(srcs), false)
	if !ok {
		return 1
	}
	status := 0
	for _, src := range srcs {
		abs := c.Abs(src)
		fi, err := c.FS.Stat(abs)
		if err != nil {
			c.warnf("cannot stat '%s': %s", src, errText(err))
			status = 1
			continue
		}
		if fi.IsDir() && !recursive {
			c.warnf("-r not specified; omitting directory '%s'", src)
			status = 1
			continue
		}
		target, shown := destFor(abs, dstAbs, dst, dstDir)
		if target == abs {
			c.warnf("'%s' and '%s' are the same file", src, shown)
			status = 1
			continue
		}
		if fi.IsDir() && (target == abs || strings.HasPrefix(target, abs+"/")) {
			c.warnf("cannot copy a directory, '%s', into itself, '%s'", src, shown)
			status = 1
			continue
		}
		if !c.copyTree(abs, src, target, shown, fi, preserve) {
			status = 1
		} else if f.has('v') {
			fmt.Fprintf(c.Stdout, "'%s' -> '%s'\n", src, shown)
		}
	}
	return status
}

// needOperands parses c's flags as parseFlags does and wants at least one
// operand (missing is coreutils' message for none). When ok is false the
// usage message is written and status is the command's exit status.
func needOperands(c *Call, bools, values string, long map[string]byte, missing string) (f flags, ops []string, status int, ok bool) {
	f, ops, ok = parseFlags(c, c.Args[1:], bools, values, long)
	if !ok {
		return f, nil, c.usageStatus(), false
	}
	if len(ops) == 0 {
		return f, nil, c.usageError("%s", missing), false
	}
	return f, ops, 0, true
}

func twoOperands(c *Call, ops []string) ([]string, string, bool) {
	switch len(ops) {
	case 0:
		c.usageError("missing file operand")
		return nil, "", false
	case 1:
		c.usageError("missing destination file operand after '%s'", ops[0])
		return nil, "", false
	}
	return ops[:len(ops)-1], ops[len(ops)-1], true
}

// intoDir resolves the last operand of cp, mv or ln, dst, and says
// whether the n sources go into it as a directory (never with
// noTargetDir: -T, or ln -n); several sources need one, else the message
// is written and ok is false.
func (c *Call) intoDir(dst string, n int, noTargetDir bool) (dstAbs string, dstDir, ok bool) {
	dstAbs = c.Abs(dst)
	fi, err := c.FS.Stat(dstAbs)
	dstDir = err == nil && fi.IsDir() && !noTargetDir
	if n > 1 && !dstDir {
		c.warnf("target '%s' is not a directory", dst)
		return dstAbs, false, false
	}
	return dstAbs, dstDir, true
}

// destFor is where cp or mv puts source abs: the destination itself, or
// the entry of abs's name in it when it is a directory (dstDir); shown is
// that path as the user wrote the destination.
func destFor(abs, dstAbs, dst string, dstDir bool) (target, shown string) {
	if !dstDir {
		return dstAbs, dst
	}
	return path.Join(dstAbs, path.Base(abs)), path.Join(dst, path.Base(abs))
}

func (c *Call) copyTree(src, srcShown, dst, dstShown string, fi fs.FileInfo, preserve bool) bool {
	if !fi.IsDir() {
		return c.copyFile(src, srcShown, dst, dstShown, fi, preserve)
	}
	if dfi, err := c.FS.Stat(dst); err == nil {
		if !dfi.IsDir() {
			c.warnf("cannot overwrite non-directory '%s' with directory '%s'", dstShown, srcShown)
			return false
		}
	} else if err := c.FS.Mkdir(dst, fi.Mode().Perm()|0o700); err != nil {
		c.warnf("cannot create directory '%s': %s", dstShown, errText(err))
		return false
	}
	infos, err := c.p.readDir(src)
	if err != nil {
		c.warnf("cannot access '%s': %s", srcShown, errText(errors.Unwrap(err)))
		return false
	}
	ok := true
	for _, e := range infos {
		s := path.Join(src, e.Name())
		efi, err := c.FS.Stat(s)
		if err != nil {
			c.warnf("cannot stat '%s': %s", path.Join(srcShown, e.Name()), errText(err))
			ok = false
			continue
		}
		if !c.copyTree(s, path.Join(srcShown, e.Name()), path.Join(dst, e.Name()), path.Join(dstShown, e.Name()), efi, preserve) {
			ok = false
		}
	}
	if preserve {
		_ = c.FS.Chmod(dst, fi.Mode())
		_ = c.FS.Chtimes(dst, fi.ModTime(), fi.ModTime())
	}
	return ok
}

func (c *Call) copyFile(src, srcShown, dst, dstShown string, fi fs.FileInfo, preserve bool) bool {
	in, err := c.p.openFile(src, os.O_RDONLY, 0)
	if err != nil {
		c.warnf("cannot open '%s' for reading: %s", srcShown, errText(err))
		return false
	}
	defer in.Close()
	out, err := c.p.openFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		c.warnf("cannot create regular file '%s': %s", dstShown, errText(err))
		return false
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		c.warnf("error copying '%s' to '%s': %s", srcShown, dstShown, errText(err))
		return false
	}
	if err := out.Close(); err != nil {
		c.warnf("failed to close '%s': %s", dstShown, errText(err))
		return false
	}
	if preserve {
		_ = c.FS.Chmod(dst, fi.Mode())
		_ = c.FS.Chtimes(dst, fi.ModTime(), fi.ModTime())
	}
	return true
}

func mvCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "fivnT", "", map[string]byte{"force": 'f', "verbose": 'v'})
	if !ok {
		return c.usageStatus()
	}
	srcs, dst, ok := twoOperands(c, ops)
	if !ok {
		return 1
	}
	dstAbs, dstDir, ok := c.intoDir(dst, len(srcs), f.has('T'))
	if !ok {
		return 1
	}
	status := 0
	for _, src := range srcs {
		abs := c.Abs(src)
		if _, err := c.p.lstat(abs); err != nil {
			c.warnf("cannot stat '%s': %s", src, errText(err))
			status = 1
			continue
		}
		target, shown := destFor(abs, dstAbs, dst, dstDir)
		if f.has('n') {
			if _, err := c.FS.Stat(target); err == nil {
				continue
			}
		}
		if err := c.p.checkParentWritable(abs); err != nil {
			c.warnf("cannot move '%s' to '%s': %s", src, shown, errText(err))
			status = 1
			continue
		}
		if err := c.FS.Rename(abs, target); err != nil {
			c.warnf("cannot move '%s' to '%s': %s", src, shown, errText(err))
			status = 1
			continue
		}
		if f.has('v') {
			fmt.Fprintf(c.Stdout, "renamed '%s' -> '%s'\n", src, shown)
		}
	}
	return status
}

// checkParentWritable reports EACCES when the user may not change entries of
// name's directory.
func (p *process) checkParentWritable(name string) error {
	if p.user.UID == 0 {
		return nil
	}
	if err := p.access(path.Dir(name), interp.AccessWrite|interp.AccessExec); err != nil && !isNotExist(err) {
		return syscall.EACCES
	}
	return nil
}

// ---- rm, rmdir, mkdir, touch ----

func rmCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "rRfidv", "", map[string]byte{
		"recursive": 'r', "force": 'f', "dir": 'd', "verbose": 'v',
	})
	if !ok {
		return c.usageStatus()
	}
	force := f.has('f')
	recursive := f.has('r') || f.has('R')
	if len(ops) == 0 {
		if force {
			return 0
		}
		return c.usageError("missing operand")
	}
	status := 0
	for _, op := range ops {
		base := path.Base(op)
		if recursive && (base == "." || base == "..") {
			c.warnf("refusing to remove '.' or '..' directory: skipping '%s'", op)
			status = 1
			continue
		}
		abs := c.Abs(op)
		if abs == "/" && recursive {
			c.warnf("it is dangerous to operate recursively on '/'\nrm: use --no-preserve-root to override this failsafe")
			status = 1
			continue
		}
		fi, err := c.p.lstat(abs)
		if err != nil {
			if force && isNotExist(err) {
				continue
			}
			c.warnf("cannot remove '%s': %s", op, errText(err))
			status = 1
			continue
		}
		if fi.IsDir() && !recursive && !f.has('d') {
			c.warnf("cannot remove '%s': Is a directory", op)
			status = 1
			continue
		}
		if err := c.p.checkParentWritable(abs); err != nil {
			c.warnf("cannot remove '%s': %s", op, errText(err))
			status = 1
			continue
		}
		if fi.IsDir() && recursive {
			err = c.FS.RemoveAll(abs)
		} else {
			err = c.FS.Remove(abs)
		}
		if err != nil {
			c.warnf("cannot remove '%s': %s", op, errText(err))
			status = 1
			continue
		}
		if f.has('v') {
			fmt.Fprintf(c.Stdout, "removed '%s'\n", op)
		}
	}
	return status
}

func rmdirCmd(ctx context.Context, c *Call) int {
	f, ops, status, ok := needOperands(c, "pv", "", map[string]byte{"parents": 'p', "verbose": 'v'}, "missing operand")
	if !ok {
		return status
	}
	for _, op := range ops {
		for cur := op; ; {
			abs := c.Abs(cur)
			fi, err := c.FS.Stat(abs)
			switch {
			case err != nil:
			case !fi.IsDir():
				err = syscall.ENOTDIR
			default:
				infos, rerr := c.p.readDir(abs)
				if rerr == nil && len(infos) > 0 {
					err = syscall.ENOTEMPTY
				} else if rerr != nil {
					err = errors.Unwrap(rerr)
				} else if perr := c.p.checkParentWritable(abs); perr != nil {
					err = perr
				} else {
					err = c.FS.Remove(abs)
				}
			}
			if err != nil {
				c.warnf("failed to remove '%s': %s", cur, errText(err))
				status = 1
				break
			}
			if !f.has('p') {
				break
			}
			next := path.Dir(cur)
			if next == cur || next == "." || next == "/" {
				break
			}
			cur = next
		}
	}
	return status
}

func mkdirCmd(ctx context.Context, c *Call) int {
	f, ops, status, ok := needOperands(c, "pv", "m", map[string]byte{"parents": 'p', "verbose": 'v', "mode": 'm'}, "missing operand")
	if !ok {
		return status
	}
	mode := fs.FileMode(0o755)
	if m, ok := f.val('m'); ok {
		nm, good := parseMode(m, 0o777, true)
		if !good {
			c.warnf("invalid mode ‘%s’", m)
			return 1
		}
		mode = nm
	}
	for _, op := range ops {
		abs := c.Abs(op)
		if err := c.mkdir(abs, mode, f.has('p')); err != nil {
			c.warnf("cannot create directory ‘%s’: %s", op, errText(err))
			status = 1
			continue
		}
		if f.has('v') {
			fmt.Fprintf(c.Stdout, "mkdir: created directory '%s'\n", op)
		}
	}
	return status
}

func (c *Call) mkdir(abs string, mode fs.FileMode, parents bool) error {
	fi, err := c.FS.Stat(abs)
	if err == nil {
		if parents && fi.IsDir() {
			return nil
		}
		return syscall.EEXIST
	}
	if !isNotExist(err) {
		return err
	}
	parent := path.Dir(abs)
	pfi, err := c.FS.Stat(parent)
	switch {
	case err != nil && parents && isNotExist(err):
		if err := c.mkdir(parent, 0o755, true); err != nil {
			return err
		}
	case err != nil:
		return err
	case !pfi.IsDir():
		return syscall.ENOTDIR
	}
	if c.User.UID != 0 {
		if err := c.p.access(parent, interp.AccessWrite|interp.AccessExec); err != nil {
			return syscall.EACCES
		}
	}
	if err := c.FS.Mkdir(abs, mode); err != nil {
		return err
	}
	if _, real := c.Clock.(clock.Real); !real {
		now := c.Clock.Now()
		_ = c.FS.Chtimes(abs, now, now)
	}
	if mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		_ = c.FS.Chmod(abs, mode)
	}
	return nil
}

func touchCmd(ctx context.Context, c *Call) int {
	f, ops, status, ok := needOperands(c, "camh", "", map[string]byte{"no-create": 'c'}, "missing file operand")
	if !ok {
		return status
	}
	now := c.Clock.Now()
	for _, op := range ops {
		abs := c.Abs(op)
		_, err := c.FS.Stat(abs)
		switch {
		case err == nil:
			if err := c.FS.Chtimes(abs, now, now); err != nil {
				c.warnf("setting times of '%s': %s", op, errText(err))
				status = 1
			}
		case isNotExist(err) && f.has('c'):
		case isNotExist(err):
			fh, err := c.p.openFile(abs, os.O_WRONLY|os.O_CREATE, 0o666)
			if err != nil {
				c.warnf("cannot touch '%s': %s", op, errText(err))
				status = 1
				continue
			}
			fh.Close()
			_ = c.FS.Chtimes(abs, now, now)
		default:
			c.warnf("cannot touch '%s': %s", op, errText(err))
			status = 1
		}
	}
	return status
}

// ---- chmod ----

func chmodCmd(ctx context.Context, c *Call) int {
	// Modes such as -w look like options: take the first operand that is a
	// valid mode before parsing the rest.
	args := c.Args[1:]
	recursive := false
	var rest []string
	mode := ""
	for _, a := range args {
		switch {
		case a == "-R" || a == "--recursive":
			recursive = true
		case a == "-v" || a == "-f" || a == "-c":
		case mode == "":
			mode = a
		default:
			rest = append(rest, a)
		}
	}
	if mode == "" {
		return c.usageError("missing operand")
	}
	if len(rest) == 0 {
		return c.usageError("missing operand after ‘%s’", mode)
	}
	if _, ok := parseMode(mode, 0, false); !ok {
		return c.usageError("invalid mode: ‘%s’", mode)
	}
	status := 0
	var apply func(abs, shown string)
	apply = func(abs, shown string) {
		fi, err := c.FS.Stat(abs)
		if err != nil {
			c.warnf("cannot access '%s': %s", shown, errText(err))
			status = 1
			return
		}
		uid, _ := c.p.fileOwner(fi)
		if c.User.UID != 0 && uid != c.User.UID {
			c.warnf("changing permissions of '%s': Operation not permitted", shown)
			status = 1
			return
		}
		nm, _ := parseMode(mode, fi.Mode(), fi.IsDir())
		if err := c.FS.Chmod(abs, nm); err != nil {
			c.warnf("changing permissions of '%s': %s", shown, errText(err))
			status = 1
			return
		}
		if recursive && fi.IsDir() {
			infos, err := c.p.readDir(abs)
			if err != nil {
				c.warnf("cannot read directory '%s': %s", shown, errText(errors.Unwrap(err)))
				status = 1
				return
			}
			for _, e := range infos {
				apply(path.Join(abs, e.Name()), path.Join(shown, e.Name()))
			}
		}
	}
	for _, op := range rest {
		apply(c.Abs(op), op)
	}
	return status
}

// parseMode applies a chmod mode (octal, or symbolic such as u+x,go-w) to
// old, keeping the file type bits.
func parseMode(spec string, old fs.FileMode, isDir bool) (fs.FileMode, bool) {
	if spec == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(spec, 8, 32); err == nil {
		if n > 0o7777 {
			return 0, false
		}
		m := old&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | fs.FileMode(n&0o777)
		if n&0o4000 != 0 {
			m |= fs.ModeSetuid
		}
		if n&0o2000 != 0 {
			m |= fs.ModeSetgid
		}
		if n&0o1000 != 0 {
			m |= fs.ModeSticky
		}
		return m, true
	}
	m := old
	for _, clause := range strings.Split(spec, ",") {
		i := 0
		var who fs.FileMode
		for i < len(clause) && strings.IndexByte("ugoa", clause[i]) >= 0 {
			switch clause[i] {
			case 'u':
				who |= 0o700
			case 'g':
				who |= 0o070
			case 'o':
				who |= 0o007
			case 'a':
				who |= 0o777
			}
			i++
		}
		whoGiven := who != 0
		if !whoGiven {
			who = 0o777
		}
		if i >= len(clause) {
			return 0, false
		}
		for i < len(clause) {
			op := clause[i]
			if op != '+' && op != '-' && op != '=' {
				return 0, false
			}
			i++
			var bits fs.FileMode
			var special fs.FileMode
			for i < len(clause) && strings.IndexByte("rwxXstugo", clause[i]) >= 0 {
				switch clause[i] {
				case 'r':
					bits |= 0o444
				case 'w':
					bits |= 0o222
				case 'x':
					bits |= 0o111
				case 'X':
					if isDir || m&0o111 != 0 {
						bits |= 0o111
					}
				case 's':
					if who&0o700 != 0 {
						special |= fs.ModeSetuid
					}
					if who&0o070 != 0 {
						special |= fs.ModeSetgid
					}
				case 't':
					special |= fs.ModeSticky
				case 'u':
					bits |= spread((m & 0o700) >> 6)
				case 'g':
					bits |= spread((m & 0o070) >> 3)
				case 'o':
					bits |= spread(m & 0o007)
				}
				i++
			}
			mask := who
			if !whoGiven && op != '=' {
				mask &^= 0o022 // the umask limits an absent who
			}
			switch op {
			case '+':
				m |= bits&mask | special
			case '-':
				m &^= bits&mask | special
			case '=':
				m = m&^who | bits&who
				m = m&^(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | special
			}
		}
	}
	return m, true
}

func spread(b fs.FileMode) fs.FileMode { return b<<6 | b<<3 | b }

// ---- ln, tee ----

func lnCmd(ctx context.Context, c *Call) int {
	f, ops, status, ok := needOperands(c, "sfnvT", "", map[string]byte{"symbolic": 's', "force": 'f'}, "missing file operand")
	if !ok {
		return status
	}
	if len(ops) == 1 {
		ops = append(ops, path.Base(ops[0]))
	}
	targets, dst := ops[:len(ops)-1], ops[len(ops)-1]
	dstAbs, dstDir, ok := c.intoDir(dst, len(targets), f.has('n') || f.has('T'))
	if !ok {
		return 1
	}
	for _, t := range targets {
		link, shown := dstAbs, dst
		if dstDir {
			link = path.Join(dstAbs, path.Base(t))
			shown = path.Join(dst, path.Base(t))
		}
		if !f.has('s') {
			c.warnf("failed to create hard link '%s' => '%s': Operation not supported", shown, t)
			status = 1
			continue
		}
		if _, err := c.p.lstat(link); err == nil {
			if !f.has('f') {
				c.warnf("failed to create symbolic link '%s': File exists", shown)
				status = 1
				continue
			}
			_ = c.FS.Remove(link)
		}
		linker, ok := c.FS.(afero.Linker)
		if !ok {
			c.warnf("failed to create symbolic link '%s': Operation not supported", shown)
			status = 1
			continue
		}
		if err := linker.SymlinkIfPossible(t, link); err != nil {
			c.warnf("failed to create symbolic link '%s': %s", shown, errText(err))
			status = 1
		}
	}
	return status
}

func teeCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "aip", "", map[string]byte{"append": 'a'})
	if !ok {
		return c.usageStatus()
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if f.has('a') {
		flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	status := 0
	type out struct {
		name string
		w    io.WriteCloser
	}
	var outs []out
	for _, op := range ops {
		fh, err := c.p.openFile(c.Abs(op), flag, 0o666)
		if err != nil {
			c.warnf("%s: %s", op, errText(err))
			status = 1
			continue
		}
		outs = append(outs, out{op, fh})
	}
	buf := make([]byte, 32*1024)
	stdoutOK := true
	for {
		n, err := c.Stdin.Read(buf)
		if n > 0 {
			if stdoutOK {
				if _, werr := c.Stdout.Write(buf[:n]); werr != nil {
					stdoutOK = false
				}
			}
			for i := 0; i < len(outs); i++ {
				if _, werr := outs[i].w.Write(buf[:n]); werr != nil {
					c.warnf("%s: %s", outs[i].name, errText(werr))
					status = 1
					outs[i].w.Close()
					outs = append(outs[:i], outs[i+1:]...)
					i--
				}
			}
		}
		if err != nil {
			break
		}
	}
	for _, o := range outs {
		if err := o.w.Close(); err != nil {
			c.warnf("%s: %s", o.name, errText(err))
			status = 1
		}
	}
	return status
}

// ---- names ----

func basenameCmd(ctx context.Context, c *Call) int {
	f, ops, status, ok := needOperands(c, "az", "s", map[string]byte{"multiple": 'a', "suffix": 's', "zero": 'z'}, "missing operand")
	if !ok {
		return status
	}
	suffix, _ := f.val('s')
	multi := f.has('a') || f.has('s')
	if !multi {
		if len(ops) > 2 {
			return c.usageError("extra operand '%s'", ops[2])
		}
		if len(ops) == 2 {
			suffix = ops[1]
		}
		ops = ops[:1]
	}
	end := "\n"
	if f.has('z') {
		end = "\x00"
	}
	for _, op := range ops {
		fmt.Fprint(c.Stdout, baseName(op, suffix)+end)
	}
	return 0
}

func baseName(name, suffix string) string {
	t := strings.TrimRight(name, "/")
	if t == "" {
		if name == "" {
			return ""
		}
		return "/"
	}
	b := t[strings.LastIndexByte(t, '/')+1:]
	if suffix != "" && b != suffix && strings.HasSuffix(b, suffix) {
		b = strings.TrimSuffix(b, suffix)
	}
	return b
}

func dirnameCmd(ctx context.Context, c *Call) int {
	_, ops, status, ok := needOperands(c, "z", "", nil, "missing operand")
	if !ok {
		return status
	}
	for _, op := range ops {
		fmt.Fprintln(c.Stdout, dirName(op))
	}
	return 0
}

func dirName(name string) string {
	t := strings.TrimRight(name, "/")
	if t == "" {
		if strings.HasPrefix(name, "/") {
			return "/"
		}
		return "."
	}
	i := strings.LastIndexByte(t, '/')
	if i < 0 {
		return "."
	}
	d := strings.TrimRight(t[:i], "/")
	if d == "" {
		return "/"
	}
	return d
}

// resolve canonicalises name, following symbolic links. With mustExist
// every component must exist; otherwise all but the last.
func (c *Call) resolve(name string, mustExist bool) (string, error) {
	abs := c.Abs(name)
	lr, _ := c.FS.(afero.LinkReader)
	parts := strings.Split(strings.TrimPrefix(abs, "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		fi, err := c.p.lstat(next)
		if err != nil {
			if isNotExist(err) && !mustExist && len(parts) == 0 {
				return next, nil
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && lr != nil {
			hops++
			if hops > 40 {
				return "", syscall.ELOOP
			}
			target, err := lr.ReadlinkIfPossible(next)
			if err != nil {
				return "", err
			}
			if path.IsAbs(target) {
				cur = "/"
			}
			parts = append(strings.Split(target, "/"), parts...)
			continue
		}
		if len(parts) > 0 && !fi.IsDir() {
			return "", syscall.ENOTDIR
		}
		cur = next
	}
	return cur, nil
}

func readlinkCmd(ctx context.Context, c *Call) int {
	f, ops, status, ok := needOperands(c, "femnqsvz", "", map[string]byte{"canonicalize": 'f'}, "missing operand")
	if !ok {
		return status
	}
	end := "\n"
	if f.has('n') {
		end = ""
	}
	for _, op := range ops {
		var t string
		var err error
		if f.has('f') || f.has('e') || f.has('m') {
			t, err = c.resolve(op, f.has('e'))
		} else if lr, ok := c.FS.(afero.LinkReader); ok {
			t, err = lr.ReadlinkIfPossible(c.Abs(op))
		} else {
			status = 1
			continue
		}
		if err != nil {
			if f.has('v') {
				c.warnf("%s: %s", op, errText(err))
			}
			status = 1
			continue
		}
		fmt.Fprint(c.Stdout, t+end)
	}
	return status
}

func realpathCmd(ctx context.Context, c *Call) int {
	f, ops, status, ok := needOperands(c, "emqsz", "", nil, "missing operand")
	if !ok {
		return status
	}
	for _, op := range ops {
		r, err := c.resolve(op, f.has('e'))
		if err != nil {
			if !f.has('q') {
				c.warnf("%s: %s", op, errText(err))
			}
			status = 1
			continue
		}
		fmt.Fprintln(c.Stdout, r)
	}
	return status
}

func mktempCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "duqt", "p", map[string]byte{"directory": 'd', "dry-run": 'u', "quiet": 'q', "tmpdir": 'p'})
	if !ok {
		return c.usageStatus()
	}
	if len(ops) > 1 {
		return c.usageError("too many templates")
	}
	tmpl := "tmp.XXXXXXXXXX"
	dir, inDir := f.val('p')
	if len(ops) == 1 {
		tmpl = ops[0]
	} else {
		inDir = true
	}
	if f.has('t') {
		inDir = true
	}
	if inDir {
		if dir == "" {
			dir = c.Getenv("TMPDIR")
		}
		if dir == "" {
			dir = "/tmp"
		}
		tmpl = path.Join(dir, tmpl)
	}
	n := len(tmpl) - len(strings.TrimRight(tmpl, "X"))
	if n < 3 {
		c.warnf("too few X's in template ‘%s’", tmpl)
		return 1
	}
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var lastErr error
	for try := 0; try < 100; try++ {
		b := []byte(tmpl)
		for i := len(b) - n; i < len(b); i++ {
			b[i] = chars[rand.IntN(len(chars))]
		}
		name := string(b)
		abs := c.Abs(name)
		if f.has('u') {
			fmt.Fprintln(c.Stdout, name)
			return 0
		}
		var err error
		if f.has('d') {
			if _, serr := c.FS.Stat(abs); serr == nil {
				continue
			}
			err = c.mkdir(abs, 0o700, false)
		} else {
			var fh afero.File
			fh, err = c.p.openFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err == nil {
				fh.Close()
				_ = c.FS.Chmod(abs, 0o600)
			}
		}
		if err == nil {
			fmt.Fprintln(c.Stdout, name)
			return 0
		}
		lastErr = err
		if !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.EEXIST) {
			break
		}
	}
	if !f.has('q') {
		what := "file"
		if f.has('d') {
			what = "directory"
		}
		c.warnf("failed to create %s via template ‘%s’: %s", what, tmpl, errText(lastErr))
	}
	return 1
}

func pwdCmd(ctx context.Context, c *Call) int {
	fmt.Fprintln(c.Stdout, c.Dir)
	return 0
}

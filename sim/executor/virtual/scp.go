package virtual

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// This file serves the legacy SCP protocol (OpenSSH's scp -O, and every
// scp before OpenSSH 9.0): the client runs "scp -t TARGET" (upload, the
// host is the sink) or "scp -f FILE..." (download, the host is the
// source) through exec and speaks the protocol over that command's
// standard streams. The messages and the order of acknowledgements follow
// OpenSSH's scp.c, so a real scp client behaves as against a real host.
//
// The protocol, one line per record, each answered by the other side with
// a zero byte (ok), or 1 (error, message follows) or 2 (fatal):
//
//	C<mode> <size> <name>\n  then size bytes and a zero byte: a file
//	D<mode> 0 <name>\n       a directory (with -r), ended by E\n
//	T<mtime> 0 <atime> 0\n   times for the next record (with -p)

func init() { coreBuiltins["scp"] = scpCmd }

// scpSession is one remote scp: its options and streams.
type scpSession struct {
	c         *Call
	in        *bufio.Reader
	out       io.Writer
	recursive bool
	preserve  bool
	wantDir   bool // -d: the target must be a directory
	errs      int
}

func scpCmd(ctx context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "dfprtvqTO346BC", "lSoFJPic", nil)
	if !ok {
		return c.usageStatus()
	}
	s := &scpSession{c: c, in: bufio.NewReader(c.Stdin), out: c.Stdout,
		recursive: f.has('r'), preserve: f.has('p'), wantDir: f.has('d')}
	switch {
	case f.has('t'):
		if len(ops) != 1 {
			s.runErr("ambiguous target")
			return 1
		}
		_ = s.sink(ctx, c.Abs(ops[0]), ops[0])
	case f.has('f'):
		if _, err := s.response(); err != nil {
			return 1
		}
		for _, op := range ops {
			if ctx.Err() != nil {
				return 1
			}
			s.source(ctx, c.Abs(op), op)
		}
	default:
		c.warnf("only the remote side of the SCP protocol (-t, -f) runs on a virtual host")
		return 1
	}
	if s.errs > 0 {
		return 1
	}
	return 0
}

// errFatal ends the session: the other side sent a fatal error or the
// stream broke.
var errFatal = errors.New("scp: fatal")

// ack sends the zero byte that accepts a record.
func (s *scpSession) ack() error {
	_, err := s.out.Write([]byte{0})
	return err
}

// runErr reports an error to the client (scp.c's run_err), which prints
// it as "scp: MESSAGE".
func (s *scpSession) runErr(format string, args ...any) {
	s.errs++
	msg := fmt.Sprintf(format, args...)
	_, _ = fmt.Fprintf(s.out, "\x01scp: %s\n", msg)
}

// response reads the other side's answer to a record: true for ok; false
// after printing the error it sent, with errFatal when the session cannot
// go on.
func (s *scpSession) response() (bool, error) {
	b, err := s.in.ReadByte()
	if err != nil {
		return false, errFatal
	}
	switch b {
	case 0:
		return true, nil
	case 1, 2:
		line, _ := s.in.ReadString('\n')
		s.c.warnf("%s", strings.TrimSuffix(strings.TrimPrefix(line, "scp: "), "\n"))
		s.errs++
		if b == 2 {
			return false, errFatal
		}
		return false, nil
	}
	line, _ := s.in.ReadString('\n')
	s.c.warnf("%s", strings.TrimSuffix(string(b)+line, "\n"))
	return false, errFatal
}

// source sends one file or (with -r) directory tree.
func (s *scpSession) source(ctx context.Context, abs, shown string) {
	fi, err := s.c.p.stat(abs)
	if err != nil {
		s.runErr("%s: %s", shown, errText(err))
		return
	}
	if fi.IsDir() {
		if !s.recursive {
			s.runErr("%s: not a regular file", shown)
			return
		}
		s.sourceDir(ctx, abs, shown, fi)
		return
	}
	if !fi.Mode().IsRegular() {
		s.runErr("%s: not a regular file", shown)
		return
	}
	f, err := s.c.p.openFile(abs, os.O_RDONLY, 0)
	if err != nil {
		s.runErr("%s: %s", shown, errText(err))
		return
	}
	defer f.Close()
	if s.preserve && !s.sendTimes(fi) {
		return
	}
	fmt.Fprintf(s.out, "C%04o %d %s\n", fi.Mode().Perm(), fi.Size(), path.Base(abs))
	if ok, err := s.response(); !ok || err != nil {
		return
	}
	n, err := io.CopyN(s.out, f, fi.Size())
	if err != nil {
		// The size is promised: pad it, then report the read error.
		_, _ = io.CopyN(s.out, zeroReader{}, fi.Size()-n)
		s.runErr("%s: %s", shown, errText(err))
	} else {
		_ = s.ack()
	}
	_, _ = s.response()
}

func (s *scpSession) sendTimes(fi fs.FileInfo) bool {
	mt := fi.ModTime().Unix()
	fmt.Fprintf(s.out, "T%d 0 %d 0\n", mt, mt)
	ok, err := s.response()
	return ok && err == nil
}

func (s *scpSession) sourceDir(ctx context.Context, abs, shown string, fi fs.FileInfo) {
	entries, err := s.c.p.readDir(abs)
	if err != nil {
		s.runErr("%s: %s", shown, errText(errors.Unwrap(err)))
		return
	}
	if s.preserve && !s.sendTimes(fi) {
		return
	}
	fmt.Fprintf(s.out, "D%04o 0 %s\n", fi.Mode().Perm(), path.Base(abs))
	if ok, err := s.response(); !ok || err != nil {
		return
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		s.source(ctx, path.Join(abs, e.Name()), shown+"/"+e.Name())
	}
	fmt.Fprint(s.out, "E\n")
	_, _ = s.response()
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// sink receives records into target until the client closes the stream
// (or an E record ends a directory).
func (s *scpSession) sink(ctx context.Context, target, shown string) error {
	fi, err := s.c.p.stat(target)
	isDir := err == nil && fi.IsDir()
	if s.wantDir && !isDir {
		s.runErr("%s: Not a directory", shown)
		return errFatal
	}
	if err := s.ack(); err != nil {
		return errFatal
	}
	var times *[2]time.Time
	for ctx.Err() == nil {
		kind, err := s.in.ReadByte()
		if err != nil {
			return nil // the client is done
		}
		line, err := s.in.ReadString('\n')
		if err != nil {
			return errFatal
		}
		line = strings.TrimSuffix(line, "\n")
		switch kind {
		case 1, 2:
			s.c.warnf("%s", strings.TrimPrefix(line, "scp: "))
			if kind == 2 {
				return errFatal
			}
			continue
		case 'E':
			_ = s.ack()
			return nil
		case 'T':
			var mt, ms, at, as int64
			if _, err := fmt.Sscanf(line, "%d %d %d %d", &mt, &ms, &at, &as); err != nil {
				s.runErr("protocol error: mtime.sec not delimited")
				return errFatal
			}
			times = &[2]time.Time{time.Unix(at, as*1000), time.Unix(mt, ms*1000)}
			_ = s.ack()
			continue
		case 'C', 'D':
		default:
			s.runErr("%s", string(kind)+line)
			return errFatal
		}
		mode, size, name, ok := parseSCPRecord(line)
		if !ok {
			s.runErr("protocol error: bad record")
			return errFatal
		}
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			s.runErr("error: unexpected filename: %s", name)
			return errFatal
		}
		dst, dstShown := target, shown
		if isDir {
			// Named as scp.c names it in messages: TARGET/NAME, even when
			// TARGET ends in a slash.
			dst, dstShown = path.Join(target, name), shown+"/"+name
			if shown == "/" {
				dstShown = "/" + name
			}
		}
		t := times
		times = nil
		if kind == 'D' {
			if !s.recursive {
				s.runErr("received directory without -r")
				return errFatal
			}
			if err := s.sinkDir(ctx, dst, dstShown, mode, t); err != nil {
				return err
			}
			continue
		}
		if err := s.sinkFile(dst, dstShown, mode, size, t); err != nil {
			return err
		}
	}
	return errFatal
}

func (s *scpSession) sinkDir(ctx context.Context, dst, shown string, mode fs.FileMode, t *[2]time.Time) error {
	fi, err := s.c.p.stat(dst)
	switch {
	case err == nil && !fi.IsDir():
		s.runErr("%s: Not a directory", shown)
		return errFatal
	case err == nil:
		if s.preserve {
			_ = s.c.FS.Chmod(dst, mode)
		}
	default:
		if err := s.c.mkdir(dst, mode|0o700, false); err != nil {
			s.runErr("%s: %s", shown, errText(err))
			return errFatal
		}
	}
	if err := s.sink(ctx, dst, shown); err != nil {
		return err
	}
	if s.preserve {
		if t != nil {
			_ = s.c.FS.Chtimes(dst, t[0], t[1])
		}
		_ = s.c.FS.Chmod(dst, mode)
	}
	return nil
}

func (s *scpSession) sinkFile(dst, shown string, mode fs.FileMode, size int64, t *[2]time.Time) error {
	f, err := s.c.p.openFile(dst, os.O_WRONLY|os.O_CREATE, mode)
	if err != nil {
		// The client skips the data when the record is refused.
		s.runErr("%s: %s", shown, errText(err))
		return nil
	}
	if err := s.ack(); err != nil {
		f.Close()
		return errFatal
	}
	n, werr := io.CopyN(f, s.in, size)
	if werr != nil && n < size {
		// Keep the stream in step: read what the client still sends.
		if _, err := io.CopyN(io.Discard, s.in, size-n); err != nil {
			f.Close()
			return errFatal
		}
	}
	if werr == nil {
		werr = f.Truncate(size)
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if _, err := s.response(); errors.Is(err, errFatal) {
		return err
	}
	if s.preserve {
		if t != nil {
			_ = s.c.FS.Chtimes(dst, t[0], t[1])
		}
		_ = s.c.FS.Chmod(dst, mode)
	}
	if werr != nil {
		s.runErr("%s: %s", shown, errText(werr))
		return nil
	}
	return s.ack()
}

// parseSCPRecord reads "<mode> <size> <name>" of a C or D record.
func parseSCPRecord(line string) (fs.FileMode, int64, string, bool) {
	m, rest, ok := strings.Cut(line, " ")
	if !ok || len(m) != 4 {
		return 0, 0, "", false
	}
	mode, err := strconv.ParseUint(m, 8, 32)
	if err != nil {
		return 0, 0, "", false
	}
	sz, name, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, 0, "", false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size < 0 {
		return 0, 0, "", false
	}
	return fs.FileMode(mode) & fs.ModePerm, size, name, true
}

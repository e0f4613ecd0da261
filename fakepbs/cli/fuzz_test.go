package cli

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spf13/afero"
)

// recordingReader notes whether the command read its standard input.
type recordingReader struct {
	r    io.Reader
	read bool
}

func (r *recordingReader) Read(p []byte) (int, error) {
	r.read = true
	return r.r.Read(p)
}

var jobIDLine = regexp.MustCompile(`^[0-9]+(\[\])?\.pbs\n$`)

// FuzzQsubArgs runs qsub with arbitrary arguments (separated by NUL). It
// must never panic; it either submits exactly one job and prints its id, or
// submits nothing and says why on stderr; it reads standard input exactly
// when NeedsStdin says so (or fails before reading).
func FuzzQsubArgs(f *testing.F) {
	for _, seed := range []string{
		"job.sh",
		"-N\x00name\x00-l\x00walltime=01:00:00,select=1:ncpus=2\x00job.sh",
		"-q\x00workq@pbs\x00-",
		"-v\x00FOO,BAR=1\x00-V\x00job.sh",
		"-W\x00depend=afterok:1.pbs\x00-W\x00umask=022\x00job.sh",
		"-J\x001-10\x00-z\x00job.sh",
		"--\x00/bin/sleep\x0010",
		"-I",
		"--help",
		"job.sh\x00-N\x00late",
		"-lwalltime=1:xx\x00job.sh",
		"-C\x00\x00job.sh",
		"-a\x00202501020304.05\x00job.sh",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		if joined == "" {
			args = nil
		}
		b := newFake()
		fs := afero.NewMemMapFs()
		_ = afero.WriteFile(fs, "/home/alice/job.sh", []byte("#PBS -N fuzz\ntrue\n"), 0o644)
		stdin := &recordingReader{r: strings.NewReader("#PBS -l walltime=5\necho hi\n")}
		inv := Invocation{Command: "qsub", Args: args, Stdin: stdin, User: "alice", Host: "h", Cwd: "/home/alice",
			Env: []string{"HOME=/home/alice", "FOO=1"}, FS: fs}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res := Run(ctx, b, inv, WithPollInterval(time.Millisecond))
		if res.ExitCode < 0 || res.ExitCode > 255 {
			t.Fatalf("exit %d outside 0..255", res.ExitCode)
		}
		blocked := strings.Contains(joined, "block=")
		switch {
		case res.ExitCode == 0 && !blocked:
			if len(b.submits) != 1 {
				t.Fatalf("exit 0 with %d submissions", len(b.submits))
			}
			out := strings.TrimPrefix(string(res.Stdout), readScriptMsg)
			if out != "" && !jobIDLine.MatchString(out) {
				t.Fatalf("exit 0 but stdout %q is not a job id line", res.Stdout)
			}
		case res.ExitCode != 0 && !blocked:
			if len(b.submits) != 0 {
				t.Fatalf("exit %d after submitting a job", res.ExitCode)
			}
			if len(res.Stderr) == 0 {
				t.Fatalf("exit %d without a message", res.ExitCode)
			}
		}
		if stdin.read && !NeedsStdin("qsub", args) {
			t.Fatalf("qsub %q read stdin although NeedsStdin says it does not", args)
		}
		if !stdin.read && NeedsStdin("qsub", args) && res.ExitCode == 0 && !blocked {
			t.Fatalf("qsub %q succeeded without reading the stdin NeedsStdin promised it reads", args)
		}
	})
}

// FuzzDirectives submits arbitrary scripts. qsub must never panic, must pass
// the script on byte for byte when it accepts it, and may only reject it
// for a directive (or an option a directive carries).
func FuzzDirectives(f *testing.F) {
	for _, seed := range []string{
		"#!/bin/bash\n#PBS -N x\n#PBS -l walltime=00:10:00\necho\n",
		"\n\n: colon\n#PBS -q workq\n  #PBS -j oe -m abe\n# c\nrun\n#PBS -N late\n",
		"#PBS -N 'quoted name' extra\ntrue\n",
		"#PBS -l select=2:ncpus=4+1:ncpus=2,place=scatter\n",
		"#PBS -l walltime=1:xx\n",
		"#PBS -v A=1,B=\"x,y\" \\\n   -N cont\ntrue",
		"#PBS -I\n",
		"#PBS\n#PBS -\n#PBS --\n",
		"\xff\xfe#PBS -N bin\x00\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		b := newFake()
		fs := afero.NewMemMapFs()
		_ = afero.WriteFile(fs, "/home/alice/job.sh", script, 0o644)
		inv := Invocation{Command: "qsub", Args: []string{"job.sh"}, User: "alice", Host: "h", Cwd: "/home/alice",
			Env: []string{"HOME=/home/alice", "A=1", "B=2"}, FS: fs}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res := Run(ctx, b, inv)
		if res.ExitCode < 0 || res.ExitCode > 255 {
			t.Fatalf("exit %d outside 0..255", res.ExitCode)
		}
		if res.ExitCode == 0 {
			if len(b.submits) != 1 || string(b.submits[0].Script) != string(script) {
				t.Fatalf("accepted script not passed on whole")
			}
			if len(res.Stdout) > 0 && !jobIDLine.MatchString(string(res.Stdout)) {
				t.Fatalf("stdout %q is neither a job id line nor empty (-z)", res.Stdout)
			}
			return
		}
		if len(b.submits) != 0 {
			t.Fatal("a rejected script was submitted")
		}
		if !strings.Contains(string(script), "#PBS") {
			t.Fatalf("a script without directives was rejected: exit %d %q", res.ExitCode, res.Stderr)
		}
	})
}

// FuzzJobID feeds arbitrary operands to the job id parser and to qstat and
// qdel: no panic, well-formed ids survive a round trip through fullJobID,
// and every failure is reported as "<cmd>: ..." with a status in 0..255.
func FuzzJobID(f *testing.F) {
	for _, seed := range []string{"1", "123.pbs", "38438.master.domain", "12[].pbs", "12[3].pbs@other", "abc",
		"1.", ".pbs", "9999999999999", "1@", "  42", "7[1-5:2]", "1.pbs#x", "\x00", "¹"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseJobID(s)
		if ok {
			full := fullJobID(id, "pbs")
			again, ok2 := parseJobID(full)
			if !ok2 || again.Seq != id.Seq {
				t.Fatalf("%q parsed to %+v, its full id %q to %+v (%v)", s, id, full, again, ok2)
			}
			if !strings.HasPrefix(full, id.Seq+".") {
				t.Fatalf("full id %q does not start with the sequence number %q", full, id.Seq)
			}
		}
		if strings.HasPrefix(s, "-") || !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r") {
			return // options, and operands that break the message lines
		}
		b := newFake()
		b.add(fakeJob("1.pbs"))
		for _, cmd := range []string{"qstat", "qdel", "qhold"} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res := Run(ctx, b, Invocation{Command: cmd, Args: []string{s}, User: "alice", Host: "h", Cwd: "/"})
			cancel()
			if res.ExitCode < 0 || res.ExitCode > 255 {
				t.Fatalf("%s %q: exit %d", cmd, s, res.ExitCode)
			}
			if res.ExitCode != 0 {
				for _, line := range strings.Split(strings.TrimRight(string(res.Stderr), "\n"), "\n") {
					if !strings.HasPrefix(line, cmd+": ") && !strings.HasPrefix(line, "usage:") && !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "       ") {
						t.Fatalf("%s %q: stderr line %q", cmd, s, line)
					}
				}
			}
		}
	})
}

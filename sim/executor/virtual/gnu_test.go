package virtual_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/sim/executor"
)

// gnuFiles are the files every differential case starts with.
var gnuFiles = map[string]string{
	"data.txt": "banana 3\napple 10\ncherry 2\napple 10\n\nDate 1\n",
	"nums":     "10\n9\n100\n-1\n3.5\n",
	"csv":      "a,b,c\n1,2,3\nx,,z\n",
	"words":    "the quick  brown fox\njumps over\tthe lazy dog\n",
	"noeol":    "no newline",
}

// gnuCases are scripts whose output, errors and exit status must match
// bash with GNU coreutils, grep and sed byte for byte.
var gnuCases = []string{
	// sort, uniq
	"sort data.txt", "sort -r data.txt", "sort -u data.txt", "sort -n nums", "sort -rn nums",
	"sort -k2 -n data.txt", "sort -t, -k2 csv", "uniq data.txt", "sort data.txt | uniq -c",
	"sort data.txt | uniq -d", "sort data.txt | uniq -u",
	// wc
	"wc data.txt", "wc -l data.txt", "wc -w words", "wc -c noeol", "wc -l < data.txt", "cat data.txt | wc",
	"wc data.txt words", "wc -l data.txt nums", "wc -lc data.txt",
	// head, tail
	"head -n 2 data.txt", "head -2 data.txt", "head -n -2 data.txt", "head -c 5 data.txt",
	"tail -n 2 data.txt", "tail -n +3 data.txt", "tail -c 4 data.txt", "head data.txt nums", "tail -1 noeol",
	"head -n 1 - < nums",
	// grep
	"grep apple data.txt", "grep -c apple data.txt", "grep -n a data.txt", "grep -v a data.txt",
	"grep -i date data.txt", "grep -E 'an+a|ch' data.txt", `grep 'an\+a' data.txt`, "grep -o 'a[a-z]' data.txt",
	"grep -w the words", "grep -x 'Date 1' data.txt", "grep apple data.txt nums", "grep -l apple data.txt nums",
	"grep -q nothing data.txt", "grep -h 1 data.txt nums", "grep -e apple -e cherry data.txt", "grep -F '3.5' nums",
	"grep -m1 apple data.txt", "grep -c '^$' data.txt", `grep '[[:digit:]]\{2\}' data.txt`, "grep -H x csv",
	"grep -L apple data.txt nums", "grep -n '' noeol", "grep -s x nope data.txt; echo $?",
	// cut, tr
	"cut -d, -f2 csv", "cut -d, -f1,3 csv", "cut -c1-3 data.txt", "cut -d' ' -f2- words", "cut -f1 data.txt",
	"tr a-z A-Z < data.txt", `tr -d '\n' < data.txt`, "tr -s ' ' < words", "tr -d '[:digit:]' < data.txt",
	"echo hello | tr el ip", `tr -c 'a-z\n' _ < data.txt`, "echo aabbcc | tr -s a-c",
	// seq, names, echo, xargs
	"seq 5", "seq 2 5", "seq 1 2 9", "seq 10 -3 1", "seq -s, 4", "seq -w 8 10", "seq 0.5 0.5 2",
	"basename /a/b/c.txt", "basename /a/b/c.txt .txt", "basename /a/b/", "basename /", "basename -a x/y z/w",
	"dirname /a/b/c", "dirname a", "dirname /a", "dirname a/b/",
	"echo a b c | xargs -n1", `printf '1\n2\n' | xargs echo x`, `/bin/echo -n hi; /bin/echo -e 'a\tb'`,
	// sed
	"sed 's/apple/APPLE/' data.txt", "sed -n '2p' data.txt", "sed '1d' data.txt", "sed -n '/apple/p' data.txt",
	`sed 's/\(a\)\(p\)/\2\1/g' data.txt`, `sed -E 's/([a-z]+) ([0-9]+)/\2 \1/' data.txt`, "sed '2,3d' data.txt",
	"sed '$d' data.txt", "sed 's/a/_/2' data.txt", "sed -e 's/a/A/' -e 's/e/E/' data.txt", "sed 2q data.txt",
	"sed 's/a/&&/g' csv", "sed -i 's/,/;/g' csv && cat csv",
	// files
	"ls", "ls -a", "ls -A", "ls -1 data.txt nums", "ls -d .", "ls data.txt nope; echo $?", "ls -F",
	"ls -l data.txt | cut -d' ' -f1,5", "ls -r", "mkdir -p p/q && touch p/q/r && ls p p/q && rm -r p && ls",
	"cp data.txt d2 && wc -c d2 && mv d2 d3 && ls && rm d3", "mkdir d && cp -r d e && ls -d d e",
	"touch f && ls -1 && rm f", "cat noeol; echo", `printf '%s\n' x | cat - data.txt | head -3`,
	"mkdir d; echo x > d/f; rmdir d; echo $?",
	// errors
	"cat nope", "cat .", "head nope", "tail nope", "wc nope", "grep x nope", "grep x .", "sort nope",
	"uniq nope", "cut -f1 nope", "ls nope", "rm nope", "rm -f nope", "rm .", "rm -r .", "mkdir data.txt", "mkdir x/y",
	"rmdir nope", "cp nope x", "cp . x", "mv nope x", "touch nope/x", "chmod 644 nope", "chmod xyz data.txt",
	"sleep x", "head -n x data.txt", "cp a", "mv", "rm", "mkdir", "touch", "cat -z", "grep", "seq", "tr",
	"basename", "dirname", "nosuchcommand", "./nope", "cd nope", "cat < nope", "echo x > nope/y",
	// the command-line harness: glibc getopt messages, each tool's usage text and status, argv[0] as typed
	"ls -y", "ls --bogus", "ls --all=x", "sort -Y data.txt", "grep -j x data.txt", "grep --bogus x", "grep -e",
	"head -n", "wc -Y", "wc --li data.txt", "head --lin 2 data.txt", "cut --fi", "sed -Z p data.txt", "sed",
	"/bin/ls nope", "/bin/cat -Y", "/usr/bin/head nope", "/usr/bin/grep x nope", "/bin/sed p nope",
	"/usr/bin/sort nope", "/bin/mv", "/bin/rm", "timeout -Y 1 true", "env -Y", "tty", "tty -s; echo $?", "tty x", "tty -Y",
	"timeout -s FOO 1 true", "timeout --sig=KILL 1 echo ok", "timeout 1 ls -d .", "echo a b | xargs -Y",
	"echo a b c | xargs --max-args=2 echo", "env -i A=1 env", "env - B=2 env", "env -u HOME -i C=3 env", "env -i ls -d .",
	// POSIX leftmost-longest matching, BRE and ERE details
	`echo abcd | sed 's/a\|ab/X/'`, `echo abcd | sed -E 's/a|ab/X/'`, "echo abcd | grep -oE 'a|ab'",
	`echo abcd | grep -o 'a\|ab\|abc'`, "echo xyz abcabc | grep -oE '(abc|abcabc|ab)'", "echo 'aaa' | sed -E 's/a|aa/X/g'",
	`echo 'for forward' | grep -ow 'for\|forward'`, `echo 'a\b' | grep -o '[\]'`, "echo 'a^b' | grep -o 'a^b'",
	"echo 'a$b' | grep -o 'a$b'", "echo '*a' | grep -o '*a'", `echo '*a' | grep -o '\(*a\)'`, "echo 'a+b' | grep -o 'a+b'",
	"echo 'a(b)' | sed 's/(b)/[&]/'", `echo 'ab' | grep -c 'x\|^a'`, `echo 'word1 word2' | sed 's/\<w/W/g'`,
	`printf 'one\ntwo\n' | grep -E '^(one|o)$'`, "echo 'aXXb' | sed 's/X*/-/g'",
	"echo abcd | sed -E 's/(a|ab)(c|bcd)(d*)/[\\1][\\2][\\3]/'", "echo aaa | grep -oE 'a{2}'", `echo aaa | grep -o 'a\{2\}'`,
	"echo 'ABc DEf' | grep -o '[[:upper:]]\\+'", "echo 'xyz' | grep -c 'y*'", "echo abab | sed 's/\\(ab\\)*/<&>/'",
	// SIGPIPE: a writer whose reader has gone dies with 141, unless PIPE is ignored
	"set -o pipefail; (while :; do echo x; done) | head -1; echo $?",
	`set -o pipefail; (while :; do printf 'y\n'; done) | head -2; echo $?`,
	"set -o pipefail; seq 1 1000000 | head -1; echo $?",
	"trap '' PIPE; set -o pipefail; seq 1 1000000 | head -1; echo $?",
}

func TestMatchesGNU(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found: install bash, coreutils, grep and sed to compare the builtins with GNU")
	}
	for _, tool := range []string{"sort", "grep", "sed", "seq", "cut"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install coreutils, grep and sed to compare the builtins with GNU", tool)
		}
	}
	for _, script := range gnuCases {
		t.Run(script, func(t *testing.T) {
			want := runGNU(t, bash, script)
			got := runVirtual(t, script)
			if got != want {
				t.Errorf("script %q\nvirtual: code %d\nstdout %q\nstderr %q\nGNU:     code %d\nstdout %q\nstderr %q",
					script, got.code, got.stdout, got.stderr, want.code, want.stdout, want.stderr)
			}
		})
	}
}

type outcome struct {
	stdout, stderr string
	code           int
}

func runGNU(t *testing.T, bash, script string) outcome {
	dir := t.TempDir()
	for name, content := range gnuFiles {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", script)
	cmd.Args[0] = "bash" // as sshd starts it; bash words its messages after argv[0]
	cmd.Dir = dir
	cmd.Env = []string{"LANG=C.UTF-8", "PATH=/usr/bin:/bin", "HOME=" + dir}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return outcome{out.String(), errb.String(), code}
}

func runVirtual(t *testing.T, script string) outcome {
	fs := newFS(t)
	for name, content := range gnuFiles {
		must(t, afero.WriteFile(fs, "/home/alice/"+name, []byte(content), 0o644))
	}
	e := newExec(t, fs)
	r := cmds.Run(t, e, executor.Command{User: "alice", Script: script})
	return outcome{r.Stdout, r.Stderr, r.Status.Code}
}

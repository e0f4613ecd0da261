package doctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testbin"
)

var bin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &bin)) }

// The tags a snippet may carry, and what they mean to the test.
const (
	needsDocker = "needs Docker"
	needsFUSE   = "needs FUSE"
	longRun     = "long run"
	untilCtrlC  = "until Ctrl-C"
)

var (
	knownTags = []string{needsDocker, needsFUSE, longRun, untilCtrlC}
	// fenceTagRe is the comment above a fence: <!-- doctest: needs Docker -->.
	fenceTagRe = regexp.MustCompile(`^<!--\s*doctest:\s*(.*?)\s*-->$`)
	// exampleTagRe is the parenthesis closing an example's first comment.
	exampleTagRe = regexp.MustCompile(`\(([^()]*)\)\s*$`)
)

// snippet is one thing a reader would type: a Markdown block or one
// example of a --help text.
type snippet struct {
	where string // file:line, or the command and example number
	text  string
	tags  []string
	skip  string // why it is never run (Markdown: doctest: skip ...)
}

func (s snippet) has(tag string) bool { return slices.Contains(s.tags, tag) }

// needs is what the snippet needs beyond make test's machine, or "".
func (s snippet) needs() string {
	var n []string
	for _, tag := range []string{needsDocker, needsFUSE, longRun} {
		if s.has(tag) {
			n = append(n, tag)
		}
	}
	return strings.Join(n, ", ")
}

func runAll() bool { return os.Getenv("JOBSIM_DOCTEST") == "all" }

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// markdownSnippets are the ```sh blocks of README.md and docs/*.md.
func markdownSnippets(t *testing.T, root string) []snippet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var out []snippet
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			info, ok := strings.CutPrefix(lines[i], "```")
			if !ok {
				continue
			}
			start := i
			var body []string
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				body = append(body, lines[i])
			}
			if lang := strings.Fields(info); len(lang) == 0 || (lang[0] != "sh" && lang[0] != "bash") {
				continue
			}
			s := snippet{where: fmt.Sprintf("%s:%d", rel, start+1), text: strings.Join(body, "\n") + "\n"}
			if start > 0 {
				if m := fenceTagRe.FindStringSubmatch(strings.TrimSpace(lines[start-1])); m != nil {
					if reason, ok := strings.CutPrefix(m[1], "skip"); ok {
						s.skip = strings.TrimSpace(reason)
						if s.skip == "" {
							t.Errorf("%s: doctest: skip needs a reason", s.where)
						}
					} else if s.tags, ok = parseTags(m[1]); !ok {
						t.Errorf("%s: doctest: %q: want skip REASON or tags among %s", s.where, m[1], strings.Join(knownTags, ", "))
					}
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// parseTags splits "needs Docker, until Ctrl-C"; ok is false unless every
// part is a known tag.
func parseTags(s string) ([]string, bool) {
	var tags []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(knownTags, p) {
			return nil, false
		}
		tags = append(tags, p)
	}
	return tags, true
}

// helpText runs `jobsim ARGS... --help` as a user would.
func helpText(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("jobsim %s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// section returns the indented lines under a heading such as "Examples:"
// of a cobra help text, up to the next heading.
func section(help, heading string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(help, "\n") {
		switch {
		case l == heading:
			in = true
		case in && l != "" && !strings.HasPrefix(l, " "):
			return out
		case in:
			out = append(out, l)
		}
	}
	return out
}

// helpSnippets walks the command tree from `jobsim --help` and returns the
// examples of each command, in order, by command path.
func helpSnippets(t *testing.T) (paths []string, examples map[string][]snippet) {
	t.Helper()
	examples = map[string][]snippet{}
	var walk func(path []string)
	walk = func(path []string) {
		help := helpText(t, path...)
		name := strings.Join(append([]string{"jobsim"}, path...), " ")
		var group []string
		flush := func() {
			if len(group) == 0 {
				return
			}
			s := snippet{where: fmt.Sprintf("%s --help, example %d", name, len(examples[name])+1), text: strings.Join(group, "\n") + "\n"}
			if strings.HasPrefix(group[0], "#") {
				if m := exampleTagRe.FindStringSubmatch(group[0]); m != nil {
					s.tags, _ = parseTags(m[1])
				}
			}
			examples[name] = append(examples[name], s)
			group = nil
		}
		for _, l := range section(help, "Examples:") {
			if strings.TrimSpace(l) == "" {
				flush()
				continue
			}
			group = append(group, strings.TrimPrefix(l, "  "))
		}
		flush()
		if len(examples[name]) > 0 {
			paths = append(paths, name)
		}
		for _, l := range section(help, "Available Commands:") {
			f := strings.Fields(l)
			if len(f) == 0 || f[0] == "help" || f[0] == "completion" {
				continue
			}
			walk(append(slices.Clone(path), f[0]))
		}
	}
	walk(nil)
	return paths, examples
}

// session is a folder a reader works in and the process groups started
// there; close stops them as Ctrl-C would.
type session struct {
	t      *testing.T
	dir    string
	env    []string
	groups []int
	n      int
}

// newSession makes a folder that looks like a checkout (every top-level
// entry of the repository linked in, so `go build ./cmd/jobsim` and
// fixtures/... work) but keeps what the snippets write (bin/, out/,
// host.txt) to itself, with the test's jobsim first on PATH.
func newSession(t *testing.T, root string) *session {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ".git", "bin", "out":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "JOBSIM_CONTROL" && k != "JOBSIM_TOKEN" && k != "PATH" {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	s := &session{t: t, dir: dir, env: env}
	t.Cleanup(s.close)
	return s
}

// start runs a script in bash in its own process group, its output and
// errors to files of the session (named by the returned prefix + .out and
// .err).
func (s *session) start(script string) (*exec.Cmd, string, error) {
	s.n++
	prefix := filepath.Join(s.dir, fmt.Sprintf(".doctest-%d", s.n))
	stdout, err := os.Create(prefix + ".out")
	if err != nil {
		return nil, "", err
	}
	defer stdout.Close()
	stderr, err := os.Create(prefix + ".err")
	if err != nil {
		return nil, "", err
	}
	defer stderr.Close()
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.dir, s.env, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	s.groups = append(s.groups, cmd.Process.Pid)
	return cmd, prefix, nil
}

// wait waits for the end of cmd (done) up to d; on the deadline it kills
// the group.
func wait(cmd *exec.Cmd, done <-chan error, d time.Duration) error {
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("still running after %v (killed)", d)
	}
}

// run types the snippet into bash and fails the test if it fails.
func (s *session) run(t *testing.T, sn snippet) {
	t.Helper()
	if sn.skip != "" {
		t.Skipf("%s: not run: %s", sn.where, sn.skip)
	}
	if n := sn.needs(); n != "" && !runAll() {
		t.Skipf("%s: %s: runs with JOBSIM_DOCTEST=all (make e2e)", sn.where, n)
	}
	cmd, prefix, err := s.start(sn.text)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fail := func(err error) {
		out, _ := os.ReadFile(prefix + ".out")
		errs, _ := os.ReadFile(prefix + ".err")
		t.Errorf("%s failed: %v\n--- typed:\n%s--- output:\n%s--- errors:\n%s", sn.where, err, sn.text, tail(out, 40), tail(errs, 40))
	}
	limit := 5 * time.Minute
	if sn.has(longRun) || sn.has(needsDocker) {
		limit = 45 * time.Minute
	}
	if sn.has(untilCtrlC) {
		// Serving: up once it has printed something (logs on stderr do
		// not count); then Ctrl-C.
		deadline := time.After(limit)
	serving:
		for {
			select {
			case err := <-done:
				fail(fmt.Errorf("it ended before Ctrl-C (%v)", err))
				return
			case <-deadline:
				break serving
			case <-time.After(100 * time.Millisecond):
				if st, err := os.Stat(prefix + ".out"); err == nil && st.Size() > 0 {
					break serving
				}
			}
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		limit = time.Minute
	}
	if err := wait(cmd, done, limit); err != nil {
		fail(err)
	}
}

func tail(b []byte, lines int) string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("[... %d lines]", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n") + "\n"
}

// close sends SIGINT to every process group the session started (what is
// still in the background), and SIGKILL to what is left after 30 s.
func (s *session) close() {
	for _, pg := range s.groups {
		syscall.Kill(-pg, syscall.SIGINT)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, pg := range s.groups {
		for syscall.Kill(-pg, 0) == nil {
			if time.Now().After(deadline) {
				s.t.Errorf("process group %d ignored SIGINT for 30 s: killed", pg)
				syscall.Kill(-pg, syscall.SIGKILL)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// hostForExamples starts the jobsim host the --help examples of the
// control commands (fault, events, pbs) talk to, as a reader has one
// running, and exports what it prints.
func (s *session) hostForExamples(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "host", "--pbs", "--users", "alice", "-o", "json")
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return nil } // the session stops it, not ctx
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.groups = append(s.groups, cmd.Process.Pid)
	var info struct{ Control, Token string }
	err = json.NewDecoder(bufio.NewReader(stdout)).Decode(&info)
	go cmd.Wait() // reaps it when the session stops it
	if err != nil || info.Control == "" {
		t.Fatalf("jobsim host -o json: %v %+v\n%s", err, info, stderr.String())
	}
	s.env = append(s.env, "JOBSIM_CONTROL="+info.Control, "JOBSIM_TOKEN="+info.Token)
}

// TestMarkdownShellBlocks runs each ```sh block of README.md and docs/ in
// a fresh folder, in order, as a reader copies it.
func TestMarkdownShellBlocks(t *testing.T) {
	root := repoRoot(t)
	snippets := markdownSnippets(t, root)
	if !slices.ContainsFunc(snippets, func(s snippet) bool { return strings.Contains(s.text, "ssh -F") }) {
		t.Fatalf("found no shell block that uses ssh -F in README.md or docs/ (%d blocks): is the parser broken?", len(snippets))
	}
	for _, sn := range snippets {
		t.Run(sn.where, func(t *testing.T) {
			newSession(t, root).run(t, sn)
		})
	}
}

// TestHelpExamples runs the examples of every command's --help, those of
// one command in one folder, in order.
func TestHelpExamples(t *testing.T) {
	root := repoRoot(t)
	paths, examples := helpSnippets(t)
	for _, want := range []string{"jobsim host", "jobsim up", "jobsim fault add"} {
		if len(examples[want]) == 0 {
			t.Fatalf("no examples found for %s (found %v): is the parser broken?", want, paths)
		}
	}
	for _, p := range paths {
		t.Run(strings.ReplaceAll(p, " ", "_"), func(t *testing.T) {
			s := newSession(t, root)
			s.hostForExamples(t)
			for i, sn := range examples[p] {
				t.Run(fmt.Sprintf("example_%d", i+1), func(t *testing.T) { s.run(t, sn) })
			}
		})
	}
}

// The parsers find the tags where a reader sees them.
func TestTagsAreRead(t *testing.T) {
	if tags, ok := parseTags("needs Docker, until Ctrl-C"); !ok || len(tags) != 2 {
		t.Fatalf("parseTags: %v %v", tags, ok)
	}
	if _, ok := parseTags("older PBS wording"); ok {
		t.Fatal("a parenthesis of prose was read as tags")
	}
	help := "Usage:\n  jobsim x\n\nExamples:\n  # one (needs FUSE)\n  jobsim x\n\n  jobsim y\n\nFlags:\n  -h\n"
	if got := section(help, "Examples:"); len(got) != 5 || got[0] != "  # one (needs FUSE)" {
		t.Fatalf("section: %q", got)
	}
}

package contract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/fakepbs/bashexec"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/internal/testutil"
	"github.com/jobsim/jobsim/internal/yamlfile"
	"github.com/spf13/afero"
)

const clientsDir = "../../fixtures/pbs/clients"

// clientSpec is one fixtures/pbs/clients/*.yaml file.
type clientSpec struct {
	Name   string `yaml:"name"`
	Source string `yaml:"source"`
	Script string `yaml:"script"`
	Submit struct {
		Argv            []string          `yaml:"argv"`
		StdinScript     bool              `yaml:"stdin_script"`
		Cwd             string            `yaml:"cwd"`
		Env             map[string]string `yaml:"env"`
		IDRegex         string            `yaml:"id_regex"`
		IDMatch         string            `yaml:"id_match"`
		ExpectVariables []string          `yaml:"expect_variables"`
	} `yaml:"submit"`
	Poll *struct {
		Argv        []string `yaml:"argv"`
		Method      string   `yaml:"method"`
		CantConnect string   `yaml:"cant_connect"`
		Pending     string   `yaml:"pending"`
		Running     string   `yaml:"running"`
		Host        string   `yaml:"host"`
	} `yaml:"poll"`
	Kill struct {
		Argv          []string `yaml:"argv"`
		IgnoreFailure bool     `yaml:"ignore_failure"`
	} `yaml:"kill"`
	Expect struct {
		Queued           string `yaml:"queued"`
		Running          string `yaml:"running"`
		Finished         string `yaml:"finished"`
		Deleted          string `yaml:"deleted"`
		Unknown          string `yaml:"unknown"`
		KillFinishedExit *int   `yaml:"kill_finished_exit"`
	} `yaml:"expect"`
	Faults []struct {
		Name   string     `yaml:"name"`
		Stage  string     `yaml:"stage"`
		Rule   fault.Rule `yaml:"rule"`
		Expect string     `yaml:"expect"`
	} `yaml:"faults"`
	SubmitFaults []struct {
		Name   string     `yaml:"name"`
		Rule   fault.Rule `yaml:"rule"`
		Expect string     `yaml:"expect"`
	} `yaml:"submit_faults"`
}

func loadSpecs(t *testing.T) []clientSpec {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(clientsDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no client contracts in %s: %v", clientsDir, err)
	}
	var specs []clientSpec
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s clientSpec
		if err := yamlfile.Unmarshal(f, b, &s); err != nil {
			t.Fatal(err)
		}
		if s.Name == "" || len(s.Submit.Argv) == 0 || len(s.Kill.Argv) == 0 {
			t.Fatalf("%s: name, submit.argv and kill.argv are required", f)
		}
		specs = append(specs, s)
	}
	return specs
}

// host is a fake PBS server with one single-CPU node running real bash
// jobs, and the fault set the client's commands see.
type host struct {
	t      *testing.T
	srv    *fakepbs.Server
	faults *fault.Set
	home   string
}

func newHost(t *testing.T) *host {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &host{t: t, home: t.TempDir(), faults: fault.NewSet()}
	srv, err := fakepbs.NewServer(ctx, fakepbs.WithName("fakepbs"), fakepbs.WithExecutor(bashexec.Executor{}),
		fakepbs.WithNodes(fakepbs.NodeConfig{Name: "node1", NCPUs: 1, Mem: "8gb"}),
		fakepbs.WithHistory(true, time.Hour), fakepbs.WithKillDelay(200*time.Millisecond),
		fakepbs.WithHomeDirs(func(string) string { return h.home }), fakepbs.WithFS(afero.NewOsFs()),
		fakepbs.WithPBSHome(t.TempDir()), fakepbs.WithTmpDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() { _ = srv.Close(); cancel() })
	return h
}

// cmd runs a PBS command as user the way the client's subprocess would.
func (h *host) cmd(user, cwd string, env map[string]string, stdin string, argv ...string) cli.Result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := []string{"HOME=" + h.home, "USER=" + user, "LOGNAME=" + user, "PATH=/usr/bin:/bin", "SHELL=/bin/bash", "LANG=C.UTF-8"}
	for k, v := range env {
		e = append(e, k+"="+v)
	}
	inv := cli.Invocation{Command: argv[0], Args: argv[1:], User: user, Host: "login1", Cwd: cwd, Env: e, FS: afero.NewOsFs()}
	if stdin != "" {
		inv.Stdin = strings.NewReader(stdin)
	}
	return cli.Run(ctx, h.srv, inv, cli.WithFaults(h.faults))
}

// waitState waits until the server shows the job in one of states.
func (h *host) waitState(id string, states string) fakepbs.Job {
	h.t.Helper()
	var j fakepbs.Job
	var err error
	if testutil.Poll("job "+id+" in "+states, 15*time.Second, func() bool {
		j, err = h.srv.Job(context.Background(), id, true)
		return err == nil && strings.ContainsRune(states, rune(j.State))
	}) != nil {
		h.t.Fatalf("job %s did not reach %s within 15s: %+v %v", id, states, j, err)
	}
	return j
}

// client acts as the client the spec describes.
type client struct {
	s   clientSpec
	h   *host
	dir string
	n   int
}

// submit renders the script with a body that waits for a sentinel file and
// submits it; it returns the id the client would read and the sentinel.
func (c *client) submit() (string, string, cli.Result) {
	c.h.t.Helper()
	c.n++
	jobDir := filepath.Join(c.dir, fmt.Sprintf("job%02d", c.n))
	if err := os.MkdirAll(jobDir, 0o755); err != nil {
		c.h.t.Fatal(err)
	}
	sentinel := filepath.Join(jobDir, "release")
	body := fmt.Sprintf("while [ ! -e %s ]; do sleep 0.02; done\necho done", sentinel)
	script := strings.ReplaceAll(strings.ReplaceAll(c.s.Script, "{body}", body), "{dir}", jobDir)
	scriptPath := filepath.Join(jobDir, "job")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		c.h.t.Fatal(err)
	}
	argv := subst(c.s.Submit.Argv, map[string]string{"{script}": scriptPath})
	stdin := ""
	if c.s.Submit.StdinScript {
		stdin = script
	}
	cwd := c.h.home
	if c.s.Submit.Cwd != "" && c.s.Submit.Cwd != "home" {
		cwd = c.s.Submit.Cwd
	}
	res := c.h.cmd("alice", cwd, c.s.Submit.Env, stdin, argv...)
	return c.parseID(res), sentinel, res
}

func subst(argv []string, repl map[string]string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		for k, v := range repl {
			a = strings.ReplaceAll(a, k, v)
		}
		out[i] = a
	}
	return out
}

// pyRegexp turns a Python pattern into Go syntax (\Z is Go's \z).
func pyRegexp(p string) *regexp.Regexp {
	return regexp.MustCompile(strings.ReplaceAll(p, `\Z`, `\z`))
}

// parseID reads the job id from qsub's output as the client does; "" when
// it finds none.
func (c *client) parseID(res cli.Result) string {
	out := string(res.Stdout)
	switch c.s.Submit.IDMatch {
	case "per_line_match":
		re := pyRegexp(c.s.Submit.IDRegex)
		for _, line := range strings.Split(out, "\n") {
			if m := re.FindStringSubmatchIndex(line); m != nil && m[0] == 0 {
				return line[m[2]:m[3]]
			}
		}
		return ""
	case "whole_stripped":
		if res.ExitCode != 0 {
			return ""
		}
		return strings.TrimSpace(out)
	case "search":
		re := pyRegexp(c.s.Submit.IDRegex)
		if m := re.FindStringSubmatch(out); m != nil {
			return m[1]
		}
		return ""
	}
	c.h.t.Fatalf("%s: unknown id_match %q", c.s.Name, c.s.Submit.IDMatch)
	return ""
}

// poll returns what the client concludes about id: alive/gone for
// first_token clients, pending/running/gone for state clients.
func (c *client) poll(id string) (string, string) {
	c.h.t.Helper()
	p := c.s.Poll
	res := c.h.cmd("alice", c.h.home, nil, "", subst(p.Argv, map[string]string{"{id}": id})...)
	switch p.Method {
	case "first_token":
		if res.ExitCode != 0 && p.CantConnect != "" && strings.Contains(string(res.Stderr), p.CantConnect) {
			return "alive", ""
		}
		for _, line := range strings.Split(string(res.Stdout), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == id {
				return "alive", ""
			}
		}
		return "gone", ""
	case "states":
		if res.ExitCode != 0 {
			return "gone", ""
		}
		out := string(res.Stdout)
		switch {
		case regexp.MustCompile(p.Pending).MatchString(out):
			return "pending", ""
		case regexp.MustCompile(p.Running).MatchString(out):
			host := ""
			if m := regexp.MustCompile(p.Host).FindStringSubmatch(out); m != nil {
				host = m[1]
			}
			return "running", host
		}
		return "gone", ""
	}
	c.h.t.Fatalf("%s: unknown poll method %q", c.s.Name, p.Method)
	return "", ""
}

func (c *client) kill(id string) cli.Result {
	return c.h.cmd("alice", c.h.home, nil, "", subst(c.s.Kill.Argv, map[string]string{"{id}": id})...)
}

func (c *client) check(stage, id, want string) {
	c.h.t.Helper()
	if want == "" || c.s.Poll == nil {
		return
	}
	got, host := c.poll(id)
	if got != want {
		c.h.t.Errorf("%s: %s job %s: the client concludes %q, want %q", c.s.Name, stage, id, got, want)
	}
	if got == "running" && host != "node1" {
		c.h.t.Errorf("%s: running job on %q, want node1 (exec_host must start with the short node name)", c.s.Name, host)
	}
}

func (c *client) faults(stage, id string) {
	c.h.t.Helper()
	for _, f := range c.s.Faults {
		if f.Stage != stage {
			continue
		}
		r, err := c.h.faults.Add(f.Rule)
		if err != nil {
			c.h.t.Fatalf("%s: fault %q: %v", c.s.Name, f.Name, err)
		}
		got, _ := c.poll(id)
		c.h.faults.Remove(r.ID)
		if got != f.Expect {
			c.h.t.Errorf("%s: under %q the client concludes %q, want %q", c.s.Name, f.Name, got, f.Expect)
		}
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestClientContracts(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("needs bash to run the jobs (apt-get install bash)")
	}
	for _, s := range loadSpecs(t) {
		t.Run(s.Name, func(t *testing.T) {
			h := newHost(t)
			c := &client{s: s, h: h, dir: t.TempDir()}

			// A job of another user holds the only CPU: the client's job queues.
			blocker := h.cmd("bob", h.home, nil, "sleep 60\n", "qsub")
			if blocker.ExitCode != 0 {
				t.Fatalf("blocker: %q", blocker.Stderr)
			}
			bid := strings.TrimSpace(string(blocker.Stdout))
			h.waitState(bid, "R")

			id, sentinel, res := c.submit()
			if res.ExitCode != 0 || id == "" {
				t.Fatalf("submit: exit %d stdout %q stderr %q, id %q", res.ExitCode, res.Stdout, res.Stderr, id)
			}
			full := id
			if !strings.Contains(full, ".") {
				full += ".fakepbs" // dask keeps the bare number
			}
			if want := strings.TrimSpace(string(res.Stdout)); s.Submit.IDMatch != "search" && id != want {
				t.Errorf("id %q, want qsub's %q", id, want)
			}
			j := h.waitState(full, "Q")
			for _, v := range s.Submit.ExpectVariables {
				if !contains(j.Variables, v) {
					t.Errorf("Variable_List lacks %q (qsub -v takes values from its environment): %q", v, j.Variables)
				}
			}
			c.check("queued", id, s.Expect.Queued)
			c.faults("queued", id)

			if r := h.cmd("bob", h.home, nil, "", "qdel", "-W", "force", bid); r.ExitCode != 0 {
				t.Fatalf("qdel blocker: %q", r.Stderr)
			}
			h.waitState(full, "R")
			c.check("running", id, s.Expect.Running)
			c.faults("running", id)

			touch(t, sentinel)
			h.waitState(full, "F")
			c.check("finished", id, s.Expect.Finished)
			c.faults("finished", id)
			if want := s.Expect.KillFinishedExit; want != nil {
				if r := c.kill(id); r.ExitCode != *want {
					t.Errorf("kill of a finished job: exit %d (%q), want %d", r.ExitCode, r.Stderr, *want)
				}
			}

			// Deleted while running.
			id2, _, res := c.submit()
			if res.ExitCode != 0 || id2 == "" {
				t.Fatalf("second submit: %q %q", res.Stdout, res.Stderr)
			}
			full2 := id2
			if !strings.Contains(full2, ".") {
				full2 += ".fakepbs"
			}
			h.waitState(full2, "R")
			if r := c.kill(id2); r.ExitCode != 0 && !s.Kill.IgnoreFailure {
				t.Fatalf("kill: exit %d %q", r.ExitCode, r.Stderr)
			}
			h.waitState(full2, "F")
			c.check("deleted", id2, s.Expect.Deleted)

			c.check("unknown", "987654.fakepbs", s.Expect.Unknown)

			for _, f := range s.SubmitFaults {
				r, err := h.faults.Add(f.Rule)
				if err != nil {
					t.Fatalf("submit fault %q: %v", f.Name, err)
				}
				before := len(h.srv.Jobs(context.Background(), true))
				got, _, res := c.submit()
				h.faults.Remove(r.ID)
				after := len(h.srv.Jobs(context.Background(), true))
				verdict := "id"
				switch {
				case got == "":
					verdict = "no_id"
				case !strings.HasPrefix(got, fmt.Sprint(before+1)) || after == before:
					verdict = "wrong_id"
				}
				if verdict != f.Expect {
					t.Errorf("%s: under %q the client gets %q (id %q, exit %d, stderr %q), want %s", s.Name, f.Name, verdict, got, res.ExitCode, res.Stderr, f.Expect)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package scenario

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/goccy/go-yaml/ast"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/internal/yamlfile"
	"github.com/jobsim/jobsim/sim/uiserver"
)

// Error is a problem in a scenario file, located by file, line and column.
type Error = yamlfile.Error

// Load reads and validates one scenario file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Parse(path, data)
}

// LoadAll loads every *.yaml / *.yml file named or found below the named
// directories, in path order. All files are checked; every problem is
// returned, joined.
func LoadAll(paths ...string) ([]*File, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
	}
	sort.Strings(files)
	var out []*File
	var errs []error
	names := map[string]string{}
	for _, path := range files {
		f, err := Load(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := names[f.Name]; dup {
			errs = append(errs, &Error{File: path, Msg: fmt.Sprintf("name %q is already used by %s", f.Name, other)})
			continue
		}
		names[f.Name] = path
		out = append(out, f)
	}
	return out, errors.Join(errs...)
}

// Parse decodes and validates a scenario; name is used in error messages and
// to resolve relative paths. The file is parsed once: the decoder reads the
// syntax tree the validation later locates its findings in.
func Parse(name string, data []byte) (*File, error) {
	root, err := yamlfile.Parse(name, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &Error{File: name, Msg: "empty file: a scenario needs at least name, topology, system and timeline"}
	}
	f := &File{Path: name}
	if err := yamlfile.Decode(name, root, f); err != nil {
		return nil, err
	}
	f.pos = positions{file: name, root: root}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// positions finds the line and column of a value by its path in the tree.
type positions struct {
	file string
	root ast.Node
}

// at locates the node at path (map keys as strings, sequence indexes as
// ints); it falls back to the deepest node found.
func (p positions) at(path ...any) *Error {
	n := p.root
	for _, step := range path {
		next := yamlfile.Child(n, step)
		if next == nil {
			break
		}
		n = next
	}
	e := &Error{File: p.file}
	if n != nil {
		e.Line, e.Column = yamlfile.Pos(n)
	}
	return e
}

func (p positions) errorf(path []any, format string, args ...any) error {
	e := p.at(path...)
	e.Msg = fmt.Sprintf(format, args...)
	return e
}

// Cylc 8 task states, as in the workflow database.
var CylcStates = []string{"waiting", "expired", "preparing", "submit-failed", "submitted", "running", "failed", "succeeded"}

var (
	bareActions = []string{"start", "stop", "stop-now", "reload", "pause", "resume"}
	labelRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9:._-]*$`)
	nameRe      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	taskRe      = regexp.MustCompile(`^([^/\s]+/)?[A-Za-z0-9_][A-Za-z0-9_+.-]*$`)
)

func (f *File) validate() error {
	p := f.pos
	if f.Name == "" {
		return p.errorf(nil, "name: required (a short id such as unlistable-lib)")
	}
	if !nameRe.MatchString(f.Name) {
		return p.errorf([]any{"name"}, "name %q: use letters, digits, '.', '_' and '-'", f.Name)
	}
	for i, l := range f.Labels {
		if !labelRe.MatchString(l) {
			return p.errorf([]any{"labels", i}, "label %q: use lower-case letters, digits and : . _ -", l)
		}
	}
	switch f.Mode {
	case "":
		f.Mode = Gate
	case Gate:
	case Reproducer:
		if f.Reproduces == nil || f.Reproduces.ID == "" {
			return p.errorf([]any{"mode"}, "a reproducer must name the bug it reproduces: reproduces: {id: ..., affects: ..., shows: [...]}")
		}
	default:
		return p.errorf([]any{"mode"}, "mode %q: want gate or reproducer", f.Mode)
	}
	if b := f.Reproduces; b != nil {
		if b.Affects == "" {
			return p.errorf([]any{"reproduces"}, "reproduces.affects: required, a version range such as \">=8.0.0 <8.0.3\"")
		}
		if _, err := ParseRange(b.Affects); err != nil {
			return p.errorf([]any{"reproduces", "affects"}, "reproduces.affects: %v", err)
		}
		if len(b.Shows) == 0 {
			return p.errorf([]any{"reproduces"}, "reproduces.shows: name the expectation ids that fail when the bug shows")
		}
	}
	if f.Timeout == 0 {
		f.Timeout = Duration(5 * 60 * 1e9)
	}
	if err := f.validateTopology(); err != nil {
		return err
	}
	if err := f.validateSystem(); err != nil {
		return err
	}
	if len(f.Timeline) == 0 {
		return p.errorf(nil, "timeline: required, at least one step (usually `- do: start`)")
	}
	for i := range f.Timeline {
		if err := f.validateStep(i); err != nil {
			return err
		}
	}
	ids := map[string]bool{}
	for i := range f.Expect {
		if err := f.validateExpectation(i, ids); err != nil {
			return err
		}
	}
	if b := f.Reproduces; b != nil {
		for i, id := range b.Shows {
			if !ids[id] {
				return p.errorf([]any{"reproduces", "shows", i}, "reproduces.shows: no expectation has id %q", id)
			}
		}
	}
	return nil
}

func (f *File) hostNames() []string {
	var names []string
	for _, h := range f.Topology.Hosts {
		names = append(names, h.Name)
	}
	return names
}

// machineNames are the hosts and the PBS nodes of the topology: what a
// node step may name.
func (f *File) machineNames() []string {
	names := f.hostNames()
	for _, h := range f.Topology.Hosts {
		if h.PBS == nil {
			continue
		}
		for _, n := range h.PBS.Nodes {
			if !slices.Contains(names, n.Name) {
				names = append(names, n.Name)
			}
		}
	}
	return names
}

// HasNodeSteps reports whether the timeline acts on machines (node steps),
// which only some backends can do.
func (f *File) HasNodeSteps() bool {
	for _, s := range f.Timeline {
		if s.Node != nil {
			return true
		}
	}
	return false
}

func (f *File) validateTopology() error {
	p := f.pos
	if len(f.Topology.Hosts) == 0 {
		// A hub whose servers run on the test machine needs no job host.
		if h := f.System.Hub; h != nil && f.System.Cylc == nil && !h.NeedsHost() {
			return nil
		}
		return p.errorf([]any{"topology"}, "topology.hosts: required, at least one host")
	}
	seen := map[string]bool{}
	for i := range f.Topology.Hosts {
		h := &f.Topology.Hosts[i]
		at := []any{"topology", "hosts", i}
		if h.Name == "" || !nameRe.MatchString(h.Name) {
			return p.errorf(at, "host name %q: required; letters, digits, '.', '_' and '-'", h.Name)
		}
		if seen[h.Name] {
			return p.errorf(append(at, "name"), "host %q is defined twice", h.Name)
		}
		seen[h.Name] = true
		switch h.Executor {
		case "":
			h.Executor = "real"
		case "real", "virtual":
		default:
			return p.errorf(append(at, "executor"), "executor %q: want real or virtual", h.Executor)
		}
		for j, m := range h.FaultMounts {
			if !strings.HasPrefix(m, "/") {
				return p.errorf(append(at, "fault_mounts", j), "fault mount %q must be an absolute host path", m)
			}
			if h.Executor != "real" {
				return p.errorf(append(at, "fault_mounts", j), "fault mounts are for real executors (a virtual host's filesystem carries faults already)")
			}
		}
		if h.PBS != nil {
			for j, n := range h.PBS.Nodes {
				if n.Name == "" || n.NCPUs < 0 {
					return p.errorf(append(at, "pbs", "nodes", j), "a PBS node needs a name and ncpus >= 0")
				}
			}
		}
	}
	return nil
}

func (f *File) host(name string) (*Host, bool) {
	for i := range f.Topology.Hosts {
		if f.Topology.Hosts[i].Name == name {
			return &f.Topology.Hosts[i], true
		}
	}
	return nil, false
}

func (f *File) validateSystem() error {
	p := f.pos
	s := &f.System
	switch {
	case s.Cylc != nil && s.Hub != nil:
		return p.errorf([]any{"system"}, "system: name one system under test, cylc or hub, not both")
	case s.Cylc != nil:
		c := s.Cylc
		if c.Workflow == "" {
			return p.errorf([]any{"system", "cylc"}, "system.cylc.workflow: required, a directory holding flow.cylc (relative to this file)")
		}
		dir := c.Workflow
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(f.Path), dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "flow.cylc")); err != nil {
			return p.errorf([]any{"system", "cylc", "workflow"}, "system.cylc.workflow: %s has no flow.cylc", dir)
		}
		c.Workflow = dir
		pl := &c.Platform
		if pl.Host == "" && len(f.Topology.Hosts) == 1 {
			pl.Host = f.Topology.Hosts[0].Name
		}
		h, ok := f.host(pl.Host)
		if !ok {
			return p.errorf([]any{"system", "cylc", "platform"}, "system.cylc.platform.host %q is not a topology host (have %s)", pl.Host, strings.Join(f.hostNames(), ", "))
		}
		if h.Executor != "real" {
			return p.errorf([]any{"system", "cylc", "platform", "host"}, "host %q runs Cylc jobs and needs executor: real", h.Name)
		}
		if pl.Name == "" {
			pl.Name = pl.Host
		}
		if h.Cylc == "" {
			h.Cylc = "/opt/cylc"
		}
		if pl.Runner == "" {
			pl.Runner = "pbs"
		}
		if pl.Runner != "pbs" && pl.Runner != "background" {
			return p.errorf([]any{"system", "cylc", "platform", "runner"}, "runner %q: want pbs or background", pl.Runner)
		}
		if pl.Runner == "pbs" && h.PBS == nil {
			h.PBS = &PBS{}
		}
		if pl.Comms == "" {
			pl.Comms = "poll"
		}
		if !slices.Contains([]string{"poll", "zmq", "ssh"}, pl.Comms) {
			return p.errorf([]any{"system", "cylc", "platform", "comms"}, "comms %q: want poll, zmq or ssh", pl.Comms)
		}
	case s.Hub != nil:
		return f.validateHub()
	default:
		return p.errorf(nil, "system: required, cylc or hub")
	}
	return nil
}

// hubUserRe is what JupyterHub and the hub driver accept as a user name.
var hubUserRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]*$`)

// traitKeyRe is a "Class.trait" configurable.
var traitKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$`)

func (f *File) validateHub() error {
	p := f.pos
	h := f.System.Hub
	at := []any{"system", "hub"}
	if h.Spawner == "" {
		h.Spawner = SpawnerLocal
	}
	if !slices.Contains(HubSpawners, h.Spawner) {
		return p.errorf(append(at, "spawner"), "spawner %q: want %s", h.Spawner, strings.Join(HubSpawners, ", "))
	}
	if len(h.Users) == 0 {
		return p.errorf(at, "system.hub.users: required, the hub users whose servers the scenario starts")
	}
	for i, u := range h.Users {
		if !hubUserRe.MatchString(u) {
			return p.errorf(append(at, "users", i), "user %q: use letters, digits, '.', '_', '@', '-'", u)
		}
	}
	for i, r := range h.Roles {
		if !nameRe.MatchString(r.Name) {
			return p.errorf(append(at, "roles", i), "role name %q: use letters, digits, '.', '_' and '-'", r.Name)
		}
		if len(r.Scopes) == 0 {
			return p.errorf(append(at, "roles", i), "role %s: scopes: required, e.g. [\"read:servers!user=bob\"]", r.Name)
		}
	}
	for k, v := range h.Config {
		if !traitKeyRe.MatchString(k) {
			return p.errorf(append(at, "config", k), "config key %q: want \"Class.trait\", e.g. JupyterHub.log_level", k)
		}
		if strings.TrimSpace(v) == "" {
			return p.errorf(append(at, "config", k), "config %s: empty value", k)
		}
	}
	for u := range h.ServerFor {
		if !slices.Contains(h.Users, u) {
			return p.errorf(append(at, "server_for", u), "server_for: %q is not one of the hub users %v", u, h.Users)
		}
	}
	for _, u := range append([]string{""}, h.Users...) {
		spec, err := h.ServerFaults(u)
		if err == nil {
			_, err = uiserver.ParseFaults(spec)
		}
		if err != nil {
			where := append(at, "server")
			if _, ok := h.ServerFor[u]; ok {
				where = append(at, "server_for", u)
			}
			return p.errorf(where, "%v", err)
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"start_timeout", h.Timeout}, {"http_timeout", h.HTTPTimeout}, {"poll_interval", h.PollInterval}} {
		if d.v != 0 && d.v.D() < 1e9 {
			return p.errorf(append(at, d.name), "%s %s: JupyterHub counts whole seconds, use at least 1s", d.name, d.v.D())
		}
	}
	if err := f.validateNamedServers(); err != nil {
		return err
	}
	if !h.NeedsHost() {
		if h.Host != "" {
			return p.errorf(append(at, "host"), "host: only batch-pbs and ssh spawners start servers on a topology host")
		}
		return nil
	}
	if h.Host == "" && len(f.Topology.Hosts) == 1 {
		h.Host = f.Topology.Hosts[0].Name
	}
	host, ok := f.host(h.Host)
	if !ok {
		return p.errorf(append(at, "host"), "system.hub.host %q is not a topology host (have %s)", h.Host, strings.Join(f.hostNames(), ", "))
	}
	if host.Executor != "real" {
		return p.errorf(append(at, "host"), "host %q starts the hub's servers as processes and needs executor: real", host.Name)
	}
	if len(host.Users) == 0 {
		host.Users = slices.Clone(h.Users)
	}
	for i, u := range h.Users {
		if !slices.Contains(host.Users, u) {
			return p.errorf(append(at, "users", i), "hub user %q is not a user of host %s (%v)", u, host.Name, host.Users)
		}
	}
	if h.Spawner == SpawnerBatchPBS && host.PBS == nil {
		host.PBS = &PBS{}
	}
	return nil
}

var apiRequestRe = regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE) /\S*$`)

func (f *File) validateRequest(r Request) error {
	users := f.System.Hub.Users
	if !slices.Contains(users, r.As) {
		return fmt.Errorf("as %q: want one of the hub users %v", r.As, users)
	}
	if (r.API == "") == (r.Server == "") {
		return errors.New("give api: \"METHOD /path\" (under /hub/api) or server: USER (or USER/NAME) with path:")
	}
	if r.API != "" && !apiRequestRe.MatchString(r.API) {
		return fmt.Errorf("api %q: want \"METHOD /path\", e.g. \"GET /users/bob\"", r.API)
	}
	if r.Server != "" {
		if err := f.validateServerRef(r.Server, false); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	if r.Want < 100 || r.Want > 599 {
		return fmt.Errorf("want: the expected HTTP status (100..599), got %d", r.Want)
	}
	return nil
}

func (f *File) validateStep(i int) error {
	p := f.pos
	s := &f.Timeline[i]
	at := []any{"timeline", i}
	triggers := 0
	for _, set := range []bool{s.At != nil, s.After != nil, s.When != nil} {
		if set {
			triggers++
		}
	}
	if triggers > 1 {
		return p.errorf(at, "step %d: give at most one of at, after and when", i+1)
	}
	if s.When != nil {
		if err := f.validateCondition(*s.When, append(at, "when")); err != nil {
			return err
		}
	}
	var actions []string
	add := func(set bool, name string) {
		if set {
			actions = append(actions, name)
		}
	}
	add(s.Do != "", "do")
	add(s.Trigger != nil, "trigger")
	add(s.Poll != nil, "poll")
	add(s.Kill != nil, "kill")
	add(s.Hold != nil, "hold")
	add(s.Release != nil, "release")
	add(s.Fault != nil, "fault")
	add(s.Clear != nil, "clear")
	add(s.Wait != nil, "wait")
	add(s.Spawn != nil, "spawn")
	add(s.StopServer != nil, "stop_server")
	add(s.RemoveServer != nil, "remove_server")
	add(s.Request != nil, "request")
	add(s.Note != "", "note")
	add(s.Node != nil, "node")
	add(s.PBS != nil, "pbs")
	switch len(actions) {
	case 0:
		return p.errorf(at, "step %d: no action (want one of do, trigger, poll, kill, hold, release, fault, clear, wait, spawn, stop_server, remove_server, request, note, node, pbs)", i+1)
	case 1:
	default:
		return p.errorf(at, "step %d: one action per step, found %s", i+1, strings.Join(actions, " and "))
	}
	if s.Do != "" && !slices.Contains(bareActions, s.Do) {
		return p.errorf(append(at, "do"), "step %d: do %q: want one of %s", i+1, s.Do, strings.Join(bareActions, ", "))
	}
	cylcOnly := s.Trigger != nil || s.Poll != nil || s.Kill != nil || s.Hold != nil || s.Release != nil || slices.Contains([]string{"reload", "pause", "resume", "stop-now"}, s.Do)
	if cylcOnly && f.System.Cylc == nil {
		return p.errorf(at, "step %d: %s is a Cylc action but the system under test is not cylc", i+1, actions[0])
	}
	if (s.Spawn != nil || s.StopServer != nil || s.RemoveServer != nil || s.Request != nil) && f.System.Hub == nil {
		return p.errorf(at, "step %d: %s is a hub action but the system under test is not hub", i+1, actions[0])
	}
	if f.System.Hub != nil {
		for _, list := range [][]string{s.Spawn, s.StopServer, s.RemoveServer} {
			seen := map[string]bool{}
			for j, ref := range list {
				if err := f.validateServerRef(ref, s.RemoveServer != nil); err != nil {
					return p.errorf(append(at, actions[0], j), "step %d: %s: %v", i+1, actions[0], err)
				}
				if seen[ref] {
					return p.errorf(append(at, actions[0], j), "step %d: %s: %s is named twice", i+1, actions[0], ref)
				}
				seen[ref] = true
			}
		}
	}
	for j, r := range s.Request {
		if err := f.validateRequest(r); err != nil {
			return p.errorf(append(at, "request", j), "step %d: request %d: %v", i+1, j+1, err)
		}
	}
	for _, list := range [][]string{s.Trigger, s.Poll, s.Kill, s.Hold, s.Release} {
		for _, t := range list {
			if !taskRe.MatchString(t) {
				return p.errorf(append(at, actions[0]), "step %d: task %q: want cycle/name (1/foo) or a name", i+1, t)
			}
		}
	}
	if fs := s.Fault; fs != nil {
		if fs.Host == "" && len(f.Topology.Hosts) == 1 {
			fs.Host = f.Topology.Hosts[0].Name
		}
		if _, ok := f.host(fs.Host); !ok {
			return p.errorf(append(at, "fault"), "step %d: fault host %q is not a topology host (have %s)", i+1, fs.Host, strings.Join(f.hostNames(), ", "))
		}
		if err := fs.Rule.Validate(); err != nil {
			return p.errorf(append(at, "fault"), "step %d: fault: %v", i+1, err)
		}
	}
	if n := s.Node; n != nil {
		if !slices.Contains(NodeActions, n.Action) {
			return p.errorf(append(at, "node", "action"), "step %d: node action %q: want one of %s", i+1, n.Action, strings.Join(NodeActions, ", "))
		}
		if !slices.Contains(f.machineNames(), n.Name) {
			return p.errorf(append(at, "node", "name"), "step %d: node %q is not a topology host or PBS node (have %s)", i+1, n.Name, strings.Join(f.machineNames(), ", "))
		}
	}
	if ps := s.PBS; ps != nil {
		if field, err := f.validatePBSStep(ps); err != nil {
			return p.errorf(append(at, "pbs", field), "step %d: pbs: %v", i+1, err)
		}
	}
	if w := s.Wait; w != nil {
		if w.For == 0 && w.Condition.IsZero() {
			return p.errorf(append(at, "wait"), "step %d: wait needs for: DURATION or a condition (task/state, job/state, event, server)", i+1)
		}
		if w.For != 0 && !w.Condition.IsZero() {
			return p.errorf(append(at, "wait"), "step %d: wait takes for: or a condition with within:, not both", i+1)
		}
		if !w.Condition.IsZero() {
			if err := f.validateCondition(w.Condition, append(at, "wait")); err != nil {
				return err
			}
		}
	}
	return nil
}

// validatePBSStep checks a pbs step and fills in its host when only one
// host runs PBS. It names the field at fault.
func (f *File) validatePBSStep(ps *PBSStep) (string, error) {
	if !slices.Contains(PBSActions, ps.Action) {
		return "action", fmt.Errorf("action %q: want one of %s", ps.Action, strings.Join(PBSActions, ", "))
	}
	if ps.Jobs != "" && ps.Jobs != "kept" && ps.Jobs != "lost" {
		return "jobs", fmt.Errorf("jobs %q: want kept or lost", ps.Jobs)
	}
	if ps.Down < 0 {
		return "down", fmt.Errorf("down %v: want a positive duration", ps.Down.D())
	}
	var withPBS []string
	for _, h := range f.Topology.Hosts {
		if h.PBS != nil {
			withPBS = append(withPBS, h.Name)
		}
	}
	if ps.Host == "" && len(withPBS) == 1 {
		ps.Host = withPBS[0]
	}
	if !slices.Contains(withPBS, ps.Host) {
		return "host", fmt.Errorf("host %q does not run a PBS server (hosts with pbs: %s)", ps.Host, strings.Join(withPBS, ", "))
	}
	return "", nil
}

func (f *File) validateCondition(c Condition, at []any) error {
	p := f.pos
	n := 0
	for _, set := range []bool{c.Task != "", c.Job != "", c.Event != nil, c.Server != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return p.errorf(at, "a condition names exactly one of task, job, event and server")
	}
	switch {
	case c.Task != "":
		if f.System.Cylc == nil {
			return p.errorf(at, "a task condition needs the cylc system")
		}
		if !slices.Contains(CylcStates, c.State) {
			return p.errorf(append(at, "state"), "task state %q: want one of %s", c.State, strings.Join(CylcStates, ", "))
		}
	case c.Job != "":
		if len(c.State) != 1 || !strings.Contains("QRHWESF", c.State) {
			return p.errorf(append(at, "state"), "PBS job state %q: want one letter of Q R H W E S F", c.State)
		}
		if !doublestar.ValidatePattern(c.Job) {
			return p.errorf(append(at, "job"), "job %q is not a valid glob", c.Job)
		}
	case c.Event != nil:
		if err := validateMatch(*c.Event); err != nil {
			return p.errorf(append(at, "event"), "%v", err)
		}
	case c.Server != "":
		if f.System.Hub == nil {
			return p.errorf(at, "a server condition needs the hub system")
		}
		if err := f.validateServerRef(c.Server, false); err != nil {
			return p.errorf(append(at, "server"), "server condition: %v", err)
		}
		if (c.Ready == nil) == (c.Failed == nil) {
			return p.errorf(at, "a server condition says ready: true|false or failed: true")
		}
	}
	return nil
}

func validateMatch(m Match) error {
	if m.Kind == "" {
		return errors.New("an event match needs kind (e.g. pbs.call, ssh.exec, fault.activation, cylc.task, or a prefix such as ssh.)")
	}
	if _, err := regexp.Compile(m.Msg); err != nil {
		return fmt.Errorf("msg: %w", err)
	}
	for k, v := range m.Fields {
		if _, err := regexp.Compile(v); err != nil {
			return fmt.Errorf("fields.%s: %w", k, err)
		}
	}
	return nil
}

func (f *File) validateExpectation(i int, ids map[string]bool) error {
	p := f.pos
	e := &f.Expect[i]
	at := []any{"expect", i}
	if e.ID == "" {
		e.ID = fmt.Sprintf("expect-%d", i+1)
	}
	if ids[e.ID] {
		return p.errorf(append(at, "id"), "expectation id %q is used twice", e.ID)
	}
	ids[e.ID] = true
	groups := 0
	for _, set := range []bool{e.Task != "", e.Stuck != nil, e.Events != nil, e.Order != nil, e.Server != ""} {
		if set {
			groups++
		}
	}
	if groups != 1 {
		return p.errorf(at, "expectation %s: give exactly one of task, stuck, events, order and server", e.ID)
	}
	switch {
	case e.Task != "":
		if f.System.Cylc == nil {
			return p.errorf(at, "expectation %s: task expectations need the cylc system", e.ID)
		}
		if (e.Reaches == "") == (e.Never == "") {
			return p.errorf(at, "expectation %s: a task expectation says reaches: STATE (with within) or never: STATE (with longer_than)", e.ID)
		}
		st := e.Reaches + e.Never
		if !slices.Contains(CylcStates, st) {
			return p.errorf(at, "expectation %s: task state %q: want one of %s", e.ID, st, strings.Join(CylcStates, ", "))
		}
		if e.Reaches != "" && e.Within == 0 {
			return p.errorf(at, "expectation %s: reaches needs within: DURATION", e.ID)
		}
		if e.Never != "" && e.LongerThan == 0 {
			return p.errorf(at, "expectation %s: never needs longer_than: DURATION", e.ID)
		}
	case e.Stuck != nil:
		if len(e.Stuck.States) == 0 {
			e.Stuck.States = []string{"preparing", "submitted"}
		}
		if e.Stuck.LongerThan == 0 {
			return p.errorf(append(at, "stuck"), "expectation %s: stuck needs longer_than: DURATION", e.ID)
		}
	case e.Events != nil:
		c := e.Events
		if err := validateMatch(c.Match); err != nil {
			return p.errorf(append(at, "events"), "expectation %s: %v", e.ID, err)
		}
		if c.Count == nil && c.Min == nil && c.Max == nil {
			return p.errorf(append(at, "events"), "expectation %s: events needs count, min or max", e.ID)
		}
	case e.Order != nil:
		if len(e.Order) < 2 {
			return p.errorf(append(at, "order"), "expectation %s: order lists at least two event matches", e.ID)
		}
		for j, m := range e.Order {
			if err := validateMatch(m); err != nil {
				return p.errorf(append(at, "order", j), "expectation %s: %v", e.ID, err)
			}
		}
	case e.Server != "":
		if f.System.Hub == nil {
			return p.errorf(at, "expectation %s: server expectations need the hub system", e.ID)
		}
		if err := f.validateServerRef(e.Server, false); err != nil {
			return p.errorf(append(at, "server"), "expectation %s: %v", e.ID, err)
		}
		if (e.Ready == nil) == (e.Failed == nil) {
			return p.errorf(at, "expectation %s: a server expectation says ready: true|false or failed: true", e.ID)
		}
		if e.Within == 0 {
			return p.errorf(at, "expectation %s: a server expectation needs within: DURATION", e.ID)
		}
	}
	return nil
}

// Rule returns the fault rule of a step (for callers outside the package).
func (s FaultStep) FaultRule() fault.Rule { return s.Rule }

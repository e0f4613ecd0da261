package scenario

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jobsim/jobsim/base/fault"
)

var (
	labelRe = regexp.MustCompile(`^[a-z0-9][a-z0-9:._-]*$`)
	nameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// ValidName reports whether s is a good name for scenarios, hosts and
// other things a scenario names: letters, digits, '.', '_' and '-'.
func ValidName(s string) bool { return nameRe.MatchString(s) }

func (f *File) validate(v *Vocabulary) error {
	p := f.pos
	// Keys nobody owns are reported first, as misspellings usually are
	// the problem (the companions of a plug-in's condition and
	// expectation keys are its own to check).
	for i, s := range f.Timeline {
		for _, k := range s.ext.keys() {
			if v.steps[k] == nil {
				return f.At("timeline", i).UnknownKey(k, "a step")
			}
		}
	}
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
	if err := f.validateSystem(v); err != nil {
		return err
	}
	if len(f.Timeline) == 0 {
		return p.errorf(nil, "timeline: required, at least one step (usually `- do: start`)")
	}
	for i := range f.Timeline {
		if err := f.validateStep(v, i); err != nil {
			return err
		}
	}
	if err := f.validateRestarts(v); err != nil {
		return err
	}
	ids := map[string]bool{}
	for i := range f.Expect {
		if err := f.validateExpectation(v, i, ids); err != nil {
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

// HostNames are the names of the topology's hosts.
func (f *File) HostNames() []string {
	var names []string
	for _, h := range f.Topology.Hosts {
		names = append(names, h.Name)
	}
	return names
}

// machineNames are the hosts and the PBS nodes of the topology: what a
// node step may name.
func (f *File) machineNames() []string {
	names := f.HostNames()
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

// validateTopology checks the hosts. A topology without hosts is left to
// the system under test to refuse (a hub whose servers run on the test
// machine needs none).
func (f *File) validateTopology() error {
	p := f.pos
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
		if h.Isolate != nil && *h.Isolate && h.Executor != "real" {
			return p.errorf(append(at, "isolate"), "isolate is for real executors (a virtual host runs no machine programs)")
		}
		if h.PBS != nil {
			for j, n := range h.PBS.Nodes {
				if n.Name == "" || n.NCPUs < 0 {
					return p.errorf(append(at, "pbs", "nodes", j), "a PBS node needs a name and ncpus >= 0")
				}
			}
		}
		if h.Slurm != nil {
			if h.PBS != nil {
				return p.errorf(append(at, "slurm"), "host %q has both pbs and slurm: a host runs one batch system", h.Name)
			}
			if err := h.Slurm.validate(p, append(at, "slurm")); err != nil {
				return err
			}
		}
	}
	return nil
}

// RequireHosts is the error a system that needs job hosts returns for a
// topology without any.
func (f *File) RequireHosts() error {
	if len(f.Topology.Hosts) == 0 {
		return f.pos.errorf([]any{"topology"}, "topology.hosts: required, at least one host")
	}
	return nil
}

// Host returns the topology host named name.
func (f *File) Host(name string) (*Host, bool) {
	for i := range f.Topology.Hosts {
		if f.Topology.Hosts[i].Name == name {
			return &f.Topology.Hosts[i], true
		}
	}
	return nil, false
}

func orList(keys []string) string {
	switch len(keys) {
	case 0:
		return ""
	case 1:
		return keys[0]
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " or " + keys[len(keys)-1]
}

func (f *File) validateSystem(v *Vocabulary) error {
	p := f.pos
	s := &f.System
	known := v.Systems()
	named := s.ext.keys()
	switch len(named) {
	case 0:
		return p.errorf(nil, "system: required, %s", orList(known))
	case 1:
	default:
		return p.errorf([]any{"system"}, "system: name one system under test, %s, not %s", orList(known), strings.Join(named, " and "))
	}
	name := named[0]
	sp, ok := v.systems[name]
	if !ok {
		return f.At("system").KeyErrorf(name, "system %q: this jobsim knows %s", name, orList(known))
	}
	spec, err := sp.ParseSystem(f, Value{node: s.ext.value(name), where: f.At("system", name), what: "system." + name})
	if err != nil {
		return err
	}
	s.Name, s.Spec = name, spec
	return nil
}

// foreignSystem says that what a plug-in owns belongs to a system that is
// not the one under test ("" when it may be used).
func (f *File) foreignSystem(v *Vocabulary, owner string) bool {
	return v.isSystem(owner) && owner != f.System.Name
}

func (f *File) validateStep(v *Vocabulary, i int) error {
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
		if err := f.validateCondition(v, s.When, append(at, "when")); err != nil {
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
	add(s.Fault != nil, "fault")
	add(s.Clear != nil, "clear")
	add(s.Wait != nil, "wait")
	add(s.Note != "", "note")
	add(s.Node != nil, "node")
	actions = append(actions, s.ext.keys()...)
	switch len(actions) {
	case 0:
		return p.errorf(at, "step %d: no action (want one of %s)", i+1, strings.Join(append(slices.Clone(coreStepKeys), v.stepKeys...), ", "))
	case 1:
	default:
		return p.errorf(at, "step %d: one action per step, found %s", i+1, strings.Join(actions, " and "))
	}
	if key := actions[0]; v.steps[key] != nil {
		if s.ext.value(key) == nil {
			return f.At(at...).KeyErrorf(key, "step %d: %s has no value (see docs/scenarios.md)", i+1, key)
		}
		sp := v.steps[key]
		if f.foreignSystem(v, sp.Name()) {
			return p.errorf(at, "step %d: %s is a %s action but the system under test is not %s", i+1, key, sp.Name(), sp.Name())
		}
		a, err := sp.ParseStep(f, key, Value{node: s.ext.value(key), where: f.At(append(at, key)...), what: "a " + key + " step"})
		if err != nil {
			return prefixed(err, fmt.Sprintf("step %d: ", i+1))
		}
		s.Owner, s.Action = sp.Name(), a
	}
	if s.Do != "" && s.Do != coreDo {
		owners := v.do[s.Do]
		if len(owners) == 0 {
			return p.errorf(append(at, "do"), "step %d: do %q: want one of %s", i+1, s.Do, strings.Join(append([]string{coreDo}, v.doValues...), ", "))
		}
		var sp StepParser
		for _, o := range owners {
			if o.Name() == f.System.Name {
				sp = o
			}
		}
		if sp == nil {
			return p.errorf(at, "step %d: %s is a %s action but the system under test is not %s", i+1, s.Do, owners[0].Name(), owners[0].Name())
		}
		a, err := sp.ParseStep(f, "do", Value{node: f.At(append(at, "do")...).node(), where: f.At(append(at, "do")...), what: "do"})
		if err != nil {
			return prefixed(err, fmt.Sprintf("step %d: ", i+1))
		}
		s.Owner, s.Action = sp.Name(), a
	}
	if fs := s.Fault; fs != nil {
		if fs.Host == "" && len(f.Topology.Hosts) == 1 {
			fs.Host = f.Topology.Hosts[0].Name
		}
		if _, ok := f.Host(fs.Host); !ok {
			return p.errorf(append(at, "fault"), "step %d: fault host %q is not a topology host (have %s)", i+1, fs.Host, strings.Join(f.HostNames(), ", "))
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
	if w := s.Wait; w != nil {
		w.Condition = Condition{Event: w.Event, Since: w.Since, ext: w.ext}
		if w.For == 0 && w.Condition.IsZero() {
			return p.errorf(append(at, "wait"), "step %d: wait needs for: DURATION or a condition (%s)", i+1, strings.Join(append(slices.Clone(coreCondKeys), v.condKeys...), ", "))
		}
		if w.For != 0 && (!w.Condition.IsZero() || w.Since != "") {
			return p.errorf(append(at, "wait"), "step %d: wait takes for: or a condition with within:, not both", i+1)
		}
		if !w.Condition.IsZero() {
			if err := f.validateCondition(v, &w.Condition, append(at, "wait")); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *File) validateCondition(v *Vocabulary, c *Condition, at []any) error {
	p := f.pos
	var kinds []string
	if c.Event != nil {
		kinds = append(kinds, "event")
	}
	ext := c.ext.keys()
	for _, k := range ext {
		if v.conditions[k] != nil {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return p.errorf(at, "a condition names exactly one of %s", orAnd(append(slices.Clone(coreCondKeys), v.condKeys...)))
	}
	switch c.Since {
	case "":
		c.Since = SinceStep
	case SinceStep, SinceStart:
	default:
		return p.errorf(append(at, "since"), "since %q: want start (count events from the start of the run) or step (from when the step begins waiting, the default)", c.Since)
	}
	if c.Event == nil && c.Since == SinceStart {
		return p.errorf(append(at, "since"), "since: start is for event conditions; a %s condition is a state, judged when the step waits", kinds[0])
	}
	if c.Event != nil {
		for _, k := range ext {
			return f.At(at...).UnknownKey(k, "an event condition")
		}
		if err := c.Event.Validate(); err != nil {
			return p.errorf(append(at, "event"), "%v", err)
		}
		return nil
	}
	key := kinds[0]
	cp := v.conditions[key]
	if f.foreignSystem(v, cp.Name()) {
		return p.errorf(at, "a %s condition needs the %s system", key, cp.Name())
	}
	pred, err := cp.ParseCondition(f, key, Value{node: c.ext.mapping(), where: f.At(at...), what: "a " + key + " condition"})
	if err != nil {
		return err
	}
	c.Owner, c.Predicate = cp.Name(), pred
	return nil
}

func orAnd(keys []string) string {
	if len(keys) < 2 {
		return strings.Join(keys, "")
	}
	return strings.Join(keys[:len(keys)-1], ", ") + " and " + keys[len(keys)-1]
}

func (f *File) validateExpectation(v *Vocabulary, i int, ids map[string]bool) error {
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
	var groups []string
	if e.Events != nil {
		groups = append(groups, "events")
	}
	if e.Order != nil {
		groups = append(groups, "order")
	}
	if e.During != nil {
		groups = append(groups, "during")
	}
	ext := e.ext.keys()
	for _, k := range ext {
		if v.expectations[k] != nil {
			groups = append(groups, k)
		}
	}
	if len(groups) != 1 {
		return p.errorf(at, "expectation %s: give exactly one of %s", e.ID, orAnd(append(slices.Clone(coreExpectKeys), v.expectKeys...)))
	}
	switch groups[0] {
	case "events", "order", "during":
		for _, k := range ext {
			return f.At(at...).UnknownKey(k, "an expectation")
		}
	}
	switch {
	case e.Events != nil:
		c := e.Events
		if err := c.Match.Validate(); err != nil {
			return p.errorf(append(at, "events"), "expectation %s: %v", e.ID, err)
		}
		if c.Count == nil && c.Min == nil && c.Max == nil {
			return p.errorf(append(at, "events"), "expectation %s: events needs count, min or max", e.ID)
		}
		e.Judge = *c
	case e.Order != nil:
		if len(e.Order) < 2 {
			return p.errorf(append(at, "order"), "expectation %s: order lists at least two event matches", e.ID)
		}
		for j, m := range e.Order {
			if err := m.Validate(); err != nil {
				return p.errorf(append(at, "order", j), "expectation %s: %v", e.ID, err)
			}
		}
		e.Judge = e.Order
	case e.During != nil:
		if err := e.During.Validate(); err != nil {
			return p.errorf(append(at, "during"), "expectation %s: %v", e.ID, err)
		}
		e.Judge = *e.During
	default:
		key := groups[0]
		ep := v.expectations[key]
		if f.foreignSystem(v, ep.Name()) {
			return p.errorf(at, "expectation %s: %s expectations need the %s system", e.ID, key, ep.Name())
		}
		j, err := ep.ParseExpectation(f, key, Value{node: e.ext.mapping(), where: f.At(at...), what: "a " + key + " expectation"})
		if err != nil {
			return prefixed(err, "expectation "+e.ID+": ")
		}
		e.Judge, e.Owner = j, ep.Name()
	}
	return nil
}

// Rule returns the fault rule of a step (for callers outside the package).
func (s FaultStep) FaultRule() fault.Rule { return s.Rule }

// prefixed puts prefix before the message of a located error (keeping its
// file:line:col in front), or before err's text.
func prefixed(err error, prefix string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Msg = prefix + c.Msg
		return &c
	}
	return fmt.Errorf("%s%w", prefix, err)
}

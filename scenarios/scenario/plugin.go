package scenario

import (
	"errors"
	"fmt"
	"slices"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/jobsim/jobsim/internal/yamlfile"
	"github.com/jobsim/jobsim/scenarios/check"
)

// The scenario vocabulary is open: the core knows the file's frame
// (name, mode, topology, timeline triggers, faults, waits, notes, node
// steps, event conditions and event expectations), and plug-ins bring the
// rest, the way Toxiproxy registers toxics by name and decodes their
// attributes. A plug-in is a value with a Name and any of the parser
// interfaces below:
//
//   - SystemParser: a system under test (cylc, hub). It parses
//     system.<Name>; its step keys, do: values, conditions and
//     expectations are valid only when it is the scenario's system.
//   - StepParser: timeline step keys (trigger, spawn, pbs) and, for
//     systems, bare do: values (reload, stop).
//   - ConditionParser: condition keys (task, server, job), in when: and
//     wait: alike.
//   - ExpectationParser: expectation keys (task, stuck, server).
//
// Each parser gets the File (its topology and system already checked) and
// the YAML value as a Value, which decodes strictly into the plug-in's own
// types and places errors at file:line:col. The parsed results (an Action,
// a Predicate, a check.Expectation) are stored in the Step, Condition and
// Expectation with the plug-in's name as Owner; the runner hands them back
// to the plug-in that made them. A Vocabulary is built explicitly from the
// plug-ins' constructors (no registry filled by init).

// Plugin is one part of the scenario vocabulary.
type Plugin interface {
	// Name is the plug-in's name: a system's key under system: (cylc,
	// hub), or a batch system's (pbs). Owner fields carry it.
	Name() string
}

// SystemParser is a system under test.
type SystemParser interface {
	Plugin
	// ParseSystem parses system.<Name> and returns the configuration the
	// system's driver runs from. It may fill in defaults, also on the
	// topology's hosts (a Cylc platform's host gets a PBS server).
	ParseSystem(f *File, v Value) (any, error)
}

// StepParser parses steps.
type StepParser interface {
	Plugin
	// StepKeys are the step keys the plug-in owns.
	StepKeys() []string
	// DoActions are the bare do: values it owns (systems only).
	DoActions() []string
	// ParseStep parses the value of one of its keys (key "do" for a
	// do: value).
	ParseStep(f *File, key string, v Value) (Action, error)
}

// ConditionParser parses conditions.
type ConditionParser interface {
	Plugin
	// ConditionKeys are the keys that make a condition the plug-in's.
	ConditionKeys() []string
	// ParseCondition parses a condition; v is the whole condition mapping
	// (the key with its companions, such as task with state).
	ParseCondition(f *File, key string, v Value) (Predicate, error)
}

// ExpectationParser parses expectations.
type ExpectationParser interface {
	Plugin
	// ExpectationKeys are the keys that make an expectation the plug-in's.
	ExpectationKeys() []string
	// ParseExpectation parses an expectation; v is the whole mapping
	// without its id.
	ParseExpectation(f *File, key string, v Value) (check.Expectation, error)
}

// Action is a step's action as a plug-in parsed it. String describes it
// for progress lines and the history ("trigger 1/foo").
type Action interface{ String() string }

// Predicate is a condition as a plug-in parsed it. String describes it
// ("task 1/foo is succeeded").
type Predicate interface{ String() string }

// Vocabulary is the set of plug-ins a scenario file may use. Build it with
// NewVocabulary; it is read-only afterwards and safe to share.
type Vocabulary struct {
	plugins      []Plugin
	systems      map[string]SystemParser
	steps        map[string]StepParser
	do           map[string][]StepParser // several systems may own one do: value
	conditions   map[string]ConditionParser
	expectations map[string]ExpectationParser
	stepKeys     []string // in plug-in order, for messages
	doValues     []string
	condKeys     []string
	expectKeys   []string
}

// Core keys, in the order messages list them.
var (
	coreStepKeys   = []string{"do", "fault", "clear", "wait", "note", "node"}
	coreDo         = "start"
	coreCondKeys   = []string{"event"}
	coreExpectKeys = []string{"events", "order", "during"}
)

// NewVocabulary returns the vocabulary of the plug-ins. Two plug-ins may
// not claim one key (do: values excepted, which each system names for
// itself).
func NewVocabulary(plugins ...Plugin) (*Vocabulary, error) {
	v := &Vocabulary{
		systems: map[string]SystemParser{}, steps: map[string]StepParser{}, do: map[string][]StepParser{},
		conditions: map[string]ConditionParser{}, expectations: map[string]ExpectationParser{},
	}
	names := map[string]bool{}
	claim := func(kind, key string, taken bool, core []string) error {
		if taken || slices.Contains(core, key) {
			return fmt.Errorf("scenario: %s key %q is claimed twice", kind, key)
		}
		return nil
	}
	for _, p := range plugins {
		if p.Name() == "" || names[p.Name()] {
			return nil, fmt.Errorf("scenario: plug-in name %q is empty or used twice", p.Name())
		}
		names[p.Name()] = true
		v.plugins = append(v.plugins, p)
		if s, ok := p.(SystemParser); ok {
			v.systems[p.Name()] = s
		}
		if s, ok := p.(StepParser); ok {
			for _, k := range s.StepKeys() {
				if err := claim("step", k, v.steps[k] != nil, coreStepKeys); err != nil {
					return nil, err
				}
				v.steps[k] = s
				v.stepKeys = append(v.stepKeys, k)
			}
			for _, d := range s.DoActions() {
				if _, ok := p.(SystemParser); !ok {
					return nil, fmt.Errorf("scenario: plug-in %s names do: %s, but only systems under test have do: actions", p.Name(), d)
				}
				if d == coreDo {
					return nil, fmt.Errorf("scenario: do: %s is the core's", d)
				}
				if len(v.do[d]) == 0 {
					v.doValues = append(v.doValues, d)
				}
				v.do[d] = append(v.do[d], s)
			}
		}
		if c, ok := p.(ConditionParser); ok {
			for _, k := range c.ConditionKeys() {
				if err := claim("condition", k, v.conditions[k] != nil, coreCondKeys); err != nil {
					return nil, err
				}
				v.conditions[k] = c
				v.condKeys = append(v.condKeys, k)
			}
		}
		if e, ok := p.(ExpectationParser); ok {
			for _, k := range e.ExpectationKeys() {
				if err := claim("expectation", k, v.expectations[k] != nil, append([]string{"id"}, coreExpectKeys...)); err != nil {
					return nil, err
				}
				v.expectations[k] = e
				v.expectKeys = append(v.expectKeys, k)
			}
		}
	}
	return v, nil
}

// MustVocabulary is NewVocabulary for fixed plug-in lists (programs and
// tests), panicking on a clash.
func MustVocabulary(plugins ...Plugin) *Vocabulary {
	v, err := NewVocabulary(plugins...)
	if err != nil {
		panic(err)
	}
	return v
}

// Systems lists the system plug-ins' names, in order.
func (v *Vocabulary) Systems() []string {
	var out []string
	for _, p := range v.plugins {
		if _, ok := v.systems[p.Name()]; ok {
			out = append(out, p.Name())
		}
	}
	return out
}

// isSystem reports whether the plug-in is a system under test.
func (v *Vocabulary) isSystem(name string) bool { _, ok := v.systems[name]; return ok }

// Where is a place in a scenario file: the path of keys and indexes from
// the root. Plug-ins make their errors with it.
type Where struct {
	pos  positions
	path []any
}

// At is the place of path (map keys as strings, sequence indexes as ints).
func (f *File) At(path ...any) Where { return Where{pos: f.pos, path: path} }

// Key is the place of key k below w.
func (w Where) Key(k string) Where { return Where{pos: w.pos, path: append(slices.Clip(w.path), k)} }

// Index is the place of item i below w.
func (w Where) Index(i int) Where { return Where{pos: w.pos, path: append(slices.Clip(w.path), i)} }

// Errorf is an *Error at w (or at the deepest part of its path the file has).
func (w Where) Errorf(format string, args ...any) error { return w.pos.errorf(w.path, format, args...) }

// UnknownKey is the error for a key nobody owns below w, placed at the key.
func (w Where) UnknownKey(k, what string) error {
	return w.KeyErrorf(k, "unknown field %q in %s (see docs/scenarios.md)", k, what)
}

// KeyErrorf is an *Error placed at the key k below w (not at its value).
func (w Where) KeyErrorf(k, format string, args ...any) error {
	e := w.pos.at(w.path...)
	if n := findKey(w.node(), k); n != nil {
		e.Line, e.Column = yamlfile.Pos(n)
	}
	e.Msg = fmt.Sprintf(format, args...)
	return e
}

// node is the node at w, or the deepest part of its path the file has.
func (w Where) node() ast.Node {
	n := w.pos.root
	for _, step := range w.path {
		next := yamlfile.Child(n, step)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// Value is a YAML value a plug-in owns: its node in the file's syntax
// tree, with where it sits.
type Value struct {
	node  ast.Node
	where Where
	what  string // for messages: "a step", "a task condition"
}

// Where is the place of the value.
func (v Value) Where() Where { return v.where }

// Node is the value's syntax-tree node (nil when the key has no value),
// for a plug-in that reads more than Decode gives.
func (v Value) Node() ast.Node { return v.node }

// Decode decodes the value strictly into out (unknown fields are errors),
// from the file's own syntax tree, so that every error sits at the
// file's line and column of the token at fault. A key without a value
// leaves out as it is.
func (v Value) Decode(out any) error {
	if v.node == nil || v.node.Type() == ast.NullType {
		return nil
	}
	err := yamlfile.Decode(v.where.pos.file, v.node, out)
	var e *Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	if e.Line == 0 {
		at := v.where.pos.at(v.where.path...)
		e.Line, e.Column = at.Line, at.Column
	}
	var unknown *yaml.UnknownFieldError
	if errors.As(err, &unknown) && unknown.GetToken() != nil {
		e.Msg = fmt.Sprintf("unknown field %q in %s (see docs/scenarios.md)", unknown.GetToken().Value, v.what)
	}
	return e
}

// findKey is the key node k of the mapping n, or else of the first
// mapping below n that has one.
func findKey(n ast.Node, k string) ast.Node {
	if n == nil {
		return nil
	}
	for _, mv := range yamlfile.Pairs(n) {
		if yamlfile.Key(mv) == k {
			return mv.Key
		}
	}
	for _, mv := range yamlfile.Pairs(n) {
		if found := findKey(mv.Value, k); found != nil {
			return found
		}
	}
	if seq, ok := n.(*ast.SequenceNode); ok {
		for _, item := range seq.Values {
			if found := findKey(item, k); found != nil {
				return found
			}
		}
	}
	return nil
}

package scenario

import (
	"reflect"
	"slices"
	"sort"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/jobsim/jobsim/internal/yamlfile"
)

// ext is the part of a mapping that no field of the core takes: the
// plug-ins' keys (and misspellings, which validation refuses at the key).
// The pairs keep their syntax-tree nodes, so a plug-in decodes its part
// strictly from the file itself and its errors keep their file:line:col.
//
// The YAML library cannot collect such keys itself (goccy/go-yaml panics
// on a map field marked inline), so the structs that have plug-in keys
// decode themselves with split.
type ext struct {
	pairs []*ast.MappingValueNode // in file order
	start *token.Token            // the mapping's own token
	flow  bool
}

// keys are the plug-in keys, sorted.
func (e ext) keys() []string {
	out := make([]string, 0, len(e.pairs))
	for _, mv := range e.pairs {
		out = append(out, yamlfile.Key(mv))
	}
	sort.Strings(out)
	return out
}

// value is the value node of key k: nil when k is absent or written
// without a value.
func (e ext) value(k string) ast.Node {
	for _, mv := range e.pairs {
		if yamlfile.Key(mv) == k {
			if mv.Value == nil || mv.Value.Type() == ast.NullType {
				return nil
			}
			return mv.Value
		}
	}
	return nil
}

func (e ext) empty() bool { return len(e.pairs) == 0 }

// mapping is the plug-in keys as one mapping (a condition's key with its
// companions), nil when there are none.
func (e ext) mapping() ast.Node {
	if e.empty() {
		return nil
	}
	return ast.Mapping(e.start, e.flow, e.pairs...)
}

// split decodes the mapping n into frame (a pointer to a struct type
// without UnmarshalYAML of its own), strictly, taking the keys its fields
// take, and returns the other keys. A value that is no mapping is decoded
// as it is, for the library's own error at it.
func split(n ast.Node, frame any) (ext, error) {
	if n == nil || n.Type() == ast.NullType {
		return ext{}, nil
	}
	pairs := yamlfile.Pairs(n)
	if len(pairs) == 0 {
		return ext{}, yaml.NodeToValue(n, frame, yaml.DisallowUnknownField())
	}
	known := yamlfile.Keys(reflect.TypeOf(frame))
	var core, rest []*ast.MappingValueNode
	for _, mv := range pairs {
		if slices.Contains(known, yamlfile.Key(mv)) {
			core = append(core, mv)
		} else {
			rest = append(rest, mv)
		}
	}
	m, _ := n.(*ast.MappingNode)
	flow := m != nil && m.IsFlowStyle
	start := n.GetToken()
	if err := yaml.NodeToValue(ast.Mapping(start, flow, core...), frame, yaml.DisallowUnknownField()); err != nil {
		return ext{}, err
	}
	return ext{pairs: rest, start: start, flow: flow}, nil
}

type (
	systemFrame      System
	stepFrame        Step
	waitFrame        Wait
	conditionFrame   Condition
	expectationFrame Expectation
)

// UnmarshalYAML keeps every key of system: for the plug-ins.
func (s *System) UnmarshalYAML(n ast.Node) error {
	var err error
	s.ext, err = split(n, (*systemFrame)(s))
	return err
}

// UnmarshalYAML decodes the core's step keys and keeps the others for the
// plug-ins.
func (s *Step) UnmarshalYAML(n ast.Node) error {
	var err error
	s.ext, err = split(n, (*stepFrame)(s))
	return err
}

// UnmarshalYAML decodes for, within and event and keeps the other keys
// (a plug-in's condition) for the plug-ins.
func (w *Wait) UnmarshalYAML(n ast.Node) error {
	var err error
	w.ext, err = split(n, (*waitFrame)(w))
	return err
}

// UnmarshalYAML decodes event and keeps the other keys (a plug-in's
// condition) for the plug-ins.
func (c *Condition) UnmarshalYAML(n ast.Node) error {
	var err error
	c.ext, err = split(n, (*conditionFrame)(c))
	return err
}

// UnmarshalYAML decodes id, events and order and keeps the other keys (a
// plug-in's expectation) for the plug-ins.
func (e *Expectation) UnmarshalYAML(n ast.Node) error {
	var err error
	e.ext, err = split(n, (*expectationFrame)(e))
	return err
}

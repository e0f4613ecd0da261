package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a problem in a scenario file, located by file, line and column.
type Error struct {
	File         string
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Load reads and validates one scenario file.
func (v *Vocabulary) Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return v.Parse(path, data)
}

// LoadAll loads every *.yaml / *.yml file named or found below the named
// directories, in path order. All files are checked; every problem is
// returned, joined.
func (v *Vocabulary) LoadAll(paths ...string) ([]*File, error) {
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
		f, err := v.Load(path)
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

var (
	reLine         = regexp.MustCompile(`line (\d+): (.*)`)
	reQuoted       = regexp.MustCompile(`"([^"]*)"`)
	reUnknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)
)

// Parse decodes and validates a scenario; name is used in error messages and
// to resolve relative paths.
func (v *Vocabulary) Parse(name string, data []byte) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err, nil)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: "empty file: a scenario needs at least name, topology, system and timeline"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	f := &File{Path: name}
	if err := dec.Decode(f); err != nil {
		return nil, yamlError(name, err, &root)
	}
	f.pos = positions{file: name, root: root.Content[0]}
	if err := f.validate(v); err != nil {
		return nil, err
	}
	return f, nil
}

// yamlError turns a yaml error into located Errors (the first of them, with
// the rest appended), finding the column of unknown fields in the tree.
func yamlError(name string, err error, root *yaml.Node) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []error
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		e := &Error{File: name, Msg: m}
		if sub := reLine.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Column = 1
			e.Msg = sub[2]
			if u := reUnknownField.FindStringSubmatch(sub[2]); u != nil {
				e.Msg = fmt.Sprintf("unknown field %q in %s (see docs/scenarios.md)", u[1], friendlyType(u[2]))
				if col := findKey(root, e.Line, u[1]); col > 0 {
					e.Column = col
				}
			} else if q := reQuoted.FindStringSubmatch(sub[2]); q != nil {
				if col := findValue(root, e.Line, q[1]); col > 0 {
					e.Column = col
				}
			}
		}
		out = append(out, e)
	}
	if len(out) == 1 {
		return out[0]
	}
	return errors.Join(out...)
}

func friendlyType(t string) string {
	t = strings.TrimPrefix(t, "scenario.")
	switch t {
	case "File":
		return "the scenario"
	case "FaultStep", "Rule":
		return "a fault rule"
	}
	return "a " + strings.ToLower(t[:1]) + t[1:]
}

func findValue(n *yaml.Node, line int, value string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.ScalarNode && n.Line == line && n.Value == value {
		return n.Column
	}
	for _, c := range n.Content {
		if col := findValue(c, line, value); col > 0 {
			return col
		}
	}
	return 0
}

func findKey(n *yaml.Node, line int, key string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Line == line && k.Value == key {
				return k.Column
			}
		}
	}
	for _, c := range n.Content {
		if col := findKey(c, line, key); col > 0 {
			return col
		}
	}
	return 0
}

// positions finds the line and column of a value by its path in the tree.
type positions struct {
	file string
	root *yaml.Node
}

// at locates the node at path (map keys as strings, sequence indexes as
// ints); it falls back to the deepest node found.
func (p positions) at(path ...any) *Error {
	n := p.root
	for _, step := range path {
		next := child(n, step)
		if next == nil {
			break
		}
		n = next
	}
	e := &Error{File: p.file}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

func child(n *yaml.Node, step any) *yaml.Node {
	if n == nil {
		return nil
	}
	switch s := step.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == s {
				return n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && s < len(n.Content) {
			return n.Content[s]
		}
	}
	return nil
}

func (p positions) errorf(path []any, format string, args ...any) error {
	e := p.at(path...)
	e.Msg = fmt.Sprintf(format, args...)
	return e
}

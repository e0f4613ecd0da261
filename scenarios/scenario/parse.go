package scenario

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/jobsim/jobsim/internal/yamlfile"
)

// Error is a problem in a scenario file, located by file, line and column.
type Error = yamlfile.Error

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

// Parse decodes and validates a scenario; name is used in error messages and
// to resolve relative paths. The file is parsed once: the decoder reads the
// syntax tree the validation later locates its findings in, and the
// plug-ins decode their parts from the same tree.
func (v *Vocabulary) Parse(name string, data []byte) (*File, error) {
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
	if err := f.validate(v); err != nil {
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

// Package yamlfile decodes the project's YAML files (scenarios, spawner
// contracts, host configs, topologies) strictly and once, and reports every
// problem as FILE:LINE:COL: what. The positions come from the YAML library
// itself (github.com/goccy/go-yaml: its syntax tree and its errors carry
// the token at fault), never from parsing error text. A value type that
// checks itself while decoding (fault.Duration, for one) reports its place
// by returning an error that satisfies yaml.Error.
package yamlfile

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Error is a problem in a YAML file, located by file, line and column
// (both 1-based; Line 0 when the problem has no place, such as an
// unreadable file).
type Error struct {
	File         string
	Line, Column int
	Msg          string

	cause error // the library's error, when the problem is one
}

// Unwrap is the YAML library's error the problem was made from (nil for
// the package's own findings), for callers that word one kind of error
// their own way (*yaml.UnknownFieldError, say).
func (e *Error) Unwrap() error { return e.cause }

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Parse parses data, the contents of the file called name, into its syntax
// tree and returns the root node of its one document: nil when the file
// holds no document (empty, or only comments). A second document is an
// error: every file of the project holds one.
func Parse(name string, data []byte) (ast.Node, error) {
	if err := checkText(name, data); err != nil {
		return nil, err
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Locate(name, nil, nil, err)
	}
	var root ast.Node
	for _, d := range f.Docs {
		if d.Body == nil {
			continue
		}
		if root != nil {
			line, col := Pos(d.Body)
			return nil, &Error{File: name, Line: line, Column: col, Msg: "a second YAML document: this file holds one (remove the --- line above)"}
		}
		root = d.Body
	}
	return root, nil
}

// Decode decodes the tree below root into v (a pointer), refusing keys
// that no field of v takes (opts may widen that, e.g.
// yaml.AllowFieldPrefixes). Errors are *Error, located in the file.
func Decode(name string, root ast.Node, v any, opts ...yaml.DecodeOption) error {
	if root == nil {
		return nil
	}
	opts = append([]yaml.DecodeOption{yaml.DisallowUnknownField()}, opts...)
	if err := yaml.NodeToValue(root, v, opts...); err != nil {
		return Locate(name, root, reflect.TypeOf(v), err)
	}
	return nil
}

// Unmarshal is Parse then Decode: the whole of a strict file read. An
// empty file leaves v as it is.
func Unmarshal(name string, data []byte, v any, opts ...yaml.DecodeOption) error {
	root, err := Parse(name, data)
	if err != nil {
		return err
	}
	return Decode(name, root, v, opts...)
}

// Locate turns an error of the YAML library, or of a value's own
// UnmarshalYAML, into an *Error at the token it names. root and typ (the
// type decoded into, or nil) let it name what an unknown field was found
// in; an error without a token keeps the file name only.
func Locate(name string, root ast.Node, typ reflect.Type, err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return &Error{File: name, Msg: err.Error(), cause: err}
	}
	e := &Error{File: name, Msg: ye.GetMessage(), cause: err}
	tok := ye.GetToken()
	if tok != nil && tok.Position != nil {
		e.Line, e.Column = tok.Position.Line, tok.Position.Column
	}
	var (
		unknown *yaml.UnknownFieldError
		typeErr *yaml.TypeError
		synErr  *yaml.SyntaxError
	)
	switch {
	case errors.As(err, &unknown) && tok != nil:
		e.Msg = fmt.Sprintf("unknown field %q", tok.Value)
		if t := ownerOf(root, tok, typ); t != nil {
			if fields := fieldNames(t); len(fields) > 0 {
				e.Msg += fmt.Sprintf(" (known here: %s)", strings.Join(fields, ", "))
			}
		}
	case errors.As(err, &typeErr) && tok != nil:
		e.Msg = fmt.Sprintf("want %s, got %s", kindName(typeErr.DstType), tokenKind(tok))
	case errors.As(err, &synErr) && tok != nil:
		// A flow collection left open is found where the parser gives up,
		// often lines below; the fault is the bracket that was opened.
		if open := unclosed(tok); open != nil && open.Position.Line < tok.Position.Line {
			e.Line, e.Column = open.Position.Line, open.Position.Column
			e.Msg = fmt.Sprintf("this %q is never closed (%s, at line %d column %d)", open.Value, ye.GetMessage(), tok.Position.Line, tok.Position.Column)
		}
	}
	return e
}

// checkText refuses what YAML forbids in a stream and a binary file
// holds: bytes that are not UTF-8, and control characters other than tab,
// line feed and carriage return (YAML 1.2, 5.1 Character Set).
func checkText(name string, data []byte) error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		bad := ""
		switch {
		case r == utf8.RuneError && size <= 1:
			bad = fmt.Sprintf("byte 0x%02x is not UTF-8", data[i])
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f:
			bad = fmt.Sprintf("control character 0x%02x", r)
		}
		if bad != "" {
			return &Error{File: name, Line: line, Column: col, Msg: bad + ": not YAML text (a binary file?)"}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// unclosed finds the nearest '[' or '{' before tok that no bracket closes.
func unclosed(tok *token.Token) *token.Token {
	depth := 0
	for t := tok.Prev; t != nil; t = t.Prev {
		switch t.Type {
		case token.SequenceEndType, token.MappingEndType:
			depth++
		case token.SequenceStartType, token.MappingStartType:
			if depth == 0 {
				return t
			}
			depth--
		}
	}
	return nil
}

// Pos is the line and column of a node as a reader sees it: a block
// mapping is where its first key is.
func Pos(n ast.Node) (line, col int) {
	switch m := n.(type) {
	case *ast.MappingNode:
		if !m.IsFlowStyle && len(m.Values) > 0 {
			return Pos(m.Values[0])
		}
	case *ast.MappingValueNode:
		return Pos(m.Key)
	}
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return 0, 0
	}
	p := n.GetToken().Position
	return p.Line, p.Column
}

// Child is the node below n at step: a mapping key (string) or a sequence
// index (int); nil when there is none. Anchors and tags are looked through.
func Child(n ast.Node, step any) ast.Node {
	n = unwrap(n)
	switch s := step.(type) {
	case string:
		for _, mv := range pairs(n) {
			if keyText(mv) == s {
				return mv.Value
			}
		}
	case int:
		if seq, ok := n.(*ast.SequenceNode); ok && s >= 0 && s < len(seq.Values) {
			return seq.Values[s]
		}
	}
	return nil
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

// Pairs are the key: value pairs of the mapping n, in file order (none if
// n is no mapping). Anchors and tags are looked through.
func Pairs(n ast.Node) []*ast.MappingValueNode { return pairs(unwrap(n)) }

// Key is the text of a pair's key.
func Key(mv *ast.MappingValueNode) string { return keyText(mv) }

// Keys are the YAML keys of the fields of struct type t (those of inline
// structs in place), in field order: what a strict decode into t takes.
func Keys(t reflect.Type) []string { return fieldNames(deref(t)) }

func pairs(n ast.Node) []*ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	}
	return nil
}

func keyText(mv *ast.MappingValueNode) string {
	if t := mv.Key.GetToken(); t != nil {
		return t.Value
	}
	return mv.Key.String()
}

// pathTo is the path (keys and indexes) from n to the mapping whose key is
// the token tok, or nil.
func pathTo(n ast.Node, tok *token.Token) ([]any, bool) {
	n = unwrap(n)
	for _, mv := range pairs(n) {
		if mv.Key.GetToken() == tok {
			return []any{}, true
		}
		if p, ok := pathTo(mv.Value, tok); ok {
			return append([]any{keyText(mv)}, p...), true
		}
	}
	if seq, ok := n.(*ast.SequenceNode); ok {
		for i, v := range seq.Values {
			if p, ok := pathTo(v, tok); ok {
				return append([]any{i}, p...), true
			}
		}
	}
	return nil, false
}

// ownerOf is the struct type that the mapping holding the key tok decodes
// into, following typ along the path of the key; nil if it is not a
// struct.
func ownerOf(root ast.Node, tok *token.Token, typ reflect.Type) reflect.Type {
	if root == nil || typ == nil {
		return nil
	}
	path, ok := pathTo(root, tok)
	if !ok {
		return nil
	}
	t := typ
	for _, step := range path {
		t = deref(t)
		switch t.Kind() {
		case reflect.Struct:
			name, _ := step.(string)
			f, ok := fieldByKey(t, name)
			if !ok {
				return nil
			}
			t = f
		case reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		default:
			return nil
		}
	}
	if t = deref(t); t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fields lists the YAML keys of struct t, with inline structs' keys in place.
func fields(t reflect.Type, visit func(key string, ft reflect.Type) bool) bool {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		key, opts, _ := strings.Cut(tag, ",")
		if key == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			if ft := deref(f.Type); ft.Kind() == reflect.Struct && fields(ft, visit) {
				return true
			}
			continue
		}
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		if visit(key, f.Type) {
			return true
		}
	}
	return false
}

func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	var found reflect.Type
	ok := fields(t, func(k string, ft reflect.Type) bool {
		if k == key {
			found = ft
			return true
		}
		return false
	})
	return found, ok
}

func fieldNames(t reflect.Type) []string {
	var out []string
	fields(t, func(k string, _ reflect.Type) bool {
		out = append(out, k)
		return false
	})
	return out
}

// kindName says what a Go type takes, in YAML words.
func kindName(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	t = deref(t)
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping (key: value)"
	}
	return "a " + t.String()
}

// tokenKind says what a token starts, in YAML words.
func tokenKind(t *token.Token) string {
	switch t.Type {
	case token.SequenceStartType, token.SequenceEntryType:
		return "a list"
	case token.MappingStartType, token.MappingValueType, token.MappingKeyType:
		return "a mapping"
	case token.NullType:
		return "nothing (null)"
	}
	if t.Next != nil && t.Next.Type == token.MappingValueType && t.Next.Position.Line == t.Position.Line {
		return "a mapping"
	}
	return fmt.Sprintf("%q", t.Value)
}

package yamlfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

type config struct {
	Name  string            `yaml:"name"`
	Users []string          `yaml:"users"`
	Env   map[string]string `yaml:"env"`
	Inner struct {
		Port int `yaml:"port"`
	} `yaml:"inner"`
}

func TestUnmarshalLocatesEveryKindOfFault(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"unknown key in a nested mapping", "name: a\ninner:\n  port: 1\n  host: x\n", `c.yaml:4:3: unknown field "host" (known here: port)`},
		{"wrong kind", "name: a\nusers: {x: 1}\n", `c.yaml:2:8: mapping was used where sequence is expected`},
		{"unclosed flow mapping", "env: {A: 1\nname: a\n", `c.yaml:1:6: this "{" is never closed`},
		{"binary", "name: a\n\x00\x00", "c.yaml:2:1: control character 0x00"},
		{"second document", "name: a\n---\nname: b\n", "c.yaml:3:1: a second YAML document"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v config
			err := Unmarshal("c.yaml", []byte(c.src), &v)
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v\nwant an *Error containing %q", err, c.want)
			}
		})
	}
}

func TestUnmarshalDecodesAndAllowsPrefixedKeys(t *testing.T) {
	src := "x-anchor: &u [alice, bob]\nname: a\nusers: *u\ninner: {port: 22}\n"
	var v config
	if err := Unmarshal("c.yaml", []byte(src), &v, yaml.AllowFieldPrefixes("x-")); err != nil {
		t.Fatal(err)
	}
	if v.Name != "a" || strings.Join(v.Users, ",") != "alice,bob" || v.Inner.Port != 22 {
		t.Fatalf("decoded %+v", v)
	}
	if err := Unmarshal("c.yaml", []byte(src), &v); err == nil || !strings.Contains(err.Error(), `c.yaml:1:1: unknown field "x-anchor"`) {
		t.Fatalf("without the prefix allowed: %v", err)
	}
}

func TestEmptyFileLeavesTheValue(t *testing.T) {
	v := config{Name: "kept"}
	if err := Unmarshal("c.yaml", []byte("# only a comment\n"), &v); err != nil || v.Name != "kept" {
		t.Fatalf("%v %+v", err, v)
	}
}

package getopt

import (
	"reflect"
	"testing"
)

var lsLong = []Long{
	{Name: "all", Key: 'a'}, {Name: "classify", Key: 'F'}, {Name: "color", Has: OptionalArgument, Key: 0x100},
	{Name: "context", Key: 'Z'}, {Name: "lines", Has: RequiredArgument, Key: 'n'},
}

// The messages are glibc's (checked against GNU coreutils 9.1 on Debian 12).
func TestErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-y"}, "ls: invalid option -- 'y'\n"},
		{[]string{"-n"}, "ls: option requires an argument -- 'n'\n"},
		{[]string{"--bogus=1"}, "ls: unrecognized option '--bogus=1'\n"},
		{[]string{"--all=x"}, "ls: option '--all' doesn't allow an argument\n"},
		{[]string{"--c"}, "ls: option '--c' is ambiguous; possibilities: '--classify' '--color' '--context'\n"},
		{[]string{"--li"}, "ls: option '--lines' requires an argument\n"},
	} {
		r := Parse("ls", c.args, Spec{Short: "aFZn:", Long: lsLong})
		if r.Errors != 1 || r.Stderr() != c.want {
			t.Errorf("%q: %d errors %q, want %q", c.args, r.Errors, r.Stderr(), c.want)
		}
		if o, ok := r.FirstError(); !ok || o.Err != c.want {
			t.Errorf("%q: FirstError %v %v", c.args, o, ok)
		}
	}
}

func TestParse(t *testing.T) {
	r := Parse("ls", []string{"x", "-aF", "--li=3", "--col", "-n5", "y", "-n", "7", "--", "-a"}, Spec{Short: "aFZn:", Long: lsLong})
	keys := []rune{}
	for _, o := range r.Options {
		keys = append(keys, o.Key)
	}
	if !reflect.DeepEqual(keys, []rune{'a', 'F', 'n', 0x100, 'n', 'n'}) || r.Errors != 0 {
		t.Fatalf("keys %q errors %d", keys, r.Errors)
	}
	if !reflect.DeepEqual(r.Values('n'), []string{"3", "5", "7"}) {
		t.Fatalf("values %q", r.Values('n'))
	}
	if v, ok := r.Value(0x100); ok || v != "" {
		t.Fatalf("--col without =: %q %v", v, ok)
	}
	if !reflect.DeepEqual(r.Operands, []string{"x", "y", "-a"}) || !r.Permuted || !r.DashDash || r.FirstAfterDashDash != 2 {
		t.Fatalf("operands %q permuted %v dashdash %v first %d", r.Operands, r.Permuted, r.DashDash, r.FirstAfterDashDash)
	}
}

func TestInOrderStopsAtOperand(t *testing.T) {
	r := Parse("timeout", []string{"-s", "KILL", "5", "ls", "-l"}, Spec{Short: "+s:k:"})
	if !reflect.DeepEqual(r.Operands, []string{"5", "ls", "-l"}) || r.Count('s') != 1 || r.Permuted {
		t.Fatalf("%+v", r)
	}
}

func TestOptionalShortArgument(t *testing.T) {
	r := Parse("sed", []string{"-i.bak", "-i", "x"}, Spec{Short: "i::"})
	if len(r.Options) != 2 || r.Options[0].Arg != ".bak" || !r.Options[0].HasArg || r.Options[1].HasArg {
		t.Fatalf("%+v", r.Options)
	}
	if !reflect.DeepEqual(r.Operands, []string{"x"}) {
		t.Fatalf("%q", r.Operands)
	}
}

// PBS commands: errors do not stop the scan, and "--" as an option letter
// ("-:" in the option string) reads "--version" as '-' with "version".
func TestPBSStyle(t *testing.T) {
	r := Parse("qdel", []string{"-Z", "--version", "-Q", "1"}, Spec{Short: "h:-:"})
	if r.Errors != 2 || r.Stderr() != "qdel: invalid option -- 'Z'\nqdel: invalid option -- 'Q'\n" {
		t.Fatalf("%d %q", r.Errors, r.Stderr())
	}
	if v, _ := r.Value('-'); v != "version" {
		t.Fatalf("--version: %q", v)
	}
	if r.Operands[0] != "1" || r.FirstAfterDashDash != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestLoneDashIsOperand(t *testing.T) {
	r := Parse("cat", []string{"-", "-u"}, Spec{Short: "u"})
	if !reflect.DeepEqual(r.Operands, []string{"-"}) || !r.Has('u') {
		t.Fatalf("%+v", r)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("-aF\x00--li=3\x00x")
	f.Fuzz(func(t *testing.T, s string) {
		var args []string
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == 0 {
				args = append(args, s[start:i])
				start = i + 1
			}
		}
		r := Parse("p", args, Spec{Short: "aFZn:i::", Long: lsLong})
		if r.FirstAfterDashDash > len(r.Operands) {
			t.Fatalf("FirstAfterDashDash %d > %d", r.FirstAfterDashDash, len(r.Operands))
		}
	})
}

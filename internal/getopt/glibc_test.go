package getopt

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The option table of testdata/glibc_getopt.c.
var glibcLongs = []Long{
	{Name: "all", Key: 'a'}, {Name: "block-size", Has: RequiredArgument, Key: 'b'},
	{Name: "classify", Key: 'F'}, {Name: "color", Has: OptionalArgument, Key: 256},
	{Name: "colour", Has: OptionalArgument, Key: 256}, {Name: "context", Key: 'Z'},
	{Name: "lines", Has: RequiredArgument, Key: 'n'}, {Name: "line-length", Has: RequiredArgument, Key: 'l'},
}

// TestMatchesGlibc compiles a small C program around glibc's getopt_long
// (and plain getopt, as the PBS commands call it) and compares what it
// returns, and the messages it prints, with Parse.
func TestMatchesGlibc(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is needed to compare with glibc's getopt_long")
	}
	bin := filepath.Join(t.TempDir(), "glibc_getopt")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cc, "-o", bin, "testdata/glibc_getopt.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cases := [][]string{
		{"-a", "x", "-F"}, {"-ab5", "y"}, {"-b", "5", "-n"}, {"-n"}, {"-y"}, {"-ay", "-Zq"},
		{"--all", "--block-size=4", "--block-size", "8"}, {"--al", "--bl=1", "--cl"}, {"--c"}, {"--co"},
		{"--col"}, {"--colo=always"}, {"--colour"}, {"--line"}, {"--lin=3"}, {"--lines"}, {"--all=1"},
		{"--bogus", "--bogus=1"}, {"x", "--", "-a", "--all"}, {"-", "-a", "-"}, {"--=x"}, {"-c", "-cfoo", "c"},
		{"a", "b", "-n", "1", "c"}, {"--context=x", "-Z"}, {"-:"}, {"---"}, {"--", "--"},
	}
	cases = append(cases, []string{"--version"}, []string{"-h", "u", "--", "1"}, []string{"-hu", "1", "-x", "--v"})
	for _, short := range []string{"ab:c::n:FZl:", "+ab:c::n:FZl:", "!h:-:ab:", "!W:x"} {
		for _, args := range cases {
			spec := Spec{Short: short, Long: glibcLongs}
			if strings.HasPrefix(short, "!") {
				spec = Spec{Short: short[1:]}
			}
			cmd := exec.CommandContext(ctx, bin, append([]string{short}, args...)...)
			cmd.Args[0] = "prog"
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%q: %v", args, err)
			}
			r := Parse("prog", args, spec)
			var got strings.Builder
			for _, o := range r.Options {
				switch {
				case o.Key == ErrorKey:
					got.WriteString("err\n")
				case o.HasArg:
					fmt.Fprintf(&got, "opt %d %s\n", o.Key, o.Arg)
				default:
					fmt.Fprintf(&got, "opt %d -\n", o.Key)
				}
			}
			for _, op := range r.Operands {
				fmt.Fprintf(&got, "operand %s\n", op)
			}
			if got.String() != stdout.String() || r.Stderr() != stderr.String() {
				t.Errorf("%s %q:\nParse: %q %q\nglibc: %q %q", short, args, got.String(), r.Stderr(), stdout.String(), stderr.String())
			}
		}
	}
}

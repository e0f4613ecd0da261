package getopt_test

import (
	"fmt"
	"os"

	"github.com/jobsim/jobsim/internal/getopt"
)

// A command in the style of coreutils: stop at the first mistake, print
// glibc's message and the tool's hint.
func ExampleParse() {
	spec := getopt.Spec{
		Short: "n:v",
		Long:  []getopt.Long{{Name: "lines", Has: getopt.RequiredArgument, Key: 'n'}, {Name: "verbose", Key: 'v'}},
	}
	r := getopt.Parse("head", []string{"--lin=3", "file", "-v"}, spec)
	if e, bad := r.FirstError(); bad {
		fmt.Fprint(os.Stderr, e.Err, "Try 'head --help' for more information.\n")
		return
	}
	n, _ := r.Value('n')
	fmt.Println(n, r.Has('v'), r.Operands)

	r = getopt.Parse("head", []string{"-x"}, spec)
	fmt.Print(r.Stderr())
	// Output:
	// 3 true [file]
	// head: invalid option -- 'x'
}

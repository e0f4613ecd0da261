package virtual

import (
	"fmt"
	"sort"
	"strings"

	"github.com/jobsim/jobsim/internal/getopt"
)

// This file is the one command-line harness of the virtual coreutils:
// options and operands go through internal/getopt (glibc's rules and
// messages), and every usage mistake and every failure on an operand is
// worded and numbered as the GNU tool does.

// usageStyle is how a GNU tool reports a command-line mistake: what it
// prints between the message and "Try '<prog> --help' for more
// information.", and its exit status.
type usageStyle struct {
	status int
	text   string // e.g. grep's "Usage: grep [OPTION]... PATTERNS [FILE]...\n"
	noTry  bool   // the text is the whole usage (sed): no "Try" line
}

// usageStyles lists the tools whose usage errors differ from coreutils'
// default (status 1, no text). Read only.
var usageStyles = map[string]usageStyle{
	"ls":      {status: 2},
	"sort":    {status: 2},
	"grep":    {status: 2, text: "Usage: grep [OPTION]... PATTERNS [FILE]...\n"},
	"sed":     {status: 1, text: sedUsage, noTry: true},
	"env":     {status: 125},
	"timeout": {status: 125},
	"nohup":   {status: 125},
	"tty":     {status: 2},
}

// sedUsage is GNU sed 4.9's usage text, which it prints in full after a
// command-line mistake.
const sedUsage = `Usage: %s [OPTION]... {script-only-if-no-other-script} [input-file]...

  -n, --quiet, --silent
                 suppress automatic printing of pattern space
      --debug
                 annotate program execution
  -e script, --expression=script
                 add the script to the commands to be executed
  -f script-file, --file=script-file
                 add the contents of script-file to the commands to be executed
  --follow-symlinks
                 follow symlinks when processing in place
  -i[SUFFIX], --in-place[=SUFFIX]
                 edit files in place (makes backup if SUFFIX supplied)
  -l N, --line-length=N
                 specify the desired line-wrap length for the ` + "`l'" + ` command
  --posix
                 disable all GNU extensions.
  -E, -r, --regexp-extended
                 use extended regular expressions in the script
                 (for portability use POSIX -E).
  -s, --separate
                 consider files as separate rather than as a single,
                 continuous long stream.
      --sandbox
                 operate in sandbox mode (disable e/r/w commands).
  -u, --unbuffered
                 load minimal amounts of data from the input files and flush
                 the output buffers more often
  -z, --null-data
                 separate lines by NUL characters
      --help     display this help and exit
      --version  output version information and exit

If no -e, --expression, -f, or --file option is given, then the first
non-option argument is taken as the sed script to interpret.  All
remaining arguments are names of input files; if no input files are
specified, then the standard input is read.

GNU sed home page: <https://www.gnu.org/software/sed/>.
General help using GNU software: <https://www.gnu.org/gethelp/>.
`

// prog is the program name GNU tools put before their messages: argv[0]
// as it was typed ("/bin/ls: cannot access ...").
func (c *Call) prog() string { return c.Args[0] }

// usageStatus is the exit status of the running tool after a usage error.
func (c *Call) usageStatus() int {
	if s, ok := usageStyles[c.name()]; ok {
		return s.status
	}
	return 1
}

// usageError reports a command-line mistake as the GNU tool does
// ("prog: MESSAGE", its usage text, "Try 'prog --help' for more
// information.") and returns the exit status to end with. An empty format
// prints only the usage lines (grep without a pattern).
func (c *Call) usageError(format string, args ...any) int {
	if format != "" {
		fmt.Fprintf(c.Stderr, "%s: %s\n", c.prog(), fmt.Sprintf(format, args...))
	}
	c.usageTail()
	return c.usageStatus()
}

// usageTail prints what follows a usage message.
func (c *Call) usageTail() {
	s := usageStyles[c.name()]
	if s.text != "" {
		if strings.Contains(s.text, "%s") {
			fmt.Fprintf(c.Stderr, s.text, c.prog())
		} else {
			fmt.Fprint(c.Stderr, s.text)
		}
	}
	if !s.noTry {
		fmt.Fprintf(c.Stderr, "Try '%s --help' for more information.\n", c.name2())
	}
}

// name2 is the name the "Try" line shows: argv[0] for coreutils, the base
// name for grep (which uses getprogname).
func (c *Call) name2() string {
	if c.name() == "grep" {
		return "grep"
	}
	return c.prog()
}

// warnf prints "prog: MESSAGE" for a failure that does not end the tool
// (a missing operand file, say).
func (c *Call) warnf(format string, args ...any) {
	fmt.Fprintf(c.Stderr, "%s: %s\n", c.prog(), fmt.Sprintf(format, args...))
}

// flags is the result of parsing a tool's options.
type flags struct{ r getopt.Result }

func (f flags) has(b byte) bool { return f.r.Has(rune(b)) }

// val returns the last value given for an option.
func (f flags) val(b byte) (string, bool) { return f.r.Value(rune(b)) }

// all returns every value given for an option, in order.
func (f flags) all(b byte) []string { return f.r.Values(rune(b)) }

// set records an option as given (grep's -E from egrep).
func (f *flags) set(b byte) { f.r.Options = append(f.r.Options, getopt.Option{Key: rune(b)}) }

// parseFlags reads a tool's options with internal/getopt: bools and values
// list the short letters without and with an argument, long maps long
// names to those letters. On a mistake it prints the tool's GNU usage
// error and ok is false: the tool returns c.usageStatus().
func parseFlags(c *Call, args []string, bools, values string, long map[string]byte) (f flags, operands []string, ok bool) {
	spec := getopt.Spec{Short: bools}
	for i := 0; i < len(values); i++ {
		spec.Short += values[i:i+1] + ":"
	}
	names := make([]string, 0, len(long))
	for n := range long {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		has := getopt.NoArgument
		if strings.IndexByte(values, long[n]) >= 0 {
			has = getopt.RequiredArgument
		}
		spec.Long = append(spec.Long, getopt.Long{Name: n, Has: has, Key: rune(long[n])})
	}
	r := getopt.Parse(c.prog(), args, spec)
	if e, bad := r.FirstError(); bad {
		fmt.Fprint(c.Stderr, e.Err)
		c.usageTail()
		return flags{}, nil, false
	}
	return flags{r: r}, r.Operands, true
}

package virtual

import (
	"context"
	"fmt"
	"io"
	"os"
)

func init() { coreBuiltins["tty"] = ttyCmd }

// ttyName is the name of the terminal on the call's standard input: the
// process's pseudo-terminal when it has one and stdin is not redirected.
func (c *Call) ttyName() (string, bool) {
	if c.p == nil || c.p.pty < 0 {
		return "", false
	}
	if f, ok := c.Stdin.(*os.File); !ok || f != c.p.stdin {
		return "", false
	}
	return fmt.Sprintf("/dev/pts/%d", c.p.pty), true
}

// ttyCmd is GNU tty: the terminal's name, or "not a tty" and status 1; -s
// prints nothing. Usage errors exit 2.
func ttyCmd(_ context.Context, c *Call) int {
	f, ops, ok := parseFlags(c, c.Args[1:], "s", "", map[string]byte{"silent": 's', "quiet": 's'})
	if !ok {
		return c.usageStatus()
	}
	if len(ops) > 0 {
		return c.usageError("extra operand ‘%s’", ops[0])
	}
	name, isTTY := c.ttyName()
	if f.has('s') {
		if isTTY {
			return 0
		}
		return 1
	}
	if !isTTY {
		name = "not a tty"
	}
	if _, err := io.WriteString(c.Stdout, name+"\n"); err != nil {
		c.warnf("write error: %s", errText(err))
		return 3
	}
	if !isTTY {
		return 1
	}
	return 0
}

package batchserver

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// CheckNames checks the names of a configured list of kind ("node",
// "queue"): at least one, none empty or holding a rune of bad, none given
// twice. Its errors name the item: `nodes[1]: node "n1" given twice`.
func CheckNames(kind string, names []string, bad string) error {
	if len(names) == 0 {
		return fmt.Errorf("%ss: at least one %s is needed", kind, kind)
	}
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" || strings.ContainsAny(n, bad) {
			return fmt.Errorf("%ss[%d]: bad %s name %q", kind, i, kind, n)
		}
		if seen[n] {
			return fmt.Errorf("%ss[%d]: %s %q given twice", kind, i, kind, n)
		}
		seen[n] = true
	}
	return nil
}

// Duration sets *dst to d, what (such as "kill delay") unless d is
// negative.
func Duration(dst *time.Duration, what string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s %v is negative", what, d)
	}
	*dst = d
	return nil
}

// AbsDir sets *dst to dir, what (such as "spool dir") unless dir is not an
// absolute path.
func AbsDir(dst *string, what, dir string) error {
	if !path.IsAbs(dir) {
		return fmt.Errorf("%s %q: want an absolute path", what, dir)
	}
	*dst = dir
	return nil
}

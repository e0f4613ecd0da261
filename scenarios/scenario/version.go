package scenario

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
)

// Range is a set of releases of the system under test, such as
// ">=8.0.0 <8.0.3" (semver constraints).
type Range struct {
	text string
	c    *semver.Constraints
}

// ParseRange reads a version range.
func ParseRange(s string) (Range, error) {
	c, err := semver.NewConstraint(s)
	if err != nil {
		return Range{}, fmt.Errorf("version range %q: %w", s, err)
	}
	return Range{text: s, c: c}, nil
}

// Contains reports whether version (such as "8.0.2") is in the range.
func (r Range) Contains(version string) (bool, error) {
	v, err := semver.NewVersion(version)
	if err != nil {
		return false, fmt.Errorf("version %q: %w", version, err)
	}
	return r.c.Check(v), nil
}

func (r Range) String() string { return r.text }

// Applies reports whether a reproducer is judged as a reproducer for the
// given version of the system under test (true), or as a gate (false).
func (f *File) Applies(version string) (bool, error) {
	if f.Mode != Reproducer {
		return false, nil
	}
	r, err := ParseRange(f.Reproduces.Affects)
	if err != nil {
		return false, err
	}
	return r.Contains(version)
}

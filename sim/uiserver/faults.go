package uiserver

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// NeverReady selects how a server that never becomes ready misbehaves.
type NeverReady string

const (
	// Ready is the default: the server binds and answers normally.
	Ready NeverReady = ""
	// NeverReadyHTTP binds the address but answers every request with 503,
	// so the hub's readiness check (any reply below 500) never succeeds.
	NeverReadyHTTP NeverReady = "http"
	// NeverReadyNoBind never binds the address: the hub sees connection
	// refused until its start timeout expires.
	NeverReadyNoBind NeverReady = "nobind"
)

// Faults are the failures a stand-in server can be told to show. The zero
// value is a well-behaved server. Faults round-trip through a text spec
// (see ParseFaults and String) so that a hub configuration can set them in
// the spawner environment as JOBSIM_UISERVER_FAULT.
type Faults struct {
	// SlowStart delays binding the address by this long.
	SlowStart time.Duration
	// NeverReady makes the server never pass the hub's readiness check.
	NeverReady NeverReady
	// CrashAfter makes the server exit this long after it started
	// listening, without a graceful shutdown, with status ExitCode.
	CrashAfter time.Duration
	// ExitCode is the exit status of a crash (0 is a clean exit). Only
	// meaningful with CrashAfter. ParseFaults defaults it to 1.
	ExitCode int
	// HTTPError, when non-zero, is the status (500-599) answered to every
	// request after the first HTTPErrorAfter requests.
	HTTPError int
	// HTTPErrorAfter is the number of requests answered normally before
	// HTTPError applies (1 lets the hub's readiness check through).
	HTTPErrorAfter int
}

// faultKeys are the keys of the text spec, in the order String writes them.
var faultKeys = []string{"slow-start", "never-ready", "crash-after", "exit-code", "http-error", "http-error-after"}

// ParseFaults parses a fault spec: comma-separated key=value pairs, for
// example "slow-start=2s,crash-after=5s,exit-code=3". Keys:
//
//	slow-start=DURATION        delay before binding
//	never-ready=http|nobind    answer 503 to everything, or never bind
//	crash-after=DURATION       exit this long after binding
//	exit-code=N                exit status of the crash (default 1)
//	http-error=5xx             answer this status ...
//	http-error-after=N         ... after the first N requests (default 0)
//
// An empty spec means no faults.
func ParseFaults(spec string) (Faults, error) {
	f := Faults{ExitCode: 1}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return f, nil
	}
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, value, ok := strings.Cut(item, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok {
			return Faults{}, fmt.Errorf("fault spec %q: %q is not key=value (keys: %s)", spec, item, strings.Join(faultKeys, ", "))
		}
		if seen[key] {
			return Faults{}, fmt.Errorf("fault spec %q: key %q given twice", spec, key)
		}
		seen[key] = true
		if err := f.set(key, value); err != nil {
			return Faults{}, fmt.Errorf("fault spec %q: %w", spec, err)
		}
	}
	if err := f.Validate(); err != nil {
		return Faults{}, fmt.Errorf("fault spec %q: %w", spec, err)
	}
	return f, nil
}

// set assigns one spec key; the error names the key and the bad value.
func (f *Faults) set(key, value string) error {
	duration := func() (time.Duration, error) {
		d, err := time.ParseDuration(value)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: not a duration such as 500ms or 3s", key, value)
		}
		if d < 0 {
			return 0, fmt.Errorf("%s=%q: negative duration", key, value)
		}
		return d, nil
	}
	integer := func() (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: not an integer", key, value)
		}
		return n, nil
	}
	var err error
	switch key {
	case "slow-start":
		f.SlowStart, err = duration()
	case "never-ready":
		switch NeverReady(value) {
		case NeverReadyHTTP, NeverReadyNoBind:
			f.NeverReady = NeverReady(value)
		default:
			err = fmt.Errorf("never-ready=%q: want http or nobind", value)
		}
	case "crash-after":
		f.CrashAfter, err = duration()
	case "exit-code":
		f.ExitCode, err = integer()
	case "http-error":
		f.HTTPError, err = integer()
	case "http-error-after":
		f.HTTPErrorAfter, err = integer()
	default:
		keys := append([]string(nil), faultKeys...)
		sort.Strings(keys)
		err = fmt.Errorf("unknown key %q (known: %s)", key, strings.Join(keys, ", "))
	}
	return err
}

// Validate reports a fault combination that cannot be acted on.
func (f Faults) Validate() error {
	switch f.NeverReady {
	case Ready, NeverReadyHTTP, NeverReadyNoBind:
	default:
		return fmt.Errorf("never-ready %q: want %q or %q", f.NeverReady, NeverReadyHTTP, NeverReadyNoBind)
	}
	if f.SlowStart < 0 || f.CrashAfter < 0 {
		return fmt.Errorf("negative duration (slow-start %v, crash-after %v)", f.SlowStart, f.CrashAfter)
	}
	if f.ExitCode < 0 || f.ExitCode > 255 {
		return fmt.Errorf("exit-code %d: want 0..255", f.ExitCode)
	}
	if f.HTTPError != 0 && (f.HTTPError < 500 || f.HTTPError > 599) {
		return fmt.Errorf("http-error %d: want a 5xx status", f.HTTPError)
	}
	if f.HTTPErrorAfter < 0 {
		return fmt.Errorf("http-error-after %d: want 0 or more", f.HTTPErrorAfter)
	}
	return nil
}

// String formats the faults as a spec that ParseFaults reads back; the
// zero value gives "".
func (f Faults) String() string {
	var parts []string
	if f.SlowStart > 0 {
		parts = append(parts, "slow-start="+f.SlowStart.String())
	}
	if f.NeverReady != Ready {
		parts = append(parts, "never-ready="+string(f.NeverReady))
	}
	if f.CrashAfter > 0 {
		parts = append(parts, "crash-after="+f.CrashAfter.String(), "exit-code="+strconv.Itoa(f.ExitCode))
	}
	if f.HTTPError != 0 {
		parts = append(parts, "http-error="+strconv.Itoa(f.HTTPError))
		if f.HTTPErrorAfter > 0 {
			parts = append(parts, "http-error-after="+strconv.Itoa(f.HTTPErrorAfter))
		}
	}
	return strings.Join(parts, ",")
}

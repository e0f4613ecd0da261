package uiserver

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/fault"
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

// Faults are the failures a stand-in server can be told to show, as fault
// rules of layer "ui" (Rules) and the short key=value spelling that hub
// scenarios use (the other fields), which stands for rules too (AsRules).
// The zero value is a well-behaved server. Faults round-trip through a text
// spec (see ParseFaults and String) so that a hub configuration can set
// them in the spawner environment as JOBSIM_UISERVER_FAULT.
type Faults struct {
	// Rules are fault rules of layer "ui" (see docs/faults.md).
	Rules []fault.Rule
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

// ParseFaults parses a fault spec: a JSON fault rule of layer "ui" or a
// JSON list of them, or the short spelling, comma-separated key=value
// pairs, for example "slow-start=2s,crash-after=5s,exit-code=3". Keys:
//
//	slow-start=DURATION        delay before binding
//	never-ready=http|nobind    answer 503 to everything, or never bind
//	crash-after=DURATION       exit this long after binding
//	exit-code=N                exit status of the crash (default 1)
//	http-error=5xx             answer this status ...
//	http-error-after=N         ... after the first N requests (default 0)
//
// Each key stands for a rule (see AsRules). An empty spec means no faults.
func ParseFaults(spec string) (Faults, error) {
	f := Faults{ExitCode: 1}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return f, nil
	}
	if spec[0] == '[' || spec[0] == '{' {
		rules, err := parseRules(spec)
		if err != nil {
			return Faults{}, fmt.Errorf("fault rules %.60q: %w", spec, err)
		}
		f.Rules = rules
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
	for i, r := range f.Rules {
		if err := checkRule(&r); err != nil {
			return fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	return nil
}

// checkRule validates r as a rule the stand-in server can act on.
func checkRule(r *fault.Rule) error {
	if r.Layer != fault.UI {
		return fmt.Errorf("layer: %q: the stand-in UI server acts on %q rules only", r.Layer, fault.UI)
	}
	return r.Validate()
}

// parseRules reads one JSON rule or a JSON list of rules, strictly (no
// unknown fields, nothing after the value).
func parseRules(spec string) ([]fault.Rule, error) {
	var rules []fault.Rule
	dec := json.NewDecoder(strings.NewReader(spec))
	dec.DisallowUnknownFields()
	var err error
	if spec[0] == '{' {
		var r fault.Rule
		err = dec.Decode(&r)
		rules = []fault.Rule{r}
	} else {
		err = dec.Decode(&rules)
	}
	if err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON value")
	}
	for i := range rules {
		if err := checkRule(&rules[i]); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	return rules, nil
}

// The ids of the rules the short spelling stands for.
const (
	RuleSlowStart  = "slow-start"
	RuleNeverReady = "never-ready"
	RuleCrash      = "crash-after"
	RuleHTTPError  = "http-error"
)

// AsRules returns the fault rules (layer "ui") f stands for: its Rules,
// after the rules of the short spelling:
//
//	slow-start=D         {id: slow-start, ops: [listen], effect: {kind: latency, latency: D}}
//	never-ready=nobind   {id: never-ready, ops: [listen], effect: {kind: hang}}
//	never-ready=http     {id: never-ready, ops: [request], effect: {kind: status, status: 503}}
//	crash-after=D        {id: crash-after, ops: [run], effect: {kind: exit, exit_code: N, latency: D}}
//	exit-code=N          (the crash's exit code)
//	http-error=S         {id: http-error, ops: [request], after: M, effect: {kind: status, status: S}}
//	http-error-after=M   (the requests let through first)
func (f Faults) AsRules() []fault.Rule {
	var out []fault.Rule
	if f.SlowStart > 0 {
		out = append(out, fault.Rule{ID: RuleSlowStart, Layer: fault.UI, Ops: []string{opListen},
			Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(f.SlowStart)}})
	}
	switch f.NeverReady {
	case NeverReadyNoBind:
		out = append(out, fault.Rule{ID: RuleNeverReady, Layer: fault.UI, Ops: []string{opListen},
			Effect: fault.Effect{Kind: fault.Hang}})
	case NeverReadyHTTP:
		out = append(out, fault.Rule{ID: RuleNeverReady, Layer: fault.UI, Ops: []string{opRequest},
			Effect: fault.Effect{Kind: fault.HTTPStatus, Status: 503}})
	}
	if f.CrashAfter > 0 {
		code := f.ExitCode
		out = append(out, fault.Rule{ID: RuleCrash, Layer: fault.UI, Ops: []string{opRun},
			Effect: fault.Effect{Kind: fault.Exit, ExitCode: &code, Latency: fault.Duration(f.CrashAfter)}})
	}
	if f.HTTPError != 0 {
		out = append(out, fault.Rule{ID: RuleHTTPError, Layer: fault.UI, Ops: []string{opRequest}, After: f.HTTPErrorAfter,
			Effect: fault.Effect{Kind: fault.HTTPStatus, Status: f.HTTPError}})
	}
	return append(out, f.Rules...)
}

// String formats the faults as a spec that ParseFaults reads back: the
// short spelling, or a JSON list of rules when f has Rules; the zero value
// gives "".
func (f Faults) String() string {
	if len(f.Rules) > 0 {
		b, err := json.Marshal(f.AsRules())
		if err != nil {
			return fmt.Sprintf("<faults: %v>", err)
		}
		return string(b)
	}
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

package hubsys

import (
	"fmt"
	"strings"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/check"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// ServerState is the kind of the events the system records for server
// states. Fields: user, server (a named server's name, "" or absent for
// the default server), state (pending, ready, failed, stopped, refused,
// removed), message.
const ServerState events.Kind = "hub.server"

// Plugin is JupyterHub as a scenario plug-in: system.hub, the server
// steps (spawn, stop_server, remove_server), request steps, do: stop,
// server conditions and server expectations. The runner drives it through
// Factory.
type Plugin struct{}

var (
	_ scenario.SystemParser      = Plugin{}
	_ scenario.StepParser        = Plugin{}
	_ scenario.ConditionParser   = Plugin{}
	_ scenario.ExpectationParser = Plugin{}
)

// Name implements scenario.Plugin.
func (Plugin) Name() string { return "hub" }

// ConfigOf returns the hub configuration of a parsed scenario (nil when
// its system is not the hub).
func ConfigOf(f *scenario.File) *Config {
	c, _ := f.System.Spec.(*Config)
	return c
}

// StepKeys implements scenario.StepParser.
func (Plugin) StepKeys() []string {
	return []string{"spawn", "stop_server", "remove_server", "request", "reload_service", "browser", "login", "spawn_form"}
}

// DoActions implements scenario.StepParser: do: stop stops the hub.
func (Plugin) DoActions() []string { return []string{"stop"} }

// ServerAction is a spawn, stop_server or remove_server step on servers
// named USER or USER/NAME.
type ServerAction struct {
	Verb    string // spawn, stop_server, remove_server
	Servers []string
}

func (a ServerAction) String() string {
	return strings.ReplaceAll(a.Verb, "_", " ") + " " + strings.Join(a.Servers, " ")
}

// Requests is a request step.
type Requests []Request

func (r Requests) String() string { return fmt.Sprintf("request (%d)", len(r)) }

// Stop is do: stop.
type Stop struct{}

func (Stop) String() string { return "stop" }

// ParseStep implements scenario.StepParser.
func (Plugin) ParseStep(f *scenario.File, key string, v scenario.Value) (scenario.Action, error) {
	h := ConfigOf(f)
	switch key {
	case "do":
		return Stop{}, nil
	case "reload_service":
		return parseReload(f, h, v)
	case "browser":
		return parseBrowser(h, v)
	case "login":
		return parseLogin(h, v)
	case "spawn_form":
		return parseSpawnForm(h, v)
	case "request":
		var reqs Requests
		if err := v.Decode(&reqs); err != nil {
			return nil, err
		}
		for j, r := range reqs {
			if err := validateRequest(h, r); err != nil {
				return nil, v.Where().Index(j).Errorf("request %d: %v", j+1, err)
			}
		}
		return reqs, nil
	}
	var refs []string
	if err := v.Decode(&refs); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for j, ref := range refs {
		if err := validateServerRef(h, ref, key == "remove_server"); err != nil {
			return nil, v.Where().Index(j).Errorf("%s: %v", key, err)
		}
		if seen[ref] {
			return nil, v.Where().Index(j).Errorf("%s: %s is named twice", key, ref)
		}
		seen[ref] = true
	}
	return ServerAction{Verb: key, Servers: refs}, nil
}

// ConditionKeys implements scenario.ConditionParser: server conditions.
func (Plugin) ConditionKeys() []string { return []string{"server", "viewable"} }

// ServerCondition holds when a hub user's server (USER or USER/NAME) is
// (not) ready, or its spawn failed.
type ServerCondition struct {
	Server string `yaml:"server"`
	Ready  *bool  `yaml:"ready"`
	Failed *bool  `yaml:"failed"`
}

func (c ServerCondition) String() string {
	if c.Failed != nil {
		return fmt.Sprintf("server %s failed", c.Server)
	}
	return fmt.Sprintf("server %s ready=%v", c.Server, *c.Ready)
}

// ParseCondition implements scenario.ConditionParser.
func (Plugin) ParseCondition(f *scenario.File, key string, v scenario.Value) (scenario.Predicate, error) {
	if key == "viewable" {
		return parseViewable(ConfigOf(f), v)
	}
	var c ServerCondition
	if err := v.Decode(&c); err != nil {
		return nil, err
	}
	if err := validateServerRef(ConfigOf(f), c.Server, false); err != nil {
		return nil, v.Where().Key("server").Errorf("server condition: %v", err)
	}
	if (c.Ready == nil) == (c.Failed == nil) {
		return nil, v.Where().Errorf("a server condition says ready: true|false or failed: true")
	}
	return c, nil
}

// ExpectationKeys implements scenario.ExpectationParser: server expectations.
func (Plugin) ExpectationKeys() []string { return []string{"server", "page_shows"} }

// ServerExpectation is a hub user's server (USER or USER/NAME) being
// ready (or never ready), or reported failed, within a bound of the
// scenario start.
type ServerExpectation struct {
	Server string            `yaml:"server"`
	Ready  *bool             `yaml:"ready"`
	Failed *bool             `yaml:"failed"`
	Within scenario.Duration `yaml:"within"`
}

// ParseExpectation implements scenario.ExpectationParser.
func (Plugin) ParseExpectation(f *scenario.File, key string, v scenario.Value) (check.Expectation, error) {
	if key == "page_shows" {
		return parsePageExpectation(ConfigOf(f), v)
	}
	e := &ServerExpectation{}
	if err := v.Decode(e); err != nil {
		return nil, err
	}
	if err := validateServerRef(ConfigOf(f), e.Server, false); err != nil {
		return nil, v.Where().Key("server").Errorf("%v", err)
	}
	if (e.Ready == nil) == (e.Failed == nil) {
		return nil, v.Where().Errorf("a server expectation says ready: true|false or failed: true")
	}
	if e.Within == 0 {
		return nil, v.Where().Errorf("a server expectation needs within: DURATION")
	}
	return e, nil
}

// Pending implements check.Expectation: not yet met, and its bound not
// passed.
func (e *ServerExpectation) Pending(run check.Run, now time.Time) bool {
	return !e.Evaluate(run).OK && now.Before(run.Start.Add(e.Within.D()))
}

// Evaluate implements check.Expectation.
func (e *ServerExpectation) Evaluate(run check.Run) check.Result {
	want := "ready"
	if e.Failed != nil && *e.Failed {
		want = "failed"
	}
	if e.Ready != nil && !*e.Ready {
		want = "not ready"
	}
	deadline := run.Start.Add(e.Within.D())
	ref, err := ParseServerRef(e.Server)
	if err != nil {
		return check.Result{Detail: err.Error()}
	}
	var seen []string
	for _, ev := range run.Events {
		if ev.Kind != ServerState || ev.Fields["user"] != ref.User {
			continue
		}
		if name, _ := ev.Fields["server"].(string); name != ref.Name {
			continue
		}
		st, _ := ev.Fields["state"].(string)
		seen = append(seen, fmt.Sprintf("%s at +%s", st, check.Since(run.Start, ev.Time)))
		if want == "not ready" {
			if st == "ready" {
				return check.Result{Detail: fmt.Sprintf("server %s became ready at +%s", e.Server, check.Since(run.Start, ev.Time))}
			}
			continue
		}
		if st == want {
			if ev.Time.After(deadline) {
				return check.Result{Detail: fmt.Sprintf("server %s was %s only at +%s (bound %s)", e.Server, want, check.Since(run.Start, ev.Time), e.Within.D())}
			}
			return check.Result{OK: true, Detail: fmt.Sprintf("server %s %s at +%s", e.Server, want, check.Since(run.Start, ev.Time))}
		}
	}
	if want == "not ready" {
		return check.Result{OK: true, Detail: fmt.Sprintf("server %s never became ready (%s)", e.Server, strings.Join(seen, ", "))}
	}
	return check.Result{Detail: fmt.Sprintf("server %s never %s within %s; seen: %s", e.Server, want, e.Within.D(), check.OrNone(seen))}
}

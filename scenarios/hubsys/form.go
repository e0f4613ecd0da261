package hubsys

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// FormEvent is a spawn_form step's answer from the hub. Fields: as,
// result (submitted: the hub took the answers and started the spawn;
// refused: the form came back with its message and nothing started),
// answers (NAME=VALUE, sorted, space-separated), message (refused).
const FormEvent events.Kind = "hub.form"

// FormField is one field of system.hub.form, the site's spawn form
// (Spawner.options_form): a select of Choices, or a text whose whole
// answer must match Pattern (a Python regular expression, checked by the
// hub). Default is the answer preset; Message is what the form shows when
// the hub refuses an answer. The answers become the spawner's
// user_options: batchspawner renders them into its job script by name
// (queue, partition, runtime, memory, nprocs, ...).
type FormField struct {
	Name    string   `yaml:"name"`
	Label   string   `yaml:"label"`
	Choices []string `yaml:"choices"`
	Pattern string   `yaml:"pattern"`
	Default string   `yaml:"default"`
	Message string   `yaml:"message"`
}

// formFieldName is what a field may be called: a name batchspawner's job
// script template can use.
var formFieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validateForm(h *Config, at scenario.Where) error {
	seen := map[string]bool{}
	for i, f := range h.Form {
		where := at.Key("form").Index(i)
		if !formFieldName.MatchString(f.Name) {
			return where.Key("name").Errorf("form field name %q: use letters, digits and '_' (not first), as a job script template names it", f.Name)
		}
		if seen[f.Name] {
			return where.Key("name").Errorf("form field %s is defined twice", f.Name)
		}
		seen[f.Name] = true
		if (len(f.Choices) == 0) == (f.Pattern == "") {
			return where.Errorf("form field %s: give choices: [...] (a select) or pattern: REGEX (a text), not both", f.Name)
		}
		if f.Pattern != "" {
			re, err := regexp.Compile(`^(?:` + f.Pattern + `)$`)
			if err != nil {
				return where.Key("pattern").Errorf("form field %s: pattern: %v", f.Name, err)
			}
			if f.Default != "" && !re.MatchString(f.Default) {
				return where.Key("default").Errorf("form field %s: default %q does not match the pattern %q", f.Name, f.Default, f.Pattern)
			}
		}
		if len(f.Choices) > 0 && f.Default != "" && !slices.Contains(f.Choices, f.Default) {
			return where.Key("default").Errorf("form field %s: default %q is not one of the choices %v", f.Name, f.Default, f.Choices)
		}
	}
	return nil
}

// hubForm is the form as the hub driver renders it.
func (h *Config) hubForm() []hub.FormField {
	out := make([]hub.FormField, 0, len(h.Form))
	for _, f := range h.Form {
		out = append(out, hub.FormField{Name: f.Name, Label: f.Label, Choices: f.Choices, Pattern: f.Pattern, Default: f.Default, Message: f.Message})
	}
	return out
}

// SpawnForm is a spawn_form step: a user logs in through the hub's login
// page (with Password where the authenticator checks one), opens the spawn
// page of their default server, fills the form with Answers (fields left
// out keep their default) and submits it, as a person at a browser does.
type SpawnForm struct {
	As       string            `yaml:"as"`
	Password string            `yaml:"password"`
	Answers  map[string]string `yaml:"answers"`
}

func (f SpawnForm) String() string { return "spawn form as " + f.As + " (" + f.answers() + ")" }

// answers is the answers as NAME=VALUE, sorted by name.
func (f SpawnForm) answers() string {
	keys := make([]string, 0, len(f.Answers))
	for k := range f.Answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+f.Answers[k])
	}
	return strings.Join(parts, " ")
}

func parseSpawnForm(h *Config, v scenario.Value) (scenario.Action, error) {
	var f SpawnForm
	if err := v.Decode(&f); err != nil {
		return nil, err
	}
	if !slices.Contains(h.Users, f.As) {
		return nil, v.Where().Key("as").Errorf("spawn_form: as %q: want one of the hub users %v", f.As, h.Users)
	}
	if len(h.Form) == 0 {
		return nil, v.Where().Errorf("spawn_form: the hub has no spawn form: give system.hub.form its fields")
	}
	for k := range f.Answers {
		if !slices.ContainsFunc(h.Form, func(ff FormField) bool { return ff.Name == k }) {
			return nil, v.Where().Key("answers").Key(k).Errorf("spawn_form: %q is not a field of system.hub.form", k)
		}
	}
	return f, nil
}

// spawnForm performs a spawn_form step. A refused answer is recorded (a
// hub.form event with the form's message), not returned as an error;
// expectations judge. A submitted form starts the spawn, which the
// watcher follows like an API spawn.
func (s *System) spawnForm(ctx context.Context, c *hub.Client, f SpawnForm) error {
	st, err := s.server(f.As)
	if err != nil {
		return err
	}
	sess, err := c.Login(ctx, f.As, f.Password)
	if err != nil {
		return fmt.Errorf("spawn_form: log in as %s: %w", f.As, err)
	}
	page, err := sess.SpawnForm(ctx, f.As)
	if err != nil {
		return fmt.Errorf("spawn_form: %w", err)
	}
	var missing []string
	for _, ff := range s.spec.Form {
		if !strings.Contains(page, `name="`+html.EscapeString(ff.Name)+`"`) {
			missing = append(missing, ff.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("spawn_form: the hub's spawn page for %s shows no field %s: %.300s", f.As, strings.Join(missing, ", "), page)
	}
	answers := url.Values{}
	for k, v := range f.Answers {
		answers.Set(k, v)
	}
	defer s.beginSpawn(st)()
	_, err = sess.SubmitSpawnForm(ctx, f.As, answers)
	var refused *hub.FormRefusedError
	switch {
	case errors.As(err, &refused):
		s.log.Record(events.Event{Kind: FormEvent, Msg: fmt.Sprintf("spawn form of %s refused: %s", f.As, refused.Message),
			Fields: map[string]any{"as": f.As, "result": "refused", "answers": f.answers(), "message": refused.Message}})
		return nil
	case err != nil:
		return fmt.Errorf("spawn_form: %w", err)
	}
	s.log.Record(events.Event{Kind: FormEvent, Msg: fmt.Sprintf("spawn form of %s submitted: %s", f.As, f.answers()),
		Fields: map[string]any{"as": f.As, "result": "submitted", "answers": f.answers()}})
	s.transition(st, StatePending, "spawn requested through the spawn form", nil)
	return nil
}

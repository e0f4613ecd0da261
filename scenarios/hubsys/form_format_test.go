package hubsys

import (
	"strings"
	"testing"
)

const hubSlurmForm = `name: hub-slurm-form
topology:
  hosts:
    - name: fakehpc
system:
  hub:
    spawner: batch-slurm
    users: [alice, bob]
    form:
      - {name: partition, choices: [debug, gpu], default: debug}
      - {name: runtime, pattern: '[0-9]{2}:[0-5][0-9]:[0-5][0-9]', default: "01:00:00", message: "Walltime: want HH:MM:SS"}
timeline:
  - do: start
  - spawn_form: {as: alice, answers: {partition: gpu, runtime: "00:30:00"}}
`

// TestSpawnFormStep: system.hub.form becomes the hub's spawn form, a
// spawn_form step carries its answers, and batch-slurm gives the host a
// Slurm controller and the hub users.
func TestSpawnFormStep(t *testing.T) {
	f, err := testVocabulary.Parse("form.yaml", []byte(hubSlurmForm))
	if err != nil {
		t.Fatal(err)
	}
	h := ConfigOf(f)
	form := h.hubForm()
	if len(form) != 2 || form[0].Name != "partition" || len(form[0].Choices) != 2 || form[1].Message != "Walltime: want HH:MM:SS" {
		t.Errorf("form %+v", form)
	}
	step, ok := f.Timeline[1].Action.(SpawnForm)
	if !ok || step.As != "alice" || step.answers() != "partition=gpu runtime=00:30:00" {
		t.Errorf("step %#v, want alice's answers", f.Timeline[1].Action)
	}
	host := f.Topology.Hosts[0]
	if host.Slurm == nil || host.PBS != nil || strings.Join(host.Users, ",") != "alice,bob" {
		t.Errorf("host %+v: want Slurm, no PBS, the hub users", host)
	}
}

// TestSpawnFormErrors: each mistake is reported at its place in the file,
// before anything starts.
func TestSpawnFormErrors(t *testing.T) {
	for _, tc := range []struct{ name, replace, with, want string }{
		{"both kinds", "choices: [debug, gpu], default: debug}", "choices: [debug, gpu], pattern: x}",
			"form.yaml:10:9: form field partition: give choices: [...] (a select) or pattern: REGEX (a text), not both"},
		{"bad name", "{name: partition,", "{name: 2partition,",
			"form.yaml:10:16: form field name \"2partition\""},
		{"twice", "{name: runtime,", "{name: partition,", "form.yaml:11:16: form field partition is defined twice"},
		{"default not a choice", "default: debug}", "default: long}", "form.yaml:10:59: form field partition: default \"long\" is not one of the choices"},
		{"default not matching", `default: "01:00:00"`, `default: "1h"`, "form field runtime: default \"1h\" does not match the pattern"},
		{"bad pattern", "pattern: '[0-9]{2}", "pattern: '([0-9]{2}", "form.yaml:11:34: form field runtime: pattern: error parsing regexp"},
		{"no form", "    form:\n      - {name: partition, choices: [debug, gpu], default: debug}\n      - {name: runtime, pattern: '[0-9]{2}:[0-5][0-9]:[0-5][0-9]', default: \"01:00:00\", message: \"Walltime: want HH:MM:SS\"}\n", "",
			"spawn_form: the hub has no spawn form: give system.hub.form its fields"},
		{"stranger", "{as: alice,", "{as: eve,", "spawn_form: as \"eve\": want one of the hub users [alice bob]"},
		{"unknown answer", "answers: {partition: gpu,", "answers: {queue: gpu,", "spawn_form: \"queue\" is not a field of system.hub.form"},
		{"slurm spawner on a PBS host", "    - name: fakehpc\n", "    - name: fakehpc\n      pbs: {}\n",
			"spawner batch-slurm submits to Slurm, but host fakehpc runs PBS (pbs:): use spawner batch-pbs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(hubSlurmForm, tc.replace, tc.with, 1)
			if src == hubSlurmForm {
				t.Fatalf("replacing %q changed nothing", tc.replace)
			}
			_, err := testVocabulary.Parse("form.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

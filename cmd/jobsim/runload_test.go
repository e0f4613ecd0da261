package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A label filter chooses what runs, not what is checked: a negative
// duration in a scenario the filter leaves out still stops the run, with
// its place.
func TestRunChecksEveryScenarioWhateverTheLabelFilter(t *testing.T) {
	dir := t.TempDir()
	good := "name: good\nlabels: [picked]\ntopology:\n  hosts: [{name: h, executor: virtual}]\nsystem:\n  hub: {users: [alice]}\ntimeline:\n  - do: start\n"
	bad := "name: bad\nlabels: [other]\ntopology:\n  hosts: [{name: h, executor: virtual}]\nsystem:\n  hub: {users: [alice]}\ntimeline:\n  - do: start\n  - wait: {for: -2s}\n"
	for name, body := range map[string]string{"good.yaml": good, "bad.yaml": bad} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errs, code := jobsimCLI(t, hostInfo{}, "run", "--label-filter", "picked", "--artifacts", filepath.Join(dir, "out"), dir)
	if code != 2 || !strings.Contains(errs, `bad.yaml:9:17: duration "-2s": must not be negative`) {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Fatal("the run started anyway")
	}
}

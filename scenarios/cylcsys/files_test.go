package cylcsys

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/jobsim/jobsim/scenarios/scenario"
)

// The shipped Cylc scenarios load, are labelled for the suites, and each
// says what it is about.
func TestShippedScenariosLoad(t *testing.T) {
	files, err := testVocabulary.LoadAll(filepath.Join(repoRoot(t), "fixtures", "scenarios", "cylc"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("%d scenario files, want the eight shipped", len(files))
	}
	for _, f := range files {
		if ConfigOf(f) == nil {
			t.Errorf("%s: not a cylc scenario", f.Path)
		}
		if !slices.Contains(f.Labels, "cylc") {
			t.Errorf("%s: no cylc label", f.Path)
		}
		if f.Description == "" {
			t.Errorf("%s: no description", f.Path)
		}
		if f.Mode == scenario.Gate && !slices.Contains(f.Labels, "gate") {
			t.Errorf("%s: a gate without the gate label", f.Path)
		}
	}
}

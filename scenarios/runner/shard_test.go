package runner

import (
	"fmt"
	"slices"
	"testing"

	"github.com/jobsim/jobsim/scenarios/scenario"
)

func TestShardsSplitASuiteIntoDisjointPartsThatMakeItWhole(t *testing.T) {
	var files []*scenario.File
	for _, i := range []int{7, 3, 9, 1, 4, 8, 2, 6, 5} { // the order a walk may give
		files = append(files, &scenario.File{Path: fmt.Sprintf("s%02d.yaml", i)})
	}
	seen := map[string]int{}
	for k := 1; k <= 4; k++ {
		part := Shard{K: k, N: 4}.Select(files)
		if len(part) < 2 || len(part) > 3 {
			t.Errorf("shard %d/4 has %d of 9 scenarios: want 2 or 3", k, len(part))
		}
		for _, f := range part {
			seen[f.Path]++
		}
		// The same part from the files in another order.
		rev := slices.Clone(files)
		slices.Reverse(rev)
		if got := (Shard{K: k, N: 4}).Select(rev); !slices.Equal(paths(got), paths(part)) {
			t.Errorf("shard %d/4 depends on the order of the files: %v, then %v", k, paths(part), paths(got))
		}
	}
	for _, f := range files {
		if seen[f.Path] != 1 {
			t.Errorf("%s is in %d shards, want 1", f.Path, seen[f.Path])
		}
	}
}

func paths(fs []*scenario.File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

func TestParseShardRefusesWhatCannotBeAShard(t *testing.T) {
	if sh, err := ParseShard("2/3"); err != nil || sh != (Shard{K: 2, N: 3}) {
		t.Fatalf("2/3: %v %v", sh, err)
	}
	for _, bad := range []string{"", "3", "0/2", "3/2", "1/0", "a/b", "-1/2", "1/2/3"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
}

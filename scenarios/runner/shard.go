package runner

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jobsim/jobsim/scenarios/scenario"
)

// Shard is one of N equal parts of a suite, for spreading it over N
// machines: shard K of N (1-based) takes every Nth scenario, counting from
// the Kth, in the order of their file paths, so that the same files give
// the same parts on every machine and the parts together are the suite.
type Shard struct{ K, N int }

// ParseShard reads "K/N" (1 <= K <= N).
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 1 || k > n {
		return Shard{}, fmt.Errorf("shard %q: want K/N with 1 <= K <= N, e.g. 2/4", s)
	}
	return Shard{K: k, N: n}, nil
}

// Select returns the scenarios of files that belong to the shard.
func (sh Shard) Select(files []*scenario.File) []*scenario.File {
	if sh.N <= 1 {
		return files
	}
	sorted := slices.Clone(files)
	slices.SortStableFunc(sorted, func(a, b *scenario.File) int { return strings.Compare(a.Path, b.Path) })
	var out []*scenario.File
	for i, f := range sorted {
		if i%sh.N == sh.K-1 {
			out = append(out, f)
		}
	}
	return out
}

package runner

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Column is one install of the system under test in a version matrix:
// its label (the version, or the path when two share a version) and the
// reports of the suite run against it.
type Column struct {
	Label   string
	Reports []Report
}

// WriteMatrix writes, per scenario, the verdict on each install: the one
// table that says whether a candidate fixes a bug and breaks nothing the
// last release passed. A reproducer shows how it was judged on each
// (reproducer where its bug applies, gate elsewhere).
func WriteMatrix(w io.Writer, cols []Column) error {
	var names []string
	seen := map[string]bool{}
	cell := map[string]map[string]Report{}
	for _, c := range cols {
		cell[c.Label] = map[string]Report{}
		for _, r := range c.Reports {
			if !seen[r.Name] {
				seen[r.Name] = true
				names = append(names, r.Name)
			}
			cell[c.Label][r.Name] = r
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"SCENARIO"}
	for _, c := range cols {
		head = append(head, c.Label)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, n := range names {
		row := []string{n}
		for _, c := range cols {
			r, ok := cell[c.Label][n]
			switch {
			case !ok:
				row = append(row, "-")
			case r.Mode == "reproducer":
				row = append(row, fmt.Sprintf("%s (as %s)", strings.ToUpper(string(r.Verdict)), r.JudgedAs))
			default:
				row = append(row, strings.ToUpper(string(r.Verdict)))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range cols {
		counts := map[Verdict]int{}
		for _, r := range c.Reports {
			counts[r.Verdict]++
		}
		if _, err := fmt.Fprintf(w, "%s: %d passed, %d failed, %d errored, %d skipped\n", c.Label, counts[Pass], counts[Fail], counts[Error], counts[Skip]); err != nil {
			return err
		}
	}
	return nil
}

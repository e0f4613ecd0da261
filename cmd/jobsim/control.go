package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/sim/control"
)

// controlFlags are the flags every command that talks to a running host or
// topology shares.
type controlFlags struct {
	url    string
	token  string
	output string
}

func (f *controlFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.url, "control", os.Getenv("JOBSIM_CONTROL"), "control API URL of the host or topology ($JOBSIM_CONTROL)")
	cmd.PersistentFlags().StringVar(&f.token, "token", os.Getenv("JOBSIM_TOKEN"), "bearer token of the control API ($JOBSIM_TOKEN)")
	cmd.PersistentFlags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

func (f *controlFlags) client() (*control.Client, error) {
	if f.url == "" {
		return nil, fmt.Errorf("no control API named: pass --control URL or set JOBSIM_CONTROL (jobsim host and jobsim up print it)")
	}
	if f.token == "" {
		return nil, fmt.Errorf("no token: pass --token or set JOBSIM_TOKEN (jobsim host and jobsim up print it)")
	}
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", f.output)
	}
	return control.NewClient(f.url, f.token), nil
}

// print writes v as indented JSON with --output json, else calls table.
func (f *controlFlags) print(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

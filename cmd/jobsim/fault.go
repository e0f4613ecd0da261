package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jobsim/jobsim/base/fault"
)

func newFaultCommand() *cobra.Command {
	var cf controlFlags
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Add, list and clear fault rules on a running host or topology",
		Long: `A fault rule has a layer (fs, ssh, pbs, net), a selector (operations, a
path glob, a command regexp, a user, a PBS job), an effect, a seeded
probability and a window (count, after N matches, start and duration).
Every activation is recorded in the host's event history (jobsim events).`,
	}
	cf.register(cmd)
	cmd.AddCommand(newFaultAddCommand(&cf), newFaultListCommand(&cf), newFaultRemoveCommand(&cf), newFaultClearCommand(&cf))
	return cmd
}

func newFaultAddCommand(cf *controlFlags) *cobra.Command {
	var (
		r           fault.Rule
		file        string
		probability float64
		exitCode    int
		mode        string
		latency     time.Duration
		start, dur  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add LAYER KIND [flags] | add -f RULE.json",
		Short: "Add a fault rule",
		Long: "Add a fault rule. Layers and the effect kinds they accept:\n" + kindsTable() + `
Operations a rule may select (--ops, default all):
` + opsTable(),
		Example: `  # The site incident: the cylc library directory cannot be listed, its files still open
  jobsim fault add fs errno --path /opt/cylc/lib/python3 --ops readdir --errno EIO

  # Every qsub is rejected twice, then works again
  jobsim fault add pbs exit --ops qsub --count 2 --exit-code 1 --stderr 'qsub: Job rejected by all possible destinations'

  # jobs-submit hangs on the host until the rule is cleared
  jobsim fault add ssh hang --command 'jobs-submit'

  # qstat answers as if the server were down (older PBS wording)
  jobsim fault add pbs unreachable --ops qstat --style refused

  # A rule from JSON (the control API's format), from a file or - for stdin
  echo '{"layer": "fs", "ops": ["open"], "path": "/opt/lib/**", "effect": {"kind": "latency", "latency": "2s"}}' > rule.json
  jobsim fault add -f rule.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if file != "" {
				if r, err = readRuleFile(file); err != nil {
					return err
				}
			} else {
				r.Layer, r.Effect.Kind = fault.Layer(args[0]), fault.Kind(args[1])
				fl := cmd.Flags()
				if fl.Changed("probability") {
					r.Probability = &probability
				}
				if fl.Changed("exit-code") {
					r.Effect.ExitCode = &exitCode
				}
				if fl.Changed("mode") {
					var m uint32
					if _, err := fmt.Sscanf(mode, "%o", &m); err != nil {
						return fmt.Errorf("--mode %q: want octal permission bits such as 000 or 755", mode)
					}
					r.Effect.Mode = &m
				}
				r.Effect.Latency, r.Start, r.For = fault.Duration(latency), fault.Duration(start), fault.Duration(dur)
			}
			if err := r.Validate(); err != nil {
				return fmt.Errorf("fault rule: %w", err)
			}
			added, err := c.AddFault(cmd.Context(), r)
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), added, func(tw *tabwriter.Writer) { fmt.Fprintln(tw, added.ID) })
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read the rule as JSON from a file (- for stdin)")
	f.StringVar(&r.ID, "id", "", "name the rule (default: assigned)")
	f.StringSliceVar(&r.Ops, "ops", nil, "operations to select (comma-separated)")
	f.StringVar(&r.Path, "path", "", "absolute path glob (fs); ** crosses directories")
	f.StringVar(&r.Command, "command", "", "regexp over the command line (ssh exec; PBS argv)")
	f.StringVar(&r.User, "user", "", "select only this user")
	f.StringVar(&r.Job, "job", "", "PBS job id or glob (pbs)")
	f.StringVar(&r.Effect.Errno, "errno", "", "errno name for errno effects, e.g. EIO, EACCES, ENOSPC")
	f.DurationVar(&latency, "latency", 0, "delay for latency and slow-banner effects, e.g. 20s")
	f.IntVar(&exitCode, "exit-code", 0, "exit code for exit effects")
	f.StringVar(&r.Effect.Stdout, "stdout", "", "stdout text for garbage effects")
	f.StringVar(&r.Effect.Stderr, "stderr", "", "stderr text for exit effects")
	f.StringVar(&r.Effect.Style, "style", "", "unreachable message style: refused or cannot-connect")
	f.StringVar(&r.Effect.State, "state", "", "PBS state a stuck job keeps (Q, R, H, W, E, S)")
	f.StringVar(&mode, "mode", "", "permission bits (octal) a perm effect reports")
	f.Int64Var(&r.Effect.AfterBytes, "after-bytes", 0, "drop the connection after this many bytes of output")
	f.Float64Var(&probability, "probability", 1, "chance 0..1 that a matching operation fires (0 disarms)")
	f.Int64Var(&r.Seed, "seed", 0, "seed of the probability draw (default derived from the host's seed)")
	f.IntVar(&r.Count, "count", 0, "fire at most this many times (0: no limit)")
	f.IntVar(&r.After, "after", 0, "let this many matching operations through first")
	f.DurationVar(&start, "start", 0, "arm the rule this long after adding it")
	f.DurationVar(&dur, "for", 0, "disarm the rule this long after it is armed (0: until cleared)")
	return cmd
}

func readRuleFile(name string) (fault.Rule, error) {
	var r fault.Rule
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return r, fmt.Errorf("read rule: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

func kindsTable() string {
	var b strings.Builder
	for _, l := range []fault.Layer{fault.FS, fault.SSH, fault.PBS, fault.Net} {
		ks := fault.LayerKinds[l]
		s := make([]string, len(ks))
		for i, k := range ks {
			s[i] = string(k)
		}
		fmt.Fprintf(&b, "  %-4s %s\n", l, strings.Join(s, ", "))
	}
	return b.String()
}

func opsTable() string {
	var b strings.Builder
	for _, l := range []fault.Layer{fault.FS, fault.SSH, fault.PBS, fault.Net} {
		fmt.Fprintf(&b, "  %-4s %s\n", l, strings.Join(fault.LayerOps[l], ", "))
	}
	return b.String()
}

func newFaultListCommand(cf *controlFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List fault rules with their match and activation counts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			st, err := c.Faults(cmd.Context())
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), st, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tLAYER\tEFFECT\tSELECTOR\tARMED\tMATCHES\tFIRED")
				for _, s := range st {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\t%d\n", s.ID, s.Layer, s.Effect.Kind, selectorText(s.Rule), s.Armed, s.Matches, s.Activations)
				}
			})
		},
	}
}

func selectorText(r fault.Rule) string {
	var parts []string
	if len(r.Ops) > 0 {
		parts = append(parts, "ops="+strings.Join(r.Ops, ","))
	}
	for _, kv := range [][2]string{{"path", r.Path}, {"command", r.Command}, {"user", r.User}, {"job", r.Job}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return "*"
	}
	return strings.Join(parts, " ")
}

func newFaultRemoveCommand(cf *controlFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID...",
		Aliases: []string{"remove"},
		Short:   "Remove fault rules by id (operations hanging on them are released)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			for _, id := range args {
				if err := c.RemoveFault(cmd.Context(), id); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newFaultClearCommand(cf *controlFlags) *cobra.Command {
	var layers []string
	cmd := &cobra.Command{
		Use:   "clear [--layer LAYER]...",
		Short: "Remove every fault rule, or those of the given layers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ls := make([]fault.Layer, len(layers))
			for i, l := range layers {
				ls[i] = fault.Layer(l)
			}
			n, err := c.ClearFaults(cmd.Context(), ls...)
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), map[string]int{"removed": n}, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "removed %d rules\n", n) })
		},
	}
	cmd.Flags().StringSliceVar(&layers, "layer", nil, "only these layers (fs, ssh, pbs, net)")
	return cmd
}

package cmdrun

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"

	"github.com/jobsim/jobsim/base/fault"
)

// Reject applies the first exit rule among fired, if any: it writes the
// rule's Effect.Stderr and reports its exit status (default 1), for a
// command that must then not run.
func Reject(fired []fault.Rule, stderr io.Writer) (int, bool) {
	x, ok := fault.First(fired, fault.Exit)
	if !ok {
		return 0, false
	}
	code := 1
	if x.Effect.ExitCode != nil {
		code = *x.Effect.ExitCode
	}
	_, _ = io.WriteString(stderr, x.Effect.StderrLine())
	return code & 0xff, true
}

// Check checks the rules of set (nil: none) for op and applies those that
// act the same way before any batch command runs: it waits out latency
// and hang rules, then writes a rejection's message to stderr. It returns
// the rules that fired, and done with the exit status when the command
// must not run: rejected, or killed (128+9) because ctx ended while it
// waited, as the caller that gave up kills the process.
func Check(ctx context.Context, set *fault.Set, op fault.Op, stderr io.Writer) (fired []fault.Rule, code int, done bool) {
	if set == nil {
		return nil, 0, false
	}
	fired = set.Check(op)
	if len(fired) == 0 {
		return nil, 0, false
	}
	if err := set.Wait(ctx, fired); err != nil {
		return fired, 128 + 9, true
	}
	code, done = Reject(fired, stderr)
	return fired, code, done
}

// Garble replaces stdout with the output of the first garbage rule among
// fired: its Effect.Stdout, else random bytes fixed by the rule's seed and
// id (the same rule garbles the same way every time).
func Garble(fired []fault.Rule, stdout *bytes.Buffer) {
	g, ok := fault.First(fired, fault.Garbage)
	if !ok {
		return
	}
	stdout.Reset()
	if g.Effect.Stdout != "" {
		stdout.WriteString(g.Effect.Stdout)
		return
	}
	stdout.Write(garbage(g))
}

func garbage(rule fault.Rule) []byte {
	seed := uint64(rule.Seed)
	for _, c := range rule.ID {
		seed = seed*131 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	b := make([]byte, 16+rng.IntN(240))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

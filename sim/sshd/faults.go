package sshd

import (
	"context"
	"slices"

	"github.com/jobsim/jobsim/base/fault"
)

// The ssh operations fault rules select (fault.LayerOps[fault.SSH]).
const (
	opConnect = "connect"
	opAuth    = "auth"
	opExec    = "exec"
	opShell   = "shell"
	opSFTP    = "sftp"
	opForward = "forward"
)

// commandOps are the operations a rule without ops applies to, for the
// kinds that act on a command: latency, hang, drop and exit.
var commandOps = []string{opExec, opShell, opSFTP, opForward}

// applies says whether rule r means something at op. A rule listing ops
// applies where its kind has a meaning: refuse-auth at auth, slow-banner at
// connect, exit at commands (exec, shell, sftp, forward), latency, hang and
// drop anywhere. A rule without ops applies where its kind acts by
// default: refuse-auth at auth, slow-banner at connect, and the others at
// commands only, so that "delay commands by 2s" does not also delay the
// banner and the login.
func applies(r fault.Rule, op string) bool {
	if r.Layer != fault.SSH {
		return false
	}
	if len(r.Ops) > 0 && !slices.Contains(r.Ops, op) {
		return false
	}
	switch r.Effect.Kind {
	case fault.RefuseAuth:
		return op == opAuth
	case fault.SlowBanner:
		return op == opConnect
	case fault.Exit:
		return slices.Contains(commandOps, op)
	case fault.Latency, fault.Hang, fault.Drop:
		return len(r.Ops) > 0 || slices.Contains(commandOps, op)
	}
	return false
}

// faultsFor returns the rules that fire for op and apply to it; a rule
// meant for one operation is not used up (Count) or recorded as fired by
// another.
func (s *Server) faultsFor(op fault.Op) []fault.Rule {
	set := s.cfg.faults
	if set == nil {
		return nil
	}
	return set.CheckWhere(op, func(r fault.Rule) bool { return applies(r, op.Name) })
}

// wait applies the waiting effects among fired (latency, slow banner,
// hang); it returns an error when ctx ended first.
func (s *Server) wait(ctx context.Context, fired []fault.Rule) error {
	if len(fired) == 0 || s.cfg.faults == nil {
		return nil
	}
	return s.cfg.faults.Wait(ctx, fired)
}

func ruleIDs(rs []fault.Rule) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

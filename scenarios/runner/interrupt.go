package runner

import (
	"context"
	"errors"
)

// Interrupted is the verdict of a scenario whose run was stopped from
// outside (SIGINT or SIGTERM to jobsim, or the caller's context ending)
// before it could be judged: it says nothing about the system under test,
// so its expectations are not reported as failures. JUnit shows it as an
// error with the message "interrupted by signal: ...".
const Interrupted Verdict = "interrupted"

// interrupt turns the verdict into Interrupted when parent (the context
// the caller gave Run) ended before the run was judged. A run judged
// before the interruption, and a skip, keep their verdicts.
func (rep *Report) interrupt(parent context.Context) {
	if parent.Err() == nil || rep.judgedWhole || rep.Verdict == Skip || rep.Verdict == Interrupted {
		return
	}
	rep.Verdict, rep.Reason = Interrupted, InterruptReason(parent)
}

// InterruptReason says why parent ended: "interrupted by signal:
// interrupt signal received" for a context of signal.NotifyContext.
func InterruptReason(parent context.Context) string {
	cause := context.Cause(parent)
	if cause != nil && !errors.Is(cause, context.DeadlineExceeded) && cause.Error() != context.Canceled.Error() {
		return "interrupted by signal: " + cause.Error()
	}
	return "interrupted: " + parent.Err().Error()
}

package container

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/jobsim/jobsim/sim/control"
)

// healthStrategy is the readiness of a job-host container: its control
// API's GET /v1/health (with the bearer token) answers OK, which the host
// only does once an ssh command ran through its executor and qstat got an
// answer from its PBS server. It polls the control port where the Reach
// says (127.0.0.1 locally) rather than wait.ForHTTP's address:
// testcontainers-go, when it runs inside a container itself (as in CI
// here), addresses the engine's gateway, where a loopback-only port
// mapping cannot be reached.
type healthStrategy struct {
	// client is the control API's client, once the port is known.
	client  func(context.Context, wait.StrategyTarget) (*control.Client, error)
	every   time.Duration
	timeout time.Duration
}

var _ wait.Strategy = (*healthStrategy)(nil)
var _ wait.StrategyTimeout = (*healthStrategy)(nil)

// Timeout implements wait.StrategyTimeout.
func (s *healthStrategy) Timeout() *time.Duration { return &s.timeout }

// WaitUntilReady implements wait.Strategy. A container that exits fails
// at once.
func (s *healthStrategy) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var last error
	for {
		hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
		cl, err := s.client(hctx, target)
		if err == nil {
			var h control.Health
			h, err = cl.Health(hctx)
			if err == nil && !h.OK {
				err = fmt.Errorf("not healthy: %+v", h.Checks)
			}
		}
		hcancel()
		if err == nil {
			return nil
		}
		last = err
		if st, err := target.State(ctx); err == nil && !st.Running {
			return fmt.Errorf("container %s (exit code %d) before it became healthy", st.Status, st.ExitCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy within %s: %w", s.timeout, last)
		case <-time.After(s.every):
		}
	}
}

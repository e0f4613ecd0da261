package batchserver

import (
	"context"
	"sync"
	"time"

	"github.com/jobsim/jobsim/base/clock"
)

// Detach is the context a server runs in once ctx, which is for its start
// only (as with net.ListenConfig.Listen), has let it start: it keeps ctx's
// values but not its end, and ends with the returned cancel (at Close).
func Detach(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return run, cancel, nil
}

// After runs f on cl after d, counted in wg (the server's goroutines, which
// Close waits for); the returned func cancels it.
func After(cl clock.Clock, wg *sync.WaitGroup, d time.Duration, f func()) (stop func()) {
	wg.Add(1)
	var once sync.Once
	done := func() { once.Do(wg.Done) }
	st := cl.AfterFunc(d, func() { defer done(); f() })
	return func() {
		if st() {
			done()
		}
	}
}

// Package clock gives the simulated job host and the PBS server their sense
// of time: the real clock, or a virtual one that jumps to the next event as
// soon as every simulated actor is waiting, so that a simulated day of
// queueing and running takes well under a second.
package clock

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Clock is the time source of a host. Everything on a host that waits (job
// scripts sleeping, walltime limits, start times, injected latency) waits
// through its Clock so that a virtual clock can skip the wait.
type Clock interface {
	// Now is the current time on this clock.
	Now() time.Time
	// Sleep waits d or until ctx ends, returning ctx.Err() in that case.
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc runs f in its own goroutine once d has passed. stop cancels
	// it and reports whether it did so before f started.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
	// Go runs f in a new goroutine counted as a simulated actor: a virtual
	// clock does not advance while f is running, only while it sleeps
	// through this clock with the context it was given.
	Go(ctx context.Context, f func(ctx context.Context))
	// Hold marks the caller busy until release is called: a virtual clock
	// does not advance in between. Use it around work driven from outside
	// the simulation (a test submitting jobs, an ssh command). Real: no-op.
	Hold() (release func())
}

// Real is the wall clock.
type Real struct{}

// Now implements Clock.
func (Real) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AfterFunc implements Clock.
func (Real) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Go implements Clock.
func (Real) Go(ctx context.Context, f func(context.Context)) { go f(ctx) }

// Hold implements Clock.
func (Real) Hold() func() { return func() {} }

type actorKey struct{}

// Virtual is a simulated clock. Time moves only by Advance, or, with
// AutoAdvance, by jumping to the earliest pending wait whenever no actor is
// running (every actor is sleeping on this clock and nobody holds it).
type Virtual struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	busy    int
	seq     uint64
	waiters waitHeap
	idle    *sync.Cond
	// sleeping are the waits of Sleep calls, whose contexts can end: the
	// clock does not jump while one of them has ended but its sleeper has
	// not yet woken, or a killed sleeper would seem to end late.
	sleeping map[*waiter]struct{}
}

// VirtualOption configures a Virtual clock.
type VirtualOption func(*Virtual)

// AutoAdvance makes the clock jump to the next pending wait as soon as no
// actor is running.
func AutoAdvance() VirtualOption { return func(v *Virtual) { v.auto = true } }

// NewVirtual returns a virtual clock reading start.
func NewVirtual(start time.Time, opts ...VirtualOption) *Virtual {
	v := &Virtual{now: start, sleeping: map[*waiter]struct{}{}}
	v.idle = sync.NewCond(&v.mu)
	for _, o := range opts {
		o(v)
	}
	return v
}

type waiter struct {
	ctx   context.Context // Sleep's context; nil for AfterFunc
	at    time.Time
	seq   uint64
	index int
	fire  func() // called with v.mu held, after busy was raised for the woken actor
	done  bool
}

type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h waitHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *waitHeap) Push(x any)   { w := x.(*waiter); w.index = len(*h); *h = append(*h, w) }
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	w.index = -1
	return w
}
func (h waitHeap) peek() *waiter { return h[0] }

// Now implements Clock.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

func (v *Virtual) add(d time.Duration, fire func()) *waiter {
	v.seq++
	w := &waiter{at: v.now.Add(d), seq: v.seq, fire: fire}
	heap.Push(&v.waiters, w)
	return w
}

func (v *Virtual) remove(w *waiter) bool {
	if w.done || w.index < 0 {
		return false
	}
	heap.Remove(&v.waiters, w.index)
	w.done = true
	delete(v.sleeping, w)
	return true
}

// Sleep implements Clock. Called with the context given by Go, the caller
// stops counting as running while it sleeps.
func (v *Virtual) Sleep(ctx context.Context, d time.Duration) error {
	actor := ctx.Value(actorKey{}) == v
	if d <= 0 {
		return ctx.Err()
	}
	woke := make(chan struct{})
	v.mu.Lock()
	w := v.add(d, func() { close(woke) })
	w.ctx = ctx
	if ctx.Done() != nil {
		v.sleeping[w] = struct{}{}
	}
	if actor {
		v.busy--
	}
	v.maybeAdvance()
	v.mu.Unlock()
	select {
	case <-woke:
		// The clock raised busy on our behalf when it fired.
		if !actor {
			v.release()
		}
		return nil
	case <-ctx.Done():
		v.mu.Lock()
		if v.remove(w) {
			if actor {
				v.busy++
			}
			v.maybeAdvance() // it may have held back for this wait
			v.mu.Unlock()
			return ctx.Err()
		}
		v.mu.Unlock()
		<-woke // fired concurrently: busy was raised for us
		if !actor {
			v.release()
		}
		return ctx.Err()
	}
}

// AfterFunc implements Clock. f runs as an actor.
func (v *Virtual) AfterFunc(d time.Duration, f func()) func() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	w := v.add(d, func() {
		go func() {
			defer v.release()
			f()
		}()
	})
	v.maybeAdvance()
	return func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.remove(w)
	}
}

// Go implements Clock.
func (v *Virtual) Go(ctx context.Context, f func(context.Context)) {
	v.mu.Lock()
	v.busy++
	v.mu.Unlock()
	go func() {
		defer v.release()
		f(context.WithValue(ctx, actorKey{}, v))
	}()
}

// Hold implements Clock.
func (v *Virtual) Hold() func() {
	v.mu.Lock()
	v.busy++
	v.mu.Unlock()
	var once sync.Once
	return func() { once.Do(v.release) }
}

func (v *Virtual) release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.busy--
	v.maybeAdvance()
}

// maybeAdvance jumps to the next wait when nobody runs. Called with v.mu held.
func (v *Virtual) maybeAdvance() {
	if v.busy == 0 && len(v.waiters) == 0 {
		v.idle.Broadcast()
	}
	if !v.auto || v.busy > 0 || len(v.waiters) == 0 {
		return
	}
	for w := range v.sleeping {
		if w.ctx.Err() != nil {
			return // its sleeper is waking; it re-runs this when it has
		}
	}
	v.fireUntil(v.waiters.peek().at)
}

// fireUntil moves the clock to t and wakes every wait due by then.
func (v *Virtual) fireUntil(t time.Time) {
	if t.After(v.now) {
		v.now = t
	}
	for len(v.waiters) > 0 && !v.waiters.peek().at.After(v.now) {
		w := heap.Pop(&v.waiters).(*waiter)
		w.done = true
		delete(v.sleeping, w)
		v.busy++
		w.fire()
	}
}

// Advance moves the clock forward by d, waking every wait due by then.
func (v *Virtual) Advance(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fireUntil(v.now.Add(d))
}

// Pending reports how many waits are scheduled.
func (v *Virtual) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.waiters)
}

// WaitIdle blocks until no actor runs and nothing is scheduled, or ctx ends.
func (v *Virtual) WaitIdle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		v.mu.Lock()
		v.idle.Broadcast()
		v.mu.Unlock()
	})
	defer stop()
	v.mu.Lock()
	defer v.mu.Unlock()
	for v.busy > 0 || len(v.waiters) > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v.idle.Wait()
	}
	return nil
}

// Idle marks the caller as not running while it blocks on something other
// than the clock (a channel another actor will close): a virtual clock may
// then advance as if the caller slept. It applies only when ctx is an
// actor's context from c.Go; otherwise, and on the real clock, it does
// nothing. Call resume when the wait is over. The clock may move on
// between the closing of what the caller waited for and resume: the caller
// then resumes a little later in simulated time than it was woken.
func Idle(ctx context.Context, c Clock) (resume func()) {
	v, ok := c.(*Virtual)
	if !ok || ctx.Value(actorKey{}) != v {
		return func() {}
	}
	v.release()
	var once sync.Once
	return func() {
		once.Do(func() {
			v.mu.Lock()
			v.busy++
			v.mu.Unlock()
		})
	}
}

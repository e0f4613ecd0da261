package clock

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testutil"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestVirtualAutoAdvanceRunsSimulatedHoursAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := NewVirtual(epoch, AutoAdvance())
	release := v.Hold() // nothing moves while we set up
	var mu sync.Mutex
	var order []int
	for i := 1; i <= 100; i++ {
		v.Go(ctx, func(ctx context.Context) {
			if err := v.Sleep(ctx, time.Duration(i)*time.Hour); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, i)
			if got, want := v.Now(), epoch.Add(time.Duration(i)*time.Hour); !got.Equal(want) {
				t.Errorf("actor %d woke at %v, want %v", i, got, want)
			}
			mu.Unlock()
		})
	}
	release()
	if err := v.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if len(order) != 100 {
		t.Fatalf("%d actors finished, want 100", len(order))
	}
	for i, n := range order {
		if n != i+1 {
			t.Fatalf("actors woke in order %v", order)
		}
	}
	if got := v.Now(); !got.Equal(epoch.Add(100 * time.Hour)) {
		t.Fatalf("clock at %v after the last actor", got)
	}
}

func TestVirtualDoesNotAdvanceWhileHeld(t *testing.T) {
	v := NewVirtual(epoch, AutoAdvance())
	release := v.Hold()
	fired := make(chan struct{})
	v.AfterFunc(time.Minute, func() { close(fired) })
	select {
	case <-fired:
		t.Fatal("timer fired while the clock was held")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire after release")
	}
	if !v.Now().Equal(epoch.Add(time.Minute)) {
		t.Fatalf("now %v", v.Now())
	}
}

func TestVirtualManualAdvanceAndStop(t *testing.T) {
	v := NewVirtual(epoch)
	var ran []string
	var mu sync.Mutex
	done := make(chan struct{}, 2)
	v.AfterFunc(2*time.Second, func() { mu.Lock(); ran = append(ran, "b"); mu.Unlock(); done <- struct{}{} })
	stop := v.AfterFunc(time.Second, func() { mu.Lock(); ran = append(ran, "a"); mu.Unlock(); done <- struct{}{} })
	if !stop() {
		t.Fatal("stop before firing reported false")
	}
	v.Advance(time.Second)
	if v.Pending() != 1 {
		t.Fatalf("pending %d after 1s", v.Pending())
	}
	v.Advance(time.Second)
	<-done
	if len(ran) != 1 || ran[0] != "b" {
		t.Fatalf("ran %v, want only b", ran)
	}
}

func TestVirtualSleepCancelled(t *testing.T) {
	v := NewVirtual(epoch)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- v.Sleep(ctx, time.Hour) }()
	testutil.WaitFor(t, "the sleeper to register", 10*time.Second, func() bool { return v.Pending() != 0 })
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("Sleep returned %v, want context.Canceled", err)
	}
	if v.Pending() != 0 {
		t.Fatal("cancelled sleep left a pending wait")
	}
}

func TestRealSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := (Real{}).Sleep(ctx, time.Hour); err != context.DeadlineExceeded {
		t.Fatalf("got %v", err)
	}
}

// A sleeper killed through its context must wake at the time it was killed,
// even when its killer releases the clock at once (a qdel of a sleeping job).
func TestVirtualCancelledSleeperWakesBeforeTheClockJumps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 200; i++ {
		v := NewVirtual(epoch, AutoAdvance())
		release := v.Hold()
		v.AfterFunc(time.Hour, func() {}) // a later event the clock could jump to
		jobCtx, kill := context.WithCancel(ctx)
		woke := make(chan time.Time, 1)
		v.Go(jobCtx, func(ctx context.Context) {
			_ = v.Sleep(ctx, 2*time.Hour)
			woke <- v.Now()
		})
		testutil.WaitFor(t, "both sleepers to register", 10*time.Second, func() bool { return v.Pending() >= 2 })
		kill()
		release()
		if got := <-woke; !got.Equal(epoch) {
			t.Fatalf("run %d: the killed sleeper woke at +%v, want +0", i, got.Sub(epoch))
		}
		if err := v.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// An actor waiting on a channel that another actor closes later in
// simulated time must not stop the clock from getting there.
func TestIdleActorLetsTheClockReachItsWaker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := NewVirtual(epoch, AutoAdvance())
	release := v.Hold()
	done := make(chan struct{})
	woke := make(chan time.Time, 1)
	v.Go(ctx, func(ctx context.Context) {
		_ = v.Sleep(ctx, time.Hour)
		close(done)
	})
	v.Go(ctx, func(ctx context.Context) {
		resume := Idle(ctx, v)
		<-done
		resume()
		woke <- v.Now()
	})
	release()
	select {
	case got := <-woke:
		if got.Before(epoch.Add(time.Hour)) {
			t.Fatalf("woke at +%v, before its waker could run", got.Sub(epoch))
		}
	case <-ctx.Done():
		t.Fatal("the clock stalled while an actor waited on a channel")
	}
	if err := v.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

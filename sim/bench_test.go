package sim_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/clock"
	"github.com/jobsim/jobsim/sim"
)

// rssBytes reads this process's resident set size.
func rssBytes(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status to read the resident size from")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) * 1024
		}
	}
	return 0
}

// BenchmarkThousandVirtualHosts starts 1,000 virtual hosts with PBS in one
// process, each healthy (its health check ran a command over ssh and
// qstat), and reports the wall time to start them all and the resident
// memory with all of them up. Aim: under 5 s and under 1 GiB.
func BenchmarkThousandVirtualHosts(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		runtime.GC()
		before := rssBytes(b)
		hosts := make([]*sim.Host, n)
		errs := make([]error, n)
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4*runtime.NumCPU())
		for j := range hosts {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				hosts[j], errs[j] = sim.NewHost(ctx, sim.WithName("vh"+strconv.Itoa(j)), sim.WithUsers("alice"), sim.WithPBS(),
					sim.WithClock(clock.NewVirtual(time.Now(), clock.AutoAdvance())))
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		after := rssBytes(b)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(elapsed.Seconds(), "s/1000hosts")
		b.ReportMetric(after/(1<<20), "MiB-rss")
		b.ReportMetric((after-before)/n/1024, "KiB-rss/host")
		for _, h := range hosts {
			h.Close()
		}
		cancel()
	}
}

package htmlreport_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/htmlreport"
)

// BenchmarkWriteScenario draws a large run: 20 tasks and 20 jobs through
// their states, 2,000 ssh and PBS calls, a fault firing 500 times (about
// 3,000 events; a shipped gate scenario records 100 to 300). Reported:
// ms per page and the page's size.
func BenchmarkWriteScenario(b *testing.B) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var evs []events.Event
	seq := int64(0)
	add := func(sec float64, kind events.Kind, msg string, f map[string]any) {
		seq++
		evs = append(evs, events.Event{Seq: seq, Time: t0.Add(time.Duration(sec * float64(time.Second))), Kind: kind, Host: "fakehpc", Msg: msg, Fields: f})
	}
	add(1, events.FaultAdded, "lib fs errno", map[string]any{"rule": map[string]any{"id": "lib"}})
	for i := 0; i < 20; i++ {
		task, job := fmt.Sprintf("1/t%02d", i), fmt.Sprintf("%d.fakehpc", i+1)
		for k, st := range []string{"preparing", "submitted", "running", "succeeded"} {
			add(float64(i*10+k*3), "cylc.task", task+" → "+st, map[string]any{"task": task, "state": st})
		}
		for k, st := range []string{"Q", "R", "E", "F"} {
			add(float64(i*10+k*3+1), events.PBSJobState, job+" -> "+st, map[string]any{"job": job, "to": st})
		}
	}
	for i := 0; i < 2000; i++ {
		add(float64(i)/10, events.SSHExec, `exec "cylc jobs-poll" by alice: exit 0`, map[string]any{"exit": i % 7})
	}
	for i := 0; i < 500; i++ {
		add(50+float64(i)/10, events.FaultActivate, "lib fired on fs readdir /opt/cylc/lib", map[string]any{"rule": "lib"})
	}
	add(120, events.FaultCleared, "lib", map[string]any{"id": "lib"})
	s := htmlreport.Scenario{Name: "big", Verdict: "pass", Started: t0, Duration: 210 * time.Second, Events: evs,
		Results: []htmlreport.Result{{ID: "all-succeed", OK: true, Detail: "20 of 20"}}}
	var size int
	b.ResetTimer()
	for b.Loop() {
		w := &countWriter{}
		if err := htmlreport.WriteScenario(w, s); err != nil {
			b.Fatal(err)
		}
		size = w.n
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
	b.ReportMetric(float64(size)/1024, "KiB/page")
	b.ReportMetric(float64(len(evs)), "events")
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

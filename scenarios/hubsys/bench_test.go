package hubsys

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/jobsim/jobsim/base/events"
	"github.com/jobsim/jobsim/scenarios/runner"
)

// BenchmarkSpawnerLife runs each spawner's life scenario (several users
// started at once, ready, stopped) and reports, from the recorded history,
// the hub's start (launch to API answering), a server's spawn request to
// ready, and its stop request to stopped, averaged over users and runs.
//
//	go test -run '^$' -bench SpawnerLife -benchtime 3x ./scenarios/hubsys
func BenchmarkSpawnerLife(b *testing.B) {
	cases := []struct {
		name, file string
		backend    func(testing.TB) runner.Backend
		opts       []Option
	}{
		{"local", "local-three-users.yaml", func(testing.TB) runner.Backend { return noHosts{} }, nil},
		{"local-unix", "local-unix-three-users.yaml", func(testing.TB) runner.Backend { return noHosts{} }, nil},
		{"batch-pbs", "batch-pbs-life.yaml", hostBackend, nil},
		{"batch-pbs-stand-in", "batch-pbs-life.yaml", hostBackend, []Option{WithStandIns()}},
		{"ssh", "ssh-life.yaml", hostBackend, nil},
		{"ssh-nersc", "ssh-nersc-life.yaml", hostBackend, nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			needHub(b)
			var start, spawn, stop stat
			for b.Loop() {
				rep := runScenario(b, c.backend(b), c.file, c.opts...)
				for _, ev := range readEvents(b, filepath.Join(rep.Dir, "events.jsonl")) {
					switch {
					case ev.Kind == LifecycleEvent && ev.Fields["state"] == "started":
						start.add(ev.Fields["startup_seconds"])
					case ev.Kind == ServerState && ev.Fields["state"] == StateReady:
						spawn.add(ev.Fields["since_spawn_seconds"])
					case ev.Kind == ServerState && ev.Fields["state"] == StateStopped:
						stop.add(ev.Fields["since_stop_seconds"])
					}
				}
			}
			b.ReportMetric(start.mean()*1000, "hub-start-ms")
			b.ReportMetric(spawn.mean()*1000, "spawn-ready-ms")
			b.ReportMetric(stop.mean()*1000, "stop-ms")
		})
	}
}

type stat struct {
	sum float64
	n   int
}

func (s *stat) add(v any) {
	if f, ok := v.(float64); ok {
		s.sum += f
		s.n++
	}
}

func (s *stat) mean() float64 {
	if s.n == 0 {
		return 0
	}
	return s.sum / float64(s.n)
}

func readEvents(tb testing.TB, path string) []events.Event {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []events.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev events.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out = append(out, ev)
	}
	return out
}

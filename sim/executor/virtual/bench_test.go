package virtual_test

import (
	"context"
	"io"
	"testing"

	"github.com/jobsim/jobsim/sim/executor"
)

// script20 is a 20-line job-like script: variables, a function, a loop,
// a pipeline, file writes and reads on the host filesystem.
const script20 = `set -e
name=job$$
dir=$HOME/work
mkdir -p "$dir"
cd "$dir"
log() { echo "[$(date +%s)] $*" >> run.log; }
log start
for i in 1 2 3 4 5; do
  echo "line $i" >> data.txt
done
count=$(wc -l < data.txt)
if [ "$count" -ge 5 ]; then
  log "count ok: $count"
fi
grep -c line data.txt > /dev/null
sort -r data.txt | head -n 2 > top.txt
test -s top.txt
log done
rm -f data.txt top.txt run.log
echo "$name finished"`

func benchScript(b *testing.B, script string) {
	e := newExec(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := e.Start(ctx, executor.Command{User: "alice", Script: script, Stdout: io.Discard, Stderr: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		if st := p.Wait(); st.Code != 0 {
			b.Fatalf("status %+v", st)
		}
	}
}

// BenchmarkVirtualTrue is the cost of one virtual command: Start, `true`, Wait.
func BenchmarkVirtualTrue(b *testing.B) { benchScript(b, "true") }

// BenchmarkVirtualScript20 runs a 20-line script per op.
func BenchmarkVirtualScript20(b *testing.B) { benchScript(b, script20) }

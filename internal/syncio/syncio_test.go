package syncio

import (
	"strings"
	"sync"
	"testing"
)

// halves is a destination that sees a write in two halves, as a writer
// without the lock would let another goroutine's write fall between.
type halves struct{ b strings.Builder }

func (h *halves) Write(p []byte) (int, error) {
	n := len(p) / 2
	h.b.Write(p[:n])
	h.b.Write(p[n:])
	return len(p), nil
}

// Concurrent writes through a Writer arrive whole, and a Buffer's reads
// see every write.
func TestWritesArriveWhole(t *testing.T) {
	h := &halves{}
	w := &Writer{W: h}
	var buf Buffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_, _ = w.Write([]byte("abcdef\n"))
				_, _ = buf.Write([]byte("x"))
				_ = buf.String()
			}
		}()
	}
	wg.Wait()
	for _, line := range strings.Split(strings.TrimSuffix(h.b.String(), "\n"), "\n") {
		if line != "abcdef" {
			t.Fatalf("a write arrived split: %q", line)
		}
	}
	if got := len(buf.Bytes()); got != 800 {
		t.Fatalf("buffer holds %d bytes, want 800", got)
	}
}

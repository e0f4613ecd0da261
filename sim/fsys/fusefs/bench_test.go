package fusefs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jobsim/jobsim/base/fault"
)

// BenchmarkMount measures a stat and an open-read-close of a small file
// through the mount (no rules, 10 rules that do not select the file) against
// the backing directory directly:
//
//	go test -run '^$' -bench Mount ./sim/fsys/fusefs/
func BenchmarkMount(b *testing.B) {
	if err := Available(); err != nil {
		b.Skipf("%v", err)
	}
	backing, mp := b.TempDir(), b.TempDir()
	if err := os.WriteFile(filepath.Join(backing, "f"), []byte("data\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	set := fault.NewSet()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs, err := Mount(ctx, backing, mp, set)
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Unmount()
	buf := make([]byte, 64)
	ops := map[string]func(p string) error{
		"stat": func(p string) error { _, err := os.Stat(p); return err },
		"open-read-close": func(p string) error {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = f.Read(buf)
			f.Close()
			return err
		},
	}
	for _, op := range []string{"stat", "open-read-close"} {
		b.Run(op+"/direct", func(b *testing.B) {
			for b.Loop() {
				if err := ops[op](filepath.Join(backing, "f")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(op+"/mount-no-rules", func(b *testing.B) {
			set.Clear()
			for b.Loop() {
				if err := ops[op](filepath.Join(mp, "f")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(op+"/mount-10-other-rules", func(b *testing.B) {
			set.Clear()
			for i := range 10 {
				if _, err := set.Add(fault.Rule{Layer: fault.FS, Path: fmt.Sprintf("/elsewhere/%d/**", i),
					Effect: fault.Effect{Kind: fault.Errno, Errno: "EIO"}}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if err := ops[op](filepath.Join(mp, "f")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

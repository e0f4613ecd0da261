package fsys

import (
	"fmt"
	"io"
	"testing"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/fault"
)

// BenchmarkOverhead measures the fault layer against the bare filesystem, on
// memory and on disk (RootFs), with no rules and with 10 rules that do not
// select the paths used:
//
//	go test -run '^$' -bench Overhead -benchmem ./sim/fsys/
func BenchmarkOverhead(b *testing.B) {
	bases := map[string]func(b *testing.B) afero.Fs{
		"mem": func(b *testing.B) afero.Fs { return afero.NewMemMapFs() },
		"disk": func(b *testing.B) afero.Fs {
			r, err := NewRootFs(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close() })
			return r
		},
	}
	type variant struct {
		name string
		wrap func(afero.Fs) afero.Fs
	}
	variants := []variant{
		{"bare", func(f afero.Fs) afero.Fs { return f }},
		{"no-rules", func(f afero.Fs) afero.Fs { return WithFaults(f, fault.NewSet()) }},
		{"10-other-rules", func(f afero.Fs) afero.Fs {
			set := fault.NewSet()
			for i := range 10 {
				if _, err := set.Add(errnoRule("EIO", fmt.Sprintf("/elsewhere/%d/**", i), "open", "read", "stat", "readdir")); err != nil {
					panic(err)
				}
			}
			return WithFaults(f, set)
		}},
	}
	ops := []struct {
		name string
		do   func(fsys afero.Fs, buf []byte) error
	}{
		{"stat", func(fsys afero.Fs, _ []byte) error { _, err := fsys.Stat("/d/sub/x.py"); return err }},
		{"open-read-close", func(fsys afero.Fs, buf []byte) error {
			f, err := fsys.Open("/d/sub/x.py")
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Read(buf)
			if err == io.EOF {
				err = nil
			}
			return err
		}},
		{"readdir", func(fsys afero.Fs, _ []byte) error { _, err := afero.ReadDir(fsys, "/d"); return err }},
	}
	for _, bn := range []string{"mem", "disk"} {
		for _, op := range ops {
			for _, v := range variants {
				b.Run(bn+"/"+op.name+"/"+v.name, func(b *testing.B) {
					base := bases[bn](b)
					tree(b, base)
					fsys := v.wrap(base)
					buf := make([]byte, 64)
					b.ReportAllocs()
					for b.Loop() {
						if err := op.do(fsys, buf); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

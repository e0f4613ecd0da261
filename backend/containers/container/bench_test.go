package container_test

import (
	"context"
	"testing"
	"time"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/internal/testenv"
	"github.com/jobsim/jobsim/fakepbs"
)

// BenchmarkRunToHealthy measures container.Run, from the call to a passing
// health check (ssh ran a command, qstat answered), for a PBS host with a
// FUSE fault mount and the Cylc overlay copied in, per userland. The
// container's removal is not timed.
//
//	go test -run '^$' -bench RunToHealthy -benchtime 10x ./e2e/
func BenchmarkRunToHealthy(b *testing.B) {
	if noImageWhy != "" {
		b.Skip(noImageWhy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for _, u := range []image.Userland{image.BindMounts, image.RootFS} {
		b.Run(string(u), func(b *testing.B) {
			img := testImage
			if u != testImage.Userland {
				bin, err := testenv.Jobsim(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				opts := []image.Option{image.WithJobsimBinary(bin), image.WithUserland(u)}
				if ov := testenv.CylcOverlay(); ov != "" {
					opts = append(opts, image.WithCylcOverlay(ov))
				}
				if img, err = image.Build(ctx, opts...); err != nil {
					b.Fatal(err)
				}
			}
			opts := []container.Option{container.WithImage(img), container.WithUsers("alice"), container.WithPBS(fakepbs.Config{}), container.WithFaultMounts("/opt/lib")}
			if img.Overlay {
				opts = append(opts, container.WithCylc("/opt/cylc"))
			}
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := container.Run(ctx, opts...)
				if err != nil {
					b.Fatal(err)
				}
				total += c.StartedIn()
				b.StopTimer()
				if err := c.Close(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/healthy")
		})
	}
}

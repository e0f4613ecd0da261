package image_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/jobsim/jobsim/backend/containers/container"
	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/internal/testenv"
)

// BenchmarkBuild measures building the job-host image for each userland:
// cold (the engine has no such image: the image is removed first) and
// cached (found by its content-hash tag). Run with -benchtime 1x: a cold
// rootfs build takes a while.
//
//	go test -run '^$' -bench Build -benchtime 1x ./backend/containers/image/
func BenchmarkBuild(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := container.DockerAvailable(ctx); err != nil {
		b.Skipf("no Docker engine: %v", err)
	}
	dir := b.TempDir()
	bin, err := testenv.Jobsim(dir)
	if err != nil {
		b.Fatal(err)
	}
	base := []image.Option{image.WithJobsimBinary(bin), image.WithoutPrune()}
	if ov := testenv.CylcOverlay(); ov != "" {
		base = append(base, image.WithCylcOverlay(ov))
	}
	dc, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	for _, u := range []image.Userland{image.BindMounts, image.RootFS} {
		opts := append(base, image.WithUserland(u))
		b.Run(string(u)+"/cold", func(b *testing.B) {
			var last image.Image
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if img, err := image.Build(ctx, opts...); err == nil {
					_, _ = dc.ImageRemove(ctx, img.Ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
				}
				b.StartTimer()
				img, err := image.Build(ctx, opts...)
				if err != nil {
					b.Fatal(err)
				}
				if !img.Built {
					b.Fatal("a cold build found the image")
				}
				last = img
			}
			b.ReportMetric(float64(last.Size)/1e6, "MB")
		})
		b.Run(string(u)+"/cached", func(b *testing.B) {
			if _, err := image.Build(ctx, opts...); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				img, err := image.Build(ctx, opts...)
				if err != nil {
					b.Fatal(err)
				}
				if img.Built {
					b.Fatal("a cached build rebuilt the image")
				}
			}
		})
	}
	_ = os.Getenv
}

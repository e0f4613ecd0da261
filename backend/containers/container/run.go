// Package e2e runs fake job hosts as containers with testcontainers-go,
// with no registry: the image is built locally (package backend/containers/image), Ryuk is
// never started, and every container and network is labelled with the run
// that made it, removed when the run ends, and found by Sweep after a run
// that crashed.
//
// Run starts one job host, in the style of a testcontainers module:
//
//	img, _ := image.Build(ctx, image.WithJobsimBinary("bin/jobsim"))
//	c, err := container.Run(ctx, container.WithImage(img), container.WithUsers("alice"), container.WithPBS(fakepbs.Config{}))
//	defer c.Close(ctx)
//	ssh -i $(c.KeyFile("alice")) -p <port of c.SSHAddr()> alice@127.0.0.1 qstat
//
// Readiness is the host's own health (GET /v1/health with the bearer
// token), which proves that ssh runs a command and PBS answers, not that a
// port is open. Packages backend/containers/cluster (a login node and compute nodes on a
// private network) and backend/containers (the scenario runner's "containers"
// backend) build on it.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/jobsim/jobsim/backend/containers/internal/tcenv"
)

// Labels on every container and network this package creates.
const (
	// LabelRun names the run (a test, a scenario run, a jobsim up) that
	// created the object; Sweep removes by it.
	LabelRun = "org.jobsim.run"
	// LabelHost is the job host's name (containers).
	LabelHost = "org.jobsim.host"
	// LabelRole is host, login or compute (containers).
	LabelRole = "org.jobsim.role"
	// LabelPID is the process that created the object, for sweeping the
	// leftovers of dead processes.
	LabelPID = "org.jobsim.pid"
)

// NewRunID returns a fresh run id: jobsim-<8 hex digits>.
func NewRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "jobsim-" + hex.EncodeToString(b)
}

func disableRyuk() { tcenv.DisableRyuk() }

// slogLogger adapts slog to testcontainers' Printf logger (at debug level:
// its chatter is for when things go wrong).
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(format string, v ...any) {
	s.l.Debug("testcontainers: " + fmt.Sprintf(format, v...))
}

func tcLogger(l *slog.Logger) tclog.Logger { return slogLogger{l: l} }

// dockerClient returns an engine client from the environment (DOCKER_HOST
// or the default socket), API version negotiated.
func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	disableRyuk()
	dc, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	return dc, nil
}

// DockerAvailable reports why no Docker engine can be used (nil when one
// answers within a few seconds).
func DockerAvailable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dc, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer dc.Close()
	if _, err := dc.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker engine does not answer: %w", err)
	}
	return nil
}

// SweepReport says what Sweep removed.
type SweepReport struct {
	Containers []string
	Networks   []string
}

// Sweep removes the containers and networks labelled with run ("" for
// every run whose creating process is gone, the leftovers of crashed runs).
// ctx bounds it.
func Sweep(ctx context.Context, run string) (SweepReport, error) {
	var rep SweepReport
	dc, err := dockerClient(ctx)
	if err != nil {
		return rep, err
	}
	defer dc.Close()
	f := make(client.Filters)
	if run != "" {
		f.Add("label", LabelRun+"="+run)
	} else {
		f.Add("label", LabelRun)
	}
	cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return rep, fmt.Errorf("sweep: list containers: %w", err)
	}
	var errs []error
	for _, c := range cs.Items {
		if run == "" && processAlive(c.Labels[LabelPID]) {
			continue
		}
		if _, err := dc.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
			continue
		}
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		rep.Containers = append(rep.Containers, name)
	}
	ns, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("sweep: list networks: %w", err))...)
	}
	for _, n := range ns.Items {
		if run == "" && processAlive(n.Labels[LabelPID]) {
			continue
		}
		if _, err := dc.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		rep.Networks = append(rep.Networks, n.Name)
	}
	return rep, errors.Join(errs...)
}

// Object is a container, network or image jobsim made.
type Object struct {
	Kind string // container, network or image
	Name string
	Run  string // the org.jobsim.run label (none on images)
	// State is a container's status ("Up 3 seconds", "Exited (137)"), an
	// image's size.
	State string
}

// List returns every container and network labelled by any run, and the
// cached job-host images, without removing anything. ctx bounds it.
func List(ctx context.Context) ([]Object, error) {
	dc, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	f := make(client.Filters).Add("label", LabelRun)
	cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []Object
	for _, c := range cs.Items {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Object{Kind: "container", Name: name, Run: c.Labels[LabelRun], State: c.Status})
	}
	ns, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns.Items {
		out = append(out, Object{Kind: "network", Name: n.Name, Run: n.Labels[LabelRun]})
	}
	ims, err := dc.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", "org.jobsim.image")})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	for _, im := range ims.Items {
		for _, tag := range im.RepoTags {
			out = append(out, Object{Kind: "image", Name: tag, State: fmt.Sprintf("%d MB", im.Size/1_000_000)})
		}
	}
	return out, nil
}

// processAlive reports whether the process with this pid (as a label
// value) still runs on this machine.
func processAlive(pid string) bool {
	if pid == "" {
		return false
	}
	_, err := os.Stat("/proc/" + pid)
	return err == nil
}

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
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/jobsim/jobsim/backend/containers/image"
	"github.com/jobsim/jobsim/backend/containers/internal/tcenv"
	"github.com/jobsim/jobsim/internal/runreg"
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
	// LabelPID is the process that created the object (for people reading
	// docker ps; pids are reused, so nothing is removed by it).
	LabelPID = "org.jobsim.pid"
	// LabelOwner is the id of the jobsim run (package internal/runreg)
	// whose process created the object, when it was created under one
	// ($JOBSIM_RUN): the watcher and `jobsim sweep` remove the objects of
	// a run whose lock is free.
	LabelOwner = "org.jobsim.owner"
)

// RunLabels are the labels of every container and network of run: the
// run, the creating process, and the owning jobsim run if there is one.
func RunLabels(run string) map[string]string {
	l := map[string]string{LabelRun: run, LabelPID: strconv.Itoa(os.Getpid())}
	if owner := os.Getenv(runreg.EnvVar); owner != "" {
		l[LabelOwner] = owner
	}
	return l
}

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

// Sweep removes the containers and networks labelled with run (LabelRun,
// one topology or container). ctx bounds it.
func Sweep(ctx context.Context, run string) (SweepReport, error) {
	if run == "" {
		return SweepReport{}, errors.New("sweep: no run named")
	}
	return sweepLabel(ctx, LabelRun+"="+run)
}

// SweepOwner removes the containers and networks owned by the jobsim run
// owner (LabelOwner). ctx bounds it.
func SweepOwner(ctx context.Context, owner string) (SweepReport, error) {
	if owner == "" {
		return SweepReport{}, errors.New("sweep: no owner named")
	}
	return sweepLabel(ctx, LabelOwner+"="+owner)
}

func sweepLabel(ctx context.Context, label string) (SweepReport, error) {
	var rep SweepReport
	dc, err := dockerClient(ctx)
	if err != nil {
		return rep, err
	}
	defer dc.Close()
	f := make(client.Filters).Add("label", label)
	cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return rep, fmt.Errorf("sweep: list containers: %w", err)
	}
	var errs []error
	for _, c := range cs.Items {
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
	// Owner is the org.jobsim.owner label: the jobsim run whose process
	// created it ("" when created outside one, and on images).
	Owner string
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
		out = append(out, Object{Kind: "container", Name: name, Run: c.Labels[LabelRun], Owner: c.Labels[LabelOwner], State: c.Status})
	}
	ns, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns.Items {
		out = append(out, Object{Kind: "network", Name: n.Name, Run: n.Labels[LabelRun], Owner: n.Labels[LabelOwner]})
	}
	ims, err := dc.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", image.LabelImage+"=job-host")})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	for _, im := range ims.Items {
		for _, tag := range im.RepoTags {
			// The label alone is not proof: an image built elsewhere may
			// carry it. jobsim's are named by image.Build.
			if image.IsJobsimRef(tag, im.Labels) {
				out = append(out, Object{Kind: "image", Name: tag, State: fmt.Sprintf("%d MB", im.Size/1_000_000)})
			}
		}
	}
	return out, nil
}

// Package image builds the job-host image locally, with no registry: FROM
// scratch plus the static jobsim binary (the container's entry point,
// `jobsim node`) plus the userland the real executor needs (bash,
// coreutils, rsync, python3, fusermount3, Debian's cylc-flow), and
// optionally the Cylc compatibility overlay that scripts/setup-cylc.sh
// builds. Two ways to provide the userland:
//
//   - BindMounts: the image carries only /etc, the usr-merge symlinks and
//     jobsim; containers bind-mount the test machine's /usr read-only (and
//     /bin, /lib, ... where they are not symlinks). Tiny and quick to build,
//     and the container runs exactly the programs the test machine has.
//   - RootFS: the files of the Debian packages installed on this machine
//     that the userland needs (their Depends closure, from dpkg's file
//     lists) are copied into the image. Self-contained: containers need no
//     bind mount of the test machine.
//
// The image is tagged by a hash of everything that goes into it, so that a
// rerun finds it in the engine and skips the build; Build removes older
// job-host images of the same userland, so one cached image is all a run
// leaves behind.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/jobsim/jobsim/backend/containers/internal/tcenv"
	"github.com/jobsim/jobsim/sim/executor/real"
)

// Userland is how a container gets its programs.
type Userland string

// Userlands.
const (
	BindMounts Userland = "bind"
	RootFS     Userland = "rootfs"
)

// Repo is the repository of job-host images.
const Repo = "jobsim-host"

// Labels on every job-host image.
const (
	LabelImage    = "org.jobsim.image"    // "job-host"
	LabelUserland = "org.jobsim.userland" // bind or rootfs
)

// OverlayPath is where the image keeps the Cylc overlay; nodes copy it to
// the host path a scenario names (`cylc: /opt/cylc`).
const OverlayPath = "/opt/jobsim/cylc"

// BatchspawnerPath is where the image keeps the batchspawner folder that
// scripts/setup-hub.sh installs (the package, and bin/ with
// batchspawner-singleuser, which a batch job of the hub's runs).
const BatchspawnerPath = "/opt/jobsim/spawners/batchspawner"

// BatchspawnerPackages are the Debian packages the RootFS userland adds
// for batchspawner-singleuser (the bind userland has them from the test
// machine's /usr): jupyterhub-singleuser and its jupyter-server, requests.
var BatchspawnerPackages = []string{"jupyterhub", "python3-jupyter-server", "python3-requests"}

// JobsimPath is the jobsim binary in the image.
const JobsimPath = "/opt/jobsim/jobsim"

// formatVersion changes when the image layout changes, so that old cached
// images are not reused.
const formatVersion = "3"

// DefaultPackages are the Debian packages whose files (with their
// dependencies) make the RootFS userland.
var DefaultPackages = []string{"bash", "dash", "coreutils", "debianutils", "util-linux", "hostname", "diffutils", "perl-base", "rsync", "python3", "fuse3", "procps", "findutils", "grep", "sed", "gzip", "tar", "cylc-flow"}

// Image is a built (or found) job-host image.
type Image struct {
	// Ref is the image reference, jobsim-host:<userland>-<hash>.
	Ref      string
	Userland Userland
	// Mounts are the read-only bind mounts containers of this image need
	// (BindMounts): host path to container path.
	Mounts []Mount
	// Overlay says the image carries the Cylc overlay at OverlayPath.
	Overlay bool
	// Batchspawner says the image carries batchspawner at
	// BatchspawnerPath.
	Batchspawner bool
	// Hidden are directories that containers of this image cover with an
	// empty read-only tmpfs: the test machine's own copies of Cylc that the
	// bind-mounted /usr carries (BindMounts with the overlay), which a job
	// host whose Cylc is the overlay must not fall back to (a RootFS image
	// leaves them out instead).
	Hidden []string
	// Built is false when a cached image was found.
	Built bool
	// Took is how long Build took (finding or building).
	Took time.Duration
	// Size is the image size in bytes as the engine reports it.
	Size int64
}

// Mount is one read-only bind mount.
type Mount struct {
	Source, Target string
}

// Option configures Build.
type Option func(*config)

type config struct {
	jobsim   string
	userland Userland
	overlay  string
	batch    string
	packages []string
	buildLog io.Writer
	logger   *slog.Logger
	prune    bool
	docker   client.APIClient
	// machineCylc are the machine's copies of Cylc the userland leaves out
	// (found by Build when the image carries the overlay).
	machineCylc []string
}

// WithJobsimBinary names the static jobsim binary to put in the image
// (default $JOBSIM_BIN).
func WithJobsimBinary(path string) Option { return func(c *config) { c.jobsim = path } }

// WithUserland selects how containers get their programs (default BindMounts).
func WithUserland(u Userland) Option { return func(c *config) { c.userland = u } }

// WithCylcOverlay puts the Cylc overlay directory (bin/cylc finding lib/
// next to it) into the image at OverlayPath.
func WithCylcOverlay(dir string) Option { return func(c *config) { c.overlay = dir } }

// WithBatchspawner puts the batchspawner folder scripts/setup-hub.sh
// installs (its package, and bin/batchspawner-singleuser) into the image
// at BatchspawnerPath, so that a hub's batch job runs the real
// batchspawner-singleuser in a container (RootFS adds
// BatchspawnerPackages for it).
func WithBatchspawner(dir string) Option { return func(c *config) { c.batch = dir } }

// WithPackages replaces DefaultPackages for RootFS.
func WithPackages(pkgs ...string) Option { return func(c *config) { c.packages = pkgs } }

// WithBuildLog receives the engine's build output.
func WithBuildLog(w io.Writer) Option { return func(c *config) { c.buildLog = w } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithoutPrune keeps older job-host images.
func WithoutPrune() Option { return func(c *config) { c.prune = false } }

// WithDockerClient uses this engine client (default: testcontainers'
// client from the environment).
func WithDockerClient(cl client.APIClient) Option { return func(c *config) { c.docker = cl } }

// Build returns the job-host image for the options, building it unless the
// engine has it already. ctx bounds the whole build.
func Build(ctx context.Context, opts ...Option) (Image, error) {
	tcenv.DisableRyuk()
	start := time.Now()
	c := config{userland: BindMounts, packages: DefaultPackages, buildLog: io.Discard, logger: slog.Default(), prune: true}
	for _, o := range opts {
		o(&c)
	}
	if c.jobsim == "" {
		c.jobsim = os.Getenv("JOBSIM_BIN")
	}
	if c.jobsim == "" {
		return Image{}, errors.New("image: no jobsim binary: pass WithJobsimBinary or set JOBSIM_BIN (make build puts a static one in bin/jobsim)")
	}
	if err := checkStatic(c.jobsim); err != nil {
		return Image{}, err
	}
	if c.userland != BindMounts && c.userland != RootFS {
		return Image{}, fmt.Errorf("image: userland %q: want %s or %s", c.userland, BindMounts, RootFS)
	}
	if c.docker == nil {
		dc, err := testcontainers.NewDockerClientWithOpts(ctx)
		if err != nil {
			return Image{}, fmt.Errorf("image: docker engine: %w", err)
		}
		defer dc.Close()
		c.docker = dc
	}

	if c.overlay != "" {
		dirs, err := real.PythonPackageDirs(ctx, "cylc", "")
		if err != nil {
			return Image{}, fmt.Errorf("image: the machine's copies of Cylc to leave out: %w", err)
		}
		c.machineCylc = dirs
	}
	ctxFiles, mounts, err := c.contents()
	if err != nil {
		return Image{}, err
	}
	img := Image{Userland: c.userland, Mounts: mounts, Overlay: c.overlay != "", Batchspawner: c.batch != "", Hidden: c.hidden(mounts)}
	sum, err := ctxFiles.hash()
	if err != nil {
		return Image{}, err
	}
	tag := string(c.userland) + "-" + sum[:16]
	img.Ref = Repo + ":" + tag

	if ins, err := c.docker.ImageInspect(ctx, img.Ref); err == nil {
		img.Took, img.Size = time.Since(start), ins.Size
		c.logger.Debug("job-host image found", "image", img.Ref)
		return img, nil
	} else if !cerrdefs.IsNotFound(err) {
		return Image{}, fmt.Errorf("image: inspect %s: %w", img.Ref, err)
	}

	archive, err := os.CreateTemp("", "jobsim-image-context-*.tar")
	if err != nil {
		return Image{}, fmt.Errorf("image: %w", err)
	}
	defer os.Remove(archive.Name())
	defer archive.Close()
	if err := ctxFiles.writeTar(archive); err != nil {
		return Image{}, fmt.Errorf("image: build context: %w", err)
	}
	if _, err := archive.Seek(0, io.SeekStart); err != nil {
		return Image{}, err
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return Image{}, fmt.Errorf("image: docker provider: %w", err)
	}
	defer provider.Close()
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		ContextArchive: archive, Dockerfile: "Dockerfile", Repo: Repo, Tag: tag, KeepImage: true, BuildLogWriter: c.buildLog,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			o.Labels = map[string]string{LabelImage: "job-host", LabelUserland: string(c.userland)}
		},
	}}
	c.logger.Info("building the job-host image", "image", img.Ref, "userland", c.userland)
	if _, err := provider.BuildImage(ctx, req); err != nil {
		return Image{}, fmt.Errorf("image: build %s: %w", img.Ref, err)
	}
	img.Built = true
	if ins, err := c.docker.ImageInspect(ctx, img.Ref); err == nil {
		img.Size = ins.Size
	}
	if c.prune {
		if err := prune(ctx, c.docker, img.Ref, c.userland); err != nil {
			c.logger.Warn("could not remove older job-host images", "err", err)
		}
	}
	img.Took = time.Since(start)
	return img, nil
}

// refPattern is the tag Build gives: <userland>-<16 hex digits of the
// build context's hash>.
var refPattern = regexp.MustCompile(`^` + regexp.QuoteMeta(Repo) + `:(bind|rootfs)-[0-9a-f]{16}$`)

// IsJobsimRef reports whether an image named ref with these labels is a
// job-host image Build made: the label alone is not enough (an image from
// elsewhere may carry it), the name and the userland label must agree
// with what Build gives.
func IsJobsimRef(ref string, labels map[string]string) bool {
	m := refPattern.FindStringSubmatch(ref)
	return m != nil && labels[LabelImage] == "job-host" && labels[LabelUserland] == m[1]
}

// prune removes job-host images of the same userland other than keep
// (only those IsJobsimRef recognises).
func prune(ctx context.Context, dc client.APIClient, keep string, u Userland) error {
	res, err := dc.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", LabelImage+"=job-host", LabelUserland+"="+string(u))})
	if err != nil {
		return err
	}
	var errs []error
	for _, im := range res.Items {
		if contains(im.RepoTags, keep) || !slices.ContainsFunc(im.RepoTags, func(t string) bool { return IsJobsimRef(t, im.Labels) }) {
			continue
		}
		if _, err := dc.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkStatic refuses a dynamically linked jobsim: FROM scratch has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("image: jobsim binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("image: jobsim binary %s is dynamically linked; build it with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}

// entry is one file of the build context.
type entry struct {
	name string // path in the context, slash-separated, no leading slash
	mode fs.FileMode
	link string // symlink target
	data []byte // small files
	src  string // large files read from disk
	hash string // content hash for src files, computed lazily
}

type contextFiles []entry

func (cf contextFiles) hash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "jobsim-host format %s\n", formatVersion)
	sorted := append(contextFiles(nil), cf...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, e := range sorted {
		fmt.Fprintf(h, "%s %o %s ", e.name, e.mode, e.link)
		switch {
		case e.data != nil:
			h.Write(e.data)
		case e.hash != "":
			io.WriteString(h, e.hash)
		case e.src != "" && e.mode.IsRegular():
			f, err := os.Open(e.src)
			if err != nil {
				return "", fmt.Errorf("image: %w", err)
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", fmt.Errorf("image: %w", err)
			}
		}
		io.WriteString(h, "\n")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (cf contextFiles) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, e := range cf {
		mode := int64(e.mode.Perm())
		if e.mode&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		if e.mode&fs.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if e.mode&fs.ModeSetuid != 0 {
			mode |= 0o4000
		}
		hdr := &tar.Header{Name: e.name, Mode: mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case e.mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.name+"/"
		case e.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			hdr.Typeflag = tar.TypeReg
		}
		var src io.ReadCloser
		if hdr.Typeflag == tar.TypeReg {
			if e.data != nil {
				hdr.Size = int64(len(e.data))
				src = io.NopCloser(bytes.NewReader(e.data))
			} else {
				f, err := os.Open(e.src)
				if err != nil {
					return err
				}
				st, err := f.Stat()
				if err != nil {
					f.Close()
					return err
				}
				hdr.Size = st.Size()
				src = f
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			if src != nil {
				src.Close()
			}
			return err
		}
		if src != nil {
			_, err := io.CopyN(tw, src, hdr.Size)
			src.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
		}
	}
	return tw.Close()
}

// Files of the base root filesystem every userland gets.
const (
	passwdText = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	groupText  = "root:x:0:\nnogroup:x:65534:\n"
	// profileText is /etc/profile: a PATH, then /etc/profile.d.
	profileText = `# jobsim job host: the system login profile
PATH=/usr/local/bin:/usr/bin:/bin
export PATH
if [ -d /etc/profile.d ]; then
  for f in /etc/profile.d/*.sh; do [ -r "$f" ] && . "$f"; done
  unset f
fi
`
	nsswitchText = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
)

// hidden lists the machine's copies of Cylc that the bind mounts would show.
func (c *config) hidden(mounts []Mount) []string {
	var out []string
	for _, d := range c.machineCylc {
		for _, m := range mounts {
			if strings.HasPrefix(d, m.Source+"/") {
				out = append(out, m.Target+strings.TrimPrefix(d, m.Source))
				break
			}
		}
	}
	return out
}

// contents lists the build context and the mounts containers need.
func (c *config) contents() (contextFiles, []Mount, error) {
	var cf contextFiles
	dir := func(name string, mode fs.FileMode) {
		cf = append(cf, entry{name: name, mode: fs.ModeDir | mode})
	}
	file := func(name, text string) {
		cf = append(cf, entry{name: name, mode: 0o644, data: []byte(text)})
	}
	for _, d := range []string{"base", "base/etc", "base/etc/profile.d", "base/etc/jobsim", "base/home", "base/root", "base/opt", "base/opt/jobsim", "base/opt/jobsim/bin",
		"base/proc", "base/sys", "base/dev", "base/run", "base/var", "base/var/spool", "base/var/spool/pbs", "base/usr"} {
		dir(d, 0o755)
	}
	dir("base/tmp", fs.ModeSticky|0o777)
	dir("base/var/tmp", fs.ModeSticky|0o777)
	file("base/etc/passwd", passwdText)
	file("base/etc/group", groupText)
	file("base/etc/profile", profileText)
	file("base/etc/nsswitch.conf", nsswitchText)

	var mounts []Mount
	var dockerfile strings.Builder
	dockerfile.WriteString("FROM scratch\nCOPY base/ /\n")
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		fi, err := os.Lstat("/" + d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&fs.ModeSymlink != 0:
			// usr-merge: /bin -> usr/bin in the image as on this machine
			target, err := os.Readlink("/" + d)
			if err != nil {
				return nil, nil, err
			}
			cf = append(cf, entry{name: "base/" + d, mode: fs.ModeSymlink | 0o777, link: target})
		case fi.IsDir() && c.userland == BindMounts:
			dir("base/"+d, 0o755)
			mounts = append(mounts, Mount{Source: "/" + d, Target: "/" + d})
		}
	}
	switch c.userland {
	case BindMounts:
		mounts = append([]Mount{{Source: "/usr", Target: "/usr"}}, mounts...)
	case RootFS:
		pkgs := c.packages
		if c.batch != "" {
			pkgs = append(slices.Clone(pkgs), BatchspawnerPackages...)
		}
		files, err := packageFiles(pkgs, c.machineCylc)
		if err != nil {
			return nil, nil, err
		}
		cf = append(cf, files...)
		dockerfile.WriteString("COPY rootfs/ /\n")
	}
	// Folders of the test machine the image carries: the context name,
	// the folder, where it goes, and what it is (for errors).
	for _, t := range []struct{ name, src, dst, what string }{
		{"cylc", c.overlay, OverlayPath, "Cylc overlay"},
		{"batchspawner", c.batch, BatchspawnerPath, "batchspawner"},
	} {
		if t.src == "" {
			continue
		}
		tree, err := treeEntries(t.src, t.name)
		if err != nil {
			return nil, nil, fmt.Errorf("image: %s: %w", t.what, err)
		}
		cf = append(cf, tree...)
		fmt.Fprintf(&dockerfile, "COPY %s/ %s/\n", t.name, t.dst)
	}
	cf = append(cf, entry{name: "jobsim", mode: 0o755, src: c.jobsim})
	fmt.Fprintf(&dockerfile, "COPY jobsim %s\nENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8\nENTRYPOINT [%q, \"node\"]\n", JobsimPath, JobsimPath)
	cf = append(cf, entry{name: "Dockerfile", mode: 0o644, data: []byte(dockerfile.String())})
	return cf, mounts, nil
}

// treeEntries lists a directory tree under prefix in the context.
func treeEntries(root, prefix string) (contextFiles, error) {
	var cf contextFiles
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		name := prefix
		if rel != "." {
			name = prefix + "/" + filepath.ToSlash(rel)
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{name: name, mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			e.src = p
		case fi.IsDir():
		default:
			return nil
		}
		cf = append(cf, e)
		return nil
	})
	return cf, err
}

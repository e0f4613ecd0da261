package image

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDepNameStripsVersionsAndArchitectures(t *testing.T) {
	for in, want := range map[string]string{"libc6 (>= 2.34)": "libc6", "python3:any": "python3", " zlib1g ": "zlib1g", "perl:any (>= 5.1)": "perl"} {
		if got := depName(in); got != want {
			t.Errorf("depName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClosureFollowsDependencies(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg: the rootfs userland is for Debian test machines")
	}
	pkgs, err := closure([]string{"rsync"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.name)
	}
	for _, want := range []string{"rsync", "libc6"} {
		if !slices.Contains(names, want) {
			t.Errorf("closure of rsync lacks %s: %v", want, names)
		}
	}
	if _, err := closure([]string{"no-such-package-jobsim"}); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("a missing package: %v", err)
	}
}

func TestPackageFilesAreCanonical(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg")
	}
	files, err := packageFiles([]string{"bash"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sawBash bool
	for _, e := range files {
		if e.name == "rootfs/usr/bin/bash" && e.mode.IsRegular() {
			sawBash = true
		}
		if strings.HasPrefix(e.name, "rootfs/usr/share/doc/") {
			t.Errorf("documentation copied: %s", e.name)
		}
		if e.name == "rootfs/bin" && e.mode&fs.ModeSymlink != 0 {
			t.Errorf("the usr-merge link /bin is the base image's, not the package's")
		}
	}
	if !sawBash {
		t.Error("bash is not at /usr/bin/bash in the rootfs")
	}
}

func TestHashFollowsContent(t *testing.T) {
	a := contextFiles{{name: "Dockerfile", mode: 0o644, data: []byte("FROM scratch\n")}, {name: "base/etc/passwd", mode: 0o644, data: []byte("root\n")}}
	b := contextFiles{{name: "base/etc/passwd", mode: 0o644, data: []byte("root\n")}, {name: "Dockerfile", mode: 0o644, data: []byte("FROM scratch\n")}}
	c := contextFiles{{name: "Dockerfile", mode: 0o644, data: []byte("FROM scratch\n")}, {name: "base/etc/passwd", mode: 0o600, data: []byte("root\n")}}
	ha, _ := a.hash()
	hb, _ := b.hash()
	hc, _ := c.hash()
	if ha != hb {
		t.Error("the hash depends on the order of the entries")
	}
	if ha == hc {
		t.Error("the hash ignores a mode change")
	}
}

func TestBuildRefusesWhatCannotRunFromScratch(t *testing.T) {
	t.Setenv("JOBSIM_BIN", "")
	if _, err := Build(context.Background()); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("no binary: %v", err)
	}
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls")
	}
	if _, err := Build(context.Background(), WithJobsimBinary(ls)); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("a dynamically linked binary: %v", err)
	}
	if _, err := Build(context.Background(), WithJobsimBinary("/nonexistent/jobsim")); err == nil {
		t.Error("a missing binary: no error")
	}
}

// A rootfs image whose Cylc is the overlay leaves the machine's copy of
// Cylc out (Python on the host must not fall back to it) and keeps the
// package's metadata and entry script, which the overlay's bin/cylc runs.
func TestRootFSLeavesTheMachinesCylcOut(t *testing.T) {
	const dist = "/usr/lib/python3/dist-packages/cylc"
	if _, err := os.Stat(dist + "/flow/__init__.py"); err != nil {
		t.Skip("Debian's cylc-flow is not installed (make setup-cylc installs it)")
	}
	files, err := packageFiles([]string{"cylc-flow"}, []string{dist})
	if err != nil {
		t.Fatal(err)
	}
	var entry bool
	for _, e := range files {
		if e.name == "rootfs"+dist || strings.HasPrefix(e.name, "rootfs"+dist+"/") {
			t.Fatalf("the machine's Cylc is in the rootfs: %s", e.name)
		}
		entry = entry || e.name == "rootfs/usr/bin/cylc"
	}
	if !entry {
		t.Error("the cylc entry script /usr/bin/cylc is missing")
	}
}

// A bind-mount image hides the machine's copies of Cylc that its mounts
// show, at their paths in the container.
func TestBindImageHidesWhatItsMountsShow(t *testing.T) {
	c := config{machineCylc: []string{"/usr/lib/python3/dist-packages/cylc", "/opt/venv/lib/python3.11/site-packages/cylc"}}
	got := c.hidden([]Mount{{Source: "/usr", Target: "/usr"}, {Source: "/lib", Target: "/lib"}})
	if len(got) != 1 || got[0] != "/usr/lib/python3/dist-packages/cylc" {
		t.Fatalf("hidden = %v, want just the copy under /usr (the container has no /opt/venv)", got)
	}
}

// With batchspawner, the image carries setup's folder (the package and its
// batchspawner-singleuser script, executable) at BatchspawnerPath; without
// it, nothing of it.
func TestImageCarriesBatchspawner(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "bin", "batchspawner-singleuser")
	for p, mode := range map[string]os.FileMode{script: 0o755, filepath.Join(dir, "batchspawner", "singleuser.py"): 0o644} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/usr/bin/python3\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, batch := range []string{dir, ""} {
		c := config{userland: BindMounts, jobsim: "/opt/jobsim/jobsim", batch: batch}
		cf, _, err := c.contents()
		if err != nil {
			t.Fatal(err)
		}
		var dockerfile string
		var exe bool
		for _, e := range cf {
			if e.name == "Dockerfile" {
				dockerfile = string(e.data)
			}
			exe = exe || (e.name == "batchspawner/bin/batchspawner-singleuser" && e.mode&0o111 != 0)
		}
		copied := strings.Contains(dockerfile, "COPY batchspawner/ "+BatchspawnerPath+"/\n")
		if copied != (batch != "") || exe != (batch != "") {
			t.Errorf("batchspawner %q: COPY in the Dockerfile %v, executable script in the context %v:\n%s", batch, copied, exe, dockerfile)
		}
	}
}

// The rootfs userland adds what batchspawner-singleuser runs: Debian's
// jupyterhub-singleuser and its jupyter-server.
func TestRootFSCarriesTheSingleUserServer(t *testing.T) {
	if _, err := os.Stat("/usr/bin/jupyterhub-singleuser"); err != nil {
		t.Skip("Debian's jupyterhub is not installed (scripts/setup-hub.sh installs it)")
	}
	files, err := packageFiles(append(slices.Clone(DefaultPackages[:1]), BatchspawnerPackages...), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"rootfs/usr/bin/jupyterhub-singleuser": false, "rootfs/usr/lib/python3/dist-packages/jupyter_server/__init__.py": false, "rootfs/usr/lib/python3/dist-packages/requests/__init__.py": false}
	for _, e := range files {
		if _, ok := want[e.name]; ok {
			want[e.name] = true
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("%s is not in the rootfs", name)
		}
	}
}

package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePackages writes Python packages named like the spawners under
// cache/spawners (just enough for FindPackage's import checks) and a
// jupyterhub script whose #! line names python.
func fakePackages(t *testing.T, python string, names ...string) (cache, jupyterhub string) {
	t.Helper()
	cache = t.TempDir()
	files := map[string]map[string]string{
		PackageBatchspawner: {"batchspawner/__init__.py": "", "batchspawner/batchspawner.py": "", "batchspawner/singleuser.py": ""},
		PackageNERSCSSHSpawner: {"sshspawner/__init__.py": "",
			"sshspawner/sshspawner.py": "class SSHSpawner:\n    remote_port_command = 'x'\n"},
		PackageLLNLSSHSpawner: {"sshspawner/__init__.py": "",
			"sshspawner/sshspawner.py": "class SSHSpawner:\n    def ssh_opts(self): pass\n"},
	}
	for _, n := range names {
		for rel, text := range files[n] {
			p := filepath.Join(cache, "spawners", n, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	jupyterhub = filepath.Join(t.TempDir(), "jupyterhub")
	if err := os.WriteFile(jupyterhub, []byte("#!"+python+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return cache, jupyterhub
}

func TestFindPackage(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("Debian's python3 missing: " + installHint)
	}
	ctx := context.Background()
	cache, jh := fakePackages(t, python, PackageBatchspawner, PackageLLNLSSHSpawner)
	t.Setenv(EnvCache, cache)

	pkg, err := FindPackage(ctx, PackageBatchspawner, jh)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cache, "spawners", PackageBatchspawner)
	if pkg.Dir != want || pkg.Bin != filepath.Join(want, "bin") || pkg.Python != python {
		t.Errorf("batchspawner found as %+v, want Dir %s, Bin %s/bin, Python %s", pkg, want, want, python)
	}
	if _, err := FindPackage(ctx, PackageLLNLSSHSpawner, jh); err != nil {
		t.Errorf("LLNL's sshspawner: %v", err)
	}
	// NERSC's folder is missing, and LLNL's package (also named
	// sshspawner) must not pass for it.
	_, err = FindPackage(ctx, PackageNERSCSSHSpawner, jh)
	var missing *PackageMissingError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "scripts/setup-hub.sh") || !strings.Contains(err.Error(), "JOBSIM_SPAWNERS") {
		t.Errorf("NERSC's sshspawner absent: %v, want a PackageMissingError naming the install command", err)
	}
	// A folder that does not import is reported as such.
	if err := os.WriteFile(filepath.Join(want, "batchspawner", "singleuser.py"), []byte("import no_such_module_here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FindPackage(ctx, PackageBatchspawner, jh); !errors.As(err, &missing) || !strings.Contains(err.Error(), "no_such_module_here") {
		t.Errorf("broken batchspawner: %v, want the import error", err)
	}
	if _, err := FindPackage(ctx, "slurmspawner", jh); err == nil || errors.As(err, &missing) {
		t.Errorf("unknown package: %v, want a plain error", err)
	}
}

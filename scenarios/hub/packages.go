package hub

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A real spawner package a hub can load: not part of JupyterHub and not in
// Debian, installed outside the repository by scripts/setup-hub.sh (each
// into its own folder, since both ssh spawners are Python packages named
// sshspawner) or into the hub's Python by a site's pip.
const (
	// PackageBatchspawner is jupyterhub/batchspawner (PBSSpawner, and
	// batchspawner-singleuser for the job).
	PackageBatchspawner = "batchspawner"
	// PackageNERSCSSHSpawner is NERSC/sshspawner (sshspawner.sshspawner.SSHSpawner).
	PackageNERSCSSHSpawner = "nersc-sshspawner"
	// PackageLLNLSSHSpawner is LLNL/SSHSpawner (sshspawner.sshspawner.SSHSpawner).
	PackageLLNLSSHSpawner = "llnl-sshspawner"
)

// EnvCache names jobsim's cache directory (default $HOME/.cache/jobsim),
// where setup puts the spawners under spawners/<package>.
const EnvCache = "JOBSIM_CACHE"

// packageChecks are the Python statements that succeed only with the named
// package importable (the two sshspawners told apart by a trait only one
// of them has).
var packageChecks = map[string]string{
	PackageBatchspawner:    "import batchspawner.batchspawner, batchspawner.singleuser",
	PackageNERSCSSHSpawner: "import sshspawner.sshspawner; sshspawner.sshspawner.SSHSpawner.remote_port_command",
	PackageLLNLSSHSpawner:  "import sshspawner.sshspawner; sshspawner.sshspawner.SSHSpawner.ssh_opts",
}

// Package is a real spawner package found on this machine.
type Package struct {
	// Name is one of the Package* constants.
	Name string
	// Dir is the folder to put on the hub's PYTHONPATH ("" when the hub's
	// Python imports it without help).
	Dir string
	// Bin holds its scripts (batchspawner-singleuser): Dir/bin, or the
	// directory of the hub's Python when installed there.
	Bin string
	// Python is the interpreter the hub runs on (the jupyterhub script's
	// #! line), which found the package.
	Python string
}

// PackageMissingError says a spawner package is not installed and how to
// install it.
type PackageMissingError struct {
	Name   string
	Hint   string
	Detail string
}

func (e *PackageMissingError) Error() string {
	return fmt.Sprintf("spawner package %s is not installed (%s): %s", e.Name, e.Detail, e.Hint)
}

// InstallCommand is what installs the spawner packages where FindPackage
// looks: from a package index, or from a folder of their sources.
const InstallCommand = "JOBSIM_SPAWNERS=<folder with batchspawner/, nersc-sshspawner/, llnl-sshspawner/> scripts/setup-hub.sh (or where a package index answers: scripts/setup-hub.sh)"

// FindPackage finds the spawner package name for the hub started by
// jupyter (the jupyterhub command, "" for the one on PATH): in
// $JOBSIM_CACHE/spawners/<name>, where setup installs it, else in the hub's
// own Python. It returns a *PackageMissingError naming the install
// command when neither has it.
func FindPackage(ctx context.Context, name, jupyterhub string) (Package, error) {
	check, ok := packageChecks[name]
	if !ok {
		return Package{}, fmt.Errorf("hub: no spawner package %q (want %s, %s or %s)", name, PackageBatchspawner, PackageNERSCSSHSpawner, PackageLLNLSSHSpawner)
	}
	py, err := hubPython(jupyterhub)
	if err != nil {
		return Package{}, &PackageMissingError{Name: name, Hint: ErrNotInstalled.Error(), Detail: "the hub's Python: " + err.Error()}
	}
	dir, err := CacheDir()
	if err != nil {
		return Package{}, err
	}
	target := filepath.Join(dir, "spawners", name)
	var reasons []string
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		if err := pythonCheck(ctx, py, target, check); err == nil {
			return Package{Name: name, Dir: target, Bin: filepath.Join(target, "bin"), Python: py}, nil
		} else {
			reasons = append(reasons, fmt.Sprintf("%s does not import: %v", target, err))
		}
	} else {
		reasons = append(reasons, "no "+target)
	}
	// batchspawner installed into the hub's Python by a site's pip. Not the
	// ssh spawners: there an importable `sshspawner` could be either one.
	if name == PackageBatchspawner {
		if err := pythonCheck(ctx, py, "", check); err == nil {
			return Package{Name: name, Bin: filepath.Dir(py), Python: py}, nil
		}
		reasons = append(reasons, "not in "+py+"'s packages")
	}
	return Package{}, &PackageMissingError{Name: name, Hint: InstallCommand, Detail: strings.Join(reasons, "; ")}
}

// CacheDir is $JOBSIM_CACHE, else $HOME/.cache/jobsim.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCache); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("hub: jobsim's cache: set $%s or $HOME: %w", EnvCache, err)
	}
	return filepath.Join(home, ".cache", "jobsim"), nil
}

// hubPython is the interpreter of the jupyterhub script: its #! line.
func hubPython(jupyterhub string) (string, error) {
	if jupyterhub == "" {
		jupyterhub = "jupyterhub"
	}
	path, err := exec.LookPath(jupyterhub)
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) == 0 {
		return "", fmt.Errorf("%s has no #! line naming its Python", path)
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		return exec.LookPath(fields[1])
	}
	return fields[0], nil
}

// pythonCheck runs check in py with dir first on PYTHONPATH.
func pythonCheck(ctx context.Context, py, dir, check string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", check)
	cmd.Env = os.Environ()
	if dir != "" {
		cmd.Env = append(cmd.Env, "PYTHONPATH="+dir)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return errors.New(lines[len(lines)-1])
	}
	return nil
}

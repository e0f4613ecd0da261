package hubsys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/sim/uiserver"
)

// RealNERSCSSHSpawner is the import string of NERSC's sshspawner.
const RealNERSCSSHSpawner = "sshspawner.sshspawner.SSHSpawner"

// Where NERSC's sshspawner's site scripts live on the job host (host paths).
const (
	nerscPortCommand = "/opt/site/bin/jupyterhub-free-port"
	nerscServer      = "/opt/site/bin/jupyterhub-singleuser-nersc"
)

// nerscPortScript is the site's remote_port_command: NERSC's shipped
// get_port.py prints "PORT IP" (with --ip) while the spawner reads
// "IP PORT", and finds its IP by routing to 8.8.8.8; a site writes its own.
// In-process hosts run the server on the test machine: its loopback
// address is the one the hub reaches.
const nerscPortScript = `#!/usr/bin/python3
# jobsim's site script for NERSC's sshspawner (remote_port_command): print
# the address the hub reaches this host's servers at, and a free port.
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print("127.0.0.1", s.getsockname()[1])
`

// nerscServerScript wraps jupyterhub-singleuser: NERSC's sshspawner sends
// the hub's variables as unquoted `export K=V` lines of a bash script, so
// JupyterHub 3's JSON scope lists arrive broken (the server then answers
// 503); the site rebuilds them from the variables that survive.
const nerscServerScript = `#!/bin/sh
# jobsim's site wrapper for NERSC's sshspawner: rebuild the JSON variables
# its unquoted exports break, then run the single-user server.
scopes="[\"access:servers!server=${JUPYTERHUB_USER}/${JUPYTERHUB_SERVER_NAME}\", \"access:servers!user=${JUPYTERHUB_USER}\"]"
JUPYTERHUB_OAUTH_ACCESS_SCOPES=$scopes JUPYTERHUB_OAUTH_SCOPES=$scopes
export JUPYTERHUB_OAUTH_ACCESS_SCOPES JUPYTERHUB_OAUTH_SCOPES
exec jupyterhub-singleuser "$@"
`

// nersc configures spawner ssh-nersc: the real NERSC sshspawner, set up as
// a site sets it up (docs/hub-spawners.md). In-process hosts only.
func (p *plan) nersc(ctx context.Context, sp *hub.Spawner) error {
	if _, ok := p.host.(runner.HarnessAddresser); ok {
		return &runner.SkipError{Reason: fmt.Sprintf("spawner ssh-nersc: job host %s is a container; NERSC's sshspawner runs here against in-process hosts only", p.host.Name())}
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		return &runner.SkipError{Reason: "spawner ssh-nersc signs the users' keys (NERSC's sshspawner reads <key>-cert.pub): ssh-keygen not found (apt-get install openssh-client)"}
	}
	pkg, err := hub.FindPackage(ctx, hub.PackageNERSCSSHSpawner, p.s.o.command[0])
	if err != nil {
		var missing *hub.PackageMissingError
		if errors.As(err, &missing) {
			return &runner.SkipError{Reason: "spawner ssh-nersc runs NERSC's sshspawner: " + err.Error()}
		}
		return fmt.Errorf("hubsys: %w", err)
	}
	if pkg.Dir != "" {
		p.env = append(p.env, "PYTHONPATH="+pkg.Dir)
	}
	// asyncssh takes the port from the hub account's ~/.ssh/config only.
	p.env = append(p.env, "HOME="+filepath.Join(p.dir, "nersc-home"))
	sp.Class = RealNERSCSSHSpawner
	delete(sp.Traits, "env_keep")
	delete(sp.Environment, uiserver.EnvRecord)
	sp.Cmd = []string{p.host.ProcessPath(nerscServer)}
	// JupyterHub 2+ passes no port: the spawner replaces a --port argument.
	sp.Args = []string{"--port=0", "--ip=127.0.0.1"}
	if os.Geteuid() == 0 {
		sp.Args = append(sp.Args, "--allow-root")
	}
	sp.Traits["remote_hosts"] = []string{p.host.Name()}
	sp.Traits["remote_port_command"] = p.host.ProcessPath(nerscPortCommand)
	sp.Traits["ssh_keyfile"] = filepath.Join(p.dir, "keys", "{username}")
	// The server's JUPYTERHUB_API_URL: the spawner sets it from this
	// trait (empty otherwise), so the hub's port is chosen here.
	bind, _ := p.traits["JupyterHub.hub_bind_url"].(string)
	if bind == "" {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("hubsys: a port for the hub's API: %w", err)
		}
		bind = fmt.Sprintf("http://127.0.0.1:%d", port)
		p.traits["JupyterHub.hub_bind_url"] = bind
	}
	sp.Traits["hub_api_url"] = strings.TrimRight(bind, "/") + "/hub/api"
	p.nerscSite = true
	return nil
}

// writeNERSC writes the site's files for NERSC's sshspawner: a user
// certificate for each key (signed by a CA of this run: the spawner reads
// <key>-cert.pub unconditionally), the hub account's ssh config naming the
// host's port (for the alias and for the address remote_port_command
// prints), and the job host's site scripts.
func (p *plan) writeNERSC(ctx context.Context, keyDir string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ca := filepath.Join(keyDir, "user-ca")
	if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "jobsim user CA", "-f", ca).CombinedOutput(); err != nil {
		return fmt.Errorf("hubsys: user CA: %w: %s", err, out)
	}
	for u := range p.keys {
		key := filepath.Join(keyDir, u)
		pub, err := exec.CommandContext(ctx, "ssh-keygen", "-y", "-f", key).Output()
		if err != nil {
			return fmt.Errorf("hubsys: public key of %s: %w", u, err)
		}
		if err := os.WriteFile(key+".pub", pub, 0o644); err != nil {
			return fmt.Errorf("hubsys: %w", err)
		}
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-s", ca, "-I", "jobsim-"+u, "-n", u, "-V", "+1d", key+".pub").CombinedOutput(); err != nil {
			return fmt.Errorf("hubsys: certificate of %s: %w: %s", u, err, out)
		}
	}
	ip, port, err := p.sshHostPort()
	if err != nil {
		return err
	}
	sshDir := filepath.Join(p.dir, "nersc-home", ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return fmt.Errorf("hubsys: %w", err)
	}
	cfg := fmt.Sprintf("# Written by jobsim's hub system: NERSC's sshspawner (asyncssh) reaches job host %[1]s here.\nHost %[1]s %[2]s\n  HostName %[2]s\n  Port %[3]s\n", p.host.Name(), ip, port)
	if err := os.WriteFile(filepath.Join(sshDir, "config"), []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("hubsys: %w", err)
	}
	for path, text := range map[string]string{nerscPortCommand: nerscPortScript, nerscServer: nerscServerScript} {
		real := p.host.ProcessPath(path)
		if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
			return fmt.Errorf("hubsys: site script %s on %s: %w", path, p.host.Name(), err)
		}
		if err := os.WriteFile(real, []byte(text), 0o755); err != nil {
			return fmt.Errorf("hubsys: site script %s on %s: %w", path, p.host.Name(), err)
		}
	}
	return nil
}

#!/usr/bin/env bash
# setup-hub.sh: make Debian bookworm's JupyterHub 3 usable by jobsim, with
# the real spawners sites use to reach job hosts.
#
# Installs the Debian packages when missing (apt-get update only when apt
# has no candidate for one): jupyterhub, and what the real spawners need
# (python3-pip to install them, python3-jinja2 and python3-requests for
# batchspawner, python3-jupyter-server for the single-user server a batch
# job runs, python3-asyncssh for NERSC's sshspawner, python3-pexpect for
# LLNL's SSHSpawner, libnss-wrapper for the hub's view of the job host's
# users, which batchspawner's SlurmSpawner looks up with getpwnam). Then
# checks what the hub driver (scenarios/hub)
# relies on:
#   1. `jupyterhub --version` runs and prints a 3.x version;
#   2. configurable-http-proxy starts and answers on its API port when run
#      with NODE_PATH=/usr/share/nodejs (Node 20 does not search that
#      directory by itself and the proxy dies with "Cannot find module
#      'commander'" without it; the driver sets the same variable).
# Finally installs the real spawners OUTSIDE the repository, each into its
# own folder ${JOBSIM_CACHE:-$HOME/.cache/jobsim}/spawners/<name> (both ssh
# spawners are Python packages named `sshspawner`: one folder each, and a
# hub puts only one on its PYTHONPATH):
#   batchspawner       jupyterhub/batchspawner
#   nersc-sshspawner   NERSC/sshspawner
#   llnl-sshspawner    LLNL/SSHSpawner
# with pip where a package index answers, otherwise from the folder named
# by $JOBSIM_SPAWNERS (a folder holding batchspawner/, nersc-sshspawner/,
# llnl-sshspawner/ source trees; .ci/run points it at ../shared/spawners),
# copied to a temp dir first (pip writes build/ and *.egg-info into the
# tree it installs from). A spawner that cannot be installed is reported,
# not fatal: the scenarios that need it skip and say how to install it.
# Idempotent; silent when everything is in place, prints only what it
# changed or what is wrong. Needs root for apt-get.
# Usage: scripts/setup-hub.sh
set -euo pipefail

say() { printf 'setup-hub: %s\n' "$*"; }
die() { printf 'setup-hub: error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages ------------------------------------------------------
source "$(dirname "$0")/lib/apt.sh"
apt_install jupyterhub python3-pip python3-setuptools python3-wheel python3-jinja2 python3-requests python3-jupyter-server python3-asyncssh python3-pexpect libnss-wrapper

# --- 2. jupyterhub itself ----------------------------------------------------
command -v jupyterhub >/dev/null || die "jupyterhub not on PATH after install"
version=$(jupyterhub --version 2>&1) || die "jupyterhub --version failed: $version"
[[ "$version" == 3.* ]] || die "jupyterhub --version printed '$version', the driver is written for 3.x"

# --- 3. configurable-http-proxy starts under NODE_PATH -----------------------
command -v configurable-http-proxy >/dev/null || die "configurable-http-proxy not on PATH"
# Two free loopback ports, chosen by the kernel.
read -r port api_port < <(python3 -c '
import socket
s1, s2 = socket.socket(), socket.socket()
s1.bind(("127.0.0.1", 0)); s2.bind(("127.0.0.1", 0))
print(s1.getsockname()[1], s2.getsockname()[1])
')
log=$(mktemp -t setup-hub-chp.XXXXXX)
NODE_PATH=/usr/share/nodejs CONFIGPROXY_AUTH_TOKEN=setup-hub-check \
    configurable-http-proxy --ip 127.0.0.1 --port "$port" \
    --api-ip 127.0.0.1 --api-port "$api_port" >"$log" 2>&1 &
chp=$!
cleanup() { kill "$chp" 2>/dev/null || true; wait "$chp" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
up=0
for _ in $(seq 100); do
    if ! kill -0 "$chp" 2>/dev/null; then
        die "configurable-http-proxy exited at start (NODE_PATH=/usr/share/nodejs): $(tail -5 "$log")"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$api_port") 2>/dev/null; then
        up=1
        break
    fi
    sleep 0.1
done
((up)) || die "configurable-http-proxy did not open its API port $api_port within 10 s: $(tail -5 "$log")"

cleanup
trap - EXIT

# --- 4. the real spawners, outside the repository ----------------------------
# name|import check|what pip installs from an index
spawners=(
    "batchspawner|import batchspawner.batchspawner, batchspawner.singleuser|batchspawner"
    "nersc-sshspawner|import sshspawner.sshspawner; sshspawner.sshspawner.SSHSpawner.remote_port_command|git+https://github.com/NERSC/sshspawner@6c3f602c413a71f32c4f97d535480075e1bc5673"
    "llnl-sshspawner|import sshspawner.sshspawner; sshspawner.sshspawner.SSHSpawner.ssh_opts|git+https://github.com/LLNL/SSHSpawner@2634b3ed863f1dcbc3b48d7bee1ac3d98042e75e"
)
# Debian's Python, the one jupyterhub runs on (not whatever python3 is first
# on PATH).
PY=/usr/bin/python3
cache="${JOBSIM_CACHE:-$HOME/.cache/jobsim}/spawners"
mkdir -p "$cache"
pip_target() { # pip_target TARGET ARGS...: pip install --no-deps into TARGET
    local target=$1; shift
    timeout 300 "$PY" -m pip install -q --no-deps --no-build-isolation --disable-pip-version-check \
        --no-warn-script-location --target "$target" "$@" >"$cache/.pip.log" 2>&1
}
for entry in "${spawners[@]}"; do
    IFS='|' read -r name check spec <<<"$entry"
    target="$cache/$name"
    if [[ -d "$target" ]] && PYTHONPATH="$target" "$PY" -c "$check" >/dev/null 2>&1; then
        continue
    fi
    rm -rf "$target.new"
    from=""
    # A package index, where one answers (the ordinary way in).
    if pip_target "$target.new" --timeout 10 --retries 0 "$spec"; then
        from="pip ($spec)"
    elif [[ -n "${JOBSIM_SPAWNERS:-}" && -f "$JOBSIM_SPAWNERS/$name/setup.py" ]]; then
        rm -rf "$target.new"
        src=$(mktemp -d -t "setup-hub-$name.XXXXXX")
        cp -a "$JOBSIM_SPAWNERS/$name/." "$src/"
        if pip_target "$target.new" --no-index "$src"; then
            from="$JOBSIM_SPAWNERS/$name"
        fi
        rm -rf "$src"
    fi
    if [[ -z "$from" ]] || ! PYTHONPATH="$target.new" "$PY" -c "$check" >/dev/null 2>&1; then
        rm -rf "$target.new"
        say "spawner $name not installed (no package index answered${JOBSIM_SPAWNERS:+, none usable in \$JOBSIM_SPAWNERS=$JOBSIM_SPAWNERS}): the hub scenarios that need it skip; set JOBSIM_SPAWNERS to a folder holding $name/ and run scripts/setup-hub.sh again"
        continue
    fi
    rm -rf "$target"
    mv "$target.new" "$target"
    say "installed spawner $name into $target from $from"
done
rm -f "$cache/.pip.log"

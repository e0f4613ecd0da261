#!/usr/bin/env bash
# setup-hub.sh: make Debian bookworm's JupyterHub 3 usable by jobsim.
#
# Installs the 'jupyterhub' package when it is missing (apt-get update only
# when apt has no candidate for it), then checks what the hub driver
# (scenarios/hub) relies on:
#   1. `jupyterhub --version` runs and prints a 3.x version;
#   2. configurable-http-proxy starts and answers on its API port when run
#      with NODE_PATH=/usr/share/nodejs (Node 20 does not search that
#      directory by itself and the proxy dies with "Cannot find module
#      'commander'" without it; the driver sets the same variable).
# Idempotent; silent when everything is in place, prints only what it
# changed or what is wrong. Needs root for apt-get.
# Usage: scripts/setup-hub.sh
set -euo pipefail

say() { printf 'setup-hub: %s\n' "$*"; }
die() { printf 'setup-hub: error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian package -------------------------------------------------------
if ! dpkg-query -W -f='${Status}' jupyterhub 2>/dev/null | grep -q 'install ok installed'; then
    [[ $(id -u) == 0 ]] || die "package jupyterhub missing and not root: run as root or install it"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy jupyterhub 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        say "apt-get update (no candidate for jupyterhub)"
        apt-get update -qq >/dev/null || die "apt-get update failed"
    fi
    say "apt-get install jupyterhub"
    apt-get install -y -qq --no-install-recommends jupyterhub >/dev/null \
        || die "apt-get install jupyterhub failed"
fi

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

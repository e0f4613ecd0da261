#!/usr/bin/env bash
# setup.sh: install the Debian packages jobsim's tests use as real parts:
# the OpenSSH client and server (the sshd reference in benchmarks), rsync,
# FUSE 3 (fusermount3 for the fault layer under real processes), sqlite3,
# Chromium (headless: the browser the HTML report and hub pages are tested
# in), curl and jq (the documentation's examples use them; internal/doctest
# runs those), and socat (serves the Docker engine on TCP for the
# remote-engine test).
# Idempotent and quiet when everything is present. Needs root for apt-get.
# Usage: scripts/setup.sh
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

packages=(openssh-client openssh-server rsync fuse3 sqlite3 procps chromium curl jq socat)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "packages missing (${missing[*]}) and not root: install them or run as root"
    export DEBIAN_FRONTEND=noninteractive
    for pkg in "${missing[@]}"; do
        if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            say "apt-get update (no candidate for $pkg)"
            apt-get update -qq >/dev/null || die "apt-get update failed"
            break
        fi
    done
    say "apt-get install ${missing[*]}"
    # Do not let the package start an sshd on port 22: tests start their own.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed"; }
    rm -f /usr/sbin/policy-rc.d
fi

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

source "$(dirname "$0")/lib/apt.sh"
apt_install openssh-client openssh-server rsync fuse3 sqlite3 procps chromium curl jq socat

#!/usr/bin/env bash
# setup-slurm.sh: install Debian's real Slurm 22.05 (slurmctld, slurmd, the
# client commands, slurmdbd with MariaDB for sacct) and MUNGE, the reference
# fakeslurm's differential tests compare against (fakeslurm/realslurm starts
# them on a loopback config in a temp dir; see /work/shared/reference/
# slurm.md "Running Debian's real Slurm here"). The packages' own services
# are not started: a policy-rc.d refuses them while apt-get runs, and the
# tests start their own daemons.
# Idempotent and quiet when everything is present. Needs root for apt-get.
# Usage: scripts/setup-slurm.sh
set -euo pipefail

say() { printf 'setup-slurm: %s\n' "$*"; }
die() { printf 'setup-slurm: error: %s\n' "$*" >&2; exit 1; }

# slurmdbd and mariadb-server give sacct its accounting database.
packages=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
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
# Do not let the packages start munged, slurmctld or slurmd: tests start their own.
policy_was_there=false
[[ -e /usr/sbin/policy-rc.d ]] && policy_was_there=true
$policy_was_there || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; }
status=0
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
$policy_was_there || rm -f /usr/sbin/policy-rc.d
((status == 0)) || die "apt-get install ${missing[*]} failed (exit $status)"

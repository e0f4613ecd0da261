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
source "$(dirname "$0")/lib/apt.sh"
apt_install slurmctld slurmd slurm-client munge slurmdbd mariadb-server

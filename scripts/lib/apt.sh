# apt.sh: the one way jobsim's setup scripts install Debian packages.
# Source it after defining say and die; then `apt_install PKG...`:
#   - does nothing (and prints nothing) when every package is installed;
#   - otherwise needs root, refreshes the package index only when apt has no
#     candidate for a missing package, and installs the missing ones without
#     recommends, waiting for another apt to finish (DPkg::Lock::Timeout);
#   - never lets a package start its service while it installs (a
#     policy-rc.d refuses them: tests start their own sshd, munged,
#     slurmctld, ...), and leaves a policy-rc.d that was there before alone.

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "packages missing (${missing[*]}) and not root: install them or run as root"
    export DEBIAN_FRONTEND=noninteractive
    for pkg in "${missing[@]}"; do
        if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            say "apt-get update (no candidate for $pkg)"
            apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || die "apt-get update failed"
            break
        fi
    done
    say "apt-get install ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d ours=false status=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && ours=true
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    if $ours; then rm -f "$policy"; fi
    ((status == 0)) || die "apt-get install ${missing[*]} failed (exit $status)"
}

#!/usr/bin/env bash
# setup-cylc.sh: make Debian bookworm's cylc-flow 8.0.2 usable by jobsim.
#
# Debian's package does not run as shipped on Python 3.11 (see
# /work/shared/reference/cylc.md, "Debian's cylc-flow 8.0.2 on this machine"):
#   1. it requires the 'pyuv' distribution, which Debian does not package;
#   2. `cylc play` dies on the @dataclass decorator of class Scheduler.
# This script installs the package if missing and builds a compatibility
# overlay (never committed) under ${JOBSIM_CACHE:-$HOME/.cache/jobsim}/cylc-8.0.2:
#   lib/pyuv.py                     stand-in for the one pyuv call cylc makes
#   lib/pyuv-1.4.0.dist-info/       metadata so pkg_resources finds 'pyuv==1.4.*'
#   lib/cylc/flow/                  copy of cylc/flow with the @dataclass dropped
#   bin/cylc                        wrapper: PYTHONPATH=lib, exec Debian's cylc
# Idempotent; prints only what it changed. Needs root for apt-get.
# Usage: scripts/setup-cylc.sh [--force]   (--force rebuilds the overlay)
set -euo pipefail

CYLC_VERSION=8.0.2
DIST=/usr/lib/python3/dist-packages
CACHE="${JOBSIM_CACHE:-$HOME/.cache/jobsim}"
OVERLAY="$CACHE/cylc-$CYLC_VERSION"
# Bump when the overlay layout or the patches change, so old overlays rebuild.
OVERLAY_REV=1
force=0
[[ "${1:-}" == "--force" ]] && force=1

say() { printf 'setup-cylc: %s\n' "$*"; }
die() { printf 'setup-cylc: error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages -------------------------------------------------------
source "$(dirname "$0")/lib/apt.sh"
apt_install cylc-flow rsync sqlite3 openssh-client

installed=$(dpkg-query -W -f='${Version}' cylc-flow)
[[ "$installed" == "$CYLC_VERSION"* ]] \
    || die "cylc-flow $installed installed, this overlay is for $CYLC_VERSION"
[[ -d "$DIST/cylc/flow" ]] || die "$DIST/cylc/flow not found after install"

# --- 2. Overlay ----------------------------------------------------------------
stamp="$OVERLAY/.complete"
want_stamp="rev=$OVERLAY_REV debian=$installed"
if ((force == 0)) && [[ -x "$OVERLAY/bin/cylc" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
    exit 0
fi

say "building overlay in $OVERLAY"
tmp="$OVERLAY.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp/lib" "$tmp/bin"

# 2a. pyuv stand-in: cylc/flow/async_util.py only does
#     loop = pyuv.Loop.default_loop(); pyuv.fs.scandir(loop, path, callback=cb); loop.run()
#     and reads request.result (entries with .name, None for an empty dir).
cat > "$tmp/lib/pyuv.py" <<'PY'
"""Minimal stand-in for pyuv 1.4, written by jobsim's scripts/setup-cylc.sh.

cylc-flow 8.0.x uses exactly one pyuv feature (cylc/flow/async_util.py):
    loop = pyuv.Loop.default_loop()
    pyuv.fs.scandir(loop, path, callback=cb)
    loop.run()
where cb(request) reads request.result (entries with .name, or None).
"""
import os

__version__ = "1.4.0"


class _Request:
    def __init__(self, result, error):
        self.result = result
        self.error = error


class Loop:
    _default = None

    def __init__(self):
        self._pending = []

    @classmethod
    def default_loop(cls):
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def _queue(self, callback, request):
        self._pending.append((callback, request))

    def run(self, *args, **kwargs):
        while self._pending:
            callback, request = self._pending.pop(0)
            if callback is not None:
                callback(request)
        return True


class _Dirent:
    def __init__(self, name, entry_type):
        self.name = name
        self.type = entry_type


class fs:  # noqa: N801 (module-like namespace, as in pyuv)
    @staticmethod
    def scandir(loop, path, callback=None):
        try:
            with os.scandir(path) as it:
                entries = [_Dirent(e.name, 0) for e in it]
            request = _Request(entries or None, None)
        except OSError as exc:
            request = _Request(None, exc.errno)
        loop._queue(callback, request)
        return request
PY
mkdir -p "$tmp/lib/pyuv-1.4.0.dist-info"
cat > "$tmp/lib/pyuv-1.4.0.dist-info/METADATA" <<'META'
Metadata-Version: 2.1
Name: pyuv
Version: 1.4.0
Summary: Stand-in for pyuv written by jobsim scripts/setup-cylc.sh (scandir only)
META
printf 'pyuv\n' > "$tmp/lib/pyuv-1.4.0.dist-info/top_level.txt"
printf 'jobsim-setup-cylc\n' > "$tmp/lib/pyuv-1.4.0.dist-info/INSTALLER"

# 2b. cylc/flow overlay with the @dataclass on class Scheduler dropped.
#     (`cylc` is a namespace package, so lib/cylc/flow shadows the Debian copy.)
mkdir -p "$tmp/lib/cylc"
cp -a "$DIST/cylc/flow" "$tmp/lib/cylc/flow"
find "$tmp/lib/cylc/flow" -name __pycache__ -type d -prune -exec rm -rf {} +
sched="$tmp/lib/cylc/flow/scheduler.py"
python_out=$(/usr/bin/python3 - "$sched" <<'PY'
import re, sys
path = sys.argv[1]
src = open(path).read()
pattern = re.compile(r'^@dataclass\n(class Scheduler\b)', re.M)
new, n = pattern.subn(r'\1', src)
if n != 1:
    sys.exit(f"expected one '@dataclass' directly above 'class Scheduler' in {path}, found {n}")
open(path, "w").write(new)
print("patched")
PY
) || die "patching scheduler.py failed: $python_out"
grep -q '^@dataclass' "$sched" && die "patch check: @dataclass still present in $sched"
grep -q '^class Scheduler' "$sched" || die "patch check: class Scheduler missing in $sched"

# 2c. the wrapper.
cat > "$tmp/bin/cylc" <<WRAP
#!/bin/sh
# cylc $CYLC_VERSION wrapper generated by jobsim scripts/setup-cylc.sh: Debian's
# cylc-flow with the compatibility overlay in front (see that script).
here=\$(dirname -- "\$(readlink -f -- "\$0")")
lib=\${here%/bin}/lib
PYTHONPATH="\$lib\${PYTHONPATH:+:\$PYTHONPATH}"
# cylc runs 'cylc <sub-command>' from PATH for local job commands: keep it us.
PATH="\$here:\$PATH"
unset PYTHONHOME
export PYTHONPATH PATH
exec /usr/bin/python3 /usr/bin/cylc "\$@"
WRAP
chmod 0755 "$tmp/bin/cylc"
printf '%s\n' "$want_stamp" > "$tmp/.complete"

# 2d. check it before swapping it in.
got=$("$tmp/bin/cylc" version 2>&1) || die "overlay check: '$tmp/bin/cylc version' failed: $got"
[[ "$got" == "$CYLC_VERSION" ]] || die "overlay check: 'cylc version' printed '$got', want $CYLC_VERSION"
/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import cylc.flow.scheduler as s, dataclasses; assert not dataclasses.is_dataclass(s.Scheduler); assert s.__file__.startswith(sys.argv[1]), s.__file__' "$tmp/lib" \
    || die "overlay check: cylc.flow.scheduler is not the patched copy"

# 2e. smoke test: a two-task workflow must run to completion (this is what
#     exercises the Scheduler patch; `cylc version` does not).
smoke="$tmp/smoke"
mkdir -p "$smoke/home" "$smoke/conf" "$smoke/src/smoke"
cat > "$smoke/src/smoke/flow.cylc" <<'FLOW'
[scheduling]
    [[graph]]
        R1 = "foo => bar"
[runtime]
    [[root]]
        script = echo "smoke $CYLC_TASK_NAME"
    [[foo]]
    [[bar]]
FLOW
: > "$smoke/conf/global.cylc"
smoke_run() {
    env -u CYLC_SITE_CONF_PATH HOME="$smoke/home" CYLC_CONF_PATH="$smoke/conf" "$@"
}
if ! out=$(cd "$smoke" && smoke_run "$tmp/bin/cylc" install "$smoke/src/smoke" 2>&1 \
        && smoke_run timeout 120 "$tmp/bin/cylc" play --no-detach smoke 2>&1); then
    die "smoke test: two-task workflow failed: $(printf '%s\n' "$out" | tail -15)"
fi
for t in foo bar; do
    grep -q "succeeded" <(sqlite3 "$smoke/home/cylc-run/smoke/run1/log/db" \
        "select status from task_states where name='$t'") \
        || die "smoke test: task $t did not succeed; scheduler log: $smoke/home/cylc-run/smoke/run1/log/scheduler/log"
done
rm -rf "$smoke"
say "smoke test: two-task workflow succeeded"

rm -rf "$OVERLAY"
mv "$tmp" "$OVERLAY"
trap - EXIT
say "cylc $CYLC_VERSION ready: $OVERLAY/bin/cylc"

#!/usr/bin/env bash
# e2e.sh: run every scenario labelled `gate` against the real systems under
# test (Cylc, JupyterHub) on containerized job hosts, and prove that the run
# leaves nothing behind but the cached job-host image.
#
# `make e2e` runs it after `make setup build`. What it writes, in out/e2e/:
#   junit.xml       one test case per scenario (CI reads this)
#   scenarios/NAME/ each scenario's artifacts: events.jsonl, transcript.md,
#                   scheduler or hub log, job logs, generated configs
#   run.log         the runner's progress and summary table
#   doctest.log     the documentation run as a reader types it: README.md's
#                   and docs/'s shell blocks and every --help example,
#                   those needing Docker, FUSE or a long run included
#                   (internal/doctest with JOBSIM_DOCTEST=all)
#   leftovers.txt   what was checked after the run (containers, networks,
#                   FUSE mounts, processes) and what was found
#   summary.txt     verdict counts, wall time, the job-host image
#
# Environment:
#   E2E_LABELS    label filter (default: gate)
#   E2E_PARALLEL  scenarios at once (default: 2 per core, measured fastest
#                 with every verdict unchanged; docs/e2e.md)
#   E2E_ALONE     scenarios run one at a time after the others, with nothing
#                 else running (default: the timing-sensitive ones below)
#   E2E_USERLAND  bind (default) or rootfs: how containers get their programs
#   E2E_SWEEP     1 (default): after the run, jobsim sweep removes what
#                 crashed runs left (every dead process's containers and
#                 networks); 0 on a machine shared with other runs
#   JOBSIM        the jobsim binary (default: bin/jobsim, from make build)
# Exit status: 0 when every scenario passed or was skipped and nothing was
# left behind; 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-out}/e2e"
JOBSIM="${JOBSIM:-bin/jobsim}"
LABELS="${E2E_LABELS:-gate}"
say() { printf 'e2e: %s\n' "$*" >&2; }
die() { printf 'e2e: error: %s\n' "$*" >&2; exit 1; }

start=$(date +%s)
[[ -x "$JOBSIM" ]] || die "$JOBSIM not found: run make build (or make e2e)"
# `jobsim sweep --list` talks to the engine as the tests do (no docker CLI needed).
engine_err=$("$JOBSIM" sweep --list 2>&1 >/dev/null) \
    || die "make e2e needs a Docker engine, and none answers: ${engine_err} (install docker.io and start dockerd, or set DOCKER_HOST)"

rm -rf "$OUT"
mkdir -p "$OUT"
export JOBSIM_BIN="$PWD/$JOBSIM"
# Every process the run starts inherits this mark: the leftovers check
# counts this run's processes, not those of other runs on the machine.
export E2E_MARK="e2e-$$-$RANDOM"

# What a run may leave behind, one line per thing, in a stable order.
leftovers() {
    # What every jobsim run on this machine has (processes, FUSE mounts,
    # folders, containers and networks, alive or dead: jobsim sweep --help),
    # and labelled containers and networks of no registered run.
    "$JOBSIM" sweep --list --all | grep -v '^image ' || true
    grep -E 'jobsim|fusefs' /proc/mounts | sed 's/^/mount /' || true
    # Processes the run starts: job-host nodes, fake hosts, UI servers,
    # schedulers and hubs working in a run's scratch directory. Those that
    # inherited this run's mark are its own; a job-host node (a container's
    # PID 1) is counted with its container.
    local pid args
    ps -eo pid=,args= | grep -E 'jobsim (host|uiserver)|jobsim-run-|cylc play|jupyterhub' | grep -v -E 'grep -E|e2e\.sh' |
        while read -r pid args; do
            tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "E2E_MARK=$E2E_MARK" && echo "process $pid $args"
        done || true
}

before=$(leftovers)
[[ -z "$before" ]] || say "already present before the run (not counted against it):"$'\n'"$before"

finish() {
    local rc=$?
    # A crashed runner's watcher removes what it left; sweep is for a
    # runner whose watcher died too (dead runs only: live ones are not
    # touched). E2E_SWEEP=0 leaves it out.
    if [[ "${E2E_SWEEP:-1}" != 0 ]]; then
        "$JOBSIM" sweep >>"$OUT/leftovers.txt" 2>&1 || true
    fi
    local after
    after=$(leftovers)
    local new
    new=$(comm -13 <(sort <<<"$before") <(sort <<<"$after") | sed '/^$/d' || true)
    {
        echo "# checked after the run: containers and networks labelled org.jobsim.run, /proc/mounts, ps"
        if [[ -n "$new" ]]; then echo "$new"; else echo "nothing left behind"; fi
        echo "# job-host images (the cache):"
        "$JOBSIM" sweep --list | grep '^image ' || true
    } >>"$OUT/leftovers.txt"
    local wall=$(( $(date +%s) - start ))
    {
        echo "labels: $LABELS"
        echo "wall time: ${wall}s"
        grep -E '^scenarios: ' "$OUT/run.log" 2>/dev/null || echo "scenarios: (the runner did not finish)"
        echo "images: $("$JOBSIM" sweep --list | grep '^image ' | cut -d' ' -f2 | tr '\n' ' ')"
        if [[ -n "$new" ]]; then echo "leftovers: $(wc -l <<<"$new")"; else echo "leftovers: none"; fi
    } >"$OUT/summary.txt"
    cat "$OUT/summary.txt" >&2
    if [[ -n "$new" ]]; then
        say "the run left things behind (see $OUT/leftovers.txt):"$'\n'"$new"
        rc=1
    fi
    say "JUnit: $OUT/junit.xml; artifacts: $OUT/scenarios/"
    exit "$rc"
}
trap finish EXIT

# Scenarios mostly wait on the systems under test (polling intervals, job
# sleeps), so more run at once than there are cores: 2 per core was the
# fastest setting with every verdict unchanged (docs/e2e.md, "Parallel").
PARALLEL="${E2E_PARALLEL:-$(( 2 * $(nproc) ))}"
# Timing-sensitive scenarios run alone (jobsim run --alone):
#   cylc-host-unreachable: the `cylc release` client must reach the
#     scheduler before its next 2 s job poll hits the cut-off host; on a
#     busy machine the client is late, 8.0.2 shuts down on the poll's
#     NoHostsError and bar never reaches submit-failed.
ALONE="${E2E_ALONE-cylc-host-unreachable}"
args=(run --backend containers --label-filter "$LABELS" --junit "$OUT/junit.xml" --artifacts "$OUT/scenarios" --parallel "$PARALLEL")
[[ -n "$ALONE" ]] && args+=(--alone "$ALONE")
[[ -n "${E2E_USERLAND:-}" ]] && export JOBSIM_USERLAND="$E2E_USERLAND"
say "$JOBSIM ${args[*]} fixtures/scenarios"
set +e
"$JOBSIM" "${args[@]}" fixtures/scenarios 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
say "the documentation, as typed by a reader (JOBSIM_DOCTEST=all go test ./internal/doctest)"
JOBSIM_DOCTEST=all "${GO:-go}" test -count=1 -timeout 120m -v ./internal/doctest/ >"$OUT/doctest.log" 2>&1
doc_status=$?
grep -E '^(--- |ok|FAIL)|^    --- (FAIL|SKIP)' "$OUT/doctest.log" >&2 || true
set -e
(( status != 0 )) || status=$doc_status
exit "$status"

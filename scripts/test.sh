#!/usr/bin/env bash
# make test's go test: every package under the race detector, with the
# in-process scenario suite (scenarios/suite) split into SUITE_SHARDS
# shards (JOBSIM_SHARD=K/N, as `jobsim run --shard` splits) that run at the
# same time as the other packages. The suite is the long pole (its
# scenarios mostly wait on real Cylc and JupyterHub, not on the CPU), so
# its shards overlap well even on two cores. Each shard's output is
# printed whole once it ends; the exit status is non-zero when any part
# failed.
#
# Environment: GO (go), PKGS (./...), TESTFLAGS, SUITE_SHARDS (2; 1 runs
# the suite as one package), JOBSIM_ARTIFACTS (out/suite; shard K writes
# below shard-K).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
PKGS=${PKGS:-./...}
SUITE_SHARDS=${SUITE_SHARDS:-2}
read -r -a testflags <<<"${TESTFLAGS:-}"
artifacts=${JOBSIM_ARTIFACTS:-$PWD/out/suite}

suite=github.com/jobsim/jobsim/scenarios/suite
mapfile -t pkgs < <("$GO" list $PKGS)
others=()
with_suite=false
for p in "${pkgs[@]}"; do
	if [ "$p" = "$suite" ]; then with_suite=true; else others+=("$p"); fi
done

logs=$(mktemp -d)
pids=()
stop() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait || true
	rm -rf "$logs"
}
trap stop EXIT
trap 'exit 130' INT TERM

if $with_suite; then
	for k in $(seq 1 "$SUITE_SHARDS"); do
		JOBSIM_SHARD="$k/$SUITE_SHARDS" JOBSIM_ARTIFACTS="$artifacts/shard-$k" \
			"$GO" test -race -count=1 -timeout 30m "${testflags[@]}" "$suite" >"$logs/suite-$k.log" 2>&1 &
		pids+=("$!")
	done
	echo "scenarios/suite: $SUITE_SHARDS shards running beside the other packages (output when each ends)"
fi

status=0
if [ ${#others[@]} -gt 0 ]; then
	"$GO" test -race -count=1 -timeout 30m "${testflags[@]}" "${others[@]}" || status=1
fi
for i in "${!pids[@]}"; do
	k=$((i + 1))
	if ! wait "${pids[$i]}"; then status=1; fi
	echo "== scenarios/suite shard $k/$SUITE_SHARDS"
	cat "$logs/suite-$k.log"
done
pids=()
exit $status

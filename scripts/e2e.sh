#!/usr/bin/env bash
# e2e.sh: run every scenario labelled `gate` against real Cylc and JupyterHub
# on fake job hosts, and write JUnit and artifacts under out/e2e.
set -euo pipefail
echo "make e2e: no gate suites exist yet (the scenario runner is not built); nothing was run." >&2
exit 0

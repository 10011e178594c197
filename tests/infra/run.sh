#!/usr/bin/env bash
# Runs the infrastructure tests: main.bicep syntax and checkov, every KQL query checked by
# Kusto.Language, and the alert rules executed (duckdb-kql) over telemetry captured from the real
# handler binary. Installs its tools first (tests/infra/install.sh) and builds the handler.
# Everything stays on this machine: the handler talks only to a loopback ingestion stand-in, and
# where a network namespace can be made (root, util-linux unshare) the tests run in one of their own
# with nothing but loopback, so any attempt to reach another host fails instead of leaving the machine.
#
# Usage: tests/infra/run.sh [pytest arguments...]
# Exit code: 0 when every test passed, non-zero otherwise.
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
REPO="$(cd "$HERE/../.." && pwd)"
readonly REPO

main() {
  "$HERE/install.sh"
  if [[ -z "${ISP_MONITOR_HANDLER:-}" ]]; then
    (cd "$REPO" && cargo build --quiet --bin handler --bin heartbeat-agent)
  fi
  cd "$HERE"
  export PYTHONDONTWRITEBYTECODE=1
  local pytest=("$HERE/.venv/bin/python" -m pytest -p no:cacheprovider "$@")
  if unshare --net true 2>/dev/null && command -v ip >/dev/null; then
    exec unshare --net sh -c 'ip link set lo up && exec "$@"' sh "${pytest[@]}"
  fi
  echo "tests/infra/run.sh: no private network namespace here; running the tests in the machine's own" >&2
  exec "${pytest[@]}"
}

main "$@"

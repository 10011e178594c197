#!/usr/bin/env bash
# Runs the AWS infrastructure tests: cfn-lint on aws/template.yaml, and the template's alarms
# evaluated by a simulation of CloudWatch alarm semantics over metric data the real `lambda`
# binary emits. Installs its tools first (tests/aws/install.sh). Nothing contacts AWS.
#
# Usage: tests/aws/run.sh [pytest arguments...]
# Exit code: 0 when every test passed, non-zero otherwise.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
REPO=$(cd "$HERE/../.." && pwd)
readonly REPO

main() {
  "$HERE/install.sh"
  # The alarm simulation runs the real lambda binary (a debug build is enough); ISP_MONITOR_LAMBDA
  # names a prebuilt one instead.
  if [[ -z "${ISP_MONITOR_LAMBDA:-}" && -f "$REPO/src/bin/lambda.rs" ]]; then
    (cd "$REPO" && cargo build --quiet --bin lambda)
  fi
  cd "$HERE"
  export PYTHONDONTWRITEBYTECODE=1
  exec "$HERE/.venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
}

main "$@"

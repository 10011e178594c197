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
  # Byte code of the tests and the venv's modules goes to one cache inside the venv: nothing is
  # written beside the tests, and the second run does not compile cfn-lint again.
  export PYTHONPYCACHEPREFIX="$HERE/.venv/pycache"
  exec "$HERE/.venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
}

main "$@"

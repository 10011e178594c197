#!/usr/bin/env bash
# Replays every az command line the project runs or documents through the real Azure CLI parser
# (tests/azcli/test_az_lines.py): the calls the az stand-in recorded during the bats suites, and
# every az line of the docs. Fails on any line the real CLI rejects.
#
# With AZ_REPLAY_RECORD naming a non-empty record (tests/run-all.sh sets it while the bats suites
# run), that record is replayed; otherwise this runs the bats suites that call az (deploy.bats,
# deploy-flex.bats, report.bats) first, recording into a temporary file.
#
# Usage: tests/azcli/run.sh [pytest options]
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT
readonly VENV=$ROOT/tests/azcli/.venv

die() {
  echo "tests/azcli/run.sh: $*" >&2
  exit 1
}

main() {
  cd "$ROOT"
  [[ -x $VENV/bin/python ]] || die "the Azure CLI is not installed for the tests: run tests/install-tools.sh"
  TMP_DIR=""
  if [[ -z ${AZ_REPLAY_RECORD:-} || ! -s ${AZ_REPLAY_RECORD:-} ]]; then
    TMP_DIR=$(mktemp -d)
    trap 'rm -rf "${TMP_DIR:-}"' EXIT
    export AZ_REPLAY_RECORD=$TMP_DIR/az-calls.record
    echo "recording the az calls of tests/scripts/deploy.bats, deploy-flex.bats and report.bats"
    cargo build --bins --locked --quiet || die "cargo build failed (above)"
    bats tests/scripts/deploy.bats tests/scripts/deploy-flex.bats tests/scripts/report.bats >"$TMP_DIR/bats.log" 2>&1 ||
      { cat "$TMP_DIR/bats.log"; die "the bats suites failed (above)"; }
  fi
  "$VENV/bin/python" -m pytest -p no:cacheprovider -p no:logging -q -s --rootdir tests/azcli tests/azcli "$@"
}

main "$@"

#!/usr/bin/env bash
# Runs every test of the project: the Rust suites (real binaries over loopback), then the
# infrastructure checks (Bicep, KQL) and the script tests (bats, shellcheck).
# Installs what it needs first (tests/install-tools.sh), so it works on a fresh machine.
#
# Usage: tests/run-all.sh
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/install-tools.sh

echo "== cargo test"
cargo test --all-targets --locked

for suite in tests/infra/run.sh tests/scripts/run.sh; do
  if [[ -x "$suite" ]]; then
    echo "== $suite"
    "$suite"
  fi
done

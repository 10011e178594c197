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
# Not --all-targets: that would also run benches/bench.rs (clippy --all-targets still builds it).
cargo test --lib --bins --tests --locked

echo "== tests/infra/run.sh (Bicep, KQL, alert simulation)"
tests/infra/run.sh

echo "== tests/scripts/run.sh (shellcheck, bats)"
tests/scripts/run.sh

echo "== tests/docs (every command in the docs)"
tests/infra/.venv/bin/python -m pytest -p no:cacheprovider -q --rootdir tests/docs tests/docs

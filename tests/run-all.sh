#!/usr/bin/env bash
# Runs every test of the project: the Rust suites (real binaries over loopback), then the
# infrastructure checks (Bicep, KQL), the script tests (bats, shellcheck), the replay of every az
# command line through the real az CLI, and the docs.
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

echo "== tests/aws/run.sh (cfn-lint, CloudWatch alarm simulation over the lambda binary's metrics)"
tests/aws/run.sh

echo "== tests/scripts/run.sh (shellcheck, bats)"
# The az stand-in records every command line it is given here, for the replay below.
AZ_REPLAY_RECORD=$(mktemp)
AWS_REPLAY_RECORD=$(mktemp)
export AZ_REPLAY_RECORD AWS_REPLAY_RECORD
trap 'rm -rf "$AZ_REPLAY_RECORD" "$AWS_REPLAY_RECORD" "$AWS_REPLAY_RECORD.d"' EXIT
tests/scripts/run.sh

echo "== tests/azcli/run.sh (every az line of the bats suites and the docs, through the real az CLI)"
tests/azcli/run.sh

echo "== tests/awscli/run.sh (every aws line of the bats suites, through the real aws CLI v1)"
tests/awscli/run.sh

echo "== tests/docs (every command in the docs)"
tests/infra/.venv/bin/python -m pytest -p no:cacheprovider -q --rootdir tests/docs tests/docs

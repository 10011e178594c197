#!/usr/bin/env bash
# Runs the script tests: shellcheck on every shell script of the repository (every *.sh outside
# target/, node_modules/ and .venv/, plus the test stand-ins and bats files), then the bats suites
# in tests/scripts (deploy.sh against an az stand-in; start/stop with real tmux, agent and handler).
# Builds the debug binaries first (cargo build --bins), since the tmux tests run the real ones.
# Nothing contacts the network: every peer is on 127.0.0.1.
#
# Usage: tests/scripts/run.sh [bats options, e.g. -f 'stop' or --timing]
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT
readonly NAME=tests/scripts/run.sh

die() {
  printf '%s: %s\n' "$NAME" "$*" >&2
  exit 1
}

require_tools() {
  local cmd
  for cmd in shellcheck bats tmux jq zip zipinfo curl perl cargo; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is not installed: run tests/install-tools.sh (cargo: https://rustup.rs)"
  done
}

run_shellcheck() {
  local files=()
  mapfile -d '' files < <(find . \( -path ./target -o -path ./.git -o -name node_modules -o -name .venv \) -prune \
    -o -type f -name '*.sh' -print0 | sort -z)
  files+=(tests/scripts/*.bats tests/scripts/test_helper.bash tests/scripts/stubs/az tests/scripts/stubs/cargo tests/scripts/stubs/rustc tests/scripts/stubs/cargo-zigbuild tests/scripts/stubs/x86_64-linux-musl-gcc)
  echo "shellcheck: ${#files[@]} files"
  shellcheck -x "${files[@]}" || die "shellcheck found problems (above): fix them and run again"
}

main() {
  cd "$ROOT"
  require_tools
  run_shellcheck
  echo "cargo build --bins (the tmux tests run the real agent and handler)"
  cargo build --bins --locked --quiet || die "cargo build failed (above)"
  bats "$@" tests/scripts
}

main "$@"

#!/usr/bin/env bash
# Runs the script tests: shellcheck on every shell script of the repository (every *.sh outside
# target/, node_modules/ and .venv/, plus the test stand-ins and bats files), then the bats suites
# in tests/scripts (deploy.sh against an az stand-in; start/stop with real tmux, agent and handler).
# Builds the debug binaries first (cargo build --bins), since the tmux tests run the real ones.
# Then the same suites run again as on a stock Mac: a real bash 3.2 first on PATH as `bash` (so
# bats, the tests, the scripts and every nested `#!/usr/bin/env bash` run under it) and the BSD
# userland stand-ins of tests/scripts/bsd/ (sed, date, stat, readlink, mktemp, grep) next to it.
# That bash is ../shared/tools/bash-3.2/bash (our build machines); a clone without it skips that
# pass in one line. Nothing contacts the network: every peer is on 127.0.0.1.
#
# Usage: tests/scripts/run.sh [bats options, e.g. -f 'stop' or --timing]
#   ISP_MONITOR_TEST_PASSES=macos (or bash): only that pass; default: both
# Every option in a script's --help must have a test (compat.bats checks), so a new option such as
# deploy.sh --package runs under bash 3.2 and the BSD stand-ins as soon as its test exists.
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
  local files=() file
  while IFS= read -r file; do files+=("$file"); done < <(find . \( -path ./target -o -path ./.git -o -name node_modules -o -name .venv \) -prune \
    -o -type f -name '*.sh' -print | LC_ALL=C sort)
  files+=(tests/scripts/*.bats tests/scripts/test_helper.bash tests/scripts/stubs/az tests/scripts/stubs/aws tests/scripts/stubs/cargo tests/scripts/stubs/rustc tests/scripts/stubs/cargo-zigbuild tests/scripts/stubs/x86_64-linux-musl-gcc tests/scripts/bsd/userland)
  echo "shellcheck: ${#files[@]} files"
  shellcheck -x "${files[@]}" || die "shellcheck found problems (above): fix them and run again"
}

main() {
  cd "$ROOT"
  require_tools
  run_shellcheck
  echo "cargo build --bins (the tmux tests run the real agent and handler)"
  cargo build --bins --locked --quiet || die "cargo build failed (above)"
  local passes=${ISP_MONITOR_TEST_PASSES:-bash macos} failed=""
  if [[ " $passes " == *" bash "* ]]; then
    echo "== bats under bash $BASH_VERSION (the system's tools)"
    bats "$@" tests/scripts || failed+=" bash"
  fi
  if [[ " $passes " == *" macos "* ]]; then
    run_macos_pass "$@" || failed+=" macos"
  fi
  [[ -z $failed ]] || die "bats failed in the pass(es):$failed (above)"
}

# The stock-macOS pass (see the header).
run_macos_pass() {
  local bash32=$ROOT/../shared/tools/bash-3.2/bash tool
  if [[ ! -x $bash32 ]]; then
    echo "$NAME: skipping the bash 3.2 + BSD userland pass: ../shared/tools/bash-3.2/bash is not here"
    return 0
  fi
  COMPAT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ispm-macos.XXXXXX")
  trap 'rm -rf "$COMPAT_DIR"' EXIT
  ln -s "$bash32" "$COMPAT_DIR/bash"
  for tool in sed date stat readlink mktemp grep; do
    ln -s "$ROOT/tests/scripts/bsd/$tool" "$COMPAT_DIR/$tool"
  done
  echo "== bats under $("$COMPAT_DIR/bash" --version | head -n1), BSD userland stand-ins first on PATH"
  PATH=$COMPAT_DIR:$PATH ISP_MONITOR_TEST_COMPAT_DIR=$COMPAT_DIR bats "$@" tests/scripts
}

main "$@"

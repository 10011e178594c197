#!/usr/bin/env bash
# Runs every test of the project: the Rust suites (real binaries over loopback), then the
# infrastructure checks (Bicep, KQL; CloudFormation, CloudWatch alarms), the script tests (bats and
# lint), the replay of every az and aws command line through the real CLIs, and the docs.
# Installs what it needs first (tests/install-tools.sh), so it works on a fresh machine.
#
# The machine has few cores and much of the work waits on downloads, processes and sleeps, so two
# pairs run side by side: the Python/npm installs beside the Rust build and tests, and the
# infrastructure suites beside the script suites. Each side's output is kept in a log and printed
# whole when it ends, so nothing interleaves; any failure fails the run.
#
# Usage: tests/run-all.sh
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LOGS=$(mktemp -d)
# The az and aws stand-ins record every command line they are given in the script suites, for the
# replays below.
AZ_REPLAY_RECORD=$(mktemp)
AWS_REPLAY_RECORD=$(mktemp)
export AZ_REPLAY_RECORD AWS_REPLAY_RECORD
# On the way out, a side still running (this run failed) is stopped: by its pid, which we started.
# The trap keeps the run's own exit status: under set -e, a pkill that finds nothing (every side
# already ended, as in a passing run) would otherwise turn a pass into exit 1.
stop_sides() {
  local rc=$? pidfile
  for pidfile in "$LOGS"/*.pid; do
    [[ -f $pidfile ]] || continue
    pkill -P "$(cat "$pidfile")" 2>/dev/null || true
    kill -- "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$LOGS" "$AZ_REPLAY_RECORD" "$AWS_REPLAY_RECORD" "$AWS_REPLAY_RECORD.d"
  exit "$rc"
}
trap stop_sides EXIT

# side NAME COMMAND...: runs COMMAND in the background with its output in $LOGS/NAME.
side() {
  local name=$1
  shift
  ("$@") >"$LOGS/$name" 2>&1 &
  echo $! >"$LOGS/$name.pid"
}
# joined NAME: waits for side NAME, prints its output, and fails if it failed.
joined() {
  local name=$1 rc=0
  wait "$(cat "$LOGS/$name.pid")" || rc=$?
  echo "---- $name (ran alongside; its whole output) ----"
  cat "$LOGS/$name"
  echo "---- end of $name: exit $rc ----"
  return "$rc"
}

tests/install-tools.sh --system
side python-tools tests/install-tools.sh --environments

echo "== cargo test"
# Not --all-targets: that would also run benches/bench.rs (clippy --all-targets still builds it).
cargo test --lib --bins --tests --locked
# The suites below use the debug binaries built here.
cargo build --quiet --locked --bin handler --bin heartbeat-agent --bin lambda
joined python-tools

infra_suites() {
  echo "== tests/infra/run.sh (Bicep, KQL, alert simulation)"
  ISP_MONITOR_HANDLER=${ISP_MONITOR_HANDLER:-$PWD/target/debug/handler} tests/infra/run.sh
  echo "== tests/aws/run.sh (cfn-lint, CloudWatch alarm simulation over the lambda binary's metrics)"
  ISP_MONITOR_LAMBDA=${ISP_MONITOR_LAMBDA:-$PWD/target/debug/lambda} tests/aws/run.sh
}
side infra infra_suites

echo "== tests/scripts/run.sh (shellcheck, bats)"
scripts_rc=0
tests/scripts/run.sh || scripts_rc=$?
joined infra
((scripts_rc == 0)) || { echo "tests/scripts/run.sh failed (exit $scripts_rc): see above" >&2; exit "$scripts_rc"; }

echo "== tests/azcli/run.sh (every az line of the bats suites and the docs, through the real az CLI)"
tests/azcli/run.sh

echo "== tests/awscli/run.sh (every aws line of the bats suites, through the real aws CLI v1)"
tests/awscli/run.sh

echo "== tests/docs (every command in the docs)"
tests/infra/.venv/bin/python -m pytest -p no:cacheprovider -q --rootdir tests/docs tests/docs

#!/usr/bin/env bats
# tests/run-all.sh, the README's test command: its exit trap stops side jobs still running and keeps
# the run's own exit status. A trap that ended in a failing pkill once turned a fully passing CI run
# into exit 1.

# SC2016: the single-quoted snippets are bash code for the script under test, expanded there.
# shellcheck disable=SC2016

bats_require_minimum_version 1.5.0
load test_helper

# run_trap STATUS: a script under set -Eeuo pipefail with run-all.sh's own stop_sides (cut out of
# the file, so this tests what CI runs) and one side job, which has already ended when STATUS is
# "ended"; the script exits with 0 after a passing run, or with 7.
run_trap() {
  local script=$BATS_TEST_TMPDIR/trap.sh
  {
    echo 'set -Eeuo pipefail'
    echo "LOGS=$BATS_TEST_TMPDIR/logs AZ_REPLAY_RECORD=$BATS_TEST_TMPDIR/az AWS_REPLAY_RECORD=$BATS_TEST_TMPDIR/aws"
    echo 'mkdir -p "$LOGS"'
    sed -n '/^stop_sides() {$/,/^}$/p' "$REAL_ROOT/tests/run-all.sh"
    echo 'trap stop_sides EXIT'
    echo "$1"
  } >"$script"
  grep -q '^stop_sides() {$' "$script"
  run bash "$script"
}

@test "run-all: a passing run whose side jobs have all ended exits 0" {
  run_trap '(true) & echo $! >"$LOGS/side.pid"; wait; true'
  [ "$status" -eq 0 ]
}

@test "run-all: a failing run keeps its status, and its side job still running is stopped" {
  run_trap '(sleep 30; touch "$LOGS/../side-finished") & echo $! >"$LOGS/side.pid"; sleep 0.2; exit 7'
  [ "$status" -eq 7 ]
  sleep 0.5
  [ ! -e "$BATS_TEST_TMPDIR/side-finished" ]
  [ ! -d "$BATS_TEST_TMPDIR/logs" ]
}

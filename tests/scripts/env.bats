#!/usr/bin/env bats
# .env as load_env (scripts/common.sh) reads it. The same file is read by systemd's EnvironmentFile
# (docs/agent.md), so a line the two would read differently is refused, with its line number, and a
# HEARTBEAT_* name the agent does not know (a misspelling) is named in a warning.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

setup() {
  common_setup
  cp -R "$REAL_ROOT/scripts/report.sh" "$REAL_ROOT/scripts/report_aws.sh" "$REPO/scripts/"
}

teardown() {
  common_teardown
}

# load_values NAME...: loads $REPO/.env the way the scripts do and prints NAME=value lines.
load_values() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  bash -c 'set -Eeuo pipefail; ROOT=$1; SCRIPT_NAME=test; shift
    source "$ROOT/scripts/common.sh"; load_env "$ROOT/.env"
    for name in "$@"; do printf "%s=%s\n" "$name" "${!name-(unset)}"; done' bash "$REPO" "$@"
}

@test ".env: quoted values, a '#' inside quotes or without a blank before it, and a quote of the other kind are values" {
  write_env "# a comment line" \
    "HEARTBEAT_NOTE=\"living room # 2\"" \
    "HEARTBEAT_DEVICE='say \"hi\"'" \
    "HEARTBEAT_URL=https://example.net/api/ping#frag" \
    "export HEARTBEAT_INTERVAL=30" \
    "HEARTBEAT_TIMEOUT="
  run load_values HEARTBEAT_NOTE HEARTBEAT_DEVICE HEARTBEAT_URL HEARTBEAT_INTERVAL HEARTBEAT_TIMEOUT
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf '%s\n' 'HEARTBEAT_NOTE=living room # 2' 'HEARTBEAT_DEVICE=say "hi"' \
    'HEARTBEAT_URL=https://example.net/api/ping#frag' 'HEARTBEAT_INTERVAL=30' 'HEARTBEAT_TIMEOUT=(unset)')" ]
}

@test ".env: a misspelled HEARTBEAT_ name is named with its line and the likely setting, and ignored" {
  write_env "HEARTBEAT_DEVICE=den" "" "HEARTBEAT_INTERVALL=30" "HEARTBEAT_COLOUR=blue"
  run --separate-stderr load_values HEARTBEAT_DEVICE HEARTBEAT_INTERVALL
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf '%s\n' HEARTBEAT_DEVICE=den 'HEARTBEAT_INTERVALL=(unset)')" ]
  [ "$stderr" = "$(printf '%s\n' \
    "test: warning: line 3 of $REPO/.env: HEARTBEAT_INTERVALL is not a setting the agent knows (did you mean HEARTBEAT_INTERVAL?); it is ignored (see .env.example)" \
    "test: warning: line 4 of $REPO/.env: HEARTBEAT_COLOUR is not a setting the agent knows; it is ignored (see .env.example)")" ]
}

@test ".env: every HEARTBEAT_ name of .env.example loads without a warning, and every one the agent reads is there" {
  grep -E '^HEARTBEAT_[A-Z_]+=' "$REPO/.env.example" | sed 's/=.*/=1/' >"$REPO/.env"
  run --separate-stderr load_values HEARTBEAT_URL
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [ "$(grep -c '^HEARTBEAT_' "$REPO/.env")" -ge 10 ]
  local name
  for name in $(grep -rhoE '"HEARTBEAT_[A-Z_]+"' "$REAL_ROOT/src" | tr -d '"' | sort -u); do
    grep -q "^$name=" "$REPO/.env.example" || fail_test "the agent reads $name, which .env.example does not list"
  done
}

@test ".env: an unbalanced quote is refused with its line number, before anything runs" {
  local line
  for line in "HEARTBEAT_NOTE=\"living room" "HEARTBEAT_NOTE='den" "HEARTBEAT_NOTE=it's mine" \
    "HEARTBEAT_NOTE=\"a\"b\"" "HEARTBEAT_NOTE=den\""; do
    write_env "# settings" "HEARTBEAT_DEVICE=den" "$line"
    run "$REPO/stop_heartbeat.sh"
    [ "$status" -eq 1 ] || fail_test "accepted: $line" || return 1
    [[ $output == "stop_heartbeat.sh: line 3 of $REPO/.env (HEARTBEAT_NOTE): "*quote* ]] ||
      fail_test "for '$line': $output" || return 1
  done
  write_env 'HEARTBEAT_NOTE="living room'
  run "$REPO/start_heartbeat.sh" --status
  [ "$status" -eq 1 ]
  [ "$output" = "start_heartbeat.sh: line 1 of $REPO/.env (HEARTBEAT_NOTE): its value opens a \" quote that never closes: close it at the end of the value" ]
}

@test ".env: a ' # comment' after a value is refused with its line number, quoted or not" {
  write_env "ALERT_EMAIL=me@example.com" "HEARTBEAT_INTERVAL=30 # seconds"
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [ "$output" = "deploy.sh: line 2 of $REPO/.env (HEARTBEAT_INTERVAL): a comment follows its value (' #...' would become part of it): put the comment on a line of its own" ]
  [ ! -s "$STUB_LOG" ]
  write_env "AZURE_RESOURCE_GROUP='home' # mine"
  run "$REPO/scripts/report.sh"
  [ "$status" -eq 1 ]
  [ "$output" = "report.sh: line 1 of $REPO/.env (AZURE_RESOURCE_GROUP): a comment follows its value: put the comment on a line of its own" ]
}

@test ".env: lines of names the scripts do not read are left alone, whatever they hold" {
  write_env "OTHER_TOOL='x' # theirs" "HEARTBEAT_DEVICE=den"
  run load_values HEARTBEAT_DEVICE
  [ "$status" -eq 0 ]
  [ "$output" = HEARTBEAT_DEVICE=den ]
}

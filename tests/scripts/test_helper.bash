# shellcheck shell=bash
# Shared setup for the script tests (bats). Each test gets:
#   $REPO      a scratch copy of the scripts and the files they read, so .env writes, builds and
#              packages never touch the real clone;
#   $STUBS     a bin directory first on PATH holding the stand-ins (az, cargo, rustc) that record
#              each call in $STUB_LOG; the real cargo is not on PATH;
#   $TMUX_TMPDIR  a private tmux socket directory (its server is killed in teardown);
#   no inherited HEARTBEAT_*, AZURE_*, ISP_MONITOR_* settings.
# Everything listens on and talks to 127.0.0.1 only.
#
# tests/scripts/run.sh's stock-macOS pass sets ISP_MONITOR_TEST_COMPAT_DIR: a directory holding a
# real bash 3.2 as `bash` and the BSD-userland stand-ins (tests/scripts/bsd/), put right after the
# stand-ins on PATH, so the scripts and every nested `#!/usr/bin/env bash` run with them.
# This file and the .bats files run under that bash too: no bash-4 syntax here either.

REAL_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
STAND_INS=$BATS_TEST_DIRNAME/stubs
SYSTEM_PATH=/usr/local/bin:/usr/bin:/bin
COMPAT_PATH=${ISP_MONITOR_TEST_COMPAT_DIR:+$ISP_MONITOR_TEST_COMPAT_DIR:}
# The real binaries, built by tests/scripts/run.sh (cargo build --bins) before the suite runs.
REAL_HANDLER=${ISP_MONITOR_TEST_HANDLER:-$REAL_ROOT/target/debug/handler}
REAL_AGENT=${ISP_MONITOR_TEST_AGENT:-$REAL_ROOT/target/debug/heartbeat-agent}

common_setup() {
  local var
  for var in $(compgen -v | grep -E '^(HEARTBEAT_|AZURE_|ISP_MONITOR_|AZ_STUB_|STUB_)' || true); do
    unset "$var"
  done
  unset TMUX TMUX_PANE CARGO_TARGET_DIR NAME_PREFIX ALERT_EMAIL SILENCE_MINUTES \
    SILENCE_EVALUATION_MINUTES REMINDER_MINUTES OUTAGE_REPORT_MINUTES RETENTION_DAYS \
    ALERT_SMS_COUNTRY_CODE ALERT_SMS_NUMBER ALERT_WEBHOOK_URL APPLICATIONINSIGHTS_CONNECTION_STRING HOSTING_PLAN \
    DEGRADED_ALERT DEGRADED_LOSS_PCT DEGRADED_RTT_P95_MS DEGRADED_OF_LAST DEGRADED_AT_LEAST IP_CHANGE_ALERT \
    FLEX_INSTANCE_MEMORY_MB FLEX_MAXIMUM_INSTANCES FLEX_ALWAYS_READY
  export XDG_STATE_HOME=$BATS_TEST_TMPDIR/state
  export STUB_LOG=$BATS_TEST_TMPDIR/calls.log
  export AZ_STUB_STATE=$BATS_TEST_TMPDIR/az-state
  : >"$STUB_LOG"

  REPO=$BATS_TEST_TMPDIR/repo
  mkdir -p "$REPO/scripts" "$REPO/Ping"
  cp "$REAL_ROOT"/{deploy.sh,deploy_aws.sh,deploy_cloud.sh,start_heartbeat.sh,stop_heartbeat.sh,.env.example,main.bicep,host.json,Cargo.toml,Cargo.lock} "$REPO/"
  cp "$REAL_ROOT/scripts/common.sh" "$REAL_ROOT/scripts/build.sh" "$REPO/scripts/"
  cp "$REAL_ROOT/Ping/function.json" "$REPO/Ping/"

  STUBS=$BATS_TEST_TMPDIR/bin
  mkdir -p "$STUBS"
  ln -s "$STAND_INS/az" "$STAND_INS/cargo" "$STAND_INS/rustc" "$STAND_INS/cargo-zigbuild" "$STAND_INS/x86_64-linux-musl-gcc" "$STUBS/"
  export PATH=$STUBS:$COMPAT_PATH$SYSTEM_PATH
  # A fake Rust sysroot with both Linux targets installed; tests remove one to change that.
  export STUB_SYSROOT=$BATS_TEST_TMPDIR/sysroot
  mkdir -p "$STUB_SYSROOT/lib/rustlib/x86_64-unknown-linux-musl" "$STUB_SYSROOT/lib/rustlib/x86_64-unknown-linux-gnu"

  # Short socket paths: a unix socket path is limited to about 100 characters.
  TMUX_TMPDIR=$(mktemp -d /tmp/ispm-tmux.XXXXXX)
  export TMUX_TMPDIR
  BACKGROUND_PIDS=()
}

common_teardown() {
  local pid
  tmux kill-server 2>/dev/null || true
  for pid in "${BACKGROUND_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${BACKGROUND_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMUX_TMPDIR"
}

# write_env LINE...: writes $REPO/.env with these lines (mode 600).
write_env() {
  printf '%s\n' "$@" >"$REPO/.env"
  chmod 600 "$REPO/.env"
}

# The commands the scripts, the stand-ins and the tests may run, for hide_command's PATH.
# (Not `readonly TOOLS=(...)`: bats loads this file inside a function, and there bash 3.2 makes a
# readonly array local to it.)
TOOLS=(awk basename bash cat chmod cmp cp curl cut date dirname env find git grep head
  hostname id jq kill ldd ln ls mkdir mktemp mv perl printf rm sed sh sleep sort stat tail tee
  timeout tmux touch tr true uname unzip wc zip zipinfo od du readlink)

# hide_command CMD...: PATH becomes the stand-ins plus a directory of links to TOOLS, both without
# CMD. Each call starts again from the full set.
hide_command() {
  local dir=$BATS_TEST_TMPDIR/syspath cmd path
  PATH=$COMPAT_PATH$SYSTEM_PATH
  rm -rf "$dir"
  mkdir -p "$dir"
  for cmd in "${TOOLS[@]}"; do
    path=$(type -P "$cmd") && ln -s "$path" "$dir/$cmd"
  done
  ln -sf "$STAND_INS/az" "$STAND_INS/cargo" "$STAND_INS/rustc" "$STAND_INS/cargo-zigbuild" "$STAND_INS/x86_64-linux-musl-gcc" "$STUBS/"
  for cmd in "$@"; do
    rm -f "$dir/$cmd" "$STUBS/$cmd"
  done
  export PATH=$STUBS:$dir
}

free_port() {
  perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport, "\n"'
}

# wait_until TIMEOUT_SECONDS COMMAND...: polls COMMAND every 0.1 s; fails after the timeout.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

http_answers() {
  curl -s -o /dev/null --max-time 1 "$1"
}

# shellcheck disable=SC2034 # KEYGATE_PORT, HANDLER_PORT and the logs are read by the test files
# start_keygate KEY: runs the key-checking stand-in of the Functions front end; sets KEYGATE_PORT
# and KEYGATE_LOG.
start_keygate() {
  KEYGATE_LOG=$BATS_TEST_TMPDIR/keygate.log
  : >"$KEYGATE_LOG"
  rm -f "$BATS_TEST_TMPDIR/keygate.port"
  perl "$STAND_INS/keygate.pl" "$1" "$BATS_TEST_TMPDIR/keygate.port" "$KEYGATE_LOG" 3>&- &
  BACKGROUND_PIDS+=($!)
  wait_until 10 test -s "$BATS_TEST_TMPDIR/keygate.port"
  KEYGATE_PORT=$(<"$BATS_TEST_TMPDIR/keygate.port")
}

require_binaries() {
  [[ -x $REAL_HANDLER && -x $REAL_AGENT ]] ||
    fail_test "the real binaries are missing ($REAL_HANDLER, $REAL_AGENT): run 'cargo build --bins' (tests/scripts/run.sh does)"
}

# refute COMMAND...: fails the test when COMMAND succeeds. (A bare `! cmd` does not fail a bats
# test unless it is the test's last command.)
refute() {
  if "$@" 2>/dev/null; then
    fail_test "expected this to fail: $*"
  fi
}

fail_test() {
  echo "$*" >&2
  return 1
}

# assert_failed_with TEXT: the run failed, and its last line is the one-line reason of the script
# the file tests ($SCRIPT_UNDER_TEST, set at the top of the .bats file), holding TEXT.
# shellcheck disable=SC2154 # status, output and lines are set by bats' run
assert_failed_with() {
  local last=${lines[${#lines[@]} - 1]:-}
  [[ $status -ne 0 ]] || fail_test "expected a failure, got status 0: $output" || return 1
  [[ $last == "$SCRIPT_UNDER_TEST: "* ]] || fail_test "last line is not $SCRIPT_UNDER_TEST's reason: $last" || return 1
  [[ $last == *"$1"* ]] || fail_test "expected '$1' in: $last"
}

# start_handler: runs the real handler on a free loopback port, stdout in HANDLER_LOG; sets
# HANDLER_PORT.
start_handler() {
  require_binaries
  HANDLER_PORT=$(free_port)
  HANDLER_LOG=$BATS_TEST_TMPDIR/handler.log
  FUNCTIONS_CUSTOMHANDLER_PORT=$HANDLER_PORT "$REAL_HANDLER" >"$HANDLER_LOG" 2>"$BATS_TEST_TMPDIR/handler.err" 3>&- &
  BACKGROUND_PIDS+=($!)
  wait_until 10 http_answers "http://127.0.0.1:$HANDLER_PORT/" ||
    fail_test "handler did not answer: $(cat "$BATS_TEST_TMPDIR/handler.err")"
}

# calls MATCH: the recorded stand-in calls whose line contains MATCH, in order.
calls() {
  grep -F -- "$1" "$STUB_LOG" || true
}

# assert_in_order PATTERN...: each PATTERN (fixed string) matches a later line of $STUB_LOG.
assert_in_order() {
  local pattern line=0 found
  for pattern in "$@"; do
    found=$(tail -n "+$((line + 1))" "$STUB_LOG" | grep -n -F -m1 -- "$pattern" | cut -d: -f1) ||
      fail_test "'$pattern' not found after line $line of the call log:"$'\n'"$(cat "$STUB_LOG")" || return 1
    line=$((line + found))
  done
}

file_mode() {
  stat -c %a "$1" 2>/dev/null || stat -f %Lp "$1" # GNU, else BSD
}

# count_lines PATTERN FILE: how many lines of FILE match the extended regex.
count_lines() {
  grep -cE -- "$1" "$2" || true
}

#!/usr/bin/env bats
# start_heartbeat.sh and stop_heartbeat.sh with real tmux (a private server per test), the real
# heartbeat-agent and a real handler on a loopback port. Probe targets are loopback too, so nothing
# leaves the machine.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

setup() {
  common_setup
  require_binaries
  export ISP_MONITOR_AGENT_BIN=$REAL_AGENT ISP_MONITOR_HANDLER_BIN=$REAL_HANDLER
  export ISP_MONITOR_START_WAIT=10 ISP_MONITOR_STOP_WAIT=5
  export TMPDIR=$BATS_TEST_TMPDIR/tmp
  mkdir -p "$TMPDIR"
}

teardown() {
  common_teardown
}

# A .env that sends a heartbeat every second to the real handler.
env_for_handler() {
  start_handler
  write_env \
    "HEARTBEAT_URL=http://127.0.0.1:$HANDLER_PORT/api/ping" \
    "HEARTBEAT_DEVICE=bats-box" \
    "HEARTBEAT_INTERVAL=1" \
    "HEARTBEAT_TIMEOUT=2" \
    "HEARTBEAT_PROBE_TARGETS=127.0.0.1:9" \
    "$@"
}

heartbeats_received() {
  count_lines '"device":"bats-box"' "$HANDLER_LOG"
}

at_least_heartbeats() {
  (($(heartbeats_received) >= $1))
}

agent_pid() {
  tmux display-message -p -t "=isp-monitor:agent" '#{pane_pid}'
}

process_gone() {
  ! kill -0 "$1" 2>/dev/null
}

# --------------------------------------------------------------------------------------- start/stop

@test "start: the agent runs in tmux, heartbeats arrive at the handler, and it says how to attach" {
  env_for_handler
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"started the heartbeat agent in tmux session 'isp-monitor'"* ]]
  [[ $output == *" ok status=200 "*"device=bats-box"* ]]
  [[ $output == *"tmux attach -t isp-monitor"* ]]
  tmux has-session -t =isp-monitor
  wait_until 10 at_least_heartbeats 3
}

@test "start: a second start fails with exit 1 and leaves the running agent alone" {
  env_for_handler
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  pid=$(agent_pid)
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 1 ]
  [[ ${lines[${#lines[@]} - 1]} == "start_heartbeat.sh: already running in tmux session 'isp-monitor': see ./start_heartbeat.sh --status, or stop it with ./stop_heartbeat.sh" ]]
  [ "$(agent_pid)" = "$pid" ]
  kill -0 "$pid"
}

@test "stop: shows the last output, stops the agent cleanly (SIGTERM) and ends the session" {
  env_for_handler
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  wait_until 10 at_least_heartbeats 2
  pid=$(agent_pid)
  run "$REPO/stop_heartbeat.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"last output of the agent"*" ok status=200 "* ]]
  # The agent's own shutdown line: it got SIGTERM and stopped by itself.
  [[ $output == *"Z stopped"* ]]
  [[ ${lines[${#lines[@]} - 1]} == "stopped: tmux session 'isp-monitor' is closed"* ]]
  refute tmux has-session -t =isp-monitor
  wait_until 3 process_gone "$pid"
  # No more heartbeats.
  before=$(heartbeats_received)
  sleep 1.5
  [ "$(heartbeats_received)" -eq "$before" ]
}

@test "stop: nothing running says so and exits 0" {
  run "$REPO/stop_heartbeat.sh"
  [ "$status" -eq 0 ]
  [ "$output" = "nothing to stop: no tmux session 'isp-monitor' is running" ]
}

@test "--status: running with the last heartbeat; not running (exit 3) once stopped" {
  env_for_handler
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  wait_until 10 at_least_heartbeats 2
  run "$REPO/start_heartbeat.sh" --status
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "running: tmux session 'isp-monitor', agent pid $(agent_pid), since "* ]]
  [[ ${lines[1]} =~ ^"last heartbeat: "[0-9T:-]+Z" ok status=200 " ]]
  "$REPO/stop_heartbeat.sh" >/dev/null
  run "$REPO/start_heartbeat.sh" --status
  [ "$status" -eq 3 ]
  [[ $output == "not running: no tmux session 'isp-monitor'"* ]]
}

@test "--status: failing heartbeats show as the last result, with no success yet" {
  write_env "HEARTBEAT_URL=http://127.0.0.1:$(free_port)/api/ping" "HEARTBEAT_INTERVAL=1" \
    "HEARTBEAT_TIMEOUT=1" "HEARTBEAT_PROBE_INTERVAL=1" "HEARTBEAT_PROBE_TARGETS=127.0.0.1:9"
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  [[ $output == *" fail "* ]]
  [[ $output == *"warning: the first heartbeat failed"* ]]
  run "$REPO/start_heartbeat.sh" --status
  [ "$status" -eq 0 ]
  [[ $output == *"last heartbeat: "*" fail "* ]]
  [[ $output == *"last success:   none yet"* ]]
}

@test "--local: a local handler receives the heartbeats, with no Azure and no .env; stop ends both" {
  port=$(free_port)
  ISP_MONITOR_LOCAL_PORT=$port ISP_MONITOR_LOCAL_INTERVAL=1 HEARTBEAT_PROBE_TARGETS=127.0.0.1:9 \
    run "$REPO/start_heartbeat.sh" --local
  [ "$status" -eq 0 ]
  [[ $output == *"local handler listening on http://127.0.0.1:$port"* ]]
  [[ $output == *"sending to http://127.0.0.1:$port/api/ping"* ]]
  [[ $output == *" ok status=200 "* ]]
  handler_heartbeats() { (($(tmux capture-pane -p -J -S - -t =isp-monitor:handler | grep -c '"event":"heartbeat"') >= 2)); }
  wait_until 10 handler_heartbeats
  # The local run keeps its own journal, apart from the real one.
  [ -d "$XDG_STATE_HOME/isp-monitor/local" ]
  run "$REPO/stop_heartbeat.sh"
  [ "$status" -eq 0 ]
  refute curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"
}

@test "--local: a port already in use is reported before anything starts" {
  env_for_handler
  ISP_MONITOR_LOCAL_PORT=$HANDLER_PORT run "$REPO/start_heartbeat.sh" --local
  [ "$status" -eq 1 ]
  [[ ${lines[${#lines[@]} - 1]} == "start_heartbeat.sh: port $HANDLER_PORT is already in use: set ISP_MONITOR_LOCAL_PORT to a free port and run again" ]]
  refute tmux has-session -t =isp-monitor
}

@test "the key from .env reaches the server as x-functions-key, and is on no command line nor left on disk" {
  start_keygate secret-KEY-42==
  write_env "HEARTBEAT_URL=http://127.0.0.1:$KEYGATE_PORT/api/ping" "HEARTBEAT_KEY=secret-KEY-42==" \
    "HEARTBEAT_INTERVAL=1" "HEARTBEAT_PROBE_TARGETS=127.0.0.1:9"
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  [[ $output != *secret-KEY-42==* ]]
  wait_until 10 grep -q '^POST /api/ping key=match' "$KEYGATE_LOG"
  refute grep -q 'key=missing\|key=wrong' "$KEYGATE_LOG"
  [[ $(tr '\0' ' ' <"/proc/$(agent_pid)/cmdline") != *secret-KEY* ]]
  [[ $(tmux list-panes -a -F '#{pane_start_command}') != *secret-KEY* ]]
  [ -z "$(ls -A "$TMPDIR")" ]
}

@test "session name: from ISP_MONITOR_SESSION in .env, or --session" {
  env_for_handler "ISP_MONITOR_SESSION=home-a"
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  tmux has-session -t =home-a
  run "$REPO/start_heartbeat.sh" --session other-b --status
  [ "$status" -eq 3 ]
  run "$REPO/stop_heartbeat.sh" --session home-a
  [ "$status" -eq 0 ]
  refute tmux has-session -t =home-a
}

@test "builds the agent with cargo (release) when no binary is named" {
  env_for_handler
  unset ISP_MONITOR_AGENT_BIN
  export STUB_BINARY_SOURCE=$REAL_AGENT
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  calls cargo | grep -qx "cargo build --release --locked --quiet --manifest-path $REPO/Cargo.toml --bin heartbeat-agent"
  [ "$(tmux display-message -p -t =isp-monitor:agent '#{pane_current_command}')" = heartbeat-agent ]
  wait_until 10 at_least_heartbeats 2
}

@test "a session whose agent died is reported by --status and replaced by the next start" {
  env_for_handler
  # The short sleep lets remain-on-exit be set before the pane's command ends, even on a busy machine.
  tmux new-session -d -s isp-monitor -n agent -- sh -c 'sleep 0.5; echo "heartbeat-agent: journal unreadable"; exit 1' \; \
    set-option -w -t =isp-monitor:agent remain-on-exit on
  # (A function, so that each poll asks tmux again.)
  agent_pane_dead() { [ "$(tmux display-message -p -t =isp-monitor:agent '#{pane_dead}')" = 1 ]; }
  wait_until 5 agent_pane_dead
  run "$REPO/start_heartbeat.sh" --status
  [ "$status" -eq 3 ]
  [[ $output == *"exited"*"heartbeat-agent: journal unreadable"* ]]
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"had stopped"* ]]
  wait_until 10 at_least_heartbeats 2
}

# ------------------------------------------------------------------------------------ failure paths

@test "fails: no HEARTBEAT_URL: says to run deploy.sh or try --local; starts nothing" {
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 1 ]
  [[ $output == "start_heartbeat.sh: HEARTBEAT_URL is not set in $REPO/.env: run ./deploy.sh to deploy and write it, or try ./start_heartbeat.sh --local" ]]
  refute tmux has-session -t =isp-monitor
}

@test "fails: each bad .env value is named with what to fix; nothing starts" {
  local line
  while IFS='|' read -r line expected; do
    write_env "HEARTBEAT_URL=http://127.0.0.1:9/api/ping" "$line"
    run "$REPO/start_heartbeat.sh"
    [ "$status" -eq 1 ] || fail_test "'$line' was accepted: $output"
    [[ $output == "start_heartbeat.sh: $expected"* ]] || fail_test "'$line' gave: $output"
  done <<'EOF'
HEARTBEAT_URL=ftp://example.com/x|HEARTBEAT_URL 'ftp://example.com/x' is not an http(s) URL
HEARTBEAT_INTERVAL=0|HEARTBEAT_INTERVAL '0' is not a whole number of seconds above 0
HEARTBEAT_TIMEOUT=ten|HEARTBEAT_TIMEOUT 'ten' is not a whole number of seconds above 0
HEARTBEAT_PROBE_TARGETS=127.0.0.1:9,nocolon|HEARTBEAT_PROBE_TARGETS has 'nocolon', which is not host:port
HEARTBEAT_GATEWAY=192.168.1.1|HEARTBEAT_GATEWAY '192.168.1.1' is not host:port
just words|line 2 of
EOF
  refute tmux has-session -t =isp-monitor
}

@test "fails: an agent that exits at once (a value only it checks) shows its message; no session is left" {
  env_for_handler "HEARTBEAT_DEVICE=$(printf 'x%.0s' {1..150})"
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 1 ]
  [[ $output == *"heartbeat-agent: --device / HEARTBEAT_DEVICE"*"the limit is 100"* ]]
  # (tmux may not know the exit status of a process that ends at once.)
  [[ ${lines[${#lines[@]} - 1]} =~ ^"start_heartbeat.sh: the agent stopped at once"( \(exit status 2\))?"; its output is above: fix the cause and run again"$ ]]
  refute tmux has-session -t =isp-monitor
}

@test "fails: tmux missing: the message gives this platform's install command" {
  env_for_handler
  hide_command tmux
  run "$REPO/start_heartbeat.sh"
  [ "$status" -eq 1 ]
  [[ $output == "start_heartbeat.sh: tmux is not installed: install it with '"*"tmux' and run again" ]]
  if grep -qE '^ID(_LIKE)?=.*(debian|ubuntu)' /etc/os-release; then
    [[ $output == *"'sudo apt-get install -y tmux'"* ]]
  fi
  run "$REPO/stop_heartbeat.sh"
  [ "$status" -eq 1 ]
  [[ $output == "stop_heartbeat.sh: tmux is not installed: install it with '"* ]]
}

@test "usage: --help for both scripts; unknown options fail with a pointer to --help" {
  run "$REPO/start_heartbeat.sh" --help
  [ "$status" -eq 0 ]
  [[ $output == *"--local"*"--status"* ]]
  run "$REPO/stop_heartbeat.sh" --help
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "stop_heartbeat.sh: stops the heartbeat agent"* ]]
  run "$REPO/start_heartbeat.sh" --bogus
  [ "$status" -eq 1 ]
  [[ $output == "start_heartbeat.sh: unknown option '--bogus': run ./start_heartbeat.sh --help" ]]
  run "$REPO/stop_heartbeat.sh" --bogus
  [ "$status" -eq 1 ]
}

#!/usr/bin/env bash
# start_heartbeat.sh: keeps the heartbeat agent running in a detached tmux session, so it goes on
# after you close the terminal or log out.
#
# Usage: ./start_heartbeat.sh [--local] [--session NAME]
#        ./start_heartbeat.sh --status [--session NAME]
#
#   (no option)     load .env, check it, build the agent if needed (cargo build --release), start
#                   it in tmux session 'isp-monitor' and show its first heartbeat
#   --local         also start a local handler and send the heartbeats there instead of Azure,
#                   to see them flow without deploying (port ISP_MONITOR_LOCAL_PORT, default 7071)
#   --status        say whether the agent runs and show its last heartbeat, without attaching;
#                   exits 0 when it runs, 3 when it does not
#   --session NAME  the tmux session (default: ISP_MONITOR_SESSION, else isp-monitor)
#   --help          show this text
#
# Watch it with `tmux attach -t isp-monitor` (leave again with Ctrl-b d); stop it with
# ./stop_heartbeat.sh. Settings come from .env (see .env.example); a variable already set in your
# environment wins over .env. Details: docs/deploy.md.
set -Eeuo pipefail

readonly SCRIPT_NAME=start_heartbeat.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT
readonly SELF=$ROOT/start_heartbeat.sh
readonly ENV_FILE=${ISP_MONITOR_ENV_FILE:-$ROOT/.env}
readonly TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
readonly AGENT_WINDOW=agent
readonly HANDLER_WINDOW=handler

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}" # BSD sed needs the ';' before '}'
}

# ------------------------------------------------------------------------------------------ settings

# Prints one line per problem with the agent settings; nothing when they are fine.
settings_problems() {
  local local_mode=$1 item
  if [[ $local_mode == 0 ]]; then
    if [[ -z ${HEARTBEAT_URL:-} ]]; then
      echo "HEARTBEAT_URL is not set in $ENV_FILE: run ./deploy.sh to deploy and write it, or try ./start_heartbeat.sh --local"
    elif [[ ! $HEARTBEAT_URL =~ ^https?://[^/[:space:]]+(/[^[:space:]]*)?$ ]]; then
      echo "HEARTBEAT_URL '$HEARTBEAT_URL' is not an http(s) URL: fix it in $ENV_FILE (./deploy.sh writes the right one)"
    fi
  fi
  for item in HEARTBEAT_INTERVAL HEARTBEAT_TIMEOUT HEARTBEAT_PROBE_INTERVAL; do
    if [[ -n ${!item:-} ]] && ! is_positive_int "${!item}"; then
      echo "$item '${!item}' is not a whole number of seconds above 0: fix it in $ENV_FILE"
    fi
  done
  if [[ -n ${HEARTBEAT_PROBE_TARGETS:-} ]]; then
    local targets=()
    IFS=, read -r -a targets <<<"$HEARTBEAT_PROBE_TARGETS"
    for item in ${targets[@]+"${targets[@]}"}; do # bash 3.2: an empty "${a[@]}" fails under set -u
      is_host_port "$item" ||
        echo "HEARTBEAT_PROBE_TARGETS has '$item', which is not host:port (e.g. 1.1.1.1:443): fix it in $ENV_FILE"
    done
  fi
  if [[ -n ${HEARTBEAT_GATEWAY:-} ]] && ! is_host_port "$HEARTBEAT_GATEWAY"; then
    echo "HEARTBEAT_GATEWAY '$HEARTBEAT_GATEWAY' is not host:port (e.g. 192.168.1.1:80): fix it in $ENV_FILE"
  fi
  if [[ -n ${ISP_MONITOR_LOCAL_PORT:-} && ! ${ISP_MONITOR_LOCAL_PORT} =~ ^[0-9]{1,5}$ ]]; then
    echo "ISP_MONITOR_LOCAL_PORT '$ISP_MONITOR_LOCAL_PORT' is not a port number: fix it in $ENV_FILE"
  fi
}

is_host_port() {
  [[ $1 =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$ ]]
}

check_settings() {
  local local_mode=$1 problem
  problem=$(settings_problems "$local_mode" | first_line)
  [[ -z $problem ]] || die "$problem"
  [[ $local_mode == 1 ]] && return 0
  if [[ $HEARTBEAT_URL == http://* && ! $HEARTBEAT_URL =~ ^http://(127\.0\.0\.1|localhost|\[::1\])[:/] ]]; then
    warn "HEARTBEAT_URL uses plain http: the key and heartbeats cross the network unencrypted"
  fi
  if [[ -z ${HEARTBEAT_KEY:-} && $HEARTBEAT_URL == https://* ]]; then
    warn "HEARTBEAT_KEY is not set: the deployed function refuses heartbeats without its key (./deploy.sh writes it)"
  fi
  warn_if_env_readable "$ENV_FILE"
}

# --------------------------------------------------------------------------------------- binaries

# Sets AGENT_EXE (and HANDLER_EXE when $1 is 1): the binaries named by ISP_MONITOR_AGENT_BIN /
# ISP_MONITOR_HANDLER_BIN, else a release build, brought up to date with cargo when it is there.
find_binaries() {
  local need_handler=$1 bins=() names=() name
  AGENT_EXE=${ISP_MONITOR_AGENT_BIN:-}
  HANDLER_EXE=${ISP_MONITOR_HANDLER_BIN:-}
  [[ -n $AGENT_EXE ]] || names+=(heartbeat-agent)
  [[ $need_handler == 0 || -n $HANDLER_EXE ]] || names+=(handler)
  if ((${#names[@]})); then
    for name in "${names[@]}"; do bins+=(--bin "$name"); done
    if command -v cargo >/dev/null 2>&1; then
      info "building ${names[*]} (cargo build --release; the first build takes a few minutes)"
      cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml" "${bins[@]}" ||
        die "cargo build failed (see above): fix the error, or run 'cargo build --release' yourself to see it, then run again"
    elif [[ ! -x $TARGET_DIR/release/heartbeat-agent ]]; then
      die "cargo is not installed and there is no built agent: install Rust from https://rustup.rs and run again"
    else
      warn "cargo is not installed: using the agent already built in $TARGET_DIR/release, which may be out of date"
    fi
    : "${AGENT_EXE:=$TARGET_DIR/release/heartbeat-agent}"
    [[ $need_handler == 0 ]] || : "${HANDLER_EXE:=$TARGET_DIR/release/handler}"
  fi
  [[ -x $AGENT_EXE ]] || die "the agent $AGENT_EXE is missing or not executable: run 'cargo build --release' (or fix ISP_MONITOR_AGENT_BIN)"
  [[ $need_handler == 0 || -x $HANDLER_EXE ]] ||
    die "the handler $HANDLER_EXE is missing or not executable: run 'cargo build --release' (or fix ISP_MONITOR_HANDLER_BIN)"
}

# ------------------------------------------------------------------------------------------- start

# Hands the resolved settings to the tmux pane through a private file (mode 600, removed by the
# pane at once), so the key is on no command line and the tmux server's own environment does not
# matter. Prints the file's path.
write_handoff() {
  local file var
  file=$(mktemp "${TMPDIR:-/tmp}/isp-monitor-agent.XXXXXX")
  {
    for var in "${!HEARTBEAT_@}"; do
      [[ -n ${!var} ]] && printf 'export %s=%q\n' "$var" "${!var}"
    done
    printf 'export ISP_MONITOR_AGENT_EXEC=%q\n' "$AGENT_EXE"
  } >"$file"
  printf '%s' "$file"
}

# The pane side of write_handoff: clear inherited HEARTBEAT_* values, load the file, remove it and
# become the agent (same pid, so stop_heartbeat.sh can signal it).
run_agent() {
  local file=$1 var
  for var in "${!HEARTBEAT_@}"; do unset "$var"; done
  # shellcheck source=/dev/null
  source "$file"
  rm -f "$file"
  exec "$ISP_MONITOR_AGENT_EXEC" --daemon
}

# Starts the local handler in its own window and waits until it answers.
start_local_handler() {
  local port=$1 deadline=$((SECONDS + 15))
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
    die "port $port is already in use: set ISP_MONITOR_LOCAL_PORT to a free port and run again"
  fi
  tmux new-session -d -s "$SESSION" -n "$HANDLER_WINDOW" -x 200 -y 50 -- \
    env -u APPLICATIONINSIGHTS_CONNECTION_STRING FUNCTIONS_CUSTOMHANDLER_PORT="$port" "$HANDLER_EXE" \; \
    set-option -w -t "=$SESSION:$HANDLER_WINDOW" remain-on-exit on >/dev/null
  until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; do
    if [[ $(pane_field "$SESSION" "$HANDLER_WINDOW" '#{pane_dead}') == 1 ]] || ((SECONDS >= deadline)); then
      pane_output "$SESSION" "$HANDLER_WINDOW" 20 >&2
      tmux kill-session -t "=$SESSION" 2>/dev/null || true
      die "the local handler did not start on port $port (its output is above): fix the cause and run again"
    fi
    sleep 0.2
  done
}

start_agent_window() {
  local handoff=$1
  if session_exists "$SESSION"; then
    tmux new-window -d -t "=$SESSION:" -n "$AGENT_WINDOW" -- "$SELF" --run-agent "$handoff" \; \
      set-option -w -t "=$SESSION:$AGENT_WINDOW" remain-on-exit on >/dev/null
  else
    tmux new-session -d -s "$SESSION" -n "$AGENT_WINDOW" -x 200 -y 50 -- "$SELF" --run-agent "$handoff" \; \
      set-option -w -t "=$SESSION:$AGENT_WINDOW" remain-on-exit on >/dev/null
  fi
}

# Waits for the agent's first heartbeat line (or its early exit) and shows the output so far.
show_first_output() {
  local deadline=$((SECONDS + START_WAIT)) out status first
  while :; do
    out=$(pane_output "$SESSION" "$AGENT_WINDOW")
    if [[ $(pane_field "$SESSION" "$AGENT_WINDOW" '#{pane_dead}') == 1 ]]; then
      status=$(exit_note "$SESSION" "$AGENT_WINDOW")
      out=$(pane_output "$SESSION" "$AGENT_WINDOW")
      [[ -n $out ]] && printf '%s\n' "$out" >&2
      tmux kill-session -t "=$SESSION" 2>/dev/null || true
      die "the agent stopped at once$status; its output is above: fix the cause and run again"
    fi
    if grep -qE "$AGENT_LINE_RE" <<<"$out" || ((SECONDS >= deadline)); then
      break
    fi
    sleep 0.2
  done
  info "---- first output of the agent"
  if [[ -n $out ]]; then printf '%s\n' "$out"; else info "(nothing yet)"; fi
  info "----"
  first=$(grep -E "$AGENT_LINE_RE" <<<"$out" | head -n1 || true)
  if [[ -z $first ]]; then
    warn "no heartbeat yet after ${START_WAIT}s; the agent keeps going: check with ./start_heartbeat.sh --status"
  elif [[ $(cut -d' ' -f2 <<<"$first") == fail ]]; then
    warn "the first heartbeat failed (see above); the agent keeps trying and records the outage"
  fi
}

start() {
  local local_mode=$1 handoff port
  require_tmux
  if session_exists "$SESSION"; then
    case $(pane_field "$SESSION" "$AGENT_WINDOW" '#{pane_dead}') in
      0) die "already running in tmux session '$SESSION': see ./start_heartbeat.sh --status, or stop it with ./stop_heartbeat.sh" ;;
      1) ;;
      *) die "tmux session '$SESSION' exists but has no '$AGENT_WINDOW' window, so it is not ours: pick another name with --session or ISP_MONITOR_SESSION" ;;
    esac
    info "the agent in tmux session '$SESSION' had stopped; its last output:"
    pane_output "$SESSION" "$AGENT_WINDOW" 5
    tmux kill-session -t "=$SESSION" 2>/dev/null || true
  fi
  check_settings "$local_mode"
  find_binaries "$local_mode"

  if [[ $local_mode == 1 ]]; then
    require_cmd curl
    port=${ISP_MONITOR_LOCAL_PORT:-7071}
    # Local heartbeats go to the local handler, more often, with no key, and keep their own
    # outage journal so they never mix with the real one.
    export HEARTBEAT_URL=http://127.0.0.1:$port/api/ping
    export HEARTBEAT_INTERVAL=${ISP_MONITOR_LOCAL_INTERVAL:-5}
    export HEARTBEAT_STATE_DIR=${HEARTBEAT_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/isp-monitor}/local
    unset HEARTBEAT_KEY
    start_local_handler "$port"
    info "local handler listening on http://127.0.0.1:$port (window '$HANDLER_WINDOW')"
  fi

  handoff=$(write_handoff)
  if ! start_agent_window "$handoff"; then
    rm -f "$handoff"
    die "tmux could not start session '$SESSION': run 'tmux new-session -s test' to see why"
  fi
  info "started the heartbeat agent in tmux session '$SESSION', sending to ${HEARTBEAT_URL%%\?*}"
  show_first_output
  cat <<EOF
Watch it:  tmux attach -t $SESSION   (leave with Ctrl-b d$([[ $local_mode == 1 ]] && printf '; Ctrl-b n switches between handler and agent'))
Status:    ./start_heartbeat.sh --status
Stop:      ./stop_heartbeat.sh
EOF
}

# ------------------------------------------------------------------------------------------ status

status() {
  local since pid out last last_ok
  require_tmux
  if ! session_exists "$SESSION"; then
    info "not running: no tmux session '$SESSION' (start it with ./start_heartbeat.sh)"
    return 3
  fi
  out=$(pane_output "$SESSION" "$AGENT_WINDOW")
  last=$(grep -E "$AGENT_LINE_RE" <<<"$out" | tail -n1 || true)
  last_ok=$(grep -E "$AGENT_LINE_RE" <<<"$out" | grep -E '^[^ ]+ ok' | tail -n1 || true)
  if [[ $(pane_field "$SESSION" "$AGENT_WINDOW" '#{pane_dead}') != 0 ]]; then
    info "not running: the agent in tmux session '$SESSION' exited$(exit_note "$SESSION" "$AGENT_WINDOW"); its last output:"
    tail -n 5 <<<"$out"
    info "start it again with ./start_heartbeat.sh"
    return 3
  fi
  pid=$(pane_field "$SESSION" "$AGENT_WINDOW" '#{pane_pid}')
  since=$(pane_field "$SESSION" "$AGENT_WINDOW" '#{session_created}')
  since=$(date -d "@$since" '+%Y-%m-%d %H:%M:%S' 2>/dev/null || date -r "$since" '+%Y-%m-%d %H:%M:%S' 2>/dev/null || echo "$since")
  info "running: tmux session '$SESSION', agent pid $pid, since $since"
  info "last heartbeat: ${last:-none yet}"
  if [[ -n $last && $last != "$last_ok" ]]; then
    info "last success:   ${last_ok:-none yet}"
  fi
  return 0
}

# -------------------------------------------------------------------------------------------- main

main() {
  local local_mode=0 mode=start session=""
  if [[ ${1:-} == --run-agent ]]; then # internal: the command tmux runs in the agent's pane
    run_agent "$2"
  fi
  while (($#)); do
    case $1 in
      --local) local_mode=1 ;;
      --status) mode=status ;;
      --session)
        [[ -n ${2:-} ]] || die "--session needs a name: run ./start_heartbeat.sh --help"
        session=$2
        shift
        ;;
      -h | --help)
        usage
        return 0
        ;;
      *) die "unknown option '$1': run ./start_heartbeat.sh --help" ;;
    esac
    shift
  done
  load_env "$ENV_FILE"
  # Seconds to wait for the first heartbeat line before handing back the terminal.
  START_WAIT=${ISP_MONITOR_START_WAIT:-20}
  is_positive_int "$START_WAIT" || die "ISP_MONITOR_START_WAIT '$START_WAIT' is not a whole number of seconds: fix it in $ENV_FILE"
  SESSION=${session:-${ISP_MONITOR_SESSION:-isp-monitor}}
  [[ $SESSION =~ ^[A-Za-z0-9_-]+$ ]] || die "session name '$SESSION' may only use letters, digits, - and _: fix ISP_MONITOR_SESSION"
  if [[ $mode == status ]]; then
    status
  else
    start "$local_mode"
  fi
}

main "$@"

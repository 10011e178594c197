#!/usr/bin/env bash
# stop_heartbeat.sh: stops the heartbeat agent that ./start_heartbeat.sh started in tmux (and the
# local handler of --local), after showing its last lines of output.
#
# Usage: ./stop_heartbeat.sh [--session NAME]
#
#   --session NAME  the tmux session (default: ISP_MONITOR_SESSION from .env, else isp-monitor)
#   --help          show this text
#
# The agent gets SIGTERM first, so it stops cleanly (and keeps its outage journal); the session is
# then closed. Nothing running is not an error: it says so and exits 0.
set -Eeuo pipefail

readonly SCRIPT_NAME=stop_heartbeat.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT
readonly ENV_FILE=${ISP_MONITOR_ENV_FILE:-$ROOT/.env}
readonly LAST_LINES=10

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}" # BSD sed needs the ';' before '}'
}

# Pids of the session's panes whose process still runs.
live_pids() {
  tmux list-panes -s -t "=$SESSION" -F '#{pane_dead} #{pane_pid}' 2>/dev/null | awk '$1 == 0 { print $2 }'
}

stop() {
  local pid deadline=$((SECONDS + STOP_WAIT))
  require_tmux
  if ! session_exists "$SESSION"; then
    info "nothing to stop: no tmux session '$SESSION' is running"
    return 0
  fi
  for pid in $(live_pids); do # pids: words of digits
    kill -TERM "$pid" 2>/dev/null || true
  done
  while [[ -n $(live_pids) ]] && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if [[ -n $(live_pids) ]]; then
    warn "the agent did not stop within ${STOP_WAIT}s of SIGTERM; closing the session ends it"
  fi
  info "---- last output of the agent (tmux session '$SESSION')"
  pane_output "$SESSION" agent "$LAST_LINES"
  info "----"
  tmux kill-session -t "=$SESSION" 2>/dev/null || true
  info "stopped: tmux session '$SESSION' is closed (start again with ./start_heartbeat.sh)"
}

main() {
  local session=""
  while (($#)); do
    case $1 in
      --session)
        [[ -n ${2:-} ]] || die "--session needs a name: run ./stop_heartbeat.sh --help"
        session=$2
        shift
        ;;
      -h | --help)
        usage
        return 0
        ;;
      *) die "unknown option '$1': run ./stop_heartbeat.sh --help" ;;
    esac
    shift
  done
  load_env "$ENV_FILE"
  # Seconds the processes get to stop after SIGTERM before the session is closed anyway.
  STOP_WAIT=${ISP_MONITOR_STOP_WAIT:-10}
  is_positive_int "$STOP_WAIT" || die "ISP_MONITOR_STOP_WAIT '$STOP_WAIT' is not a whole number of seconds: fix it in $ENV_FILE"
  SESSION=${session:-${ISP_MONITOR_SESSION:-isp-monitor}}
  stop
}

main "$@"

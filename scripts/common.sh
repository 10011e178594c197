# shellcheck shell=bash
# Helpers shared by deploy.sh, start_heartbeat.sh and stop_heartbeat.sh (sourced, never run).
#
# - one error helper (`die`) that prefixes the calling script's name and says what to do next;
# - the `.env` reader: KEY=VALUE lines, never executed as shell code, values already in the
#   environment win, empty values count as unset (so the documented default applies);
# - the `.env` writer used by deploy.sh (other lines untouched, mode 600, secrets never on argv);
# - the install hint for a missing command on this platform.
#
# Portable to stock macOS: bash 3.2 and BSD userland (docs/platform.md §8). tests/scripts/run.sh
# runs every script test again under a real bash 3.2 with BSD-like sed/date/stat/mktemp/readlink/grep.

# Name used in every message; the sourcing script sets SCRIPT_NAME first.
: "${SCRIPT_NAME:=$(basename "$0")}"

# bash_too_old MAJOR MINOR: whether that bash is older than 3.2, the oldest these scripts run on
# (macOS's /bin/bash is 3.2.57).
bash_too_old() {
  [ "$1" -lt 3 ] || { [ "$1" -eq 3 ] && [ "$2" -lt 2 ]; }
}
if bash_too_old "${BASH_VERSINFO[0]}" "${BASH_VERSINFO[1]}"; then
  printf '%s: needs bash 3.2 or newer, but this is bash %s: run it with a newer bash (macOS: /bin/bash is 3.2)\n' \
    "$SCRIPT_NAME" "$BASH_VERSION" >&2
  exit 1
fi

die() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

warn() {
  printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2
}

info() {
  printf '%s\n' "$*"
}

# Prints the command that installs package $1 on this machine.
install_hint() {
  local pkg=$1 id="" like=""
  if [[ $(uname -s) == Darwin ]]; then
    printf 'brew install %s' "$pkg"
    return
  fi
  if [[ -r /etc/os-release ]]; then
    id=$(sed -n 's/^ID=//p' /etc/os-release | tr -d '"')
    like=$(sed -n 's/^ID_LIKE=//p' /etc/os-release | tr -d '"')
  fi
  case " $id $like " in
    *" debian "* | *" ubuntu "*) printf 'sudo apt-get install -y %s' "$pkg" ;;
    *" fedora "* | *" rhel "* | *" centos "*) printf 'sudo dnf install -y %s' "$pkg" ;;
    *" arch "*) printf 'sudo pacman -S %s' "$pkg" ;;
    *" alpine "*) printf 'sudo apk add %s' "$pkg" ;;
    *" suse "* | *" opensuse "*) printf 'sudo zypper install %s' "$pkg" ;;
    *) printf "your package manager's install command for %s" "$pkg" ;;
  esac
}

# require_cmd COMMAND [PACKAGE]: stops with the install command when COMMAND is missing.
require_cmd() {
  local cmd=$1 pkg=${2:-$1}
  command -v "$cmd" >/dev/null 2>&1 ||
    die "$cmd is not installed: install it with '$(install_hint "$pkg")' and run again"
}

# The names load_env takes from .env; other lines are ignored.
readonly ENV_NAMES='^(HEARTBEAT_[A-Z_]+|ISP_MONITOR_[A-Z_]+|AZURE_[A-Z_]+|ALERT_[A-Z_]+|NAME_PREFIX|SILENCE_MINUTES|SILENCE_EVALUATION_MINUTES|REMINDER_MINUTES|OUTAGE_REPORT_MINUTES|RETENTION_DAYS|AWS_REGION|AWS_STACK_NAME|AWS_PROFILE|AWS_FUNCTION_KEY|AWS_CODE_BUCKET|HOSTING_PLAN|DEGRADED_[A-Z0-9_]+|IP_CHANGE_ALERT|FLEX_[A-Z_]+)$'

# The HEARTBEAT_* settings the agent knows: the ones .env.example lists (the one list of them).
known_heartbeat_keys() {
  [[ -r ${ROOT:-.}/.env.example ]] || return 0
  sed -n 's/^\(HEARTBEAT_[A-Z0-9_]*\)=.*/\1/p' "${ROOT:-.}/.env.example"
}

# closest_key NAME KNOWN...: the known name NAME is most likely a misspelling of (edit distance of
# at most 3, ignoring case), or nothing.
closest_key() {
  local name=$1
  shift
  printf '%s\n' "$@" | awk -v name="$name" '
    function dist(a, b,    i, j, la, lb, d, cost, x, y, z) {
      la = length(a); lb = length(b)
      for (i = 0; i <= la; i++) d[i, 0] = i
      for (j = 0; j <= lb; j++) d[0, j] = j
      for (i = 1; i <= la; i++)
        for (j = 1; j <= lb; j++) {
          cost = (substr(a, i, 1) == substr(b, j, 1)) ? 0 : 1
          x = d[i - 1, j] + 1; y = d[i, j - 1] + 1; z = d[i - 1, j - 1] + cost
          d[i, j] = (x < y ? (x < z ? x : z) : (y < z ? y : z))
        }
      return d[la, lb]
    }
    NF { k = dist(toupper(name), toupper($0)); if (best == "" || k < bestd) { best = $0; bestd = k } }
    END { if (best != "" && bestd <= 3) print best }'
}

# env_value_problem VALUE: why a raw .env value would be read differently by systemd's
# EnvironmentFile (which also reads .env, docs/agent.md) than by load_env, or nothing.
env_value_problem() {
  local value=$1 q
  case $value in
    \"* | \'*)
      q=${value:0:1}
      value=${value:1}
      if [[ $value != *"$q"* ]]; then
        echo "its value opens a $q quote that never closes: close it at the end of the value"
      elif [[ ${value#*"$q"} =~ ^[[:space:]]*$ ]]; then
        :
      elif [[ ${value#*"$q"} =~ ^[[:space:]]+# ]]; then
        echo "a comment follows its value: put the comment on a line of its own"
      else
        echo "its value has a $q quote inside the quotes or text after them: quote the whole value once, with the other kind of quote if it holds a $q"
      fi
      ;;
    *)
      if [[ $value =~ [[:space:]]# ]]; then
        echo "a comment follows its value (' #...' would become part of it): put the comment on a line of its own"
      elif [[ $value == *[\"\']* ]]; then
        echo "its value has an unbalanced quote: quote the whole value, with the other kind of quote if it holds one"
      fi
      ;;
  esac
}

# load_env FILE: sets each KEY=VALUE of FILE that is not already set in the environment (when a
# key appears twice in FILE, the later line wins). Accepts `KEY=value`, `KEY="value"`,
# `KEY='value'`, `export KEY=value`, comments and blank lines. The file is parsed, not sourced, so
# nothing in it runs as code. For our own settings it refuses, with the line number, what systemd's
# EnvironmentFile would read differently (an unbalanced quote, a ` # comment` after the value), and
# warns about a HEARTBEAT_* name the agent does not know (a misspelling is otherwise silent).
load_env() {
  local file=$1 line key value n=0 from_file=" " known="" problem guess
  [[ -f $file ]] || return 0
  [[ -r $file ]] || die "cannot read $file: check its owner and mode (chmod 600 $file)"
  known=" $(known_heartbeat_keys | tr '\n' ' ')"
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ ! $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      die "line $n of $file is not KEY=VALUE: fix or remove it (see .env.example)"
    fi
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]}
    # Only our own settings: a stray PATH= or IFS= in .env must not change how the scripts run.
    [[ $key =~ $ENV_NAMES ]] || continue
    if [[ $key == HEARTBEAT_* && $known != " " && $known != *" $key "* ]]; then
      # shellcheck disable=SC2086 # the known names are words
      guess=$(closest_key "$key" $known)
      warn "line $n of $file: $key is not a setting the agent knows${guess:+ (did you mean $guess?)}; it is ignored (see .env.example)"
      continue
    fi
    problem=$(env_value_problem "$value")
    [[ -z $problem ]] || die "line $n of $file ($key): $problem"
    if [[ $value =~ ^\"(.*)\"[[:space:]]*$ || $value =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    fi
    if [[ $from_file != *" $key "* && -n ${!key+x} ]]; then
      continue # the environment wins
    fi
    from_file+="$key "
    if [[ -z $value ]]; then
      unset "$key" # empty means "use the default"
      continue
    fi
    printf -v "$key" '%s' "$value"
    export "${key?}"
  done <"$file"
}

# set_env_values FILE KEY...: writes the current values of the named variables into FILE,
# replacing each KEY's existing line (the first one; later duplicates are dropped) or appending it.
# Every other line is kept as it was. The values travel to awk through the environment, never
# on a command line, and the result replaces FILE atomically with mode 600.
set_env_values() {
  local file=$1 tmp
  shift
  tmp=$(mktemp "$(dirname "$file")/.env.XXXXXX") # mktemp creates it with mode 600
  [[ -f $file ]] || : >"$file"
  if ! ISP_MONITOR_SET_KEYS="$*" awk '
    BEGIN { n = split(ENVIRON["ISP_MONITOR_SET_KEYS"], keys, " ") }
    {
      for (i = 1; i <= n; i++) {
        if ($0 ~ ("^[[:space:]]*(export[[:space:]]+)?" keys[i] "=")) {
          if (!(keys[i] in done)) { print keys[i] "=" ENVIRON[keys[i]]; done[keys[i]] = 1 }
          next
        }
      }
      print
    }
    END {
      for (i = 1; i <= n; i++) if (!(keys[i] in done)) print keys[i] "=" ENVIRON[keys[i]]
    }' "$file" >"$tmp"; then
    rm -f "$tmp"
    die "could not update $file: check that its directory is writable"
  fi
  chmod 600 "$tmp"
  mv -f "$tmp" "$file"
}

# Warns when FILE (which may hold HEARTBEAT_KEY) can be read by other users.
warn_if_env_readable() {
  local file=$1 mode
  [[ -f $file ]] || return 0
  mode=$(stat -c %a "$file" 2>/dev/null || stat -f %Lp "$file" 2>/dev/null || echo 600)
  if [[ ${mode: -2} != 00 ]]; then
    warn "$file is readable by other users and may hold your heartbeat key: run 'chmod 600 $file'"
  fi
}

# first_line: the first line of its input, reading all of it. `producer | head -n1` closes the
# pipe early: a producer still writing then dies of SIGPIPE, and under pipefail and set -e the
# script exits 141 without a word.
first_line() {
  sed -n 1p
}

# is_positive_int VALUE: a whole number greater than zero.
is_positive_int() {
  [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 > 0))
}

# ------------------------------------------------------------------------------------------- tmux
# The agent runs in window "agent" of a tmux session (and, with --local, the handler in window
# "handler"). remain-on-exit keeps a crashed process's last words on screen for --status.

require_tmux() {
  command -v tmux >/dev/null 2>&1 ||
    die "tmux is not installed: install it with '$(install_hint tmux)' and run again"
}

session_exists() {
  tmux has-session -t "=$1" 2>/dev/null
}

# pane_field SESSION WINDOW FORMAT: one tmux format value of that window's pane.
pane_field() {
  tmux display-message -p -t "=$1:$2" "$3" 2>/dev/null
}

# exit_note SESSION WINDOW: " (exit status N)" for a dead pane, or nothing when tmux does not know
# it: tmux marks a pane dead when its terminal closes and learns the status when it reaps the
# process, which it can miss for a process that exits at once (seen with tmux 3.3a).
exit_note() {
  local status="" tries=0
  while [[ -z $status ]] && ((tries++ < 5)); do
    status=$(pane_field "$1" "$2" '#{pane_dead_status}')
    [[ -n $status ]] || sleep 0.05
  done
  [[ -z $status ]] || printf ' (exit status %s)' "$status"
}

# pane_output SESSION WINDOW [LINES]: the window's output (history included), without blank lines
# and tmux's own "Pane is dead" notice; the last LINES lines when given.
pane_output() {
  local out
  out=$(tmux capture-pane -p -J -S - -t "=$1:$2" 2>/dev/null | grep -v -e '^[[:space:]]*$' -e '^Pane is dead (' || true)
  if [[ -n ${3:-} ]]; then
    tail -n "$3" <<<"$out"
  else
    printf '%s\n' "$out"
  fi
}

# The agent prints one line per heartbeat: "<RFC 3339 time> ok|fail ...".
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly AGENT_LINE_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ (ok|fail)( |$)'

# ----------------------------------------------------------------------------------------- az calls
# (the caller sets WORK, a private temporary directory)

# az with the chosen subscription, JSON output (whatever the user's default output is) and the
# stderr kept in $WORK/az.err for az_reason.
az_json() {
  if [[ -n ${AZURE_SUBSCRIPTION:-} ]]; then
    set -- "$@" --subscription "$AZURE_SUBSCRIPTION"
  fi
  az "$@" --only-show-errors -o json 2>"$WORK/az.err"
}

# One line saying why the last az call failed: the innermost error message az printed.
az_reason() {
  local err line msg
  err=$(cat "$WORK/az.err" 2>/dev/null || true)
  line=$(grep -m1 '^ERROR: ' <<<"$err" || true)
  line=${line#ERROR: }
  if [[ $line == \{* ]]; then
    msg=$(jq -r '[.. | objects | (.message // .Message // empty) | strings] | last // empty' <<<"$line" 2>/dev/null || true)
    # ARM nests a resource provider's own JSON error as a string inside the last message.
    if [[ $msg == \{* ]]; then
      msg=$(jq -r '.Message // .message // empty' <<<"$msg" 2>/dev/null || printf '%s' "$msg")
    fi
    [[ -n $msg ]] && line=$msg
  fi
  [[ -n $line ]] || line=$(grep -m1 -v '^[[:space:]]*$' <<<"$err" || true)
  [[ -n $line ]] || line="az gave no reason"
  line=$(tr -s '\r\n\t' '   ' <<<"$line")
  line=${line%"${line##*[![:space:]]}"}
  printf '%s' "${line:0:300}"
}

# Whether the last az call failed because the login is missing or expired.
az_login_failed() {
  grep -qiE "az login|AADSTS|refresh token|expired" "$WORK/az.err" 2>/dev/null
}

# --------------------------------------------------------------------------- the deployed endpoint

# POSTs one heartbeat to NEW_URL with the key NEW_KEY (sent as a header read from a file
# descriptor, so it is on no command line) and expects 200 "ok". Retries while the app warms up,
# up to WAIT_SECONDS, every POLL_SECONDS (the caller sets WORK, NEW_URL, NEW_KEY and those two).
# deploy.sh and deploy_aws.sh both end with it; the advice per status can be set by the caller
# (HEARTBEAT_HINT_401, _404, _LOGS); the defaults are deploy.sh's (Azure Functions).
send_heartbeat() {
  local code body device deadline=$((SECONDS + WAIT_SECONDS)) logs="the app's logs (docs/deploy.md)"
  [[ -z ${HEARTBEAT_HINT_LOGS:-} ]] || logs=$HEARTBEAT_HINT_LOGS
  device=${HEARTBEAT_DEVICE:-$(hostname 2>/dev/null || uname -n)}
  info "==> sending a heartbeat as device '$device'"
  while :; do
    code=$(jq -cn --arg device "$device" --arg script "$SCRIPT_NAME" '{device: $device, note: ($script + " check")}' |
      curl -s -o "$WORK/heartbeat.body" -w '%{http_code}' --max-time 15 -X POST \
        -H 'Content-Type: application/json' -H @<(printf 'x-functions-key: %s\n' "$NEW_KEY") \
        --data-binary @- "$NEW_URL" || true)
    body=$(head -c 200 "$WORK/heartbeat.body" 2>/dev/null || true)
    if [[ $code == 200 && $body == ok* ]]; then
      info "    answered 200 ok"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      case $code in
        401 | 403) die "the heartbeat was refused with $code: the function key was not accepted; ${HEARTBEAT_HINT_401:-run ./deploy.sh again to fetch it anew}" ;;
        404) die "the heartbeat got 404: ${HEARTBEAT_HINT_404:-the Ping function is not loaded; check host.json and Ping/function.json in the package} and run ./$SCRIPT_NAME again" ;;
        000) die "the heartbeat could not reach $NEW_URL: check your connection and run ./$SCRIPT_NAME again" ;;
        *) die "the heartbeat got status $code ('$(tr -s '\r\n' '  ' <<<"$body")') instead of 200 ok: see $logs and run ./$SCRIPT_NAME again" ;;
      esac
    fi
    sleep "$POLL_SECONDS"
  done
}

# boxed LINE...: prints the lines framed by a box as wide as the longest one (the
# passcode and subscription-confirmation notices of deploy.sh and deploy_aws.sh).
boxed() {
  local line width=0 rule
  for line in "$@"; do
    ((${#line} <= width)) || width=${#line}
  done
  rule=$(printf '%*s' "$((width + 4))" '' | tr ' ' '=')
  printf '\n%s\n' "$rule"
  for line in "$@"; do
    printf '| %-*s |\n' "$width" "$line"
  done
  printf '%s\n' "$rule"
}

# ---------------------------------------------------------------------- aws calls (deploy_aws.sh,
# scripts/report.sh --cloud aws); WORK is the caller's private temporary directory.

# aws in AWS_REGION, JSON output (whatever the user's default is), stderr kept for aws_reason.
aws_json() {
  aws "$@" --region "$AWS_REGION" --output json 2>"$WORK/aws.err"
}

# One line saying why the last aws call failed: the CLI's last message line.
aws_reason() {
  local line
  line=$(grep -v '^[[:space:]]*$' "$WORK/aws.err" 2>/dev/null | tail -n1 || true)
  [[ -n $line ]] || line="aws gave no reason"
  line=$(printf '%s' "$line" | tr -s '\r\n\t' '   ')
  line=${line%"${line##*[![:space:]]}"}
  printf '%s' "${line:0:300}"
}

# Whether the last aws call failed for want of valid credentials.
aws_login_failed() {
  grep -qiE "Unable to locate credentials|ExpiredToken|expired|InvalidClientTokenId|UnrecognizedClientException|SignatureDoesNotMatch|security token|aws sso login|NoCredentialProviders|could not be found. *profile" "$WORK/aws.err" 2>/dev/null
}

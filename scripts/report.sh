#!/usr/bin/env bash
# report.sh: what ISP Monitor saw over a period, per device: uptime, last heartbeat, every outage
# with its start, end, duration and cause, and every change of public IP address.
#
# Usage: scripts/report.sh [--since 7d|24h|2026-11-01] [--device NAME] [--json] [--app NAME] [--help]
#        scripts/report.sh --month YYYY-MM | --from DATE --to DATE [--format table|json|csv|html]
#                          [--device NAME] [--app NAME] [--cloud azure|aws] [--log-group NAME]
#
#   --since PERIOD  how far back: days (7d) or hours (24h), or a UTC date (2026-11-01) or time
#                   (2026-11-01T08:00:00Z). Default: 7d.
#   --device NAME   only this device
#   --json          one JSON object (period, since, generated_at, silence_minutes, device, devices,
#                   outages, ip_changes) instead of the tables
#   --app NAME      the Application Insights component to query. Default: AZURE_APPINSIGHTS_NAME
#                   from .env, else the only component in AZURE_RESOURCE_GROUP
#   --help          show this text
#
# The evidence report (for your ISP): --month, --from/--to or --format give it, computed and printed
# by heartbeat-agent (the same code as the agent's own `heartbeat-agent report`):
#   --month YYYY-MM a calendar month, UTC
#   --from DATE|TIME, --to DATE|TIME
#                   a period, UTC (the end excluded; a date means its midnight)
#   --format FORMAT table (default), json, csv (RFC 4180) or html (one self-contained page for A4).
#                   With --since only, the period runs from then to now.
#   --cloud CLOUD   azure (default) or aws: where the heartbeats are. With aws the evidence report
#                   comes from the Lambda function's CloudWatch Logs (Logs Insights queries in
#                   queries/report-aws/; AWS_REGION, AWS_STACK_NAME, AWS_PROFILE from .env; needs the
#                   aws CLI with credentials). The quick view (no --month/--from/--format) and --json
#                   are Azure's; --since with --format works on both. Details: docs/aws.md "Reports".
#   --log-group NAME
#                   (aws) the log group to query. Default: the LogGroupName output of AWS_STACK_NAME
# Per device: uptime as far as the ISP is concerned, every outage with its cause and witness (the
# agent's report, a heartbeat gap in the cloud, or both), the time that was not the ISP's doing,
# IP changes and a daily latency/loss summary. heartbeat-agent is found as ISP_MONITOR_AGENT_BIN,
# else target/release or target/debug of this clone, else on PATH; build it with
# `cargo build --release --bin heartbeat-agent`.
#
# An outage is one an agent reported (with the cause it diagnosed) or, where no report covers it, a
# gap of more than SILENCE_MINUTES between two heartbeats (cause unknown; no end while it goes on).
# Settings come from .env (AZURE_RESOURCE_GROUP, AZURE_SUBSCRIPTION, SILENCE_MINUTES,
# AZURE_APPINSIGHTS_NAME); a variable set in your environment wins. Needs az (after `az login`) with
# the application-insights extension, and jq. Changes nothing. The queries: queries/report/*.kql.
set -Eeuo pipefail

readonly SCRIPT_NAME=report.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly ENV_FILE=${ISP_MONITOR_ENV_FILE:-$ROOT/.env}
readonly QUERY_DIR=$ROOT/queries/report
readonly EXTENSION=application-insights
readonly COMPONENT_TYPE=Microsoft.Insights/components
readonly AZ_INSTALL_URL=https://learn.microsoft.com/cli/azure/install-azure-cli
# The report's queries, in queries/report/.
readonly SECTIONS=(report-devices report-outages report-ip-changes)
# The evidence report's queries, in queries/report/.
readonly PERIOD_SECTIONS=(report-period-devices report-period-outages report-period-gaps report-period-ip-changes report-period-quality)

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
# shellcheck source=scripts/report_aws.sh
source "$ROOT/scripts/report_aws.sh"

usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}" # BSD sed needs the ';' before '}'
}

# --------------------------------------------------------------------------------------- arguments

SINCE=7d
DEVICE=""
JSON=0
APP=""
MONTH=""
FROM=""
TO=""
FORMAT=""
SINCE_GIVEN=0
CLOUD=azure
LOG_GROUP=""

parse_args() {
  while (($#)); do
    case $1 in
      --since | --device | --app | --month | --from | --to | --format | --cloud | --log-group)
        (($# > 1)) || die "$1 needs a value: run scripts/report.sh --help"
        set_option "$1" "$2"
        shift 2
        ;;
      --since=* | --device=* | --app=* | --month=* | --from=* | --to=* | --format=* | --cloud=* | --log-group=*)
        set_option "${1%%=*}" "${1#*=}"
        shift
        ;;
      --json) JSON=1 && shift ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die "unknown option '$1': run scripts/report.sh --help" ;;
    esac
  done
  check_period_options
  case $CLOUD in
    azure) [[ -z $LOG_GROUP ]] || die "--log-group is for --cloud aws; on Azure use --app NAME" ;;
    aws)
      ((PERIOD_REPORT)) || die "--cloud aws gives the evidence report: add --month YYYY-MM, --from/--to or --format (the quick view and --json are Azure's)"
      [[ -z $APP ]] || die "--app names an Application Insights component: with --cloud aws use --log-group NAME"
      ;;
    *) die "--cloud '$CLOUD' is not one of azure, aws" ;;
  esac
}

set_option() {
  case $1 in
    --since) SINCE=$2 SINCE_GIVEN=1 ;;
    --device) DEVICE=$2 ;;
    --app) APP=$2 ;;
    --month) MONTH=$2 ;;
    --from) FROM=$2 ;;
    --to) TO=$2 ;;
    --format) FORMAT=$2 ;;
    --cloud) CLOUD=$2 ;;
    --log-group) LOG_GROUP=$2 ;;
  esac
}

# The evidence report is asked for by --month, --from/--to or --format; its options must agree.
check_period_options() {
  if [[ -z $MONTH$FROM$TO$FORMAT ]]; then
    PERIOD_REPORT=0
    return 0
  fi
  PERIOD_REPORT=1
  ((JSON == 0)) || die "--json is the quick view's JSON; for the evidence report use --format json"
  [[ -z $MONTH || -z $FROM$TO ]] || die "--month and --from/--to are two ways to give the period: use one"
  [[ -n $FROM || -z $TO ]] || die "--to needs --from: give both, or --month"
  [[ -n $TO || -z $FROM ]] || die "--from needs --to: give both, or --month"
  ((SINCE_GIVEN == 0)) || [[ -z $MONTH$FROM ]] || die "--since and --month/--from give the period twice: use one"
  : "${FORMAT:=table}"
  case $FORMAT in
    table | json | csv | html) ;;
    *) die "--format '$FORMAT' is not one of table, json, csv, html" ;;
  esac
}

# iso_time FLAG VALUE: VALUE (a UTC date, or a time with or without seconds) as seconds since the
# epoch; stops with a message naming FLAG when it is not one.
iso_epoch() {
  local flag=$1 iso=$2
  [[ $iso =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z)?$ ]] ||
    die "$flag '$iso' is neither a UTC date like 2026-11-01 nor a time like 2026-11-01T08:00:00Z"
  [[ $iso == *T* ]] || iso+=T00:00Z
  [[ $iso =~ T[0-9]{2}:[0-9]{2}Z$ ]] && iso=${iso%Z}:00Z
  jq -nr --arg d "$iso" '$d | strptime("%Y-%m-%dT%H:%M:%SZ") | mktime | if todate == $d then . else error("no such date") end' 2>/dev/null ||
    die "$flag '$2' is not a valid UTC date or time: use a date like 2026-11-01 or a time like 2026-11-01T08:00:00Z"
}

# Sets FROM_EPOCH and TO_EPOCH for the evidence report, and SINCE_KQL, UNTIL_KQL, OFFSET.
resolve_report_period() {
  local now month year next
  now=$(date -u +%s)
  if [[ -n $MONTH ]]; then
    [[ $MONTH =~ ^([0-9]{4})-(0[1-9]|1[0-2])$ ]] || die "--month '$MONTH' is not a month like 2026-11"
    year=$((10#${BASH_REMATCH[1]}))
    month=$((10#${BASH_REMATCH[2]}))
    FROM_EPOCH=$(iso_epoch --month "$MONTH-01")
    if ((month == 12)); then
      next=$(printf '%04d-01-01' $((year + 1)))
    else
      next=$(printf '%04d-%02d-01' "$year" $((month + 1)))
    fi
    TO_EPOCH=$(iso_epoch --month "$next")
  elif [[ -n $FROM ]]; then
    FROM_EPOCH=$(iso_epoch --from "$FROM")
    TO_EPOCH=$(iso_epoch --to "$TO")
    ((TO_EPOCH > FROM_EPOCH)) || die "--to '$TO' is not after --from '$FROM': give a later end"
  else
    resolve_period
    FROM_EPOCH=$SINCE_EPOCH
    TO_EPOCH=$now
  fi
  ((FROM_EPOCH < now)) || die "the period starts in the future: give an earlier start"
  ((TO_EPOCH - FROM_EPOCH <= 400 * 86400)) || die "the period is longer than 400 days: report a shorter one"
  SINCE_KQL="datetime($(jq -nr --argjson t "$FROM_EPOCH" '$t | todate'))"
  UNTIL_KQL="datetime($(jq -nr --argjson t "$TO_EPOCH" '$t | todate'))"
  NOW_EPOCH=$now
  # The queries read a day before the period (and after it); the time range must cover that.
  OFFSET="$(((now - FROM_EPOCH + 86400 + 3599) / 3600 + 1))h"
}

# Sets RENDERER to the heartbeat-agent that renders the evidence report: ISP_MONITOR_AGENT_BIN,
# else this clone's release or debug build (the same version as these queries), else one on PATH.
find_renderer() {
  local candidate
  if [[ -n ${ISP_MONITOR_AGENT_BIN:-} ]]; then
    [[ -x $ISP_MONITOR_AGENT_BIN && ! -d $ISP_MONITOR_AGENT_BIN ]] ||
      die "ISP_MONITOR_AGENT_BIN '$ISP_MONITOR_AGENT_BIN' is not an executable file: point it at heartbeat-agent, or unset it"
    RENDERER=$ISP_MONITOR_AGENT_BIN
    return 0
  fi
  for candidate in "$ROOT/target/release/heartbeat-agent" "$ROOT/target/debug/heartbeat-agent"; do
    if [[ -x $candidate ]]; then
      RENDERER=$candidate
      return 0
    fi
  done
  if candidate=$(command -v heartbeat-agent 2>/dev/null) && [[ -n $candidate ]]; then
    RENDERER=$candidate
    return 0
  fi
  die "the evidence report is printed by heartbeat-agent, which is not built: run 'cargo build --release --bin heartbeat-agent' (or set ISP_MONITOR_AGENT_BIN)"
}

# Sets SINCE_KQL (the `since` of the queries), SINCE_EPOCH and OFFSET (az's --offset: the period in
# whole hours plus one, so the query's time range always covers the period).
resolve_period() {
  local now seconds epoch
  now=$(date -u +%s)
  if [[ $SINCE =~ ^([0-9]{1,5})([dh])$ ]] && ((10#${BASH_REMATCH[1]} > 0)); then
    seconds=$((10#${BASH_REMATCH[1]} * 3600))
    [[ ${BASH_REMATCH[2]} == h ]] || seconds=$((seconds * 24))
    SINCE_KQL="ago(${SINCE})"
    epoch=$((now - seconds))
  elif [[ $SINCE =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z)?$ ]]; then
    local iso=$SINCE
    [[ $iso == *T* ]] || iso+=T00:00Z
    [[ $iso =~ T[0-9]{2}:[0-9]{2}Z$ ]] && iso=${iso%Z}:00Z
    # Parsed and printed back: a date that does not exist (2026-02-30) does not come back the same.
    epoch=$(jq -nr --arg d "$iso" '$d | strptime("%Y-%m-%dT%H:%M:%SZ") | mktime | if todate == $d then . else error("no such date") end' 2>/dev/null) ||
      die "--since '$SINCE' is not a valid UTC date or time: use a date like 2026-11-01 or a time like 2026-11-01T08:00:00Z"
    ((epoch < now)) || die "--since '$SINCE' is in the future: give an earlier date"
    SINCE_KQL="datetime($iso)"
    seconds=$((now - epoch))
  else
    die "--since '$SINCE' is neither a period like 7d or 24h nor a UTC date like 2026-11-01: run scripts/report.sh --help"
  fi
  SINCE_EPOCH=$epoch
  NOW_EPOCH=$now
  OFFSET="$(((seconds + 3599) / 3600 + 1))h"
}

# The device name as a KQL string literal.
kql_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

check_settings() {
  : "${AZURE_RESOURCE_GROUP:=isp-monitor}"
  : "${SILENCE_MINUTES:=5}"
  is_positive_int "$SILENCE_MINUTES" ||
    die "SILENCE_MINUTES '$SILENCE_MINUTES' is not a whole number of minutes: fix it in $ENV_FILE"
  if [[ $DEVICE =~ [[:cntrl:]] ]]; then
    die "--device holds a control character: give the device name as the agent sends it"
  fi
  APP=${APP:-${AZURE_APPINSIGHTS_NAME:-}}
}

# az_die WHAT: stops with az's reason, or with the advice to log in again when that is the reason.
az_die() {
  if az_login_failed; then
    die "$1 failed because the Azure login is missing or expired: run 'az login' and then scripts/report.sh again"
  fi
  die "$1 failed: $(az_reason)"
}

require_tools() {
  command -v az >/dev/null 2>&1 ||
    die "az (the Azure CLI) is not installed: install it (see $AZ_INSTALL_URL)"
  require_cmd jq
}

check_az() {
  az extension show -n "$EXTENSION" -o json >/dev/null 2>&1 ||
    die "the az extension $EXTENSION is not installed (the log queries need it): run 'az extension add -n $EXTENSION'"
  az_json account show >/dev/null ||
    die "not logged in to Azure: run 'az login' (and 'az account set -s <subscription>' to pick one)"
}

# Sets APP to the only Application Insights component of the resource group, unless it is given.
find_app() {
  [[ -z $APP ]] || return 0
  local names count
  az_json resource list -g "$AZURE_RESOURCE_GROUP" --resource-type "$COMPONENT_TYPE" >"$WORK/components.json" ||
    az_die "listing the Application Insights components of resource group $AZURE_RESOURCE_GROUP"
  names=$(jq -r '.[].name' "$WORK/components.json")
  count=$(jq 'length' "$WORK/components.json")
  case $count in
    1) APP=$names ;;
    0) die "no Application Insights component in resource group $AZURE_RESOURCE_GROUP: deploy with ./deploy.sh, or set AZURE_RESOURCE_GROUP (or --app NAME) to where it is" ;;
    *) die "$count Application Insights components in resource group $AZURE_RESOURCE_GROUP ($(tr '\n' ' ' <<<"$names" | sed 's/ $//')): pick one with --app NAME or AZURE_APPINSIGHTS_NAME in $ENV_FILE" ;;
  esac
}

# render_query FILE: the query with its `let since`, `let silence` and `let only_device` lines set.
# Each must occur at most once (since and only_device exactly once), or the query is not what it says.
render_query() {
  local file=$1 line text="" device seen_since=0 seen_silence=0 seen_device=0 seen_until=0
  device=$(kql_string "$DEVICE")
  [[ -r $file ]] || die "$file is missing: run report.sh from a complete clone of the repository"
  while IFS= read -r line || [[ -n $line ]]; do
    case $line in
      "let since = "*";") line="let since = $SINCE_KQL;" seen_since=$((seen_since + 1)) ;;
      "let silence = "*";") line="let silence = ${SILENCE_MINUTES}m;" seen_silence=$((seen_silence + 1)) ;;
      "let until = "*";") line="let until = ${UNTIL_KQL:-now()};" seen_until=$((seen_until + 1)) ;;
      "let only_device = "*";") line="let only_device = $device;" seen_device=$((seen_device + 1)) ;;
    esac
    text+=$line$'\n'
  done <"$file"
  if ((seen_since != 1 || seen_device != 1 || seen_silence > 1 || seen_until > 1)); then
    die "$file must hold each of its 'let since', 'let only_device' (and 'let silence', 'let until') lines once: restore it from git"
  fi
  printf '%s' "$text"
}

# run_query NAME: runs queries/report/NAME.kql and writes its rows, as JSON objects, to $WORK/NAME.json.
# Numbers arrive as numbers or as strings (depending on the extension's version): both become numbers.
run_query() {
  local name=$1 query
  query=$(render_query "$QUERY_DIR/$name.kql")
  az_json monitor app-insights query --apps "$APP" -g "$AZURE_RESOURCE_GROUP" \
    --analytics-query "$query" --offset "$OFFSET" >"$WORK/$name.raw" ||
    az_die "the query $name.kql on $APP"
  jq '
    .tables[0] as $t
    | if ($t.columns | type) != "array" then error("no result table") else . end
    | [$t.rows[] | [$t.columns, .] | transpose
        | map({key: .[0].name,
               value: (if (.[0].type | IN("long", "int", "real", "double", "decimal")) and (.[1] | type) == "string"
                       then (.[1] | tonumber? // .) else .[1] end)})
        | from_entries]' "$WORK/$name.raw" >"$WORK/$name.json" 2>/dev/null ||
    die "the query $name.kql on $APP gave an answer that is not a result table: check 'az version' and run again"
}

# ------------------------------------------------------------------------------------------ output

# The report as one JSON object.
report_json() {
  jq -n --arg period "$SINCE" --argjson since "$SINCE_EPOCH" --argjson now "$NOW_EPOCH" \
    --argjson silence "$SILENCE_MINUTES" --arg device "$DEVICE" \
    --slurpfile devices "$WORK/report-devices.json" --slurpfile outages "$WORK/report-outages.json" \
    --slurpfile ip_changes "$WORK/report-ip-changes.json" '{
      period: $period,
      since: ($since | todate),
      generated_at: ($now | todate),
      silence_minutes: $silence,
      device: (if $device == "" then null else $device end),
      devices: $devices[0],
      outages: $outages[0],
      ip_changes: $ip_changes[0]
    }'
}

# The report as tables, from the JSON object on stdin.
report_text() {
  jq -r '
    def two: tostring | if length < 2 then "0" + . else . end;
    def time: if . == null or . == "" then "-" else .[0:19] | sub("T"; " ") end;
    def duration: (. // 0 | floor) as $s
      | if $s < 60 then "\($s)s"
        elif $s < 3600 then "\($s / 60 | floor)m\($s % 60 | two)s"
        elif $s < 86400 then "\($s / 3600 | floor)h\($s % 3600 / 60 | floor | two)m"
        else "\($s / 86400 | floor)d\($s % 86400 / 3600 | floor | two)h" end;
    def pad($w): if length < $w then . + (" " * ($w - length)) else . end;
    def table($head; $rows):
      if ($rows | length) == 0 then "  (none)"
      else ([$head] + $rows) as $all
        | [range(0; $head | length) as $i | [$all[] | .[$i] | length] | max] as $w
        | $all[] | . as $row | [range(0; $row | length) as $i | $row[$i] | pad($w[$i])] | join("  ") | sub(" +$"; "")
      end;
    "ISP Monitor report since \(.since | time) UTC (\(.period))\(if .device then ", device \(.device)" else "" end), generated \(.generated_at | time) UTC",
    "",
    "Devices",
    table(["DEVICE", "UPTIME", "HEARTBEATS", "LAST HEARTBEAT (UTC)", "PUBLIC IP"];
      [.devices[] | [.device, "\(.uptime_pct)%", (.heartbeats | tostring), (.last_heartbeat | time), .public_ip]]),
    "",
    "Outages (agent: reported by the device; gap: no heartbeat for more than \(.silence_minutes) minutes)",
    table(["DEVICE", "START (UTC)", "END (UTC)", "DURATION", "CAUSE", "SOURCE"];
      [.outages[] | [.device, (.start_utc | time), (if .end_utc then .end_utc | time else "ongoing" end),
                     (.duration_s | duration), .cause, .source]]),
    "",
    "Public IP changes",
    table(["DEVICE", "CHANGED (UTC)", "FROM", "TO"];
      [.ip_changes[] | [.device, (.changed_utc | time), .previous_ip, .public_ip]])'
}

# The evidence report's input (docs/queries.md, "Report input") from the period queries' rows.
# An outage cause this version does not know is kept as unknown rather than refused.
report_input() {
  jq -n --argjson from "$FROM_EPOCH" --argjson to "$TO_EPOCH" --argjson now "$NOW_EPOCH" \
    --argjson silence "$SILENCE_MINUTES" \
    --slurpfile devices "$WORK/report-period-devices.json" --slurpfile outages "$WORK/report-period-outages.json" \
    --slurpfile gaps "$WORK/report-period-gaps.json" --slurpfile ips "$WORK/report-period-ip-changes.json" \
    --slurpfile quality "$WORK/report-period-quality.json" '
    def known: if IN("lan", "dns", "isp", "cloud", "config", "agent_offline", "unknown") then . else "unknown" end;
    def text: if . == null then "" else tostring end;
    def number: if type == "number" and isnan | not then . else null end;
    {
      version: 1,
      source: "azure",
      from: ($from | todate),
      to: ($to | todate),
      generated_at: ($now | todate),
      silence_minutes: $silence,
      devices: [$devices[0][] | {device, first_seen, last_seen}],
      agent_outages: [$outages[0][] | select(.start_utc != null and .end_utc != null)
        | {device, id: (.outage_id | text), start: .start_utc, end: .end_utc, cause: (.cause | known), detail: (.detail | text)}],
      gaps: [$gaps[0][] | {device, start: .start_utc, end: .end_utc}],
      ip_changes: [$ips[0][] | {device, at: .changed_utc, from: (.previous_ip | text), to: (.public_ip | text)}],
      quality_days: [$quality[0][] | {device, date: (.day | tostring | .[0:10]), samples, probes, lost,
        rtt_p50_ms: (.rtt_p50_ms | number), rtt_p95_ms: (.rtt_p95_ms | number),
        rtt_p95_max_ms: (.rtt_p95_max_ms | number), dns_ms: (.dns_ms | number)}],
      notes: []
    }'
}

period_report() {
  resolve_report_period
  find_renderer
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/report.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  check_az
  find_app
  local section
  for section in "${PERIOD_SECTIONS[@]}"; do
    run_query "$section"
  done
  report_input >"$WORK/input.json"
  "$RENDERER" report --input "$WORK/input.json" --format "$FORMAT" ||
    die "heartbeat-agent could not render the report (its reason is above): make sure it is built from this clone"
}

main() {
  parse_args "$@"
  load_env "$ENV_FILE"
  check_settings
  if [[ $CLOUD == aws ]]; then
    require_cmd jq
    aws_period_report
    return
  fi
  require_tools
  if ((PERIOD_REPORT)); then
    period_report
    return
  fi
  resolve_period
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/report.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  check_az
  find_app
  local section
  for section in "${SECTIONS[@]}"; do
    run_query "$section"
  done
  if ((JSON)); then
    report_json
  else
    report_json | report_text
  fi
}

main "$@"

# shellcheck shell=bash
# The AWS side of scripts/report.sh (--cloud aws), sourced by it: gathers the evidence report's
# input from the Lambda function's log lines (docs/telemetry.md "Telemetry on AWS") with CloudWatch
# Logs Insights queries (queries/report-aws/*.logsinsights; docs/aws.md "Reports") and hands it to
# the same renderer as the Azure side. Logs Insights facts: docs/platform.md §16.

readonly AWS_QUERY_DIR=$ROOT/queries/report-aws
readonly AWS_SECTIONS=(devices heartbeats outages quality)
# The most rows one query returns (docs/platform.md §16); ISP_MONITOR_INSIGHTS_LIMIT lowers it (tests).
AWS_ROW_LIMIT=${ISP_MONITOR_INSIGHTS_LIMIT:-10000}
# A window that still fills the limit is halved down to this width, then the report is refused.
readonly AWS_MIN_WINDOW=3600

aws_check_settings() {
  : "${AWS_REGION:=us-east-1}"
  : "${AWS_STACK_NAME:=isp-monitor}"
  if [[ ! $AWS_ROW_LIMIT =~ ^[0-9]+$ ]] || ((AWS_ROW_LIMIT < 1 || AWS_ROW_LIMIT > 10000)); then
    die "ISP_MONITOR_INSIGHTS_LIMIT '$AWS_ROW_LIMIT' is not a number from 1 to 10000: unset it"
  fi
  AWS_POLL=${ISP_MONITOR_QUERY_POLL_SECONDS:-1}
  AWS_QUERY_TIMEOUT=${ISP_MONITOR_QUERY_TIMEOUT:-300}
  [[ $AWS_POLL =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "ISP_MONITOR_QUERY_POLL_SECONDS '$AWS_POLL' is not a number of seconds"
  is_positive_int "$AWS_QUERY_TIMEOUT" || die "ISP_MONITOR_QUERY_TIMEOUT '$AWS_QUERY_TIMEOUT' is not a whole number of seconds"
  export AWS_REGION
  [[ -z ${AWS_PROFILE:-} ]] || export AWS_PROFILE
}

# aws_json, aws_reason and aws_login_failed: scripts/common.sh, shared with deploy_aws.sh.
aws_die() {
  if aws_login_failed; then
    die "$1 failed because the AWS credentials are missing or expired ($(aws_reason)): run 'aws configure' (or 'aws sso login'), then scripts/report.sh again"
  fi
  die "$1 failed: $(aws_reason)"
}

# Sets LOG_GROUP: --log-group, else the LogGroupName output of stack AWS_STACK_NAME.
aws_find_log_group() {
  [[ -z $LOG_GROUP ]] || return 0
  if ! aws_json cloudformation describe-stacks --stack-name "$AWS_STACK_NAME" >"$WORK/stack.json"; then
    grep -q "does not exist" "$WORK/aws.err" 2>/dev/null &&
      die "there is no stack $AWS_STACK_NAME in $AWS_REGION: deploy with ./deploy_aws.sh, set AWS_STACK_NAME/AWS_REGION in $ENV_FILE, or give --log-group NAME"
    aws_die "reading stack $AWS_STACK_NAME"
  fi
  LOG_GROUP=$(jq -r '.Stacks[0].Outputs // [] | map(select(.OutputKey == "LogGroupName")) | first | .OutputValue // empty' "$WORK/stack.json")
  [[ -n $LOG_GROUP ]] ||
    die "stack $AWS_STACK_NAME has no LogGroupName output (status $(jq -r '.Stacks[0].StackStatus // "unknown"' "$WORK/stack.json")): finish ./deploy_aws.sh, or give --log-group NAME"
}

# aws_query_text NAME: the query file with the slot width and the device set.
aws_query_text() {
  local file=$AWS_QUERY_DIR/$1.logsinsights device line text="" seen=0
  [[ -r $file ]] || die "$file is missing: run report.sh from a complete clone of the repository"
  device=${DEVICE//\\/\\\\}
  device=${device//\"/\\\"}
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == "| filter ispresent(Device)" ]]; then
      seen=$((seen + 1))
      [[ -z $DEVICE ]] || line="| filter Device = \"$device\""
    fi
    line=${line/bin(5m)/bin(${SILENCE_MINUTES}m)}
    text+=$line$'\n'
  done <"$file"
  ((seen == 1)) || die "$file must hold the line '| filter ispresent(Device)' once: restore it from git"
  printf '%s' "$text"
}

# aws_run_window NAME START END OUT: runs one query over [START, END] (epoch seconds, both
# included) and writes its rows as JSON objects to OUT; a window whose rows fill the limit is split
# in two (the rows are merged afterwards), down to AWS_MIN_WINDOW.
aws_run_window() {
  local name=$1 start=$2 end=$3 out=$4 id status deadline polls=0 count mid
  aws_json logs start-query --log-group-name "$LOG_GROUP" --start-time "$start" --end-time "$end" \
    --limit "$AWS_ROW_LIMIT" --query-string "$(aws_query_text "$name")" >"$WORK/start.json" ||
    aws_die "the Logs Insights query $name.logsinsights on $LOG_GROUP"
  id=$(jq -r '.queryId // empty' "$WORK/start.json")
  [[ -n $id ]] || die "aws logs start-query gave no query id: check 'aws --version' and run again"
  deadline=$(($(date -u +%s) + AWS_QUERY_TIMEOUT))
  while :; do
    aws_json logs get-query-results --query-id "$id" >"$WORK/results.json" ||
      aws_die "reading the results of $name.logsinsights"
    status=$(jq -r '.status // "Unknown"' "$WORK/results.json")
    case $status in
      Complete) break ;;
      Scheduled | Running) ;;
      Failed | Cancelled | Timeout | Unknown)
        die "the Logs Insights query $name.logsinsights on $LOG_GROUP ended $status: run again; for Timeout report a shorter period (--from/--to)" ;;
      *) die "the Logs Insights query $name.logsinsights ended with status '$status', which this version does not know" ;;
    esac
    polls=$((polls + 1))
    if (($(date -u +%s) >= deadline || polls >= 1000)); then
      aws_json logs stop-query --query-id "$id" >/dev/null || true
      die "the Logs Insights query $name.logsinsights did not finish within ${AWS_QUERY_TIMEOUT}s (stopped): run again later, raise ISP_MONITOR_QUERY_TIMEOUT or report a shorter period"
    fi
    sleep "$AWS_POLL"
  done
  count=$(jq '.results | length' "$WORK/results.json")
  if ((count >= AWS_ROW_LIMIT)); then
    ((end - start >= 2 * AWS_MIN_WINDOW)) ||
      die "the Logs Insights query $name.logsinsights returned its limit of $AWS_ROW_LIMIT rows even for one hour ($(jq -nr --argjson t "$start" '$t | todate')): report fewer devices (--device NAME)"
    mid=$(((start + end) / 2 / 3600 * 3600))
    ((mid > start)) || mid=$(((start + end) / 2))
    aws_run_window "$name" "$start" $((mid - 1)) "$out.a"
    aws_run_window "$name" "$mid" "$end" "$out.b"
    jq -s 'add' "$out.a" "$out.b" >"$out"
    return 0
  fi
  jq '[.results[] | map({key: .field, value: .value}) | from_entries | del(.["@ptr"])]' "$WORK/results.json" >"$out" ||
    die "aws logs get-query-results gave an answer that is not a result list: check 'aws --version' and run again"
}

# The evidence report's input from the four queries' rows (docs/queries.md "The report input").
aws_report_input() {
  jq -n --argjson from "$FROM_EPOCH" --argjson to "$TO_EPOCH" --argjson now "$NOW_EPOCH" \
    --argjson silence "$SILENCE_MINUTES" --arg only "$DEVICE" \
    --slurpfile devices "$WORK/devices.json" --slurpfile slots "$WORK/heartbeats.json" \
    --slurpfile outages "$WORK/outages.json" --slurpfile quality "$WORK/quality.json" '
    # Logs Insights prints times as "2026-11-03 10:00:00.000" (UTC); epoch milliseconds are taken too.
    def epoch: if . == null or . == "" then null
      elif test("^[0-9]+$") then tonumber / 1000
      else . as $t | (($t[0:19] | sub(" "; "T")) + "Z" | strptime("%Y-%m-%dT%H:%M:%SZ") | mktime)
        + (($t[20:23] | tonumber? // 0) / 1000) end;
    def iso: if . == null then null else (floor | todate) as $s | (. - floor) as $f
      | if $f > 0.0005 then $s | sub("Z$"; "." + ((1000 + ($f * 1000 | round)) | tostring | .[1:4]) + "Z") else $s end end;
    def rfc: if . == null or . == "" then null else fromdateiso8601? // null end;
    def known: if IN("lan", "dns", "isp", "cloud", "config", "agent_offline", "unknown") then . else "unknown" end;
    def text: if . == null then "" else tostring end;
    def mine: $only == "" or .device == $only;
    def num: if . == null or . == "" then null else tonumber? // null end;
    # A weighted mean of the rows means (n values each): one row is taken as it is.
    def mean($v; $n): if length == 1 then .[0][$v] | num
      else (map(select((.[$v] | num) != null and (.[$n] | num // 0) > 0)) | map([(.[$v] | num), (.[$n] | num)])) as $p
        | if ($p | length) == 0 then null else ($p | map(.[0] * .[1]) | add) / ($p | map(.[1]) | add) end end;
    # Quality per device and UTC day, as report.sh gives it for Azure; a day whose rows came from
    # two windows (a split result) is joined: counts added, means weighted, the worst kept. Where
    # a 1d bin starts is not documented (docs/platform.md §16): bins off 00:00 UTC leave it out.
    ([$quality[0][] | select(.Device != null and .day != null) | .device = .Device | select(mine)
      | .day_epoch = (.day | epoch)]) as $qrows
    | ($qrows | all(.day_epoch != null and (.day_epoch | floor) % 86400 == 0)) as $days_aligned
    | ($silence * 60) as $gap
    | [$slots[0][] | {device: .Device, ip: .client_ip, slot: (.slot | epoch),
        first: (.first | epoch), last: (.last | epoch)}
       | select(.device != null and .first != null) | select(mine)] as $rows
    | {
      version: 1,
      source: "aws",
      from: ($from | todate),
      to: ($to | todate),
      generated_at: ($now | todate),
      silence_minutes: $silence,
      devices: [$devices[0][] | {device: .Device, first: (.first_seen | epoch), last: (.last_seen | epoch)}
        | select(.device != null and .first != null) | select(mine)]
        | group_by(.device) | map({device: .[0].device, first_seen: (map(.first) | min | iso), last_seen: (map(.last) | max | iso)})
        | map(select((.last_seen | rfc) > $from - $gap)),
      agent_outages: [$outages[0][] | select(.Device != null and .outage_id != null)]
        | group_by(.outage_id) | map(last)
        | [.[] | {device: .Device, id: (.outage_id | text), start: .start, end: .end, cause: (.cause | known), detail: (.detail | text)}
           | select(mine) | select((.start | rfc) != null and (.end | rfc) != null)
           | select((.end | rfc) > $from - $gap and (.start | rfc) < $to)]
        | sort_by(.device, .start),
      gaps: ($rows | group_by(.device) | map(
          (group_by(.slot) | map({device: .[0].device, first: (map(.first) | min), last: (map(.last) | max)}) | sort_by(.first)) as $s
          | ([range(1; $s | length) as $i | select($s[$i].first - $s[$i - 1].last > $gap)
               | {device: $s[$i].device, start: $s[$i - 1].last, end: $s[$i].first}]
             + (($s | last) as $l | if $now - $l.last > $gap then [{device: $l.device, start: $l.last, end: null}] else [] end)))
        | add // []
        | map(select(.start < $to and (.end == null or .end > $from)) | {device, start: (.start | iso), end: (.end | iso)})),
      ip_changes: ($rows | map(select(.ip != null and .ip != "" and .ip != "unknown")) | group_by(.device) | map(
          sort_by(.first) as $s
          | [range(1; $s | length) as $i | select($s[$i].ip != $s[$i - 1].ip and $s[$i].first > $from and $s[$i].first < $to)
              | {device: $s[$i].device, at: ($s[$i].first | iso), from: $s[$i - 1].ip, to: $s[$i].ip}])
        | add // []),
      quality_days: (if $days_aligned | not then [] else $qrows | group_by(.device, .day_epoch) | map({
          device: .[0].device, date: (.[0].day_epoch | todate | .[0:10]),
          samples: (map(.samples | num // 0) | add), probes: (map(.probes | num // 0) | add),
          lost: (map(.lost | num // 0) | add),
          rtt_p50_ms: mean("rtt_p50_ms"; "rtt_samples"), rtt_p95_ms: mean("rtt_p95_ms"; "rtt_samples"),
          rtt_p95_max_ms: (map(.rtt_p95_max_ms | num) | max), dns_ms: mean("dns_ms"; "dns_samples")}) end),
      notes: (if $days_aligned then [] else
        ["The daily quality summary is left out: Logs Insights returned day bins that do not start at 00:00 UTC (queries/report-aws/quality.logsinsights); the rest of the report is not affected."] end)
    }'
}

aws_period_report() {
  local start end section
  aws_check_settings
  command -v aws >/dev/null 2>&1 ||
    die "aws (the AWS CLI) is not installed: install it (see https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
  resolve_report_period
  find_renderer
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/report.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  aws_find_log_group
  # A day either side of the period, as on Azure (a gap across its start or end is whole).
  start=$((FROM_EPOCH - 86400))
  end=$((TO_EPOCH + 86400))
  ((end <= NOW_EPOCH)) || end=$NOW_EPOCH
  for section in "${AWS_SECTIONS[@]}"; do
    if [[ $section == devices ]]; then
      aws_run_window "$section" "$start" $((TO_EPOCH - 1)) "$WORK/$section.json"
    elif [[ $section == quality ]]; then
      # The period itself, as Azure's quality query: its first and last day are cut at its ends.
      aws_run_window "$section" "$FROM_EPOCH" $((TO_EPOCH - 1)) "$WORK/$section.json"
    else
      aws_run_window "$section" "$start" "$end" "$WORK/$section.json"
    fi
  done
  aws_report_input >"$WORK/input.json" || die "the Logs Insights rows could not be turned into the report input (jq's reason is above)"
  "$RENDERER" report --input "$WORK/input.json" --format "$FORMAT" ||
    die "heartbeat-agent could not render the report (its reason is above): make sure it is built from this clone"
}

#!/usr/bin/env bats
# scripts/report.sh --cloud aws against the aws stand-in (tests/scripts/stubs/aws), whose Logs
# Insights runs the queries of queries/report-aws/ with tests/scripts/stubs/logs_insights.py over
# log lines the real lambda binary printed (tests/scripts/aws_log_events.py: November 2026 of
# den-pc, the scenario of the Azure report tests' answers). heartbeat-agent (the real debug build)
# renders the report. Every aws line recorded here is replayed through the real AWS CLI's parser
# by tests/awscli. The daily quality summary is compared, day by day, with the Azure report of the
# same month (the az stand-in's answers, tests/scripts/stubs/app-insights/).

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

setup_file() {
  local lambda=${ISP_MONITOR_LAMBDA:-$REAL_ROOT/target/debug/lambda}
  export AWS_REPORT_EVENTS=$BATS_FILE_TMPDIR/events.jsonl
  if [[ -x $lambda ]]; then
    python3 "$BATS_TEST_DIRNAME/aws_log_events.py" "$lambda" "$AWS_REPORT_EVENTS"
  fi
}

setup() {
  [[ -s $AWS_REPORT_EVENTS ]] || fail_test "no lambda binary to print the log lines: run 'cargo build --bins' (tests/scripts/run.sh does)"
  common_setup
  local var
  for var in $(compgen -v | grep -E '^AWS_' | grep -vx -e AWS_REPLAY_RECORD -e AWS_REPORT_EVENTS || true); do
    unset "$var"
  done
  mkdir -p "$REPO/queries/report-aws"
  cp "$REAL_ROOT/scripts/report.sh" "$REAL_ROOT/scripts/report_aws.sh" "$REPO/scripts/"
  cp "$REAL_ROOT"/queries/report-aws/*.logsinsights "$REPO/queries/report-aws/"
  ln -sf "$STAND_INS/aws" "$STUBS/aws"
  export AWS_STUB_STATE=$BATS_TEST_TMPDIR/aws-state AWS_STUB_STACK_STATUS=CREATE_COMPLETE
  export AWS_STUB_LOG_EVENTS=$AWS_REPORT_EVENTS AWS_STUB_INSIGHTS=$STAND_INS/logs_insights.py
  export ISP_MONITOR_AGENT_BIN=$REAL_AGENT ISP_MONITOR_QUERY_POLL_SECONDS=0 AWS_STUB_QUERY_POLLS=0
  write_env "AWS_REGION=eu-west-1" "AWS_STACK_NAME=isp-monitor"
}

teardown() {
  common_teardown
}

# The only line of output is report.sh's one-line reason.
assert_reason() {
  [[ $status -ne 0 ]] || fail_test "expected a failure, got status 0: $output" || return 1
  [[ ${lines[${#lines[@]} - 1]} == "report.sh: "*"$1"* ]] || fail_test "expected 'report.sh: …$1…', got: $output"
}

# The numbers of the Azure report test for the same month (report.bats, "--month --format json").
SAME_AS_AZURE='
  .schema == "isp-monitor-report" and .source == "aws" and .silence_minutes == 5
  and .from == "2026-11-01T00:00:00Z" and .to == "2026-12-01T00:00:00Z"
  and (.devices | length) == 1
  and (.devices[0] | .device == "den-pc" and .isp_downtime_s == 7500 and .isp_outages == 1
       and .longest_isp_outage_s == 7500 and .outages_total == 4 and .observed_s == 30 * 86400 - 32400
       and .uptime_pct == 99.71
       and .not_isp == {lan_s: 1800, agent_offline_s: 32400, cloud_side_s: 0, undetermined_s: 600})
  and ([.devices[0].outages[] | [.cause, .witness]] == [["isp", "both"], ["lan", "both"], ["unknown", "cloud"], ["agent_offline", "both"]])
  and .devices[0].ip_changes == [{at: "2026-11-03T12:05:20Z", from: "203.0.113.7", to: "203.0.113.99"}]
  and [.devices[0].days[] | select(.quality != null) | .date] == ["2026-11-03"]
  and .devices[0].days[2].quality == {samples: 1315, probes: 5260, lost: 52, loss_pct: 0.99, rtt_p50_ms: 12.3,
       rtt_p95_ms: 40.5, rtt_p95_max_ms: 210, dns_ms: 20}
  and .notes == []'

# azure_report ARGS...: report.sh for Azure (the az stand-in's answers for the same month) in $output.
azure_report() {
  mkdir -p "$REPO/queries/report"
  cp "$REAL_ROOT"/queries/report/*.kql "$REPO/queries/report/"
  write_env "AZURE_RESOURCE_GROUP=home-rg"
  AZ_STUB_GROUP_EXISTS=1 run "$REPO/scripts/report.sh" "$@"
  [ "$status" -eq 0 ]
}

# The days of a JSON report: date and quality, in order, per device.
readonly DAYS='[.devices[] | {device, days: [.days[] | {date, quality}]}]'

@test "--cloud aws --month --format json: the Azure report's numbers, from the Lambda's own lines" {
  export AWS_STUB_QUERY_POLLS=1
  run "$REPO/scripts/report.sh" --cloud aws --month 2026-11 --format json
  [ "$status" -eq 0 ]
  jq -e "$SAME_AS_AZURE" <<<"$output"
  local aws=$output
  # The log group came from the stack's outputs; four queries, each polled until Complete, with
  # absolute epoch seconds a day either side of the month (the devices query ends with it), the
  # quality query over the month itself.
  grep -q '^aws cloudformation describe-stacks --stack-name isp-monitor --region eu-west-1 --output json$' "$STUB_LOG"
  [ "$(grep -c '^aws logs start-query --log-group-name /aws/lambda/ispmon-heartbeat --start-time 1793404800 --end-time ' "$STUB_LOG")" -eq 3 ]
  grep -q -- '--start-time 1793404800 --end-time 1796083199 --limit 10000 ' "$STUB_LOG"
  [ "$(grep -c -- '^aws logs start-query .* --start-time 1793491200 --end-time 1796083199 --limit 10000 --query-string # AWS period report, quality' "$STUB_LOG")" -eq 1 ]
  [ "$(grep -c '^aws logs get-query-results' "$STUB_LOG")" -eq 8 ] # Running once, then Complete
  grep -qxF '| stats count(*) as heartbeats, min(@timestamp) as first, max(@timestamp) as last by Device, client_ip, bin(5m) as slot' "$STUB_LOG"
  # Day by day, the same quality as the Azure report of the month.
  azure_report --month 2026-11 --format json
  jq -e '.source == "azure" and .devices[0].days[2].quality.samples == 1315' <<<"$output"
  [ "$(jq -c "$DAYS" <<<"$aws")" == "$(jq -c "$DAYS" <<<"$output")" ]
  [ "$(jq "$DAYS | .[0].days | length" <<<"$aws")" -eq 30 ]
}

@test "--cloud=aws --from/--to --format table|csv|html: the same report in each format" {
  # The day of the ISP outage: 7500 s of 86400 down, 91.32% up.
  run "$REPO/scripts/report.sh" --cloud=aws --from 2026-11-03 --to 2026-11-04 --format table
  [ "$status" -eq 0 ]
  [[ $output == *"den-pc"* && $output == *"91.32"* ]]
  # The daily quality line, as the Azure report prints it (test 1 compares the JSON day by day).
  grep -qE '^    2026-11-03  91.32%  2h05m     0.99%  12.3 ms  40.5 ms  20 ms$' <<<"$output"
  [[ $output != *"left out"* ]] # no quality note
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-03 --to 2026-11-04 --format csv
  [ "$status" -eq 0 ]
  grep -q '^summary,den-pc,2026-11-03T00:00:00Z,2026-11-04T00:00:00Z,86400,,,,,91.32,7500,1,' <<<"$output"
  grep -q '^outage,den-pc,2026-11-03T10:00:00Z,2026-11-03T12:05:00Z,7500,isp,' <<<"$output"
  grep -q '^day,den-pc,2026-11-03,,86400,,,,,91.32,7500,,,5260,52,0.99,12.3,40.5,20,' <<<"$output"
  run "$REPO/scripts/report.sh" --cloud aws --from=2026-11-03 --to=2026-11-04 --format=html
  [ "$status" -eq 0 ]
  [[ $output == *"<html"* && $output == *"91.32"* && $output == *"0.99"* ]]
}

@test "--cloud aws: a full result (ISP_MONITOR_INSIGHTS_LIMIT) splits the period and gives the same numbers; a full hour is refused" {
  export ISP_MONITOR_INSIGHTS_LIMIT=5000
  run "$REPO/scripts/report.sh" --cloud aws --month 2026-11 --format json
  [ "$status" -eq 0 ]
  jq -e "$SAME_AS_AZURE" <<<"$output"
  [ "$(grep -c '^aws logs start-query' "$STUB_LOG")" -eq 6 ] # the slots query: the month, then its halves
  # One device is one row of the devices query: a limit of 1 is full even for an hour.
  export ISP_MONITOR_INSIGHTS_LIMIT=1
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-04T10:00Z --to 2026-11-04T12:00Z --format json
  assert_reason "returned its limit of 1 rows even for one hour"
}

@test "--cloud aws --device and --log-group reach the query and the call; SILENCE_MINUTES sets the slot" {
  export SILENCE_MINUTES=10
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-03 --to 2026-11-04 --format json --device 'den-pc' --log-group /aws/lambda/ispmon-heartbeat
  [ "$status" -eq 0 ]
  jq -e '.devices[0].device == "den-pc" and .silence_minutes == 10' <<<"$output"
  refute grep -q 'cloudformation' "$STUB_LOG"
  grep -qxF '| filter Device = "den-pc"' "$STUB_LOG"
  grep -qF 'bin(10m) as slot' "$STUB_LOG"
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-03 --to 2026-11-04 --format json --device attic
  [ "$status" -eq 0 ]
  jq -e '.devices == []' <<<"$output"
  run "$REPO/scripts/report.sh" --cloud aws --month 2026-11 --log-group /aws/lambda/other
  assert_reason "does not exist"
}

@test "--cloud aws: the stand-in can fail: a wrong field name gives a wrong report, a malformed query is refused" {
  # The ISP outage of 2026-11-03 is seen by both witnesses; without the gaps only by the agent.
  local both='.devices[0].outages | map([.cause, .witness]) == [["isp", "both"]]'
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-03 --to 2026-11-04 --format json
  jq -e "$both" <<<"$output"
  sed -i.bak 's/by Device, client_ip/by Devcie, client_ip/' "$REPO/queries/report-aws/heartbeats.logsinsights"
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-03 --to 2026-11-04 --format json
  [ "$status" -eq 0 ]
  refute jq -e "$both" <<<"$output"
  cp "$REPO/queries/report-aws/heartbeats.logsinsights.bak" "$REPO/queries/report-aws/heartbeats.logsinsights"
  sed -i.bak 's/^| limit 10000$/| limt 10000/' "$REPO/queries/report-aws/devices.logsinsights"
  run "$REPO/scripts/report.sh" --cloud aws --month 2026-11 --format json
  assert_reason "MalformedQueryException"
}

@test "--cloud aws: the quality query can fail: a wrong field name empties the summary, day bins off 00:00 UTC leave it out with a note, avg(*) is refused" {
  # (tests 1 and 2 show the summary with the query as it is)
  local query=$REPO/queries/report-aws/quality.logsinsights day='.devices[0].days[0].quality'
  cp "$query" "$query.orig"
  sed 's/filter ispresent(quality_probes)/filter ispresent(quality_probe)/' "$query.orig" >"$query"
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-03 --to 2026-11-04 --format json
  [ "$status" -eq 0 ]
  jq -e "$day == null and .notes == []" <<<"$output"
  # Hour bins do not start at 00:00 UTC (all but one): the summary is left out, with a note.
  sed 's/bin(1d) as day/bin(1h) as day/' "$query.orig" >"$query"
  run "$REPO/scripts/report.sh" --cloud aws --from 2026-11-03 --to 2026-11-04 --format json
  [ "$status" -eq 0 ]
  jq -e "$day == null and .devices[0].uptime_pct == 91.32 and (.notes | length) == 1 and (.notes[0] | test(\"left out\"))" <<<"$output"
  # What the service refuses, the stand-in refuses (start-query fails as it does on a malformed query).
  sed 's/count(\*) as samples/avg(*) as samples/' "$query.orig" >"$query"
  run python3 "$STAND_INS/logs_insights.py" check "$query"
  [ "$status" -eq 2 ] && [[ $output == "stats: avg(*)"* ]]
  run python3 "$STAND_INS/logs_insights.py" check "$query.orig"
  [ "$status" -eq 0 ]
}

# A day whose quality rows came from two windows (a split result) is one day: counts added, the
# means weighted by how many values each is of, the worst kept. (A split of the quality query
# needs 10,000 device-days, which no scenario here reaches, so its rows are given directly.)
@test "--cloud aws: quality rows of one day from two windows are joined exactly" {
  mkdir -p "$BATS_TEST_TMPDIR/work"
  local out
  # shellcheck disable=SC1091,SC2034 # report_aws.sh reads these; it is the copy in $REPO
  out=$(
    ROOT=$REPO WORK=$BATS_TEST_TMPDIR/work FROM_EPOCH=1793664000 TO_EPOCH=1793836800 NOW_EPOCH=1796083200 SILENCE_MINUTES=5 DEVICE=""
    source "$REPO/scripts/report_aws.sh"
    printf '[]' >"$WORK/devices.json"
    printf '[]' >"$WORK/heartbeats.json"
    printf '[]' >"$WORK/outages.json"
    jq -n '[
      {Device: "a", day: "2026-11-03 00:00:00.000", samples: "2", probes: "8", lost: "1", rtt_p50_ms: "10",
       rtt_p95_ms: "20", rtt_p95_max_ms: "30", rtt_samples: "2", dns_ms: "5", dns_samples: "1"},
      {Device: "a", day: "2026-11-03 00:00:00.000", samples: "1", probes: "4", lost: "4", rtt_samples: "0",
       dns_ms: "8", dns_samples: "2"},
      {Device: "a", day: "2026-11-04 00:00:00.000", samples: "1", probes: "4", lost: "4", rtt_samples: "0", dns_samples: "0"}]' >"$WORK/quality.json"
    aws_report_input
  )
  jq -e '.notes == [] and .quality_days == [
    {device: "a", date: "2026-11-03", samples: 3, probes: 12, lost: 5, rtt_p50_ms: 10, rtt_p95_ms: 20, rtt_p95_max_ms: 30, dns_ms: 7},
    {device: "a", date: "2026-11-04", samples: 1, probes: 4, lost: 4, rtt_p50_ms: null, rtt_p95_ms: null, rtt_p95_max_ms: null, dns_ms: null}]' <<<"$out"
}

@test "--cloud aws fails in one line: no stack, no credentials, query Failed/Cancelled/Timeout, no answer in time" {
  unset AWS_STUB_STACK_STATUS
  run "$REPO/scripts/report.sh" --cloud aws --month 2026-11
  assert_reason "there is no stack isp-monitor in eu-west-1: deploy with ./deploy_aws.sh"
  export AWS_STUB_STACK_STATUS=CREATE_COMPLETE AWS_STUB_CREDENTIALS=none
  run "$REPO/scripts/report.sh" --cloud aws --month 2026-11
  assert_reason "the AWS credentials are missing or expired"
  export AWS_STUB_CREDENTIALS=ok
  local end
  for end in Failed Cancelled Timeout; do
    AWS_STUB_QUERY_STATUS=$end run "$REPO/scripts/report.sh" --cloud aws --month 2026-11
    assert_reason "ended $end"
  done
  AWS_STUB_QUERY_STATUS=Running ISP_MONITOR_QUERY_TIMEOUT=1 ISP_MONITOR_QUERY_POLL_SECONDS=0.2 run "$REPO/scripts/report.sh" --cloud aws --month 2026-11
  assert_reason "did not finish within 1s (stopped)"
  grep -q '^aws logs stop-query --query-id ' "$STUB_LOG"
}

@test "--cloud: bad values and combinations fail in one line before any aws call" {
  run "$REPO/scripts/report.sh" --cloud gcp --month 2026-11
  assert_reason "--cloud 'gcp' is not one of azure, aws"
  run "$REPO/scripts/report.sh" --cloud aws
  assert_reason "--cloud aws gives the evidence report"
  run "$REPO/scripts/report.sh" --cloud aws --json
  assert_reason "--cloud aws gives the evidence report"
  run "$REPO/scripts/report.sh" --cloud aws --month 2026-11 --app appi-x
  assert_reason "with --cloud aws use --log-group NAME"
  run "$REPO/scripts/report.sh" --month 2026-11 --log-group /x
  assert_reason "--log-group is for --cloud aws"
  [ ! -s "$STUB_LOG" ]
}

@test "--cloud aws --since DATE --format json: the period runs from then to now" {
  run "$REPO/scripts/report.sh" --cloud aws --since 2026-11-30 --format json
  [ "$status" -eq 0 ]
  jq -e '.source == "aws" and .from == "2026-11-30T00:00:00Z" and (.devices | map(.device)) == ["den-pc"]' <<<"$output"
  grep -q -- '--start-time 1795910400 ' "$STUB_LOG" # a day before the start
}

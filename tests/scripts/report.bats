#!/usr/bin/env bats
# scripts/report.sh against the az stand-in (tests/scripts/stubs/az), which answers the three report
# queries with the JSON shape of `az monitor app-insights query` (tests/scripts/stubs/app-insights/).
# What the queries compute is tested in tests/infra/test_report_queries.py; here: the arguments and
# query text the script sends, its tables and JSON, and its errors. Nothing reaches Azure.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

readonly KEY=stub-KEY-1234567890abcdef==
readonly HOOK=https://hooks.example.com/secret-token

setup() {
  common_setup
  mkdir -p "$REPO/queries/report"
  cp "$REAL_ROOT/scripts/report.sh" "$REAL_ROOT/scripts/report_aws.sh" "$REPO/scripts/"
  cp "$REAL_ROOT"/queries/report/*.kql "$REPO/queries/report/"
  export AZ_STUB_GROUP_EXISTS=1
  write_env "AZURE_RESOURCE_GROUP=home-rg" "HEARTBEAT_KEY=$KEY" "ALERT_WEBHOOK_URL=$HOOK" "ALERT_EMAIL=me@example.com"
}

teardown() {
  common_teardown
}

# query N: the text of the Nth query the stand-in received.
query() {
  cat "$AZ_STUB_STATE/query-$1.kql"
}

# The only line of output is report.sh's one-line reason.
assert_failed_with() {
  [[ $status -ne 0 ]] || fail_test "expected a failure, got status 0: $output" || return 1
  [[ ${#lines[@]} -eq 1 ]] || fail_test "expected one line, got: $output" || return 1
  [[ ${lines[0]} == "report.sh: "* ]] || fail_test "not report.sh's reason: ${lines[0]}" || return 1
  [[ ${lines[0]} == *"$1"* ]] || fail_test "expected '$1' in: ${lines[0]}"
}

assert_no_secret() {
  [[ $output != *"$KEY"* && $output != *secret-token* ]] || fail_test "a secret was printed: $output" || return 1
  refute grep -qF -e "$KEY" -e secret-token "$STUB_LOG"
  refute grep -qF -e "$KEY" -e secret-token "$AZ_STUB_STATE"/query-*.kql
}

# ------------------------------------------------------------------------------------------ reports

@test "report: three tables with times in UTC, durations as 7m30s / 2h05m, an ongoing outage" {
  run "$REPO/scripts/report.sh"
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "ISP Monitor report since "*" UTC (7d), generated "*" UTC" ]]
  [[ $output == *$'Devices\nDEVICE     UPTIME  HEARTBEATS  LAST HEARTBEAT (UTC)  PUBLIC IP\nden-pc     99.4%   10021       2026-11-25 22:59:31   203.0.113.99\n'* ]]
  [[ $output == *"garage-pi  97.62%  9874        2026-11-25 22:41:02   198.51.100.20"* ]]
  [[ $output == *"Outages (agent: reported by the device; gap: no heartbeat for more than 5 minutes)"* ]]
  [[ $output == *"den-pc     2026-11-24 10:00:00  2026-11-24 10:07:30  7m30s     isp      agent"* ]]
  [[ $output == *"den-pc     2026-11-25 02:13:05  2026-11-25 04:18:40  2h05m     unknown  gap"* ]]
  [[ $output == *"garage-pi  2026-11-25 22:41:02  ongoing              18m29s    unknown  gap"* ]]
  [[ $output == *$'Public IP changes\nDEVICE  CHANGED (UTC)        FROM         TO\nden-pc  2026-11-24 10:08:30  203.0.113.7  203.0.113.99'* ]]
  assert_no_secret
}

@test "report: runs the three queries read-only, on the group's component, with JSON output" {
  run "$REPO/scripts/report.sh"
  [ "$status" -eq 0 ]
  assert_in_order \
    "az extension show -n application-insights" \
    "az account show" \
    "az resource list -g home-rg --resource-type Microsoft.Insights/components" \
    "az monitor app-insights query --apps ispmon-appi-abc123 -g home-rg --analytics-query // Report, devices:" \
    "az monitor app-insights query --apps ispmon-appi-abc123 -g home-rg --analytics-query // Report, outages:" \
    "az monitor app-insights query --apps ispmon-appi-abc123 -g home-rg --analytics-query // Report, public IP changes:"
  run grep -E '^az ' "$STUB_LOG"
  [[ $output != *" create"* && $output != *" set"* && $output != *" delete"* ]]
  [ "$(grep -c '^az ' "$STUB_LOG")" -eq "$(grep -c -- '-o json' "$STUB_LOG")" ]
  # With the default settings the parameter lines stay as the files have them: the queries are the files.
  [ "$(query 1)" = "$(cat "$REPO/queries/report/report-devices.kql")" ]
  [ "$(query 2)" = "$(cat "$REPO/queries/report/report-outages.kql")" ]
  [ "$(query 3)" = "$(cat "$REPO/queries/report/report-ip-changes.kql")" ]
}

@test "--json: one object with the period, the three sections and numbers as numbers" {
  run "$REPO/scripts/report.sh" --json
  [ "$status" -eq 0 ]
  jq -e '
    (keys == ["device", "devices", "generated_at", "ip_changes", "outages", "period", "silence_minutes", "since"])
    and .period == "7d" and .silence_minutes == 5 and .device == null
    and (.since | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))
    and ((.generated_at | fromdate) - (.since | fromdate) == 7 * 86400)
    and .devices[0] == {device: "den-pc", last_heartbeat: "2026-11-25T22:59:31.2573341Z", heartbeats: 10021, uptime_pct: 99.4, public_ip: "203.0.113.99"}
    and ([.outages[] | [.source, .cause, .duration_s, .end_utc]] == [["agent", "isp", 450, "2026-11-24T10:07:30Z"], ["gap", "unknown", 7535, "2026-11-25T04:18:40.9Z"], ["gap", "unknown", 1109, null]])
    and .ip_changes == [{device: "den-pc", changed_utc: "2026-11-24T10:08:30.5Z", previous_ip: "203.0.113.7", public_ip: "203.0.113.99"}]
  ' <<<"$output"
  assert_no_secret
}

@test "--json: numbers that az hands over as strings still come out as numbers" {
  export AZ_STUB_QUERY_STRINGS=1
  run "$REPO/scripts/report.sh" --json
  [ "$status" -eq 0 ]
  jq -e '.devices[1].heartbeats == 9874 and .devices[1].uptime_pct == 97.62 and .outages[2].duration_s == 1109' <<<"$output"
}

@test "--device and --since reach the query text and the query's time range" {
  run "$REPO/scripts/report.sh" --device 'den "pc" \ 2' --since 24h --json
  [ "$status" -eq 0 ]
  jq -e '.device == "den \"pc\" \\ 2" and .period == "24h"' <<<"$output"
  local n
  for n in 1 2 3; do
    grep -qxF 'let since = ago(24h);' "$AZ_STUB_STATE/query-$n.kql"
    grep -qxF 'let only_device = "den \"pc\" \\ 2";' "$AZ_STUB_STATE/query-$n.kql"
  done
  [ "$(calls '--offset 25h' | wc -l)" -eq 3 ]

  rm -f "$AZ_STUB_STATE"/query-*.kql
  : >"$STUB_LOG"
  run "$REPO/scripts/report.sh" --since 30d
  [ "$status" -eq 0 ]
  grep -qxF 'let since = ago(30d);' "$AZ_STUB_STATE/query-1.kql"
  [ "$(calls '--offset 721h' | wc -l)" -eq 3 ]
}

@test "--since DATE: an absolute start, and a time range that reaches back to it" {
  run "$REPO/scripts/report.sh" --since 2026-11-01 --json
  [ "$status" -eq 0 ]
  jq -e '.since == "2026-11-01T00:00:00Z"' <<<"$output"
  grep -qxF 'let since = datetime(2026-11-01T00:00:00Z);' "$AZ_STUB_STATE/query-1.kql"
  local hours expected
  hours=$(calls '--offset' | head -n1 | sed -E 's/.*--offset ([0-9]+)h.*/\1/')
  expected=$(((($(date -u +%s) - $(jq -n '"2026-11-01T00:00:00Z" | fromdate')) + 3599) / 3600 + 1))
  ((hours == expected || hours == expected + 1))
  run "$REPO/scripts/report.sh" --since 2026-11-01T08:30Z
  [ "$status" -eq 0 ]
  grep -qxF 'let since = datetime(2026-11-01T08:30:00Z);' "$AZ_STUB_STATE/query-4.kql"
}

@test "settings: SILENCE_MINUTES, AZURE_SUBSCRIPTION and AZURE_APPINSIGHTS_NAME from .env; --app wins" {
  write_env "AZURE_RESOURCE_GROUP=home-rg" "SILENCE_MINUTES=12" "AZURE_SUBSCRIPTION=my-sub" "AZURE_APPINSIGHTS_NAME=named-appi"
  run "$REPO/scripts/report.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"no heartbeat for more than 12 minutes"* ]]
  grep -qxF 'let silence = 12m;' "$AZ_STUB_STATE/query-2.kql"
  [ -z "$(calls 'resource list')" ]
  [ "$(calls 'app-insights query --apps named-appi -g home-rg' | wc -l)" -eq 3 ]
  [ "$(grep -c '^az ' "$STUB_LOG")" -eq "$(($(grep -c -- '--subscription my-sub' "$STUB_LOG") + 1))" ] # all but extension show
  run "$REPO/scripts/report.sh" --app other-appi
  [ "$status" -eq 0 ]
  [ "$(calls 'app-insights query --apps other-appi' | wc -l)" -eq 3 ]
}

@test "usage: --help prints the header; bad options and values fail with one line, before any az call" {
  run "$REPO/scripts/report.sh" --help
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "report.sh: what ISP Monitor saw over a period"* ]]
  [[ $output == *"--since PERIOD"*"--device NAME"*"--json"*"--app NAME"* ]]
  run "$REPO/scripts/report.sh" --frobnicate
  assert_failed_with "unknown option '--frobnicate': run scripts/report.sh --help"
  run "$REPO/scripts/report.sh" --since
  assert_failed_with "--since needs a value"
  run "$REPO/scripts/report.sh" --since 7w
  assert_failed_with "--since '7w' is neither a period like 7d or 24h nor a UTC date like 2026-11-01"
  run "$REPO/scripts/report.sh" --since 2026-02-30
  assert_failed_with "--since '2026-02-30' is not a valid UTC date or time"
  run "$REPO/scripts/report.sh" --since 2999-01-01
  assert_failed_with "--since '2999-01-01' is in the future"
  run "$REPO/scripts/report.sh" --device $'two\nlines'
  assert_failed_with "--device holds a control character"
  write_env "SILENCE_MINUTES=five"
  run "$REPO/scripts/report.sh"
  assert_failed_with "SILENCE_MINUTES 'five' is not a whole number of minutes: fix it in $REPO/.env"
  [ ! -s "$STUB_LOG" ]
}

# ------------------------------------------------------------------------------------ failure paths

@test "fails: az is not installed: says where to get it" {
  hide_command az
  run "$REPO/scripts/report.sh"
  assert_failed_with "az (the Azure CLI) is not installed: install it (see https://learn.microsoft.com/cli/azure/install-azure-cli)"
}

@test "fails: jq is not installed: gives the install command" {
  hide_command jq
  run "$REPO/scripts/report.sh"
  assert_failed_with "jq is not installed: install it with '"
  [ ! -s "$STUB_LOG" ]
}

@test "fails: the application-insights extension is missing: says how to add it" {
  export AZ_STUB_EXTENSIONS=""
  run "$REPO/scripts/report.sh"
  assert_failed_with "the az extension application-insights is not installed (the log queries need it): run 'az extension add -n application-insights'"
  [ -z "$(calls 'app-insights query')" ]
}

@test "fails: not logged in: says to run az login" {
  export AZ_STUB_LOGGED_IN=0
  run "$REPO/scripts/report.sh"
  assert_failed_with "not logged in to Azure: run 'az login'"
  [ -z "$(calls 'resource list')" ]
}

@test "fails: no component in the resource group: says to deploy or name it" {
  export AZ_STUB_COMPONENTS=""
  run "$REPO/scripts/report.sh"
  assert_failed_with "no Application Insights component in resource group home-rg: deploy with ./deploy.sh, or set AZURE_RESOURCE_GROUP (or --app NAME)"
  [ -z "$(calls 'app-insights query')" ]
}

@test "fails: two components in the resource group: names them and asks for --app" {
  export AZ_STUB_COMPONENTS="appi-one appi-two"
  run "$REPO/scripts/report.sh"
  assert_failed_with "2 Application Insights components in resource group home-rg (appi-one appi-two): pick one with --app NAME or AZURE_APPINSIGHTS_NAME in $REPO/.env"
}

@test "fails: the resource group does not exist: gives az's reason" {
  export AZ_STUB_GROUP_EXISTS=0
  run "$REPO/scripts/report.sh"
  assert_failed_with "listing the Application Insights components of resource group home-rg failed: (ResourceGroupNotFound) Resource group 'home-rg' could not be found."
}

@test "fails: the query fails: gives az's reason; an expired login says to log in again" {
  export AZ_STUB_QUERY_ERROR=not-found
  run "$REPO/scripts/report.sh" --app gone-appi
  assert_failed_with "the query report-devices.kql on gone-appi failed: (ResourceNotFound) The Resource 'Microsoft.Insights/components/gone-appi'"
  export AZ_STUB_QUERY_ERROR=login-expired
  run "$REPO/scripts/report.sh"
  assert_failed_with "failed because the Azure login is missing or expired: run 'az login'"
  assert_no_secret
}

# ---------------------------------------------------------------------- the evidence report (Rust)
# The az stand-in answers the five period queries with November 2026 of den-pc
# (tests/scripts/stubs/app-insights/report-period-*.json): an ISP outage (2h05m), a LAN outage
# (30m), the agent off for 9h, each also a heartbeat gap, and one gap (10m) no report explains.
# heartbeat-agent (the real debug build) computes and prints the report.

@test "--month --format json: the evidence report, computed by heartbeat-agent from the five queries" {
  export ISP_MONITOR_AGENT_BIN=$REAL_AGENT
  run "$REPO/scripts/report.sh" --month 2026-11 --format json
  [ "$status" -eq 0 ]
  jq -e '
    .schema == "isp-monitor-report" and .version == 1 and .source == "azure" and .silence_minutes == 5
    and .from == "2026-11-01T00:00:00Z" and .to == "2026-12-01T00:00:00Z"
    and (.devices | length) == 1
    and (.devices[0] | .device == "den-pc" and .isp_downtime_s == 7500 and .isp_outages == 1
         and .longest_isp_outage_s == 7500 and .outages_total == 4 and .observed_s == 30 * 86400 - 32400
         and .uptime_pct == 99.71
         and .not_isp == {lan_s: 1800, agent_offline_s: 32400, cloud_side_s: 0, undetermined_s: 600})
    and ([.devices[0].outages[] | [.cause, .witness]] == [["isp", "both"], ["lan", "both"], ["unknown", "cloud"], ["agent_offline", "both"]])
    and .devices[0].ip_changes == [{at: "2026-11-03T12:05:20Z", from: "203.0.113.7", to: "203.0.113.99"}]
    and (.devices[0].days[2] | .date == "2026-11-03" and .quality.loss_pct == 0.99 and .quality.rtt_p95_ms == 40.5)
  ' <<<"$output"
  local n
  for n in 1 2 3 4 5; do
    grep -qxF 'let since = datetime(2026-11-01T00:00:00Z);' "$AZ_STUB_STATE/query-$n.kql"
    grep -qxF 'let until = datetime(2026-12-01T00:00:00Z);' "$AZ_STUB_STATE/query-$n.kql"
    grep -qxF 'let silence = 5m;' "$AZ_STUB_STATE/query-$n.kql"
  done
  [ "$(calls 'app-insights query' | wc -l)" -eq 5 ]
  assert_no_secret
}

@test "--from --to --format table|csv|html: the same report in each format" {
  export ISP_MONITOR_AGENT_BIN=$REAL_AGENT
  run "$REPO/scripts/report.sh" --from 2026-11-01 --to 2026-12-01 --format table
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "ISP Monitor report 2026-11-01 00:00:00 to 2026-12-01 00:00:00 UTC, from Azure Application Insights; generated "* ]]
  [[ $output == *"Uptime (ISP):   99.71%"* ]]
  [[ $output == *"2026-11-03 10:00:00  2026-11-03 12:05:00  2h05m     isp            yes  both     your internet provider (DNS and internet targets unreachable)"* ]]
  [[ $output == *"2026-11-03 12:05:20  203.0.113.7  203.0.113.99"* ]]
  grep -qxF 'let until = datetime(2026-12-01T00:00:00Z);' "$AZ_STUB_STATE/query-1.kql"
  run "$REPO/scripts/report.sh" --from 2026-11-10T07:00Z --to 2026-11-10T09:00:00Z --format csv
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "record,device,start_utc,end_utc,duration_s,cause,"*$'\r' ]]
  [[ $output == *'outage,den-pc,2026-11-10T08:00:00Z,2026-11-10T08:30:00Z,1800,lan,your local network (the router did not answer),no,both,,0,,1800,,,,,,,"0/3 internet targets reached, gateway unreachable, ""router"" down"'$'\r'* ]]
  run "$REPO/scripts/report.sh" --month=2026-11 --format=html
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "<!DOCTYPE html>" && $output == *"@page{size:A4"* && $output != *"<script"* ]]
  [ "$(grep -c '<tr class="outage' <<<"$output")" -eq 4 ]
}

@test "the evidence report: heartbeat-agent is found in the clone's target, else on PATH, else the build command" {
  mkdir -p "$REPO/target/debug"
  ln -s "$REAL_AGENT" "$REPO/target/debug/heartbeat-agent"
  run "$REPO/scripts/report.sh" --month 2026-11 --format json
  [ "$status" -eq 0 ]
  rm "$REPO/target/debug/heartbeat-agent"
  ln -s "$REAL_AGENT" "$STUBS/heartbeat-agent"
  run "$REPO/scripts/report.sh" --month 2026-11 --format json
  [ "$status" -eq 0 ]
  rm "$STUBS/heartbeat-agent"
  : >"$STUB_LOG"
  run "$REPO/scripts/report.sh" --month 2026-11
  assert_failed_with "the evidence report is printed by heartbeat-agent, which is not built: run 'cargo build --release --bin heartbeat-agent'"
  export ISP_MONITOR_AGENT_BIN=$REPO/scripts
  run "$REPO/scripts/report.sh" --month 2026-11
  assert_failed_with "ISP_MONITOR_AGENT_BIN '$REPO/scripts' is not an executable file"
  [ ! -s "$STUB_LOG" ]
}

@test "the evidence report: --since with --format runs from then to now; bad periods fail in one line before az" {
  export ISP_MONITOR_AGENT_BIN=$REAL_AGENT
  run "$REPO/scripts/report.sh" --since 2026-11-01 --format json
  [ "$status" -eq 0 ]
  jq -e '.from == "2026-11-01T00:00:00Z" and (.to | fromdate) >= now - 60' <<<"$output"
  : >"$STUB_LOG"
  run "$REPO/scripts/report.sh" --month 2026-13
  assert_failed_with "--month '2026-13' is not a month like 2026-11"
  run "$REPO/scripts/report.sh" --from 2026-11-02
  assert_failed_with "--from needs --to: give both, or --month"
  run "$REPO/scripts/report.sh" --to 2026-11-02
  assert_failed_with "--to needs --from: give both, or --month"
  run "$REPO/scripts/report.sh" --from 2026-11-02 --to 2026-11-01
  assert_failed_with "--to '2026-11-01' is not after --from '2026-11-02': give a later end"
  run "$REPO/scripts/report.sh" --from 2026-02-30 --to 2026-03-02
  assert_failed_with "--from '2026-02-30' is not a valid UTC date or time"
  run "$REPO/scripts/report.sh" --month 2026-11 --from 2026-11-01 --to 2026-11-02
  assert_failed_with "--month and --from/--to are two ways to give the period: use one"
  run "$REPO/scripts/report.sh" --month 2026-11 --json
  assert_failed_with "--json is the quick view's JSON; for the evidence report use --format json"
  run "$REPO/scripts/report.sh" --month 2026-11 --format pdf
  assert_failed_with "--format 'pdf' is not one of table, json, csv, html"
  run "$REPO/scripts/report.sh" --month 2999-01
  assert_failed_with "the period starts in the future: give an earlier start"
  [ ! -s "$STUB_LOG" ]
}

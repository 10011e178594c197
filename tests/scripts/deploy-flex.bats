#!/usr/bin/env bats
# deploy.sh's two hosting plans (HOSTING_PLAN=consumption|flex) against the az stand-in
# (tests/scripts/stubs/az), which models what differs on Flex Consumption: the plan a template run
# builds and will not move, the site's SKU as `az functionapp show` reports it, config-zip's publish
# path, the regions list and the settings Flex refuses. The heartbeat at the end goes to the
# key-checking loopback front end (keygate.pl). Nothing reaches Azure or the internet.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

readonly KEY=stub-KEY-1234567890abcdef==

setup() {
  common_setup
  export AZ_STUB_KEY=$KEY
  export ISP_MONITOR_DEPLOY_TIMEOUT=3 ISP_MONITOR_POLL_SECONDS=0.1
  write_env "ALERT_EMAIL=me@example.com" "NAME_PREFIX=home" "HEARTBEAT_DEVICE=den-pc" "HOSTING_PLAN=flex"
}

teardown() {
  common_teardown
}

use_keygate() {
  start_keygate "${1:-$KEY}"
  export AZ_STUB_HEARTBEAT_URL=http://127.0.0.1:$KEYGATE_PORT/api/ping
}

# The last line of output is deploy.sh's one-line reason.
assert_failed_with() {
  [[ $status -ne 0 ]] || fail_test "expected a failure, got status 0: $output" || return 1
  [[ ${lines[${#lines[@]} - 1]} == "deploy.sh: "* ]] || fail_test "last line is not deploy.sh's reason: ${lines[${#lines[@]} - 1]}" || return 1
  [[ ${lines[${#lines[@]} - 1]} == *"$1"* ]] || fail_test "expected '$1' in: ${lines[${#lines[@]} - 1]}"
}

# set_plan PLAN: HOSTING_PLAN in .env becomes PLAN.
set_plan() {
  sed "s/^HOSTING_PLAN=.*/HOSTING_PLAN=$1/" "$REPO/.env" >"$REPO/.env.new"
  mv "$REPO/.env.new" "$REPO/.env"
  chmod 600 "$REPO/.env"
}

# ------------------------------------------------------------------------------------ Flex deploys

@test "flex: deploys on Flex Consumption (region checked, publish path, no package setting), then runs again and converges" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  assert_in_order \
    "az account show" \
    "az functionapp list-flexconsumption-locations" \
    "az deployment group show -g isp-monitor -n isp-monitor" \
    "cargo build --release" \
    "az group create -n isp-monitor -l eastus" \
    "az deployment group create -g isp-monitor -n isp-monitor --template-file $REPO/main.bicep --parameters @" \
    "az functionapp deployment source config-zip -g isp-monitor -n ispmon-func-abc123 --src $REPO/target/isp-monitor-functions.zip" \
    "az functionapp function keys list -g isp-monitor -n ispmon-func-abc123 --function-name Ping"
  [[ $output == *"on Flex Consumption"* ]]
  [[ $output == *"config-zip: Flex Consumption publish into the deployment container"* ]]
  [[ $output == *"Deployed on Flex Consumption: heartbeats go to http://127.0.0.1:$KEYGATE_PORT/api/ping"* ]]
  [ "$(jq -r .parameters.hostingPlan.value "$AZ_STUB_STATE/parameters.json")" = flex ]
  [ "$(jq -r '.parameters.currentPackageUrl.value // "none"' "$AZ_STUB_STATE/parameters.json")" = none ]
  # config-zip took Flex's path: the package is in the deployment container, never in a setting.
  [ "$(cat "$AZ_STUB_STATE/publish.log")" = "POST https://ispmon-func-abc123.scm.azurewebsites.net/api/publish?RemoteBuild=False&Deployer=az_cli" ]
  unzip -p "$AZ_STUB_STATE/deployment-container.zip" handler | cmp - "$REPO/target/x86_64-unknown-linux-musl/release/handler"
  [ ! -e "$AZ_STUB_STATE/run-from-package" ]
  grep -c '^POST /api/ping key=match body=.*"device":"den-pc"' "$KEYGATE_LOG" | grep -qx 1
  grep -qx "HEARTBEAT_URL=http://127.0.0.1:$KEYGATE_PORT/api/ping" "$REPO/.env"
  grep -qx "HEARTBEAT_KEY=$KEY" "$REPO/.env"
  [[ $output != *"$KEY"* ]]

  # Again, with a new key: the app is found on Flex, its settings are not read for a package to
  # pass back, and the template run leaves the deployment container's package in place.
  kill "${BACKGROUND_PIDS[@]}"
  BACKGROUND_PIDS=()
  export AZ_STUB_KEY=second-KEY-zz==
  use_keygate second-KEY-zz==
  : >"$STUB_LOG"
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  assert_in_order \
    "az deployment group show -g isp-monitor -n isp-monitor" \
    "az functionapp show -g isp-monitor -n ispmon-func-abc123" \
    "az deployment group create" \
    "az functionapp deployment source config-zip"
  [ -z "$(calls 'az group create')" ]
  [ -z "$(calls 'appsettings list')" ]
  [ "$(jq -r '.parameters.currentPackageUrl.value // "none"' "$AZ_STUB_STATE/parameters.json")" = none ]
  [ "$(cat "$AZ_STUB_STATE/settings.log")" = "$(printf '%s\n' \
    "after deployment 1: flex, deployment container package absent" \
    "after deployment 2: flex, deployment container package present")" ]
  [ "$(wc -l <"$AZ_STUB_STATE/publish.log")" -eq 2 ]
  [ "$(count_lines '^HEARTBEAT_URL=' "$REPO/.env")" -eq 1 ]
  [ "$(count_lines '^HEARTBEAT_KEY=' "$REPO/.env")" -eq 1 ]
  grep -qx 'HEARTBEAT_KEY=second-KEY-zz==' "$REPO/.env"

  # And the other way round: the Flex app is not moved back to Linux Consumption either.
  set_plan consumption
  : >"$STUB_LOG"
  run "$REPO/deploy.sh"
  assert_failed_with "function app ispmon-func-abc123 runs on Flex Consumption (SKU FlexConsumption) but HOSTING_PLAN is consumption: deploy.sh does not move an existing app to another plan in place. Keep HOSTING_PLAN=flex in $REPO/.env, or move as docs/deploy.md, \"Moving to Flex Consumption\" explains"
  [ -z "$(calls cargo)" ]
  [ -z "$(calls 'deployment group create')" ]
  grep -qx 'HEARTBEAT_KEY=second-KEY-zz==' "$REPO/.env"
}

@test "flex: a region without Flex Consumption stops the deploy before the build, naming the regions that have it" {
  export AZ_STUB_FLEX_LOCATIONS="westeurope eastus"
  write_env "ALERT_EMAIL=me@example.com" "HOSTING_PLAN=flex" "AZURE_LOCATION=westus"
  run "$REPO/deploy.sh"
  assert_failed_with "AZURE_LOCATION 'westus' does not offer Flex Consumption (az functionapp list-flexconsumption-locations lists: eastus, westeurope): set AZURE_LOCATION to one of those, or HOSTING_PLAN=consumption, in $REPO/.env"
  [ -z "$(calls cargo)" ]
  [ -z "$(calls 'az group create')" ]
}

@test "flex: a template that ignores hostingPlan, or has no such output, is caught before the upload" {
  export AZ_STUB_PLAN_OUTPUT=consumption
  run "$REPO/deploy.sh"
  assert_failed_with "the deployment reports hostingPlan 'consumption', not 'flex'"
  [ -z "$(calls config-zip)" ]
  rm -rf "$AZ_STUB_STATE"
  export AZ_STUB_PLAN_OUTPUT=none
  run "$REPO/deploy.sh"
  assert_failed_with "main.bicep has no hostingPlan output, so it predates Flex Consumption"
  [ -z "$(calls config-zip)" ]
  refute grep -q '^HEARTBEAT_KEY=' "$REPO/.env"
}

# ------------------------------------------------------------------------------------- plan flips

@test "plan flip: a Linux Consumption app is never moved to Flex: deploy, --what-if and --check refuse, pointing at the migration section" {
  use_keygate
  set_plan consumption
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  grep -qx "HEARTBEAT_KEY=$KEY" "$REPO/.env"
  set_plan flex
  : >"$STUB_LOG"
  run "$REPO/deploy.sh"
  assert_failed_with "function app ispmon-func-abc123 runs on Linux Consumption (SKU Dynamic) but HOSTING_PLAN is flex: deploy.sh does not move an existing app to another plan in place. Keep HOSTING_PLAN=consumption in $REPO/.env, or move as docs/deploy.md, \"Moving to Flex Consumption\" explains"
  # Stopped before the build and before the template; the working app and .env are untouched.
  [ -z "$(calls cargo)" ]
  [ -z "$(calls 'deployment group create')" ]
  [ -z "$(calls config-zip)" ]
  [ "$(cat "$AZ_STUB_STATE/plan")" = consumption ]
  grep -qx "HEARTBEAT_KEY=$KEY" "$REPO/.env"
  run "$REPO/deploy.sh" --what-if
  assert_failed_with "runs on Linux Consumption (SKU Dynamic) but HOSTING_PLAN is flex"
  [ -z "$(calls what-if)" ]
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"ok    region eastus offers Flex Consumption"* ]]
  [[ $output == *"FAIL  function app ispmon-func-abc123 runs on Linux Consumption (SKU Dynamic) but HOSTING_PLAN is flex"* ]]
  set_plan consumption
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 0 ]
  [[ $output == *"ok    function app ispmon-func-abc123 runs on Linux Consumption, as HOSTING_PLAN says"* ]]
  [[ $output == *"ok    hosting plan: Linux Consumption (HOSTING_PLAN=consumption)"* ]]
}

@test "plan flip: a site on another plan (say Premium) is refused; one that reports no SKU falls back to the deployment's hostingPlan" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  AZ_STUB_APP_SKU=ElasticPremium run "$REPO/deploy.sh" --what-if
  assert_failed_with "function app ispmon-func-abc123 runs on plan SKU 'ElasticPremium', neither Linux Consumption nor Flex Consumption"
  # No SKU: the last deployment said flex, which is what HOSTING_PLAN asks, so the preview runs.
  AZ_STUB_APP_SKU="" run "$REPO/deploy.sh" --what-if
  [ "$status" -eq 0 ]
  [[ $output == *"Resource changes:"* ]]
  AZ_STUB_APP_SKU="" run "$REPO/deploy.sh" --check
  [[ $output == *"ok    function app ispmon-func-abc123 runs on Flex Consumption, as HOSTING_PLAN says"* ]]
}

# ------------------------------------------------------------------------------------------ --check

@test "--check: HOSTING_PLAN=flex checks the region with list-flexconsumption-locations; a typo is refused with a hint" {
  export AZ_STUB_GROUP_EXISTS=1
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 0 ]
  [[ $output == *"ok    hosting plan: Flex Consumption (HOSTING_PLAN=flex)"* ]]
  [[ $output == *"ok    region eastus offers Flex Consumption"* ]]
  calls "az functionapp list-flexconsumption-locations --only-show-errors -o json" | grep -q .
  # Read-only calls only.
  run grep -vE '^az (account show|group exists|extension show|deployment group show|functionapp list-flexconsumption-locations) ' "$STUB_LOG"
  [ -z "$output" ]

  export AZ_STUB_FLEX_LOCATIONS="northeurope"
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  AZURE_LOCATION 'eastus' does not offer Flex Consumption (az functionapp list-flexconsumption-locations lists: northeurope)"* ]]

  write_env "ALERT_EMAIL=me@example.com" "HOSTING_PLAN=flx"
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  HOSTING_PLAN 'flx' must be consumption (Linux Consumption, the default) or flex (Flex Consumption) - did you mean flex?: fix it in $REPO/.env"* ]]
  write_env "ALERT_EMAIL=me@example.com" "HOSTING_PLAN=premium"
  run "$REPO/deploy.sh"
  assert_failed_with "HOSTING_PLAN 'premium' must be consumption (Linux Consumption, the default) or flex (Flex Consumption): fix it in $REPO/.env"
  [ -z "$(calls 'deployment group create')" ]
}

# ----------------------------------------------------------------------------- the stand-in itself

@test "az stand-in: it fails where Flex differs (plan moves, package settings, the wrong upload path), so the tests above can fail" {
  mkdir -p "$AZ_STUB_STATE"
  touch "$AZ_STUB_STATE/group"
  printf 'zip' >"$BATS_TEST_TMPDIR/p.zip"
  params() { # params PLAN [PACKAGE_URL]: a parameters file
    jq -n --arg plan "$1" --arg pkg "${2:-}" '{parameters: ({alertEmail: {value: "me@example.com"}, hostingPlan: {value: $plan}}
      + (if $pkg == "" then {} else {currentPackageUrl: {value: $pkg}} end))}' >"$BATS_TEST_TMPDIR/params.json"
    printf '@%s' "$BATS_TEST_TMPDIR/params.json"
  }
  create() {
    az deployment group create -g rg -n isp-monitor --template-file "$REPO/main.bicep" --parameters "$(params "$@")" -o json
  }
  # A parameter the template does not declare is refused, as ARM does.
  jq -n '{parameters: {alertEmail: {value: "me@example.com"}, hostingPlanx: {value: "flex"}}}' >"$BATS_TEST_TMPDIR/typo.json"
  run az deployment group create -g rg -n isp-monitor --template-file "$REPO/main.bicep" --parameters "@$BATS_TEST_TMPDIR/typo.json" -o json
  [ "$status" -eq 1 ]
  [[ $output == *"The template parameters 'hostingPlanx' in the parameters file are not valid"*"alertEmail, "* ]]
  [ ! -e "$AZ_STUB_STATE/plan" ]
  # A value outside the template's @allowed list is refused.
  run create flx
  [ "$status" -eq 1 ]
  [[ $output == *"The value 'flx' is not part of the allowed value(s): 'consumption,flex'"* ]]
  # Linux Consumption: the site reports sku Dynamic at the top level (the SDK's flattened shape).
  run create consumption
  [ "$status" -eq 0 ]
  [ "$(jq -r .properties.outputs.hostingPlan.value <<<"$output")" = consumption ]
  run az functionapp show -g rg -n ispmon-func-abc123 -o json
  [ "$(jq -r '.sku' <<<"$output")" = Dynamic ]
  [ "$(jq -r '.properties.sku // "none"' <<<"$output")" = none ]
  # A template run cannot move it to Flex: without deploy.sh's refusal the deploy would fail here.
  run create flex
  [ "$status" -eq 1 ]
  [[ $output == *'"code":"Conflict"'* && $output == *"runs on the consumption plan and a template run cannot move it to the flex plan"* ]]
  [ "$(cat "$AZ_STUB_STATE/plan")" = consumption ]

  # Flex: the raw ARM shape, sku under properties only; a reader of .sku alone would miss it.
  rm -rf "$AZ_STUB_STATE"
  mkdir -p "$AZ_STUB_STATE"
  touch "$AZ_STUB_STATE/group"
  # Passing the package setting back, as deploy.sh does on Linux Consumption, is refused on Flex.
  run create flex "https://example.blob.core.windows.net/p.zip?sig=x"
  [ "$status" -eq 1 ]
  [[ $output == *"WEBSITE_RUN_FROM_PACKAGE is not supported on the Flex Consumption plan"* ]]
  [ ! -e "$AZ_STUB_STATE/plan" ]
  run create flex
  [ "$status" -eq 0 ]
  run az functionapp show -g rg -n ispmon-func-abc123 -o json
  [ "$(jq -r '.properties.sku' <<<"$output")" = FlexConsumption ]
  [ "$(jq -r '.sku // "none"' <<<"$output")" = none ]
  [ "$(jq -r '.properties.functionAppConfig.runtime.name' <<<"$output")" = custom ]
  # Settings Flex does not support are refused; others are taken.
  run az functionapp config appsettings set -g rg -n ispmon-func-abc123 --settings A=1 WEBSITE_RUN_FROM_PACKAGE=1 -o json
  [ "$status" -eq 1 ]
  [[ $output == *"the app setting WEBSITE_RUN_FROM_PACKAGE is not supported on the Flex Consumption plan"* ]]
  run az functionapp config appsettings set -g rg -n ispmon-func-abc123 --settings FUNCTIONS_WORKER_RUNTIME=custom -o json
  [ "$status" -eq 1 ]
  run az functionapp config appsettings set -g rg -n ispmon-func-abc123 --settings HEARTBEAT_NOTE=x -o json
  [ "$status" -eq 0 ]
  run az functionapp config appsettings list -g rg -n ispmon-func-abc123 -o json
  [ -z "$(jq -r '.[] | select(.name | test("^(FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_CONTENT)")) | .name' <<<"$output")" ]
  # config-zip on Flex publishes into the container and sets no package setting.
  run az functionapp deployment source config-zip -g rg -n ispmon-func-abc123 --src "$BATS_TEST_TMPDIR/p.zip" -o json
  [ "$status" -eq 0 ]
  [ "$output" = '"Deployment was successful."' ]
  [ -s "$AZ_STUB_STATE/deployment-container.zip" ]
  [ ! -e "$AZ_STUB_STATE/run-from-package" ]
  AZ_STUB_ZIP_ERROR=1 run az functionapp deployment source config-zip -g rg -n ispmon-func-abc123 --src "$BATS_TEST_TMPDIR/p.zip" -o json
  [ "$status" -eq 1 ]
  [[ $output == *"An error occured during deployment. Status Code: 403"* ]]
  # The regions list, and its argument rule.
  AZ_STUB_FLEX_LOCATIONS="uksouth eastus" run az functionapp list-flexconsumption-locations -o json
  [ "$(jq -c . <<<"$output")" = '[{"name":"uksouth"},{"name":"eastus"}]' ]
  run az functionapp list-flexconsumption-locations --runtime custom -o json
  [ "$status" -eq 1 ]
  [[ $output == *"--runtime is only valid with --details parameter"* ]]
}

# ------------------------------------------------ the alert and Flex tuning settings (.env → main.bicep)

# The .env settings of the degraded and IP-change alerts and of the Flex plan, with the main.bicep
# parameter each one sets.
readonly TUNING="DEGRADED_LOSS_PCT=degradedLossPct DEGRADED_RTT_P95_MS=degradedRttP95Ms DEGRADED_OF_LAST=degradedOfLast DEGRADED_AT_LEAST=degradedAtLeast FLEX_MAXIMUM_INSTANCES=flexMaximumInstanceCount FLEX_ALWAYS_READY=flexAlwaysReadyInstances"

# bound PARAM min|max: main.bicep's @minValue or @maxValue of PARAM (the decorator lines just above it).
bound() {
  awk -v param="$1" -v which="$2" '
    /^@minValue\(/ { min = $0; gsub(/[^0-9]/, "", min) }
    /^@maxValue\(/ { max = $0; gsub(/[^0-9]/, "", max) }
    $1 == "param" && $2 == param { print (which == "min" ? min : max); exit }
    $1 == "param" { min = ""; max = "" }' "$REAL_ROOT/main.bicep"
}

@test "settings: the alert and Flex tuning settings reach main.bicep as typed parameters; FLEX_* only on Flex, and --check says so on Consumption" {
  use_keygate
  write_env "ALERT_EMAIL=me@example.com" "NAME_PREFIX=home" "HEARTBEAT_DEVICE=den-pc" "HOSTING_PLAN=flex" \
    "DEGRADED_ALERT=off" "DEGRADED_LOSS_PCT=10" "DEGRADED_RTT_P95_MS=350" "DEGRADED_OF_LAST=12" \
    "DEGRADED_AT_LEAST=6" "IP_CHANGE_ALERT=on" "FLEX_INSTANCE_MEMORY_MB=2048" "FLEX_MAXIMUM_INSTANCES=100" \
    "FLEX_ALWAYS_READY=1"
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  run jq -c '.parameters | {degradedAlertEnabled, degradedLossPct, degradedRttP95Ms, degradedOfLast, degradedAtLeast, ipChangeAlertEnabled, flexInstanceMemoryMB, flexMaximumInstanceCount, flexAlwaysReadyInstances} | map_values(.value)' "$AZ_STUB_STATE/parameters.json"
  [ "$output" = '{"degradedAlertEnabled":false,"degradedLossPct":10,"degradedRttP95Ms":350,"degradedOfLast":12,"degradedAtLeast":6,"ipChangeAlertEnabled":true,"flexInstanceMemoryMB":2048,"flexMaximumInstanceCount":100,"flexAlwaysReadyInstances":1}' ]

  # On Linux Consumption (a fresh resource group, so no plan flip): the FLEX_* settings stay out.
  set_plan consumption
  sed 's/^NAME_PREFIX=.*/NAME_PREFIX=other/' "$REPO/.env" >"$REPO/.env.new" && mv "$REPO/.env.new" "$REPO/.env"
  rm -rf "$AZ_STUB_STATE"
  run "$REPO/deploy.sh" --check
  [[ $output == *"warn  FLEX_INSTANCE_MEMORY_MB is set but HOSTING_PLAN is consumption: it tunes the Flex plan only and is not passed"* ]]
  [[ $output == *"warn  FLEX_ALWAYS_READY is set but HOSTING_PLAN is consumption"* ]]
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  run jq -c '.parameters | keys | map(select(startswith("flex")))' "$AZ_STUB_STATE/parameters.json"
  [ "$output" = '[]' ]
  [ "$(jq -c .parameters.degradedAlertEnabled.value "$AZ_STUB_STATE/parameters.json")" = false ]
}

@test "settings: each range is main.bicep's own: its bounds pass --check, one past either bound fails with the setting named" {
  local pair var param lo hi env_lo="" env_hi="" env_below="" env_above=""
  for pair in $TUNING; do
    var=${pair%%=*} param=${pair#*=}
    lo=$(bound "$param" min) hi=$(bound "$param" max)
    [[ -n $lo && -n $hi ]] || fail_test "main.bicep has no @minValue/@maxValue for $param" || return 1
    env_lo+=" $var=$lo" env_hi+=" $var=$hi" env_below+=" $var=$((lo - 1))" env_above+=" $var=$((hi + 1))"
  done
  for pair in "$env_lo" "$env_hi"; do
    # shellcheck disable=SC2086 # the settings are words
    write_env "ALERT_EMAIL=me@example.com" "HOSTING_PLAN=flex" "FLEX_INSTANCE_MEMORY_MB=4096" "DEGRADED_ALERT=true" "IP_CHANGE_ALERT=false" $pair
    run "$REPO/deploy.sh" --check
    [ "$status" -eq 0 ] || fail_test "$pair: $output" || return 1
  done
  # shellcheck disable=SC2086
  write_env "ALERT_EMAIL=me@example.com" "HOSTING_PLAN=flex" "FLEX_INSTANCE_MEMORY_MB=1024" "DEGRADED_ALERT=yes" "IP_CHANGE_ALERT=0" $env_above
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  for pair in $TUNING FLEX_INSTANCE_MEMORY_MB DEGRADED_ALERT IP_CHANGE_ALERT; do
    [[ $output == *"FAIL  ${pair%%=*} "*" must be a "*": fix it in"* ]] || fail_test "no FAIL line for ${pair%%=*}: $output" || return 1
  done
  [[ $output == *"FLEX_INSTANCE_MEMORY_MB 1024 must be a memory size in MB: 512, 2048 or 4096"* ]]
  [[ $output == *"DEGRADED_ALERT yes must be a switch: on or off"* ]]
  # shellcheck disable=SC2086
  write_env "ALERT_EMAIL=me@example.com" "HOSTING_PLAN=flex" $env_below
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  for pair in $TUNING; do
    [[ $output == *"FAIL  ${pair%%=*} "*" must be a "* ]] || fail_test "no FAIL line for ${pair%%=*}: $output" || return 1
  done
  # A deploy stops at the first one, before any az call that changes anything.
  : >"$STUB_LOG"
  run "$REPO/deploy.sh"
  [ "$status" -ne 0 ]
  [[ ${lines[${#lines[@]} - 1]} == "deploy.sh: DEGRADED_LOSS_PCT -1 must be a whole percentage from 0 to 99: fix it in "* ]]
  refute grep -qE '^az (group create|deployment)' "$STUB_LOG"
}

@test "az stand-in: a parameter of the wrong JSON type (a bool sent as a string) is refused, as ARM does" {
  mkdir -p "$BATS_TEST_TMPDIR/p"
  printf '{"parameters": {"alertEmail": {"value": "me@example.com"}, "degradedAlertEnabled": {"value": "false"}}}' >"$BATS_TEST_TMPDIR/p/bad.json"
  az group create -n isp-monitor -l eastus -o json >/dev/null
  run az deployment group create -g isp-monitor -n isp-monitor --template-file "$REPO/main.bicep" --parameters "@$BATS_TEST_TMPDIR/p/bad.json" -o json
  [ "$status" -ne 0 ]
  [[ $output == *"Template parameter JToken type is not valid. Expected 'bool'. Actual 'String'"* ]]
}

#!/usr/bin/env bats
# deploy.sh against the az stand-in (tests/scripts/stubs/az), the cargo/rustc stand-ins and, for the
# heartbeat it sends, a loopback peer: the key-checking front end (keygate.pl) or the real handler.
# Nothing reaches Azure or the internet.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

# Whose one-line reason assert_failed_with (test_helper.bash) expects.
# shellcheck disable=SC2034 # read by test_helper.bash
SCRIPT_UNDER_TEST=deploy.sh

readonly KEY=stub-KEY-1234567890abcdef==

setup() {
  common_setup
  export AZ_STUB_KEY=$KEY
  # Failure paths wait for the app at most this long, polling fast.
  export ISP_MONITOR_DEPLOY_TIMEOUT=3 ISP_MONITOR_POLL_SECONDS=0.1
  write_env \
    "# my settings" \
    "ALERT_EMAIL=me@example.com" \
    "NAME_PREFIX=home" \
    "HEARTBEAT_DEVICE=den-pc" \
    "HEARTBEAT_URL=https://old.example.net/api/ping" \
    "KEEP_ME='untouched value' # a line deploy.sh must not rewrite"
}

teardown() {
  common_teardown
}

# Points the stand-in's heartbeatUrl output at the key-checking front end.
use_keygate() {
  start_keygate "${1:-$KEY}"
  export AZ_STUB_HEARTBEAT_URL=http://127.0.0.1:$KEYGATE_PORT/api/ping
}

assert_env_not_written() {
  refute grep -q '^HEARTBEAT_KEY=' "$REPO/.env"
  grep -q '^HEARTBEAT_URL=https://old.example.net/api/ping$' "$REPO/.env"
}

# --------------------------------------------------------------------------------------- happy path

@test "deploy: runs the steps in order: login, build, package, group, template, upload, key" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  assert_in_order \
    "az account show" \
    "cargo build --release --locked --manifest-path $REPO/Cargo.toml --target x86_64-unknown-linux-musl --bin handler" \
    "az group exists -n isp-monitor" \
    "az group create -n isp-monitor -l eastus" \
    "az deployment group create -g isp-monitor -n isp-monitor --template-file $REPO/main.bicep --parameters @" \
    "az functionapp deployment source config-zip -g isp-monitor -n ispmon-func-abc123 --src $REPO/target/isp-monitor-functions.zip" \
    "az functionapp function keys list -g isp-monitor -n ispmon-func-abc123 --function-name Ping"
  # Every az call asks for JSON, whatever the user's default output format is.
  [ "$(grep -c '^az ' "$STUB_LOG")" -eq "$(grep -c -- '-o json' "$STUB_LOG")" ]
  # Linux Consumption (the default) takes no Flex step.
  [ -z "$(calls list-flexconsumption-locations)" ]
  [ ! -e "$AZ_STUB_STATE/publish.log" ]
}

@test "deploy: the package holds host.json, Ping/function.json and the handler with mode 755, nothing else" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  run zipinfo -1 "$AZ_STUB_STATE/uploaded.zip"
  [ "$(sort <<<"$output")" = "$(printf '%s\n' Ping/function.json handler host.json)" ]
  run zipinfo "$AZ_STUB_STATE/uploaded.zip"
  [[ $output == *"-rwxr-xr-x"*" handler"* ]]
  [[ $(grep ' host.json$' <<<"$output") == "-rw-r--r--"* ]]
  [[ $(grep ' Ping/function.json$' <<<"$output") == "-rw-r--r--"* ]]
  # The packaged files are the repository's own.
  unzip -p "$AZ_STUB_STATE/uploaded.zip" host.json | cmp - "$REPO/host.json"
  unzip -p "$AZ_STUB_STATE/uploaded.zip" Ping/function.json | cmp - "$REPO/Ping/function.json"
  unzip -p "$AZ_STUB_STATE/uploaded.zip" handler | cmp - "$REPO/target/x86_64-unknown-linux-musl/release/handler"
}

@test "deploy: the parameters come from .env, in a file, with ints as numbers and unset ones left out" {
  use_keygate
  write_env "ALERT_EMAIL=me@example.com" "NAME_PREFIX=home" "SILENCE_MINUTES=10" \
    "SILENCE_EVALUATION_MINUTES=1" "ALERT_WEBHOOK_URL=https://hooks.example.com/secret-token"
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  run jq -c .parameters "$AZ_STUB_STATE/parameters.json"
  [ "$output" = '{"namePrefix":{"value":"home"},"location":{"value":"eastus"},"alertEmail":{"value":"me@example.com"},"silenceMinutes":{"value":10},"silenceEvaluationMinutes":{"value":1},"alertWebhookUrl":{"value":"https://hooks.example.com/secret-token"},"hostingPlan":{"value":"consumption"}}' ]
  # The webhook URL is a secret: on no command line.
  refute grep -q secret-token "$STUB_LOG"
}

@test "deploy: sends a real heartbeat with the key as x-functions-key, then writes URL and key to .env (mode 600, other lines untouched)" {
  use_keygate
  chmod 644 "$REPO/.env"
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  # One POST reached the front end with the right key and this device's name.
  run grep -c '^POST /api/ping key=match body=.*"device":"den-pc"' "$KEYGATE_LOG"
  [ "$output" -eq 1 ]
  [ "$(file_mode "$REPO/.env")" = 600 ]
  run cat "$REPO/.env"
  [ "$output" = "$(printf '%s\n' "# my settings" "ALERT_EMAIL=me@example.com" "NAME_PREFIX=home" \
    "HEARTBEAT_DEVICE=den-pc" "HEARTBEAT_URL=http://127.0.0.1:$KEYGATE_PORT/api/ping" \
    "KEEP_ME='untouched value' # a line deploy.sh must not rewrite" "HEARTBEAT_KEY=$KEY")" ]
}

@test "deploy: never shows the key, neither in its output nor in any az or curl command line" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [[ $output != *"$KEY"* ]]
  [[ $output == *"Next:"*"./start_heartbeat.sh"* ]]
  refute grep -q "$KEY" "$STUB_LOG"
}

@test "deploy: the heartbeat the real handler receives is accepted (200 ok) and logged" {
  start_handler
  export AZ_STUB_HEARTBEAT_URL=http://127.0.0.1:$HANDLER_PORT/api/ping
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"answered 200 ok"* ]]
  wait_until 5 grep -q '"device":"den-pc"' "$HANDLER_LOG"
  grep '"device":"den-pc"' "$HANDLER_LOG" | jq -e 'select(.note == "deploy.sh check")' >/dev/null
}

@test "deploy: running it again converges: group created once, one URL and key line, the new key" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  kill "${BACKGROUND_PIDS[@]}"
  BACKGROUND_PIDS=()
  export AZ_STUB_KEY=second-KEY-zz==
  use_keygate second-KEY-zz==
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [ "$(calls 'az group create' | wc -l)" -eq 1 ]
  [ "$(calls 'az deployment group create' | wc -l)" -eq 2 ]
  [ "$(count_lines '^HEARTBEAT_URL=' "$REPO/.env")" -eq 1 ]
  [ "$(count_lines '^HEARTBEAT_KEY=' "$REPO/.env")" -eq 1 ]
  grep -qx 'HEARTBEAT_KEY=second-KEY-zz==' "$REPO/.env"
}

@test "deploy: running it again keeps the package: the template gets the current one back, never shown" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  local sas
  sas=$(cat "$AZ_STUB_STATE/run-from-package")
  [[ $sas == https://*"sig="* ]]
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  # First run: no app yet, so nothing to keep; second run: the template run keeps the package, so
  # there is no moment without WEBSITE_RUN_FROM_PACKAGE between it and the upload.
  [ "$(cat "$AZ_STUB_STATE/settings.log")" = "$(printf '%s\n' \
    "after deployment 1: WEBSITE_RUN_FROM_PACKAGE absent" \
    "after deployment 2: WEBSITE_RUN_FROM_PACKAGE present")" ]
  [ "$(jq -r .parameters.currentPackageUrl.value "$AZ_STUB_STATE/parameters.json")" = "$sas" ]
  [ "$(calls 'az deployment group show -g isp-monitor -n isp-monitor' | wc -l)" -eq 2 ]
  [ "$(calls 'az functionapp config appsettings list -g isp-monitor -n ispmon-func-abc123' | wc -l)" -eq 1 ]
  assert_in_order \
    "az functionapp deployment source config-zip" \
    "az deployment group show -g isp-monitor -n isp-monitor" \
    "az functionapp config appsettings list -g isp-monitor -n ispmon-func-abc123" \
    "az deployment group create" \
    "az functionapp deployment source config-zip"
  # The SAS URL is a secret: in no output and on no command line.
  [[ $output != *"STUBsasSIGNATURE"* ]]
  refute grep -q STUBsasSIGNATURE "$STUB_LOG"
}

@test "az stand-in: a template run without currentPackageUrl drops the package setting (so the test above can fail)" {
  mkdir -p "$AZ_STUB_STATE"
  touch "$AZ_STUB_STATE/group"
  printf 'zip' >"$BATS_TEST_TMPDIR/p.zip"
  az functionapp deployment source config-zip -g rg -n ispmon-func-abc123 --src "$BATS_TEST_TMPDIR/p.zip" -o json
  run az functionapp config appsettings list -g rg -n ispmon-func-abc123 -o json
  [ "$status" -eq 0 ]
  [ "$(jq -r '.[] | select(.name == "WEBSITE_RUN_FROM_PACKAGE") | .value' <<<"$output")" = "$(cat "$AZ_STUB_STATE/run-from-package")" ]
  printf '{"parameters": {"alertEmail": {"value": "me@example.com"}}}' >"$BATS_TEST_TMPDIR/params.json"
  az deployment group create -g rg -n isp-monitor --template-file "$REPO/main.bicep" --parameters "@$BATS_TEST_TMPDIR/params.json" -o json >/dev/null
  run az functionapp config appsettings list -g rg -n ispmon-func-abc123 -o json
  [ "$status" -eq 0 ]
  [ -z "$(jq -r '.[] | select(.name == "WEBSITE_RUN_FROM_PACKAGE") | .value' <<<"$output")" ]
  grep -qx 'after deployment 1: WEBSITE_RUN_FROM_PACKAGE absent' "$AZ_STUB_STATE/settings.log"
  run az deployment group show -g rg -n isp-monitor -o json
  [ "$status" -eq 0 ]
  [ "$(jq -r .properties.outputs.functionAppName.value <<<"$output")" = ispmon-func-abc123 ]
  run az deployment group show -g rg -n other -o json
  [ "$status" -eq 3 ]
  [[ $output == *"DeploymentNotFound"* ]]
}

@test "deploy: an app deleted since the last deployment has no package to keep; the deploy goes on" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  AZ_STUB_APP_GONE=1 run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [ "$(jq -r '.parameters.currentPackageUrl.value // "none"' "$AZ_STUB_STATE/parameters.json")" = none ]
}

@test "deploy: waits for a host that is still warming up (key list fails at first)" {
  use_keygate
  export AZ_STUB_KEYS_FAIL_TIMES=3
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [ "$(calls 'function keys list' | wc -l)" -eq 4 ]
}

@test "deploy: a fresh clone without .env gets one from .env.example (mode 600) with the email from the environment" {
  use_keygate
  rm "$REPO/.env"
  ALERT_EMAIL=fresh@example.com run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [ "$(file_mode "$REPO/.env")" = 600 ]
  grep -q '^# ISP Monitor settings' "$REPO/.env"
  grep -qx "HEARTBEAT_KEY=$KEY" "$REPO/.env"
  [ "$(jq -r .parameters.alertEmail.value "$AZ_STUB_STATE/parameters.json")" = fresh@example.com ]
}

@test "deploy: at a terminal it asks for a missing ALERT_EMAIL and saves it in .env" {
  command -v script >/dev/null || skip "needs script(1) from util-linux for a terminal"
  use_keygate
  write_env "NAME_PREFIX=home"
  run script -qec "$REPO/deploy.sh" /dev/null <<<"asked@example.com"
  [ "$status" -eq 0 ]
  [[ $output == *"Email address for the outage alerts:"* ]]
  grep -qx 'ALERT_EMAIL=asked@example.com' "$REPO/.env"
  [ "$(jq -r .parameters.alertEmail.value "$AZ_STUB_STATE/parameters.json")" = asked@example.com ]
}

@test "deploy: AZURE_SUBSCRIPTION goes with every Azure call" {
  use_keygate
  AZURE_SUBSCRIPTION=my-sub run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [ "$(grep -c '^az ' "$STUB_LOG")" -eq "$(grep -c -- '--subscription my-sub' "$STUB_LOG")" ]
}

@test "deploy: a value in the environment wins over .env" {
  use_keygate
  NAME_PREFIX=fromenv run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  [ "$(jq -r .parameters.namePrefix.value "$AZ_STUB_STATE/parameters.json")" = fromenv ]
}

# ------------------------------------------------------------------------------------------ --check

@test "--check: all good: reports each check, exits 0, calls only read-only az commands, changes nothing" {
  rm "$REPO/.env"
  export AZ_STUB_GROUP_EXISTS=1
  ALERT_EMAIL=me@example.com run "$REPO/deploy.sh" --check
  [ "$status" -eq 0 ]
  [[ $output == *"ok    logged in to Azure, subscription 'Stand-in Subscription'"* ]]
  [[ $output == *"ok    Rust target x86_64-unknown-linux-musl installed"* ]]
  [[ $output == *"ok    build path: musl-gcc ($STUBS/x86_64-linux-musl-gcc) for a static x86_64-unknown-linux-musl handler"* ]]
  [[ $output == *"ok    az extension application-insights installed"* ]]
  [[ $output == *"ok    resource group isp-monitor exists"* ]]
  [[ $output == *"All checks passed"* ]]
  [ ! -e "$REPO/.env" ]
  [ ! -e "$REPO/target" ]
  # No deployment yet: the plan check reads the last deployment and finds none.
  run grep -vE '^az (account show|group exists|extension show|deployment group show) ' "$STUB_LOG"
  [ -z "$output" ]
}

@test "--check: reports every problem at once (login, settings) and warns about optional ones, exit 1" {
  export AZ_STUB_LOGGED_IN=0 AZ_STUB_EXTENSIONS=""
  rmdir "$STUB_SYSROOT/lib/rustlib/x86_64-unknown-linux-musl"
  write_env "ALERT_EMAIL=not-an-email" "NAME_PREFIX=Bad_Prefix" "SILENCE_EVALUATION_MINUTES=7"
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  not logged in to Azure: run 'az login'"* ]]
  [[ $output == *"FAIL  ALERT_EMAIL 'not-an-email' is not an email address"* ]]
  [[ $output == *"FAIL  NAME_PREFIX 'Bad_Prefix' must be"* ]]
  [[ $output == *"FAIL  SILENCE_EVALUATION_MINUTES 7 must be a 1, 5, 10 or 15"* ]]
  [[ $output == *"FAIL  the Rust target x86_64-unknown-linux-musl is not installed"*"rustup target add x86_64-unknown-linux-musl"* ]]
  [[ $output == *"warn  az extension application-insights missing (the log queries need it): run 'az extension add -n application-insights'"* ]]
  [[ ${lines[${#lines[@]} - 1]} == "deploy.sh: 5 problem(s) found: fix them and run ./deploy.sh --check again" ]]
  [ -z "$(calls cargo)" ]
}

@test "--check: a NAME_PREFIX Azure Files would refuse and an ALERT_EMAIL over 64 characters are refused" {
  local long
  long="$(printf 'a%.0s' $(seq 1 53))@example.com"
  [ "${#long}" -eq 65 ]
  write_env "ALERT_EMAIL=$long" "NAME_PREFIX=home-"
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  ALERT_EMAIL is 65 characters; Azure Monitor accepts at most 64: use a shorter address in $REPO/.env"* ]]
  [[ $output == *"FAIL  NAME_PREFIX 'home-' must not end in a hyphen or hold two hyphens in a row (Azure Files share names forbid '--')"* ]]
  write_env "ALERT_EMAIL=${long#a}" "NAME_PREFIX=my--home"
  run "$REPO/deploy.sh" --check
  [[ $output == *"FAIL  NAME_PREFIX 'my--home' must not end in a hyphen"* ]]
  [[ $output != *"ALERT_EMAIL is"* ]]
  write_env "ALERT_EMAIL=me@example.com" "NAME_PREFIX=my-home"
  run "$REPO/deploy.sh" --check
  [[ $output != *"FAIL  NAME_PREFIX"* ]]
}

@test "fails: a NAME_PREFIX ending in a hyphen stops the deploy before any az call" {
  write_env "ALERT_EMAIL=me@example.com" "NAME_PREFIX=home-"
  run "$REPO/deploy.sh"
  assert_failed_with "NAME_PREFIX 'home-' must not end in a hyphen or hold two hyphens in a row"
  [ -z "$(calls 'az ')" ]
}

@test "--check: missing tools are reported with the install command" {
  hide_command jq zip
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  jq is not installed: "*"install"*"jq"* ]]
  [[ $output == *"FAIL  zip is not installed: "*"install"*"zip"* ]]
}

# ----------------------------------------------------------------------------------------- --what-if

@test "--what-if: shows the changes and creates, builds and uploads nothing" {
  export AZ_STUB_GROUP_EXISTS=1
  run "$REPO/deploy.sh" --what-if
  [ "$status" -eq 0 ]
  [[ $output == *"+ Microsoft.Web/sites/ispmon-func-abc123"* ]]
  [[ $output == *"Resource changes: 4 to create."* ]]
  calls "az deployment group what-if -g isp-monitor -n isp-monitor --template-file $REPO/main.bicep --parameters @" | grep -q .
  run grep -E '^(cargo|az (group create|deployment group create|functionapp))' "$STUB_LOG"
  [ -z "$output" ]
}

@test "--what-if: after a deploy it passes the current package back too, so the preview keeps it" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  run "$REPO/deploy.sh" --what-if
  [ "$status" -eq 0 ]
  [ "$(jq -r .parameters.currentPackageUrl.value "$AZ_STUB_STATE/what-if-parameters.json")" = "$(cat "$AZ_STUB_STATE/run-from-package")" ]
  [[ $output != *"STUBsasSIGNATURE"* ]]
  refute grep -q STUBsasSIGNATURE "$STUB_LOG"
}

@test "--what-if: a missing resource group is reported, not created" {
  run "$REPO/deploy.sh" --what-if
  [ "$status" -eq 0 ]
  [[ $output == *"Resource group isp-monitor does not exist yet: a deploy would create it in eastus"* ]]
  [ -z "$(calls 'group create')" ]
  [ -z "$(calls 'what-if')" ]
}

# -------------------------------------------------------------------------------------- --test-alert

@test "deploy: ends with a box: enter the passcode sent to ALERT_EMAIL within 30 minutes, then ./deploy.sh --test-alert" {
  use_keygate
  run "$REPO/deploy.sh"
  [ "$status" -eq 0 ]
  # The box: a rule, then framed lines, then a rule, as the last lines of the output.
  [[ ${lines[${#lines[@]}-1]} =~ ^=+$ ]]
  local box
  box=$(printf '%s\n' "${lines[@]}" | sed -n '/^====/,/^====/p')
  [[ $box == *"| ACTION NEEDED: confirm your alert email within 30 minutes"* ]]
  [[ $box == *"one-time passcode"*"me@example.com"*"within 30 minutes"*"./deploy.sh --test-alert"* ]]
  # Every framed line is as wide as the rule.
  local width
  width=$(head -n1 <<<"$box" | wc -c)
  [ "$(awk -v w="$width" 'length($0) + 1 != w' <<<"$box")" = "" ]
}

@test "--test-alert: sends a test through the deployed action group to its email receiver and reports success" {
  export AZ_STUB_GROUP_EXISTS=1
  run "$REPO/deploy.sh" --test-alert
  [ "$status" -eq 0 ]
  assert_in_order \
    "az account show" \
    "az monitor action-group list -g isp-monitor" \
    "az monitor action-group test-notifications create -g isp-monitor --action-group ispmon-alerts-abc123 --alert-type logalertv2 -a email owner-email me@example.com usecommonalertschema"
  [[ $output == *"sending a test alert through action group ispmon-alerts-abc123 to me@example.com"* ]]
  [[ $output == *"owner-email: Succeeded at 2026-11-25T22:45:01"* ]]
  [[ $output == *"Test alert: success."*"\"Test\" in its subject"* ]]
  # Nothing is built, deployed or written.
  [ -z "$(calls cargo)" ]
  [ -z "$(calls 'deployment group')" ]
  [ "$(grep -c '^az ' "$STUB_LOG")" -eq "$(grep -c -- '-o json' "$STUB_LOG")" ]
}

@test "--test-alert: picks the action group named after NAME_PREFIX when there are several; AZURE_SUBSCRIPTION goes along" {
  export AZ_STUB_GROUP_EXISTS=1 AZ_STUB_ACTION_GROUPS="other-alerts-1 home-alerts-abc123" AZ_STUB_ALERT_EMAIL=owner@example.org
  AZURE_SUBSCRIPTION=my-sub run "$REPO/deploy.sh" --test-alert
  [ "$status" -eq 0 ]
  calls "test-notifications create" | grep -qF -- "--action-group home-alerts-abc123 --alert-type logalertv2 -a email owner-email owner@example.org usecommonalertschema --subscription my-sub"
  [ "$(grep -c '^az ' "$STUB_LOG")" -eq "$(grep -c -- '--subscription my-sub' "$STUB_LOG")" ]
}

@test "--test-alert: an email action that failed is reported as failed, with Azure's detail (exit 1)" {
  export AZ_STUB_GROUP_EXISTS=1 AZ_STUB_TEST_ALERT=failed
  run "$REPO/deploy.sh" --test-alert
  assert_failed_with "the test alert failed (state Complete): check ALERT_EMAIL in $REPO/.env and that you entered the passcode"
  [[ $output == *"owner-email: Failed (stand-in: the email could not be delivered)"* ]]
  [[ $output != *"success"* ]]
}

@test "--test-alert: az refusing the test (e.g. too many tests) is a failure with az's reason" {
  export AZ_STUB_GROUP_EXISTS=1 AZ_STUB_TEST_ALERT=error
  run "$REPO/deploy.sh" --test-alert
  assert_failed_with "the test alert failed: (TooManyRequests) stand-in: too many test notifications"
}

@test "--test-alert: a test still running at the timeout is stopped and reported as pending (exit 3)" {
  export AZ_STUB_GROUP_EXISTS=1 AZ_STUB_TEST_ALERT=slow AZ_STUB_TEST_ALERT_SECONDS=60 ISP_MONITOR_TEST_ALERT_TIMEOUT=2
  local start=$SECONDS
  run "$REPO/deploy.sh" --test-alert
  [ "$status" -eq 3 ]
  ((SECONDS - start < 10))
  [[ $output == *"waiting up to 2s"* ]]
  [[ $output == *"Test alert: pending. Azure had not finished the test within 2s"* ]]
  # The az process deploy.sh started is gone: nothing runs the stand-in's slow answer any more.
  sleep 0.5
  refute pgrep -f "$STUBS/az monitor action-group test-notifications"
}

@test "--test-alert: a state that is not final is pending; a bad timeout is refused" {
  export AZ_STUB_GROUP_EXISTS=1 AZ_STUB_TEST_ALERT=in-progress
  run "$REPO/deploy.sh" --test-alert
  [ "$status" -eq 3 ]
  [[ $output == *"Test alert: pending. Azure reports state 'InProgress'"* ]]
  ISP_MONITOR_TEST_ALERT_TIMEOUT=soon run "$REPO/deploy.sh" --test-alert
  assert_failed_with "ISP_MONITOR_TEST_ALERT_TIMEOUT 'soon' is not a whole number of seconds"
}

@test "--test-alert: no action group (not deployed yet) or not logged in: says what to do" {
  export AZ_STUB_GROUP_EXISTS=1 AZ_STUB_ACTION_GROUPS=""
  run "$REPO/deploy.sh" --test-alert
  assert_failed_with "resource group isp-monitor has no action group: run ./deploy.sh first"
  [ -z "$(calls 'test-notifications')" ]
  export AZ_STUB_ACTION_GROUPS="a-alerts-1 b-alerts-2"
  run "$REPO/deploy.sh" --test-alert
  assert_failed_with "has several action groups (a-alerts-1 b-alerts-2 ) and none is named home-alerts-*"
  export AZ_STUB_GROUP_EXISTS=0
  run "$REPO/deploy.sh" --test-alert
  assert_failed_with "listing the action groups of isp-monitor failed: (ResourceGroupNotFound)"
  export AZ_STUB_LOGGED_IN=0
  run "$REPO/deploy.sh" --test-alert
  assert_failed_with "not logged in to Azure: run 'az login'"
  [ -z "$(calls 'test-notifications')" ]
}

# ------------------------------------------------------------------------------------ failure paths

@test "fails: not logged in: says to run az login, before building anything" {
  export AZ_STUB_LOGGED_IN=0
  run "$REPO/deploy.sh"
  assert_failed_with "not logged in to Azure: run 'az login'"
  [ -z "$(calls cargo)" ]
  assert_env_not_written
}

@test "fails: the app name is taken: names the cause and says to change NAME_PREFIX" {
  use_keygate
  export AZ_STUB_DEPLOY_ERROR=name-taken
  run "$REPO/deploy.sh"
  assert_failed_with "a name is taken (Website with given name ispmon-func-abc123 already exists.): set another NAME_PREFIX"
  [ -z "$(calls config-zip)" ]
  assert_env_not_written
}

@test "fails: the storage account name is taken: same advice" {
  export AZ_STUB_DEPLOY_ERROR=storage-taken
  run "$REPO/deploy.sh"
  assert_failed_with "a name is taken (The storage account named ispmonabc123 is already taken.): set another NAME_PREFIX"
}

@test "fails: any other deployment error: the innermost message, on one line" {
  export AZ_STUB_DEPLOY_ERROR=policy
  run "$REPO/deploy.sh"
  assert_failed_with "the deployment of main.bicep failed: Resource 'ispmon-func-abc123' was disallowed by policy."
}

@test "fails: the login expires mid-way: says to log in again" {
  export AZ_STUB_DEPLOY_ERROR=login-expired
  run "$REPO/deploy.sh"
  assert_failed_with "the Azure login is missing or expired: run 'az login'"
}

@test "fails: a missing tool stops the deploy with the install command, before any az call" {
  local tool
  for tool in jq zip curl; do
    hide_command "$tool"
    run "$REPO/deploy.sh"
    assert_failed_with "$tool is not installed: install it with '"
  done
  hide_command az
  run "$REPO/deploy.sh"
  assert_failed_with "az (the Azure CLI) is not installed: install it (see https://learn.microsoft.com/cli/azure/install-azure-cli)"
  hide_command cargo
  run "$REPO/deploy.sh"
  assert_failed_with "cargo is not installed: install Rust from https://rustup.rs"
  [ -z "$(calls 'az ')" ]
}

@test "fails: ALERT_EMAIL missing (no terminal to ask): says where to set it, deploys nothing" {
  write_env "NAME_PREFIX=home"
  run "$REPO/deploy.sh" </dev/null
  assert_failed_with "ALERT_EMAIL is not set: add ALERT_EMAIL=you@example.com to $REPO/.env"
  [ -z "$(calls 'az ')" ]
}

@test "fails: a malformed .env line is pointed at by number" {
  write_env "ALERT_EMAIL=me@example.com" "this is not a setting"
  run "$REPO/deploy.sh"
  assert_failed_with "line 2 of $REPO/.env is not KEY=VALUE"
}

@test "fails: without the musl target it says which to add, before any az call, and never builds for glibc" {
  rmdir "$STUB_SYSROOT/lib/rustlib/x86_64-unknown-linux-musl"
  run "$REPO/deploy.sh"
  assert_failed_with "rustup target add x86_64-unknown-linux-musl"
  [ -z "$(calls 'az ')" ]
  [ -z "$(calls cargo)" ]
}

@test "fails: a compile error stops before Azure is touched" {
  export STUB_CARGO_FAIL=1
  run "$REPO/deploy.sh"
  assert_failed_with "cargo build failed for x86_64-unknown-linux-musl"
  [ -z "$(calls 'az group')" ]
}

@test "fails: the upload is refused: gives az's reason" {
  export AZ_STUB_ZIP_ERROR=1
  run "$REPO/deploy.sh"
  assert_failed_with "uploading the package to ispmon-func-abc123 failed: The Azure CLI does not support this deployment path."
  assert_env_not_written
}

@test "fails: the function key never becomes available" {
  use_keygate
  export AZ_STUB_KEYS_FAIL_TIMES=1000
  run "$REPO/deploy.sh"
  assert_failed_with "fetching the key of function Ping failed: Encountered an error (ServiceUnavailable) from host runtime."
  assert_env_not_written
}

@test "fails: the app never answers" {
  AZ_STUB_HEARTBEAT_URL=http://127.0.0.1:$(free_port)/api/ping
  export AZ_STUB_HEARTBEAT_URL
  run "$REPO/deploy.sh"
  assert_failed_with "did not answer within 3s"
  [ -z "$(calls 'keys list')" ]
  assert_env_not_written
}

@test "fails: the heartbeat is refused (401): the key was not accepted, and .env keeps its old values" {
  use_keygate some-other-key
  run "$REPO/deploy.sh"
  assert_failed_with "the heartbeat was refused with 401: the function key was not accepted"
  grep -q 'key=wrong' "$KEYGATE_LOG"
  assert_env_not_written
}

@test "fails: a deployment that reports a non-https URL is not trusted" {
  export AZ_STUB_HEARTBEAT_URL=http://example.com/api/ping
  run "$REPO/deploy.sh"
  assert_failed_with "the deployment returned 'http://example.com/api/ping', which is not an https URL"
  [ -z "$(calls config-zip)" ]
}

@test "usage: --help prints the header; an unknown option fails with a pointer to it" {
  run "$REPO/deploy.sh" --help
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "deploy.sh: puts ISP Monitor's heartbeat endpoint on Azure Functions"* ]]
  [[ $output == *"--what-if"* ]]
  run "$REPO/deploy.sh" --frobnicate
  assert_failed_with "unknown option '--frobnicate': run ./deploy.sh --help"
  [ ! -s "$STUB_LOG" ]
}

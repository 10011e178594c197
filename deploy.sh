#!/usr/bin/env bash
# deploy.sh: puts ISP Monitor's heartbeat endpoint on Azure Functions (Linux Consumption, or Flex
# Consumption with HOSTING_PLAN=flex) and writes its URL and key into .env, ready for
# ./start_heartbeat.sh.
#
# Usage: ./deploy.sh [--check | --what-if | --package | --install-build-tools | --test-alert | --help]
#
#   (no option)  build the handler, package it, deploy main.bicep, upload the package, wait for
#                the app, send one real heartbeat, write HEARTBEAT_URL and HEARTBEAT_KEY to .env.
#                Safe to run again: every step converges on the same result.
#   --check      check the tools, the Azure login, the .env values (for HOSTING_PLAN=flex: that
#                AZURE_LOCATION offers Flex Consumption) and the az extensions the queries need;
#                changes nothing
#   --what-if    show what the deployment would change in Azure; changes nothing
#   --package    build the handler and write the deployment zip without touching Azure; prints
#                the zip's path as the last line
#   --install-build-tools
#                install cargo-zigbuild and zig (PyPI: ziglang) into .tools/venv, for building
#                the handler on macOS or a Linux machine without musl-gcc
#   --test-alert send a test alert through the deployed action group to its email address and
#                report the result: success (exit 0), failed (exit 1), or still pending after
#                ISP_MONITOR_TEST_ALERT_TIMEOUT seconds (default 300; exit 3)
#   --help       show this text
#
# Settings come from .env (created from .env.example on the first run); a variable already set in
# your environment wins over .env. Needs az (after `az login`), jq, zip, curl, cargo and the
# Rust target x86_64-unknown-linux-musl, plus musl-gcc (x86-64 Linux) or cargo-zigbuild (anywhere):
# the handler is always a static x86-64 Linux executable. ISP_MONITOR_BUILD=musl-gcc|zigbuild picks
# the build by hand. HOSTING_PLAN=consumption (default) or flex picks the hosting plan of a new
# app; an existing app's plan is never switched in place (docs/deploy.md, "Moving to Flex Consumption").
# Details and troubleshooting: docs/deploy.md.
set -Eeuo pipefail

readonly SCRIPT_NAME=deploy.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT
readonly ENV_FILE=${ISP_MONITOR_ENV_FILE:-$ROOT/.env}
readonly TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
readonly PACKAGE=$TARGET_DIR/isp-monitor-functions.zip
readonly DEPLOYMENT_NAME=isp-monitor
readonly FUNCTION_NAME=Ping
readonly QUERY_EXTENSIONS=(application-insights)
readonly AZ_INSTALL_URL=https://learn.microsoft.com/cli/azure/install-azure-cli
# .env variable -> main.bicep parameter:type. Unset variables are not passed, so the template's
# defaults apply. They travel in a parameters file, never on the command line (the webhook URL is
# a secret).
readonly PARAMETERS=(
  NAME_PREFIX=namePrefix:string
  AZURE_LOCATION=location:string
  ALERT_EMAIL=alertEmail:string
  SILENCE_MINUTES=silenceMinutes:int
  SILENCE_EVALUATION_MINUTES=silenceEvaluationMinutes:int
  REMINDER_MINUTES=reminderMinutes:int
  OUTAGE_REPORT_MINUTES=outageReportMinutes:int
  RETENTION_DAYS=retentionInDays:int
  ALERT_SMS_COUNTRY_CODE=smsCountryCode:string
  ALERT_SMS_NUMBER=smsPhoneNumber:string
  ALERT_WEBHOOK_URL=alertWebhookUrl:string
  HOSTING_PLAN=hostingPlan:string
  DEGRADED_ALERT=degradedAlertEnabled:bool
  DEGRADED_LOSS_PCT=degradedLossPct:int
  DEGRADED_RTT_P95_MS=degradedRttP95Ms:int
  DEGRADED_OF_LAST=degradedOfLast:int
  DEGRADED_AT_LEAST=degradedAtLeast:int
  IP_CHANGE_ALERT=ipChangeAlertEnabled:bool
  FLEX_INSTANCE_MEMORY_MB=flexInstanceMemoryMB:int
  FLEX_MAXIMUM_INSTANCES=flexMaximumInstanceCount:int
  FLEX_ALWAYS_READY=flexAlwaysReadyInstances:int
)
# The FLEX_* settings tune the Flex plan only: on Linux Consumption they are not passed (main.bicep
# ignores them there) and --check says so.
readonly FLEX_ONLY_SETTINGS=(FLEX_INSTANCE_MEMORY_MB FLEX_MAXIMUM_INSTANCES FLEX_ALWAYS_READY)
readonly MIGRATION_DOC='docs/deploy.md, "Moving to Flex Consumption"'

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
# shellcheck source=scripts/build.sh
source "$ROOT/scripts/build.sh"

usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}" # BSD sed needs the ';' before '}'
}

# ---------------------------------------------------------------------------------------- settings

# Fills in defaults for the deploy settings (after .env and the environment).
apply_defaults() {
  : "${AZURE_RESOURCE_GROUP:=isp-monitor}"
  : "${AZURE_LOCATION:=eastus}"
  : "${NAME_PREFIX:=ispmon}"
  : "${HOSTING_PLAN:=consumption}"
}

# plan_words PLAN: the plan's name in messages.
plan_words() {
  case $1 in
    consumption) printf 'Linux Consumption' ;;
    flex) printf 'Flex Consumption' ;;
    *) printf '%s' "$1" ;;
  esac
}

# Prints one line per problem with the deploy settings; prints nothing when they are fine.
settings_problems() {
  if [[ -z ${ALERT_EMAIL:-} ]]; then
    echo "ALERT_EMAIL is not set: add ALERT_EMAIL=you@example.com to $ENV_FILE"
  elif [[ ! $ALERT_EMAIL =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]]; then
    echo "ALERT_EMAIL '$ALERT_EMAIL' is not an email address: fix it in $ENV_FILE"
  elif ((${#ALERT_EMAIL} > 64)); then
    # An action group's email receiver takes at most 64 characters (docs/platform.md §7).
    echo "ALERT_EMAIL is ${#ALERT_EMAIL} characters; Azure Monitor accepts at most 64: use a shorter address in $ENV_FILE"
  fi
  if [[ ! $AZURE_RESOURCE_GROUP =~ ^[-_.()[:alnum:]]{1,90}$ || $AZURE_RESOURCE_GROUP == *. ]]; then
    echo "AZURE_RESOURCE_GROUP '$AZURE_RESOURCE_GROUP' is not a valid resource group name (letters, digits, - _ . ( ), at most 90, not ending in '.'): fix it in $ENV_FILE"
  fi
  if [[ ! $AZURE_LOCATION =~ ^[a-z0-9]+$ ]]; then
    echo "AZURE_LOCATION '$AZURE_LOCATION' is not a region name like 'eastus' (see 'az account list-locations -o table'): fix it in $ENV_FILE"
  fi
  # The prefix starts the app's content share name '<prefix>-<suffix>', an Azure Files share name:
  # no hyphen at the end (it would make '--') and no two in a row (docs/platform.md §7).
  if [[ ! $NAME_PREFIX =~ ^[a-z0-9][a-z0-9-]{1,9}$ ]]; then
    echo "NAME_PREFIX '$NAME_PREFIX' must be 2 to 10 lowercase letters, digits or hyphens, not starting with a hyphen: fix it in $ENV_FILE"
  elif [[ $NAME_PREFIX == *- || $NAME_PREFIX == *--* ]]; then
    echo "NAME_PREFIX '$NAME_PREFIX' must not end in a hyphen or hold two hyphens in a row (Azure Files share names forbid '--'): fix it in $ENV_FILE"
  fi
  if [[ $HOSTING_PLAN != consumption && $HOSTING_PLAN != flex ]]; then
    local hint
    hint=$(closest_key "$HOSTING_PLAN" consumption flex)
    [[ -z $hint ]] || hint=" - did you mean $hint?"
    echo "HOSTING_PLAN '$HOSTING_PLAN' must be consumption (Linux Consumption, the default) or flex (Flex Consumption)$hint: fix it in $ENV_FILE (docs/deploy.md, \"Choosing a hosting plan\")"
  fi
  one_of SILENCE_MINUTES "whole number from 2 to 1440" '^([2-9]|[1-9][0-9]{1,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)$'
  one_of SILENCE_EVALUATION_MINUTES "1, 5, 10 or 15" '^(1|5|10|15)$'
  one_of REMINDER_MINUTES "0 (off), 5, 10, 15, 30 or 60" '^(0|5|10|15|30|60)$'
  one_of OUTAGE_REPORT_MINUTES "5, 10, 15, 30 or 60" '^(5|10|15|30|60)$'
  one_of RETENTION_DAYS "whole number of days from 30 to 730" '^([3-9][0-9]|[1-6][0-9]{2}|7[0-2][0-9]|730)$'
  one_of ALERT_SMS_COUNTRY_CODE "country calling code such as 1 or 44" '^[0-9]{1,4}$'
  one_of ALERT_SMS_NUMBER "phone number of digits only, without the country code" '^[0-9]{4,20}$'
  one_of ALERT_WEBHOOK_URL "https URL" '^https://[^[:space:]]+$'
  # The ranges are main.bicep's @minValue/@maxValue/@allowed (tests/scripts/deploy.bats compares them).
  one_of DEGRADED_ALERT "switch: on or off" '^(on|off|true|false)$'
  one_of DEGRADED_LOSS_PCT "whole percentage from 0 to 99" '^([0-9]|[1-9][0-9])$'
  one_of DEGRADED_RTT_P95_MS "whole number of milliseconds from 1 to 60000" '^([1-9][0-9]{0,3}|[1-5][0-9]{4}|60000)$'
  one_of DEGRADED_OF_LAST "whole number of heartbeats from 1 to 60" '^([1-9]|[1-5][0-9]|60)$'
  one_of DEGRADED_AT_LEAST "whole number of heartbeats from 1 to 60" '^([1-9]|[1-5][0-9]|60)$'
  one_of IP_CHANGE_ALERT "switch: on or off" '^(on|off|true|false)$'
  one_of FLEX_INSTANCE_MEMORY_MB "memory size in MB: 512, 2048 or 4096" '^(512|2048|4096)$'
  one_of FLEX_MAXIMUM_INSTANCES "whole number from 40 to 1000" '^([4-9][0-9]|[1-9][0-9]{2}|1000)$'
  one_of FLEX_ALWAYS_READY "whole number from 0 to 10" '^([0-9]|10)$'
  local f
  for f in main.bicep host.json Ping/function.json; do
    [[ -f $ROOT/$f ]] || echo "$f is missing from $ROOT: run deploy.sh from a complete clone of the repository"
  done
}

# one_of VAR DESCRIPTION REGEX: a problem line when VAR is set and does not match.
one_of() {
  local var=$1 what=$2 re=$3 shown
  [[ -z ${!var:-} || ${!var} =~ $re ]] && return 0
  shown=${!var}
  [[ $var == ALERT_WEBHOOK_URL ]] && shown="(hidden)"
  echo "$var $shown must be a $what: fix it in $ENV_FILE"
}

# Asks for the alert email when it is missing and a person is at the terminal; saves the answer.
ask_alert_email() {
  [[ -z ${ALERT_EMAIL:-} && -t 0 && -t 2 ]] || return 0
  read -r -p "Email address for the outage alerts: " ALERT_EMAIL
  [[ -n $ALERT_EMAIL ]] || return 0
  export ALERT_EMAIL
  set_env_values "$ENV_FILE" ALERT_EMAIL
}

# ----------------------------------------------------------------------------------------- az calls

# Stops with the right advice for an az failure: login, a taken name, or the az message itself.
az_die() {
  local what=$1 reason
  reason=$(az_reason)
  if az_login_failed; then
    die "$what failed because the Azure login is missing or expired: run 'az login' and then ./deploy.sh again"
  fi
  if grep -qE "AlreadyExists|AlreadyTaken|already taken|already exists|NameNotAvailable|is not available" "$WORK/az.err" 2>/dev/null; then
    die "$what failed: a name is taken ($reason): set another NAME_PREFIX in $ENV_FILE and run ./deploy.sh again"
  fi
  die "$what failed: $reason: fix the cause and run ./deploy.sh again (details: docs/deploy.md)"
}

require_az() {
  command -v az >/dev/null 2>&1 ||
    die "az (the Azure CLI) is not installed: install it (see $AZ_INSTALL_URL), run 'az login', then ./deploy.sh again"
}

require_login() {
  az_json account show >"$WORK/account.json" ||
    die "not logged in to Azure: run 'az login' (and 'az account set -s <subscription>' to pick one), then ./deploy.sh again"
}

# Reads the function app the last deployment made (its functionAppName output) into EXISTING_APP,
# and the plan it runs on into EXISTING_PLAN (consumption, flex or other) and EXISTING_SKU. No
# deployment or app yet: all empty. The plan comes from the site itself, as az reads it (`sku`
# Dynamic or FlexConsumption, docs/platform.md §11); a site that reports none falls back to the
# last deployment's hostingPlan output.
read_existing_app() {
  local app
  EXISTING_APP="" EXISTING_PLAN="" EXISTING_SKU=""
  if ! az_json deployment group show -g "$AZURE_RESOURCE_GROUP" -n "$DEPLOYMENT_NAME" >"$WORK/last-deployment.json"; then
    grep -qiE "DeploymentNotFound|could not be found|not found" "$WORK/az.err" 2>/dev/null && return 0
    az_die "reading the last deployment of $AZURE_RESOURCE_GROUP"
  fi
  app=$(jq -r '.properties.outputs.functionAppName.value // empty' "$WORK/last-deployment.json")
  [[ -n $app ]] || return 0
  if ! az_json functionapp show -g "$AZURE_RESOURCE_GROUP" -n "$app" >"$WORK/app.json"; then
    grep -qiE "ResourceNotFound|could not be found|not found" "$WORK/az.err" 2>/dev/null && return 0
    az_die "reading function app $app"
  fi
  EXISTING_APP=$app
  # Flex Consumption apps come back as the raw ARM resource, others flattened by the SDK.
  EXISTING_SKU=$(jq -r '(.properties.sku // .sku // empty) | strings' "$WORK/app.json")
  case $EXISTING_SKU in
    Dynamic) EXISTING_PLAN=consumption ;;
    FlexConsumption) EXISTING_PLAN=flex ;;
    "") EXISTING_PLAN=$(jq -r '.properties.outputs.hostingPlan.value // empty' "$WORK/last-deployment.json") ;;
    *) EXISTING_PLAN=other ;;
  esac
}

# Prints why deploy.sh must stop when the existing app runs on another plan than HOSTING_PLAN
# (moving a site between Linux Consumption and Flex Consumption is a migration, not a template
# re-run: docs/deploy.md, "Moving to Flex Consumption"); prints nothing when the plans agree or
# there is no app.
plan_flip_problem() {
  [[ -n $EXISTING_APP ]] || return 0
  if [[ -z $EXISTING_PLAN ]]; then
    warn "could not read which plan function app $EXISTING_APP runs on; going on with HOSTING_PLAN=$HOSTING_PLAN"
    return 0
  fi
  [[ $EXISTING_PLAN != "$HOSTING_PLAN" ]] || return 0
  if [[ $EXISTING_PLAN == other ]]; then
    echo "function app $EXISTING_APP runs on plan SKU '$EXISTING_SKU', neither Linux Consumption nor Flex Consumption, which are the plans deploy.sh manages: see $MIGRATION_DOC"
  else
    echo "function app $EXISTING_APP runs on $(plan_words "$EXISTING_PLAN") (SKU $EXISTING_SKU) but HOSTING_PLAN is $HOSTING_PLAN: deploy.sh does not move an existing app to another plan in place. Keep HOSTING_PLAN=$EXISTING_PLAN in $ENV_FILE, or move as $MIGRATION_DOC explains"
  fi
}

# For --check: one "ok|FAIL<tab>message" line about the deployed app's plan, or none when there
# is no app yet.
existing_app_check() {
  local problem
  [[ $HOSTING_PLAN == consumption || $HOSTING_PLAN == flex ]] || return 0
  read_existing_app
  problem=$(plan_flip_problem)
  if [[ -n $problem ]]; then
    printf 'FAIL\t%s\n' "$problem"
  elif [[ -n $EXISTING_APP && -n $EXISTING_PLAN ]]; then
    printf 'ok\t%s\n' "function app $EXISTING_APP runs on $(plan_words "$HOSTING_PLAN"), as HOSTING_PLAN says"
  fi
}

refuse_plan_flip() {
  local problem
  read_existing_app
  problem=$(plan_flip_problem)
  [[ -z $problem ]] || die "$problem"
}

# Reads the function app's current WEBSITE_RUN_FROM_PACKAGE into CURRENT_PACKAGE (never printed: it is
# a SAS URL), so the template run can pass it back as currentPackageUrl. A template deployment
# replaces every app setting (docs/platform.md §7), and without it the app would have no package
# until the upload that follows. Linux Consumption only: a Flex Consumption app keeps its package in
# its deployment container and does not support WEBSITE_RUN_FROM_PACKAGE (docs/platform.md §11). Needs
# read_existing_app first; no app yet: empty.
read_current_package() {
  CURRENT_PACKAGE=
  [[ $HOSTING_PLAN == consumption && -n ${EXISTING_APP:-} ]] || return 0
  if ! az_json functionapp config appsettings list -g "$AZURE_RESOURCE_GROUP" -n "$EXISTING_APP" >"$WORK/settings.json"; then
    grep -qiE "ResourceNotFound|could not be found|not found" "$WORK/az.err" 2>/dev/null && return 0
    az_die "reading the settings of $EXISTING_APP"
  fi
  CURRENT_PACKAGE=$(jq -r '[.[] | select(.name == "WEBSITE_RUN_FROM_PACKAGE") | .value // empty] | first // empty' "$WORK/settings.json")
  rm -f "$WORK/settings.json"
}

# Prints nothing when AZURE_LOCATION offers Flex Consumption, else one line saying so; returns 2
# when az could not list the regions (its reason is in $WORK/az.err).
flex_region_problem() {
  local names
  az_json functionapp list-flexconsumption-locations >"$WORK/flex-locations.json" || return 2
  jq -e --arg l "$AZURE_LOCATION" 'any(.[]; .name == $l)' "$WORK/flex-locations.json" >/dev/null && return 0
  names=$(jq -r '[.[].name] | sort | join(", ")' "$WORK/flex-locations.json")
  echo "AZURE_LOCATION '$AZURE_LOCATION' does not offer Flex Consumption (az functionapp list-flexconsumption-locations lists: ${names:-none}): set AZURE_LOCATION to one of those, or HOSTING_PLAN=consumption, in $ENV_FILE"
}

require_flex_region() {
  local problem rc=0
  [[ $HOSTING_PLAN == flex ]] || return 0
  problem=$(flex_region_problem) || rc=$?
  ((rc == 0)) || az_die "listing the Flex Consumption regions"
  [[ -z $problem ]] || die "$problem"
}

# Writes the parameters file (mode 600, in the private work directory) and prints the arguments
# for `az deployment group create|what-if`, NUL-separated.
deployment_args() {
  local pair var spec file=$WORK/parameters.json params='{}'
  for pair in "${PARAMETERS[@]}"; do
    var=${pair%%=*}
    spec=${pair#*=}
    [[ -n ${!var:-} ]] || continue
    [[ $HOSTING_PLAN == flex || $var != FLEX_* ]] || continue
    if [[ ${spec#*:} == int ]]; then
      params=$(jq --arg k "${spec%%:*}" --argjson v "$((10#${!var}))" '. + {($k): {value: $v}}' <<<"$params")
    elif [[ ${spec#*:} == bool ]]; then
      params=$(jq --arg k "${spec%%:*}" --argjson v "$(on_off_bool "${!var}")" '. + {($k): {value: $v}}' <<<"$params")
    else
      params=$(ISP_MONITOR_VALUE=${!var} jq --arg k "${spec%%:*}" '. + {($k): {value: env.ISP_MONITOR_VALUE}}' <<<"$params")
    fi
  done
  if [[ -n ${CURRENT_PACKAGE:-} ]]; then
    params=$(ISP_MONITOR_VALUE=$CURRENT_PACKAGE jq '. + {currentPackageUrl: {value: env.ISP_MONITOR_VALUE}}' <<<"$params")
  fi
  jq -n --argjson p "$params" '{
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
    contentVersion: "1.0.0.0", parameters: $p}' >"$file"
  printf '%s\0' -g "$AZURE_RESOURCE_GROUP" -n "$DEPLOYMENT_NAME" --template-file "$ROOT/main.bicep" --parameters "@$file"
}

# on_off_bool VALUE: true for on/true, false for off/false (settings_problems refused the rest).
on_off_bool() {
  case $1 in
    on | true) printf true ;;
    *) printf false ;;
  esac
}

group_exists() {
  az_json group exists -n "$AZURE_RESOURCE_GROUP" >"$WORK/exists.json" || az_die "checking resource group $AZURE_RESOURCE_GROUP"
  [[ $(<"$WORK/exists.json") == true ]]
}

# ------------------------------------------------------------------------------------------ --check

check_tools_and_settings() {
  local problems=0 line ext path
  report() { printf '%-5s %s\n' "$1" "$2"; [[ $1 != FAIL ]] || problems=$((problems + 1)); }

  for line in az:azure-cli jq:jq zip:zip curl:curl cargo:cargo rustc:rustc; do
    if command -v "${line%%:*}" >/dev/null 2>&1; then
      report ok "${line%%:*} found"
    elif [[ ${line%%:*} == az ]]; then
      report FAIL "az (the Azure CLI) is not installed: see $AZ_INSTALL_URL"
    elif [[ ${line%%:*} == cargo || ${line%%:*} == rustc ]]; then
      report FAIL "${line%%:*} is not installed: install Rust from https://rustup.rs"
    else
      report FAIL "${line%%:*} is not installed: $(install_hint "${line#*:}")"
    fi
  done

  # The handler's build (docs/deploy.md "How the handler is built").
  path=$(build_path)
  case $path in
    musl-gcc) report ok "build path: musl-gcc ($(musl_cc || echo missing)) for a static $MUSL_TARGET handler" ;;
    zigbuild) report ok "build path: cargo-zigbuild (zig from $TOOLS_VENV or PATH) for a static $MUSL_TARGET handler" ;;
  esac
  if command -v rustc >/dev/null 2>&1 && musl_target_installed; then
    report ok "Rust target $MUSL_TARGET installed"
  fi
  while IFS= read -r line; do
    [[ -n $line ]] && report FAIL "$line"
  done < <(build_problems "$path")

  while IFS= read -r line; do
    [[ -n $line ]] && report FAIL "$line"
  done < <(settings_problems)
  [[ -n ${ALERT_EMAIL:-} ]] && report ok "alerts go to $ALERT_EMAIL"
  [[ $HOSTING_PLAN != consumption && $HOSTING_PLAN != flex ]] ||
    report ok "hosting plan: $(plan_words "$HOSTING_PLAN") (HOSTING_PLAN=$HOSTING_PLAN)"
  if [[ $HOSTING_PLAN == consumption ]]; then
    for line in "${FLEX_ONLY_SETTINGS[@]}"; do
      [[ -z ${!line:-} ]] || report warn "$line is set but HOSTING_PLAN is consumption: it tunes the Flex plan only and is not passed"
    done
  fi

  if command -v az >/dev/null 2>&1; then
    if az_json account show >"$WORK/account.json"; then
      report ok "logged in to Azure, subscription '$(jq -r '.name' "$WORK/account.json")' ($(jq -r '.id' "$WORK/account.json"))"
      if [[ $HOSTING_PLAN == flex ]]; then
        if ! line=$(flex_region_problem); then
          report FAIL "could not list the Flex Consumption regions: $(az_reason)"
        elif [[ -n $line ]]; then
          report FAIL "$line"
        else
          report ok "region $AZURE_LOCATION offers Flex Consumption"
        fi
      fi
      if az_json group exists -n "$AZURE_RESOURCE_GROUP" >"$WORK/exists.json"; then
        if [[ $(<"$WORK/exists.json") == true ]]; then
          report ok "resource group $AZURE_RESOURCE_GROUP exists"
          while IFS=$'\t' read -r level line; do
            report "$level" "$line"
          done < <(existing_app_check || printf 'FAIL\t%s\n' "could not read the deployed function app's plan (the reason is above)")
        else
          report ok "resource group $AZURE_RESOURCE_GROUP will be created in $AZURE_LOCATION"
        fi
      fi
    else
      report FAIL "not logged in to Azure: run 'az login'"
    fi
    for ext in "${QUERY_EXTENSIONS[@]}"; do
      if az extension show -n "$ext" -o json >/dev/null 2>&1; then
        report ok "az extension $ext installed"
      else
        report warn "az extension $ext missing (the log queries need it): run 'az extension add -n $ext'"
      fi
    done
  fi

  if ((problems)); then
    die "$problems problem(s) found: fix them and run ./deploy.sh --check again"
  fi
  info "All checks passed: run ./deploy.sh to deploy."
}

# -------------------------------------------------------------------------------------- Azure steps

ensure_group() {
  if group_exists; then
    info "==> resource group $AZURE_RESOURCE_GROUP exists"
  else
    info "==> creating resource group $AZURE_RESOURCE_GROUP in $AZURE_LOCATION"
    az_json group create -n "$AZURE_RESOURCE_GROUP" -l "$AZURE_LOCATION" >/dev/null ||
      az_die "creating resource group $AZURE_RESOURCE_GROUP"
  fi
}

deploy_template() {
  local args=() arg plan
  read_current_package
  while IFS= read -r -d '' arg; do args+=("$arg"); done < <(deployment_args) # bash 3.2: no mapfile
  info "==> deploying main.bicep to $AZURE_RESOURCE_GROUP (a first deployment takes a few minutes)"
  az_json deployment group create "${args[@]}" >"$WORK/deployment.json" || az_die "the deployment of main.bicep"
  APP_NAME=$(jq -r '.properties.outputs.functionAppName.value // empty' "$WORK/deployment.json")
  NEW_URL=$(jq -r '.properties.outputs.heartbeatUrl.value // empty' "$WORK/deployment.json")
  [[ -n $APP_NAME && -n $NEW_URL ]] ||
    die "the deployment did not return the outputs functionAppName and heartbeatUrl: check main.bicep's outputs and run ./deploy.sh again"
  # The upload below depends on the plan, so the template must have built the one asked for.
  plan=$(jq -r '.properties.outputs.hostingPlan.value // empty' "$WORK/deployment.json")
  if [[ -n $plan && $plan != "$HOSTING_PLAN" ]]; then
    die "the deployment reports hostingPlan '$plan', not '$HOSTING_PLAN': check main.bicep's hostingPlan parameter and output and run ./deploy.sh again"
  elif [[ -z $plan && $HOSTING_PLAN == flex ]]; then
    die "main.bicep has no hostingPlan output, so it predates Flex Consumption: update your clone and run ./deploy.sh again"
  fi
  check_url "$NEW_URL"
  info "    function app: $APP_NAME"
}

# The deployed URL is https. Plain http is accepted only for a loopback host, which is what the
# tests use (their az stand-in reports a local handler's URL).
check_url() {
  local url=$1
  [[ $url == https://* || $url =~ ^http://(127\.0\.0\.1|localhost)(:[0-9]+)?/ ]] ||
    die "the deployment returned '$url', which is not an https URL: check main.bicep's heartbeatUrl output"
}

# The same az command takes both plans' path (azure-cli reads the plan itself, docs/platform.md §11):
# on Linux Consumption it puts the zip in blob storage and points WEBSITE_RUN_FROM_PACKAGE at it; on
# Flex Consumption it POSTs the zip to the app's /api/publish (into the deployment container), waits
# for the deployment to finish and a minute more for the trigger sync.
upload_package() {
  if [[ $HOSTING_PLAN == flex ]]; then
    info "==> uploading the package (config-zip: Flex Consumption publish into the deployment container; takes a minute or two)"
  else
    info "==> uploading the package (config-zip: blob storage + WEBSITE_RUN_FROM_PACKAGE)"
  fi
  az_json functionapp deployment source config-zip -g "$AZURE_RESOURCE_GROUP" -n "$APP_NAME" --src "$PACKAGE" >/dev/null ||
    az_die "uploading the package to $APP_NAME"
}

# Waits until the app's host answers HTTP at all (any status below 500).
wait_for_host() {
  local base code deadline=$((SECONDS + WAIT_SECONDS))
  base=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$NEW_URL")
  info "==> waiting for $base to answer (up to ${WAIT_SECONDS}s)"
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base/" || true)
    [[ $code =~ ^[1-4][0-9][0-9]$ ]] && return 0
    ((SECONDS < deadline)) ||
      die "$base did not answer within ${WAIT_SECONDS}s (last status ${code:-none}): wait a minute and run ./deploy.sh again, or raise ISP_MONITOR_DEPLOY_TIMEOUT"
    sleep "$POLL_SECONDS"
  done
}

# Reads the Ping function's default key into NEW_KEY (never printed). Right after an upload the
# host may not list keys yet, so this retries until the deadline.
fetch_key() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  info "==> fetching the function key"
  while :; do
    if az_json functionapp function keys list -g "$AZURE_RESOURCE_GROUP" -n "$APP_NAME" --function-name "$FUNCTION_NAME" >"$WORK/keys.json"; then
      NEW_KEY=$(jq -r '.default // empty' "$WORK/keys.json")
      rm -f "$WORK/keys.json"
      [[ -n $NEW_KEY ]] && return 0
      echo "ERROR: the key list has no 'default' key" >"$WORK/az.err"
    fi
    ((SECONDS < deadline)) || az_die "fetching the key of function $FUNCTION_NAME"
    sleep "$POLL_SECONDS"
  done
}

save_heartbeat_settings() {
  HEARTBEAT_URL=$NEW_URL HEARTBEAT_KEY=$NEW_KEY set_env_values "$ENV_FILE" HEARTBEAT_URL HEARTBEAT_KEY
  info "==> wrote HEARTBEAT_URL and HEARTBEAT_KEY to $ENV_FILE (mode 600)"
}

warn_if_env_tracked() {
  command -v git >/dev/null 2>&1 || return 0
  git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 || return 0
  git -C "$ROOT" check-ignore -q "$ENV_FILE" 2>/dev/null ||
    warn "$ENV_FILE is not ignored by git and holds your key: add '.env' to .gitignore"
}

next_steps() {
  cat <<EOF

Deployed on $(plan_words "$HOSTING_PLAN"): heartbeats go to $NEW_URL
Next:
  ./start_heartbeat.sh            start the agent in tmux (session '${ISP_MONITOR_SESSION:-isp-monitor}')
  ./start_heartbeat.sh --status   see whether it runs and its last heartbeat
  ./stop_heartbeat.sh             stop it
Costs and alert delays: docs/deploy.md.
EOF
  passcode_notice
}

# A new email receiver must be confirmed with a one-time passcode within 30 minutes of saving the
# action group, or no alert email is sent (docs/platform.md §7). Said in a box.
passcode_notice() {
  boxed "ACTION NEEDED: confirm your alert email within 30 minutes" \
    "" \
    "Azure Monitor has emailed a one-time passcode to" \
    "  $ALERT_EMAIL" \
    "(from azure-noreply@microsoft.com; look in the spam folder too)." \
    "Enter it as that email asks within 30 minutes of this deploy," \
    "or no alert will ever reach you. An address already confirmed" \
    "in this Azure tenant gets a plain notice instead." \
    "" \
    "Then send a test alert and see it arrive:" \
    "  ./deploy.sh --test-alert"
}

# ------------------------------------------------------------------------------------- --test-alert

# Prints the name of the deployed action group: the one named "$NAME_PREFIX-alerts-..." in the
# resource group (main.bicep), or the only one there is. Leaves the list in $WORK/action-groups.json.
find_action_group() {
  local names count
  az_json monitor action-group list -g "$AZURE_RESOURCE_GROUP" >"$WORK/action-groups.json" ||
    az_die "listing the action groups of $AZURE_RESOURCE_GROUP"
  names=$(jq -r --arg p "$NAME_PREFIX-alerts-" '.[].name | select(startswith($p))' "$WORK/action-groups.json")
  [[ -n $names ]] || names=$(jq -r '.[].name' "$WORK/action-groups.json")
  count=$(grep -c . <<<"$names" || true)
  ((count > 0)) ||
    die "resource group $AZURE_RESOURCE_GROUP has no action group: run ./deploy.sh first (with the same NAME_PREFIX and AZURE_RESOURCE_GROUP)"
  ((count == 1)) ||
    die "resource group $AZURE_RESOURCE_GROUP has several action groups ($(tr '\n' ' ' <<<"$names")) and none is named $NAME_PREFIX-alerts-*: set NAME_PREFIX in $ENV_FILE to the deployed one"
  printf '%s\n' "$names"
}

# Sends a test notification (alert type logalertv2, like the rules) to the action group's email
# receivers with `az monitor action-group test-notifications create`, which waits until Azure has
# finished the test (about two minutes). The wait is bounded: at the timeout az is stopped and the
# result is "pending". docs/platform.md §7.
run_test_alert() {
  local group receivers name address status when detail pid rc=0 timeout deadline state details n=0
  local cmd=()
  require_az
  require_cmd jq
  prepare test-alert
  timeout=${ISP_MONITOR_TEST_ALERT_TIMEOUT:-300}
  is_positive_int "$timeout" || die "ISP_MONITOR_TEST_ALERT_TIMEOUT '$timeout' is not a whole number of seconds: fix it"
  require_login
  group=$(find_action_group) || exit 1
  receivers=$(jq -r --arg g "$group" '.[] | select(.name == $g) | .emailReceivers[]? | "\(.name)\t\(.emailAddress)"' "$WORK/action-groups.json")
  [[ -n $receivers ]] ||
    die "action group $group has no email receiver: set ALERT_EMAIL in $ENV_FILE and run ./deploy.sh again"
  cmd=(az monitor action-group test-notifications create -g "$AZURE_RESOURCE_GROUP" --action-group "$group" --alert-type logalertv2)
  while IFS=$'\t' read -r name address; do
    cmd+=(-a email "$name" "$address" usecommonalertschema)
    n=$((n + 1))
  done <<<"$receivers"
  [[ -z ${AZURE_SUBSCRIPTION:-} ]] || cmd+=(--subscription "$AZURE_SUBSCRIPTION")
  cmd+=(--only-show-errors -o json)
  info "==> sending a test alert through action group $group to $(cut -f2 <<<"$receivers" | tr '\n' ' ')"
  info "    (Azure usually needs about 2 minutes; waiting up to ${timeout}s)"
  "${cmd[@]}" >"$WORK/test-alert.json" 2>"$WORK/az.err" &
  pid=$!
  deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      info "Test alert: pending. Azure had not finished the test within ${timeout}s; the email may still come."
      info "Check your inbox in a few minutes, or run ./deploy.sh --test-alert again later (docs/troubleshooting.md)."
      exit 3
    fi
    sleep 1
  done
  wait "$pid" || rc=$?
  ((rc == 0)) || az_die "the test alert"
  state=$(jq -r '.state // "unknown"' "$WORK/test-alert.json" 2>/dev/null) ||
    die "the test alert answered with something that is not JSON: run ./deploy.sh --test-alert again"
  # One line per email action: name, status, send time, detail (tab-separated).
  details=$(jq -r '.actionDetails[]? | select((.MechanismType // "") | ascii_downcase == "email")
    | [(.Name // "?"), (.Status // "unknown"), (.SendTime // ""), (.Detail // "" | tostring | gsub("[\t\r\n]+"; " "))] | join("\t")' "$WORK/test-alert.json")
  if [[ $state =~ [Ff]ail ]] || grep -qiE $'^[^\t]*\t[^\t]*fail' <<<"$details"; then
    while IFS=$'\t' read -r name status when detail; do
      [[ -z $name ]] || info "    $name: $status${detail:+ ($detail)}"
    done <<<"$details"
    die "the test alert failed (state $state): check ALERT_EMAIL in $ENV_FILE and that you entered the passcode, then run ./deploy.sh --test-alert again (docs/troubleshooting.md)"
  fi
  if [[ $state =~ ^Complete(d)?$ ]] && (($(grep -c . <<<"$details" || true) >= n)) &&
    ! grep -qviE $'^[^\t]*\t(succeeded|completed)\t' <<<"$details"; then
    while IFS=$'\t' read -r name status when detail; do
      info "    $name: $status${when:+ at $when}"
    done <<<"$details"
    info "Test alert: success. Azure Monitor sent it: look for an email with \"Test\" in its subject from"
    info "azure-noreply@microsoft.com (or in the spam folder). Not there in 10 minutes: docs/troubleshooting.md."
    return 0
  fi
  info "Test alert: pending. Azure reports state '$state': check your inbox in a few minutes,"
  info "or run ./deploy.sh --test-alert again later (docs/troubleshooting.md)."
  exit 3
}

# ------------------------------------------------------------------------------------------- modes

prepare() {
  local mode=$1
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/deploy.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  if [[ $mode == deploy && ! -f $ENV_FILE ]]; then
    [[ -f $ROOT/.env.example ]] || die ".env.example is missing: restore it from the repository and run again"
    (umask 077 && cp "$ROOT/.env.example" "$ENV_FILE")
    chmod 600 "$ENV_FILE"
    info "==> created $ENV_FILE from .env.example"
  fi
  load_env "$ENV_FILE"
  apply_defaults
  # Seconds to wait for the app after the upload (cold start, trigger sync), and between tries.
  WAIT_SECONDS=${ISP_MONITOR_DEPLOY_TIMEOUT:-300}
  POLL_SECONDS=${ISP_MONITOR_POLL_SECONDS:-5}
  is_positive_int "$WAIT_SECONDS" || die "ISP_MONITOR_DEPLOY_TIMEOUT '$WAIT_SECONDS' is not a whole number of seconds: fix it"
  [[ $POLL_SECONDS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "ISP_MONITOR_POLL_SECONDS '$POLL_SECONDS' is not a number of seconds: fix it"
}

require_settings() {
  local problem
  problem=$(settings_problems | first_line)
  [[ -z $problem ]] || die "$problem, then run ./deploy.sh again"
}

run_check() {
  prepare check
  check_tools_and_settings
}

run_what_if() {
  local args=() arg
  require_az
  require_cmd jq
  prepare what-if
  require_settings
  require_login
  if ! group_exists; then
    info "Resource group $AZURE_RESOURCE_GROUP does not exist yet: a deploy would create it in $AZURE_LOCATION, with every resource in main.bicep."
    return 0
  fi
  refuse_plan_flip
  read_current_package
  while IFS= read -r -d '' arg; do args+=("$arg"); done < <(deployment_args)
  [[ -z ${AZURE_SUBSCRIPTION:-} ]] || args+=(--subscription "$AZURE_SUBSCRIPTION")
  az deployment group what-if "${args[@]}" --only-show-errors 2>"$WORK/az.err" || az_die "what-if"
}

run_package() {
  require_cmd jq
  require_cmd zip
  prepare package
  require_build_tools
  build_handler
  package_app
  info "==> wrote the package ($(du -k "$PACKAGE" | cut -f1) KB):"
  printf '%s\n' "$PACKAGE"
}

run_deploy() {
  require_az
  require_cmd jq
  require_cmd zip
  require_cmd curl
  command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust from https://rustup.rs and run ./deploy.sh again"
  command -v rustc >/dev/null 2>&1 || die "rustc is not installed: install Rust from https://rustup.rs and run ./deploy.sh again"
  prepare deploy
  ask_alert_email
  require_settings
  require_build_tools
  require_login
  info "==> deploying to resource group $AZURE_RESOURCE_GROUP ($AZURE_LOCATION), subscription '$(jq -r '.name' "$WORK/account.json")', on $(plan_words "$HOSTING_PLAN")"
  # Both checks come before the build, so a wrong plan or region stops in seconds.
  require_flex_region
  refuse_plan_flip
  build_handler
  package_app
  ensure_group
  deploy_template
  upload_package
  wait_for_host
  fetch_key
  send_heartbeat
  save_heartbeat_settings
  warn_if_env_tracked
  next_steps
}

main() {
  (($# <= 1)) || die "one option at most, got '$*': run ./deploy.sh --help"
  case ${1:-} in
    "") run_deploy ;;
    --check) run_check ;;
    --what-if) run_what_if ;;
    --test-alert) run_test_alert ;;
    --package) run_package ;;
    --install-build-tools) install_build_tools ;;
    -h | --help) usage ;;
    *) die "unknown option '$1': run ./deploy.sh --help" ;;
  esac
}

main "$@"

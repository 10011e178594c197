#!/usr/bin/env bash
# deploy_aws.sh: puts ISP Monitor's heartbeat endpoint on AWS Lambda (a Function URL, CloudWatch
# logs and one silence alarm per device, reminders while one stays silent, an SNS email topic) and
# writes its URL and key into .env,
# ready for ./start_heartbeat.sh.
#
# Usage: ./deploy_aws.sh [--check | --what-if | --package | --help]
#
#   (no option)  build the Lambda function, zip it, upload it to an S3 bucket (created the first
#                time), create or update the CloudFormation stack of aws/template.yaml through a
#                change set, wait for it, send one real heartbeat, write HEARTBEAT_URL,
#                HEARTBEAT_KEY, AWS_REGION, AWS_STACK_NAME and HEARTBEAT_DEVICES to .env.
#                Safe to run again: every step converges on the same result.
#   --check      check the tools (the aws CLI need not be installed for this), the AWS
#                credentials, the .env values and the stack; changes nothing
#   --what-if    show what a deploy would change: a change set, described, then deleted;
#                changes nothing
#   --package    build the function and write lambda.zip (bootstrap) without touching AWS;
#                prints the zip's path as the last line
#   --help       show this text
#
# Settings come from .env (created from .env.example on the first run); a variable already set in
# your environment wins over .env. Needs the aws CLI (v1 or v2, with credentials: `aws configure`
# or `aws sso login`), jq, zip, curl, cargo and the Rust target x86_64-unknown-linux-musl, plus
# musl-gcc (x86-64 Linux) or cargo-zigbuild (anywhere; ./deploy.sh --install-build-tools): the
# function is a static x86-64 Linux executable, as for Azure.
# Details and troubleshooting: docs/aws.md ("Deploying").
set -Eeuo pipefail

readonly SCRIPT_NAME=deploy_aws.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT
readonly ENV_FILE=${ISP_MONITOR_ENV_FILE:-$ROOT/.env}
readonly TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
readonly LAMBDA_PACKAGE=$TARGET_DIR/lambda.zip
readonly TEMPLATE=aws/template.yaml
readonly AWS_INSTALL_URL=https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html
# Both are needed: the template makes an IAM role without a name (CAPABILITY_IAM) and uses the
# AWS::LanguageExtensions transform, a macro (CAPABILITY_AUTO_EXPAND; docs/platform.md §16).
readonly CAPABILITIES=(CAPABILITY_IAM CAPABILITY_AUTO_EXPAND)
# For scripts/build.sh's refusals.
readonly BUILD_DOC=docs/aws.md
readonly BUILD_X86_ONLY="the template deploys the function for x86_64 (its Architecture parameter)"

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
# shellcheck source=scripts/build.sh
source "$ROOT/scripts/build.sh"

# The aws CLI v2 pipes long output through a pager and waits for a key; v1 has none (docs/platform.md §16).
export AWS_PAGER=""

usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}" # BSD sed needs the ';' before '}'
}

# ---------------------------------------------------------------------------------------- settings

apply_defaults() {
  : "${AWS_REGION:=us-east-1}"
  : "${AWS_STACK_NAME:=isp-monitor}"
  : "${NAME_PREFIX:=ispmon}"
  : "${HEARTBEAT_DEVICES:=${HEARTBEAT_DEVICE:-$(hostname 2>/dev/null || uname -n)}}"
  export AWS_REGION AWS_STACK_NAME NAME_PREFIX HEARTBEAT_DEVICES
}

# Prints one line per problem with the settings; nothing when they are fine. The limits are the
# template's own (aws/template.yaml's AllowedPattern, MinValue, ...).
settings_problems() {
  local device devices=() seen=" " squashed
  if [[ -z ${ALERT_EMAIL:-} ]]; then
    echo "ALERT_EMAIL is not set: add ALERT_EMAIL=you@example.com to $ENV_FILE"
  elif [[ ! $ALERT_EMAIL =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]] || ((${#ALERT_EMAIL} > 254)); then
    echo "ALERT_EMAIL '$ALERT_EMAIL' is not an email address: fix it in $ENV_FILE"
  fi
  if [[ ! $AWS_REGION =~ ^[a-z]{2}(-[a-z]+)+-[0-9]$ ]]; then
    echo "AWS_REGION '$AWS_REGION' is not a region name like 'us-east-1' (see 'aws ec2 describe-regions'): fix it in $ENV_FILE"
  fi
  if [[ ! $AWS_STACK_NAME =~ ^[A-Za-z][-A-Za-z0-9]{0,127}$ ]]; then
    echo "AWS_STACK_NAME '$AWS_STACK_NAME' must start with a letter and hold only letters, digits and hyphens (at most 128): fix it in $ENV_FILE"
  fi
  if [[ ! $NAME_PREFIX =~ ^[a-z][a-z0-9-]{1,19}$ ]]; then
    echo "NAME_PREFIX '$NAME_PREFIX' must be 2 to 20 lowercase letters, digits or hyphens, starting with a letter: fix it in $ENV_FILE"
  fi
  if [[ -n ${SILENCE_MINUTES:-} && ! $SILENCE_MINUTES =~ ^([2-9]|[1-5][0-9]|60)$ ]]; then
    echo "SILENCE_MINUTES $SILENCE_MINUTES must be a whole number from 2 to 60 on AWS (one alarm period a minute): fix it in $ENV_FILE"
  fi
  # The same values as deploy.sh accepts (aws/template.yaml, ReminderMinutes AllowedValues).
  if [[ -n ${REMINDER_MINUTES:-} && ! $REMINDER_MINUTES =~ ^(0|5|10|15|30|60)$ ]]; then
    echo "REMINDER_MINUTES '$REMINDER_MINUTES' must be one of 0 (off), 5, 10, 15, 30 or 60: fix it in $ENV_FILE"
  fi
  if [[ -n ${AWS_FUNCTION_KEY:-} && ! $AWS_FUNCTION_KEY =~ ^[A-Za-z0-9_=-]{32,128}$ ]]; then
    echo "AWS_FUNCTION_KEY in $ENV_FILE must be 32 to 128 letters, digits, '_', '-' or '=': remove the line and a new key is generated"
  fi
  IFS=, read -r -a devices <<<"$HEARTBEAT_DEVICES"
  ((${#devices[@]})) || echo "HEARTBEAT_DEVICES is empty: list the agents' device names, comma-separated, in $ENV_FILE"
  for device in ${devices[@]+"${devices[@]}"}; do
    # One alarm per device, named and identified after it (aws/template.yaml, DeviceNames).
    if [[ ! $device =~ ^[A-Za-z0-9._-]{1,100}$ ]]; then
      echo "HEARTBEAT_DEVICES: '$device' must be 1 to 100 ASCII letters, digits, '.', '_' or '-', with no spaces: fix it in $ENV_FILE"
      continue
    fi
    squashed=$(printf '%s' "$device" | tr -cd 'A-Za-z0-9')
    [[ -n $squashed ]] || echo "HEARTBEAT_DEVICES: '$device' needs at least one letter or digit: fix it in $ENV_FILE"
    [[ $seen != *" $squashed "* ]] ||
      echo "HEARTBEAT_DEVICES: '$device' differs from another name only in '.', '_' or '-' (their alarms would collide): rename one in $ENV_FILE"
    seen+="$squashed "
  done
  [[ -f $ROOT/$TEMPLATE ]] || echo "$TEMPLATE is missing from $ROOT: run $SCRIPT_NAME from a complete clone of the repository"
}

require_settings() {
  local problem
  problem=$(settings_problems | first_line)
  [[ -z $problem ]] || die "$problem, then run ./$SCRIPT_NAME again"
}

# Asks for the alert email when it is missing and a person is at the terminal; saves the answer.
ask_alert_email() {
  [[ -z ${ALERT_EMAIL:-} && -t 0 && -t 2 ]] || return 0
  read -r -p "Email address for the outage alerts: " ALERT_EMAIL
  [[ -n $ALERT_EMAIL ]] || return 0
  export ALERT_EMAIL
  set_env_values "$ENV_FILE" ALERT_EMAIL
}

# The function key: made once from /dev/urandom (32 bytes, URL-safe base64 without padding: 43
# characters) and kept in .env as AWS_FUNCTION_KEY; it reaches CloudFormation only in the
# parameters file, as the NoEcho parameter FunctionKey. Never printed.
ensure_function_key() {
  [[ -z ${AWS_FUNCTION_KEY:-} ]] || return 0
  AWS_FUNCTION_KEY=$(new_key)
  [[ ${#AWS_FUNCTION_KEY} -ge 32 ]] || die "could not make a function key from /dev/urandom: check that it is readable"
  export AWS_FUNCTION_KEY
  set_env_values "$ENV_FILE" AWS_FUNCTION_KEY
  info "==> made a new function key (kept in $ENV_FILE as AWS_FUNCTION_KEY)"
}

new_key() {
  od -A n -v -t x1 -N 32 /dev/urandom 2>/dev/null | tr -d ' \n' | xxd_to_base64url
}

# Hex on stdin to URL-safe base64 without padding (od and awk are POSIX; no base64 -w, no xxd).
xxd_to_base64url() {
  awk 'BEGIN { a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"; h = "0123456789abcdef" }
    { s = s $0 }
    END {
      n = 0; bits = 0; out = ""
      for (i = 1; i <= length(s); i++) {
        bits = bits * 16 + index(h, substr(s, i, 1)) - 1; n += 4
        if (n >= 6) { n -= 6; d = 2 ^ n; out = out substr(a, int(bits / d) + 1, 1); bits = bits % d }
      }
      if (n > 0) out = out substr(a, bits * 2 ^ (6 - n) + 1, 1)
      print out
    }'
}

# ---------------------------------------------------------------------------------------- aws calls
# (WORK is a private temporary directory)

aws_die() {
  local what=$1
  if aws_login_failed; then
    die "$what failed because the AWS credentials are missing or expired ($(aws_reason)): run 'aws configure' (or 'aws sso login'), then ./$SCRIPT_NAME again"
  fi
  die "$what failed: $(aws_reason): fix the cause and run ./$SCRIPT_NAME again (details: docs/aws.md)"
}

require_aws() {
  command -v aws >/dev/null 2>&1 ||
    die "aws (the AWS CLI) is not installed: install it (see $AWS_INSTALL_URL), run 'aws configure', then ./$SCRIPT_NAME again"
}

# Reads the account into ACCOUNT_ID (and the caller's ARN), or stops with what to run.
require_credentials() {
  if ! aws_json sts get-caller-identity >"$WORK/identity.json"; then
    aws_login_failed && die "no AWS credentials ($(aws_reason)): run 'aws configure' (or 'aws sso login'), then ./$SCRIPT_NAME again"
    aws_die "checking the AWS credentials (sts get-caller-identity)"
  fi
  ACCOUNT_ID=$(jq -r '.Account // empty' "$WORK/identity.json")
  [[ $ACCOUNT_ID =~ ^[0-9]{12}$ ]] || die "sts get-caller-identity gave no account id: check 'aws sts get-caller-identity' and run ./$SCRIPT_NAME again"
}

# Prints the stack's status, or NONE when there is no such stack. Leaves it in $WORK/stack.json.
stack_status() {
  if ! aws_json cloudformation describe-stacks --stack-name "$AWS_STACK_NAME" >"$WORK/stack.json"; then
    if grep -q "does not exist" "$WORK/aws.err" 2>/dev/null; then
      echo NONE
      return 0
    fi
    aws_die "reading stack $AWS_STACK_NAME"
  fi
  jq -r '.Stacks[0].StackStatus // "NONE"' "$WORK/stack.json"
}

# stack_output NAME: one output of the stack as last read by stack_status.
stack_output() {
  jq -r --arg k "$1" '.Stacks[0].Outputs // [] | map(select(.OutputKey == $k)) | first | .OutputValue // empty' "$WORK/stack.json"
}

# The bucket for the code: AWS_CODE_BUCKET, else one per prefix, account and region (bucket names
# are global; Lambda reads code only from a bucket in its own region, docs/platform.md §16).
code_bucket() {
  if [[ -n ${AWS_CODE_BUCKET:-} ]]; then
    printf '%s' "$AWS_CODE_BUCKET"
  else
    printf '%s-code-%s-%s' "$NAME_PREFIX" "$ACCOUNT_ID" "$AWS_REGION"
  fi
}

ensure_bucket() {
  local config=()
  BUCKET=$(code_bucket)
  if aws_json s3api head-bucket --bucket "$BUCKET" >/dev/null; then
    info "==> code bucket s3://$BUCKET exists"
    return 0
  fi
  if grep -qE '\((403|Forbidden)\)' "$WORK/aws.err" 2>/dev/null; then
    die "the bucket name $BUCKET is taken by another account (403): set AWS_CODE_BUCKET to a bucket of yours in $AWS_REGION in $ENV_FILE and run ./$SCRIPT_NAME again"
  fi
  grep -qE '\((404|NoSuchBucket|NotFound)\)' "$WORK/aws.err" 2>/dev/null || aws_die "checking bucket $BUCKET"
  info "==> creating the code bucket s3://$BUCKET in $AWS_REGION"
  # us-east-1 takes no LocationConstraint; every other region needs it (docs/platform.md §16).
  [[ $AWS_REGION == us-east-1 ]] || config=(--create-bucket-configuration "LocationConstraint=$AWS_REGION")
  aws_json s3api create-bucket --bucket "$BUCKET" ${config[@]+"${config[@]}"} >/dev/null ||
    aws_die "creating bucket $BUCKET"
}

# Uploads the zip under a key named after the binary's SHA-256, so a new build is a new key (the
# template's CodeS3Key: an update deploys the code only when the key changes) and a re-run of the
# same build changes nothing.
upload_package() {
  local sum
  sum=$(sha256_of "$BUILT_BIN") || die "could not hash $BUILT_BIN: install shasum or sha256sum"
  CODE_KEY=lambda/$sum.zip
  info "==> uploading lambda.zip to s3://$BUCKET/$CODE_KEY"
  aws_json s3api put-object --bucket "$BUCKET" --key "$CODE_KEY" --body "$LAMBDA_PACKAGE" >/dev/null ||
    aws_die "uploading lambda.zip to $BUCKET"
}

# sha256_of FILE: the hex digest (shasum on macOS, sha256sum on Linux, else openssl).
sha256_of() {
  local out
  if command -v shasum >/dev/null 2>&1; then
    out=$(shasum -a 256 "$1")
  elif command -v sha256sum >/dev/null 2>&1; then
    out=$(sha256sum "$1")
  else
    out=$(openssl dgst -sha256 -r "$1")
  fi || return 1
  out=${out%% *}
  [[ $out =~ ^[0-9a-f]{64}$ ]] && printf '%s' "$out"
}

# Zips the built binary as bootstrap (mode 755), the file the provided.al2023 runtime starts.
package_lambda() {
  local stage=$WORK/lambda
  info "==> packaging $(basename "$BUILT_BIN") as bootstrap"
  mkdir -p "$stage" "$(dirname "$LAMBDA_PACKAGE")"
  cp "$BUILT_BIN" "$stage/bootstrap"
  chmod 755 "$stage/bootstrap"
  rm -f "$LAMBDA_PACKAGE"
  (cd "$stage" && zip -q -X "$LAMBDA_PACKAGE" bootstrap) ||
    die "zip could not write $LAMBDA_PACKAGE: check free space and permissions and run ./$SCRIPT_NAME again"
}

# ------------------------------------------------------------------------------------- the stack

# Writes the change set's parameters file (mode 600, private work directory): the key is on no
# command line. With "previous" for a name, that parameter keeps the stack's current value.
# parameters_file KEY_MODE CODE_MODE: each "value" or "previous".
parameters_file() {
  local file=$WORK/parameters.json
  (umask 077 && : >"$file")
  ISP_MONITOR_KEY=${AWS_FUNCTION_KEY:-} ISP_MONITOR_EMAIL=$ALERT_EMAIL ISP_MONITOR_DEVICES=$HEARTBEAT_DEVICES \
    jq -n --arg prefix "$NAME_PREFIX" --arg silence "${SILENCE_MINUTES:-}" --arg key_mode "$1" \
    --arg reminders "${REMINDER_MINUTES:-}" \
    --arg code_mode "$2" --arg bucket "${BUCKET:-}" --arg code "${CODE_KEY:-}" '
    def p(k; v): {ParameterKey: k, ParameterValue: v};
    def prev(k): {ParameterKey: k, UsePreviousValue: true};
    [p("NamePrefix"; $prefix), p("AlertEmail"; env.ISP_MONITOR_EMAIL), p("DeviceNames"; env.ISP_MONITOR_DEVICES),
     (if $silence != "" then p("SilenceMinutes"; $silence) else empty end),
     (if $reminders != "" then p("ReminderMinutes"; $reminders) else empty end),
     (if $key_mode == "value" then p("FunctionKey"; env.ISP_MONITOR_KEY) else prev("FunctionKey") end),
     (if $code_mode == "value" then p("CodeS3Bucket"; $bucket), p("CodeS3Key"; $code)
      else prev("CodeS3Bucket"), prev("CodeS3Key") end),
     p("Architecture"; "x86_64")]' >"$file"
  printf '%s' "$file"
}

# create_change_set TYPE PARAMS_FILE: creates one and waits until it is ready. Sets CHANGE_SET
# (its ARN). Returns 3 when it holds no change (it is then deleted).
create_change_set() {
  local type=$1 params=$2 name
  name=isp-monitor-$(date -u +%Y%m%d%H%M%S)
  aws_json cloudformation create-change-set --stack-name "$AWS_STACK_NAME" --change-set-name "$name" \
    --change-set-type "$type" --template-body "file://$ROOT/$TEMPLATE" --parameters "file://$params" \
    --capabilities "${CAPABILITIES[@]}" >"$WORK/change-set.json" || aws_die "creating a change set for $AWS_STACK_NAME"
  CHANGE_SET=$(jq -r '.Id // empty' "$WORK/change-set.json")
  [[ -n $CHANGE_SET ]] || die "create-change-set returned no Id: run ./$SCRIPT_NAME again"
  wait_for_change_set
}

wait_for_change_set() {
  local status reason deadline=$((SECONDS + STACK_SECONDS))
  while :; do
    aws_json cloudformation describe-change-set --change-set-name "$CHANGE_SET" >"$WORK/change-set.json" ||
      aws_die "reading the change set"
    status=$(jq -r '.Status // empty' "$WORK/change-set.json")
    case $status in
      CREATE_COMPLETE) return 0 ;;
      FAILED)
        reason=$(jq -r '.StatusReason // "no reason given"' "$WORK/change-set.json")
        if [[ $reason == *"didn't contain changes"* || $reason == *"No updates are to be performed"* ]]; then
          delete_change_set
          return 3
        fi
        delete_change_set
        die "CloudFormation refused the change set: $reason: fix it and run ./$SCRIPT_NAME again"
        ;;
    esac
    ((SECONDS < deadline)) || die "the change set was still $status after ${STACK_SECONDS}s: run ./$SCRIPT_NAME again later"
    sleep "$POLL_SECONDS"
  done
}

delete_change_set() {
  [[ -n ${CHANGE_SET:-} ]] || return 0
  aws_json cloudformation delete-change-set --change-set-name "$CHANGE_SET" >/dev/null ||
    warn "could not delete change set $CHANGE_SET ($(aws_reason)); delete it in the CloudFormation console"
  CHANGE_SET=
}

# Prints the change set's resource changes, one line each: action, logical id, type, replacement.
describe_changes() {
  jq -r '.Changes[]? | .ResourceChange | select(. != null)
    | "  \(.Action)\t\(.LogicalResourceId)\t\(.ResourceType)\(if (.Replacement // "") == "True" then "\t(replaced)" else "" end)"' \
    "$WORK/change-set.json"
}

# Waits for the stack to settle after execute-change-set or delete-stack. Succeeds on the given
# final states; on a rollback it names the first resource that failed and why.
wait_for_stack() {
  local want=$1 status deadline=$((SECONDS + STACK_SECONDS))
  while :; do
    status=$(stack_status)
    if [[ " $want " == *" $status "* ]]; then
      return 0
    fi
    case $status in
      *ROLLBACK_COMPLETE | *ROLLBACK_FAILED | *_FAILED) die_with_stack_failure "$status" ;;
    esac
    ((SECONDS < deadline)) ||
      die "stack $AWS_STACK_NAME was still $status after ${STACK_SECONDS}s: see its events in the CloudFormation console, raise ISP_MONITOR_STACK_TIMEOUT or run ./$SCRIPT_NAME again later"
    sleep "$POLL_SECONDS"
  done
}

die_with_stack_failure() {
  local status=$1 first=""
  if aws_json cloudformation describe-stack-events --stack-name "$AWS_STACK_NAME" >"$WORK/events.json"; then
    # Events come newest first; the root cause is the oldest failure of the last operation.
    first=$(jq -r '[.StackEvents[]? | select((.ResourceStatus // "") | test("FAILED$"))
      | select((.ResourceStatusReason // "") | test("cancelled|Resource creation cancelled|Resource update cancelled") | not)]
      | last | select(. != null) | "\(.LogicalResourceId): \(.ResourceStatusReason // "no reason")"' "$WORK/events.json")
  fi
  first=$(tr -s '\r\n\t' '   ' <<<"${first:-see the stack events in the CloudFormation console}")
  if [[ $status == ROLLBACK_COMPLETE ]]; then
    die "the first deployment of $AWS_STACK_NAME failed and CloudFormation rolled it back ($first): fix the cause and run ./$SCRIPT_NAME again (it deletes the empty stack first)"
  fi
  die "the deployment of $AWS_STACK_NAME failed (stack $status; ${first:0:400}): fix the cause and run ./$SCRIPT_NAME again"
}

# Creates or updates the stack. A stack left in ROLLBACK_COMPLETE by a failed first deploy can
# only be deleted (docs/platform.md §16), so it is deleted first.
deploy_stack() {
  local status type params rc=0
  status=$(stack_status)
  case $status in
    ROLLBACK_COMPLETE)
      info "==> stack $AWS_STACK_NAME is ROLLBACK_COMPLETE (a failed first deploy): deleting it before creating it again"
      aws_json cloudformation delete-stack --stack-name "$AWS_STACK_NAME" >/dev/null || aws_die "deleting stack $AWS_STACK_NAME"
      wait_for_stack NONE
      status=NONE
      ;;
    *_IN_PROGRESS)
      [[ $status == REVIEW_IN_PROGRESS ]] ||
        die "stack $AWS_STACK_NAME is busy ($status): wait until it settles and run ./$SCRIPT_NAME again"
      ;;
    *_FAILED) die "stack $AWS_STACK_NAME is $status: repair it in the CloudFormation console (docs/aws.md) and run ./$SCRIPT_NAME again" ;;
  esac
  if [[ $status == NONE || $status == REVIEW_IN_PROGRESS ]]; then type=CREATE; else type=UPDATE; fi
  params=$(parameters_file value value)
  local verb=updating
  [[ $type == UPDATE ]] || verb=creating
  info "==> $verb stack $AWS_STACK_NAME in $AWS_REGION through a change set (a first deploy takes a few minutes)"
  create_change_set "$type" "$params" || rc=$?
  rm -f "$params"
  if ((rc == 3)); then
    info "    no change: the stack is up to date"
  else
    aws_json cloudformation execute-change-set --change-set-name "$CHANGE_SET" >/dev/null || aws_die "executing the change set"
    CHANGE_SET=
    wait_for_stack "CREATE_COMPLETE UPDATE_COMPLETE"
  fi
  [[ $(stack_status) =~ ^(CREATE|UPDATE)_COMPLETE$ ]] || die "stack $AWS_STACK_NAME is not complete: run ./$SCRIPT_NAME again"
  NEW_URL=$(stack_output HeartbeatUrl)
  TOPIC_ARN=$(stack_output TopicArn)
  LOG_GROUP=$(stack_output LogGroupName)
  [[ -n $NEW_URL ]] || die "the stack has no HeartbeatUrl output: check $TEMPLATE's Outputs and run ./$SCRIPT_NAME again"
  [[ $NEW_URL == https://* || $NEW_URL =~ ^http://(127\.0\.0\.1|localhost)(:[0-9]+)?/ ]] ||
    die "the stack returned '$NEW_URL', which is not an https URL: check $TEMPLATE's HeartbeatUrl output"
  info "    function: $(stack_output FunctionName), logs: ${LOG_GROUP:-?}"
}

# ------------------------------------------------------------------------------------------ --check

check_all() {
  local problems=0 line path status
  report() { printf '%-5s %s\n' "$1" "$2"; [[ $1 != FAIL ]] || problems=$((problems + 1)); }

  for line in aws:awscli jq:jq zip:zip curl:curl cargo:cargo rustc:rustc; do
    if command -v "${line%%:*}" >/dev/null 2>&1; then
      report ok "${line%%:*} found"
    elif [[ ${line%%:*} == aws ]]; then
      report FAIL "aws (the AWS CLI) is not installed: see $AWS_INSTALL_URL (then 'aws configure'); the credentials and the stack are not checked without it"
    elif [[ ${line%%:*} == cargo || ${line%%:*} == rustc ]]; then
      report FAIL "${line%%:*} is not installed: install Rust from https://rustup.rs"
    else
      report FAIL "${line%%:*} is not installed: $(install_hint "${line#*:}")"
    fi
  done
  path=$(build_path)
  report ok "build path: $path for a static $MUSL_TARGET bootstrap"
  while IFS= read -r line; do
    [[ -n $line ]] && report FAIL "$line"
  done < <(build_problems "$path")
  while IFS= read -r line; do
    [[ -n $line ]] && report FAIL "$line"
  done < <(settings_problems)
  [[ -n ${ALERT_EMAIL:-} ]] && report ok "alerts go to $ALERT_EMAIL (SNS asks it to confirm once)"
  report ok "devices watched: $HEARTBEAT_DEVICES (one silence alarm each)"
  case ${REMINDER_MINUTES:-15} in
    0) report ok "reminders while a device stays silent: off (REMINDER_MINUTES=0)" ;;
    5 | 10 | 15 | 30 | 60) report ok "reminders while a device stays silent: every ${REMINDER_MINUTES:-15} minutes (REMINDER_MINUTES)" ;;
  esac
  if [[ -n ${AWS_FUNCTION_KEY:-} ]]; then
    report ok "function key kept in $ENV_FILE (AWS_FUNCTION_KEY)"
  else
    report ok "function key: a new one is made on the first deploy and kept in $ENV_FILE"
  fi

  if command -v aws >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
    if aws_json sts get-caller-identity >"$WORK/identity.json"; then
      report ok "AWS credentials work: account $(jq -r '.Account' "$WORK/identity.json") as $(jq -r '.Arn' "$WORK/identity.json")"
      if status=$(stack_status 2>/dev/null); then
        if [[ $status == NONE ]]; then
          report ok "stack $AWS_STACK_NAME will be created in $AWS_REGION"
        else
          report ok "stack $AWS_STACK_NAME exists in $AWS_REGION ($status)"
        fi
      else
        report FAIL "cannot read stack $AWS_STACK_NAME: $(aws_reason)"
      fi
    else
      report FAIL "no working AWS credentials ($(aws_reason)): run 'aws configure' (or 'aws sso login')"
    fi
  fi
  if ((problems)); then
    die "$problems problem(s) found: fix them and run ./$SCRIPT_NAME --check again"
  fi
  info "All checks passed: run ./$SCRIPT_NAME to deploy."
}

# --------------------------------------------------------------------------------------- the end

save_settings() {
  HEARTBEAT_URL=$NEW_URL HEARTBEAT_KEY=$AWS_FUNCTION_KEY \
    set_env_values "$ENV_FILE" HEARTBEAT_URL HEARTBEAT_KEY AWS_REGION AWS_STACK_NAME HEARTBEAT_DEVICES AWS_FUNCTION_KEY
  info "==> wrote HEARTBEAT_URL, HEARTBEAT_KEY, AWS_REGION, AWS_STACK_NAME and HEARTBEAT_DEVICES to $ENV_FILE (mode 600)"
}

# The email subscription stays PendingConfirmation until its link is followed; SNS's
# confirmation tokens last two days (docs/platform.md §16). Said in a box while it is pending.
confirmation_notice() {
  local pending=1
  if [[ -n ${TOPIC_ARN:-} ]] &&
    aws_json sns list-subscriptions-by-topic --topic-arn "$TOPIC_ARN" >"$WORK/subscriptions.json"; then
    ISP_MONITOR_EMAIL=$ALERT_EMAIL jq -e '[.Subscriptions[]? | select(.Endpoint == env.ISP_MONITOR_EMAIL)
      | select(.SubscriptionArn | startswith("arn:"))] | length > 0' "$WORK/subscriptions.json" >/dev/null && pending=0
  fi
  if ((pending == 0)); then
    info "Alert email $ALERT_EMAIL is confirmed: alarms and outage reports reach it."
    return 0
  fi
  boxed "ACTION NEEDED: confirm your alert email within 2 days" \
    "" \
    "AWS has emailed a subscription confirmation request to" \
    "  $ALERT_EMAIL" \
    "(subject 'AWS Notification - Subscription Confirmation';" \
    "look in the spam folder too). Follow its 'Confirm subscription'" \
    "link, or no alarm and no outage report will ever reach you." \
    "The link expires after 2 days: then run ./deploy_aws.sh again."
}

next_steps() {
  cat <<EOF

Deployed on AWS: heartbeats go to $NEW_URL
Next:
  ./start_heartbeat.sh            start the agent in tmux (session '${ISP_MONITOR_SESSION:-isp-monitor}')
  ./start_heartbeat.sh --status   see whether it runs and its last heartbeat
  ./stop_heartbeat.sh             stop it
Costs, alarm delays and logs: docs/aws.md.
EOF
  confirmation_notice
}

# ------------------------------------------------------------------------------------------- modes

prepare() {
  local mode=$1
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/deploy_aws.XXXXXX")
  trap 'cleanup' EXIT
  if [[ $mode == deploy && ! -f $ENV_FILE ]]; then
    [[ -f $ROOT/.env.example ]] || die ".env.example is missing: restore it from the repository and run again"
    (umask 077 && cp "$ROOT/.env.example" "$ENV_FILE")
    chmod 600 "$ENV_FILE"
    info "==> created $ENV_FILE from .env.example"
  fi
  load_env "$ENV_FILE"
  apply_defaults
  # Seconds to wait for the heartbeat to be accepted (as deploy.sh), for the stack to settle, and
  # between tries.
  WAIT_SECONDS=${ISP_MONITOR_DEPLOY_TIMEOUT:-300}
  STACK_SECONDS=${ISP_MONITOR_STACK_TIMEOUT:-1800}
  POLL_SECONDS=${ISP_MONITOR_POLL_SECONDS:-5}
  is_positive_int "$WAIT_SECONDS" || die "ISP_MONITOR_DEPLOY_TIMEOUT '$WAIT_SECONDS' is not a whole number of seconds: fix it"
  is_positive_int "$STACK_SECONDS" || die "ISP_MONITOR_STACK_TIMEOUT '$STACK_SECONDS' is not a whole number of seconds: fix it"
  [[ $POLL_SECONDS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "ISP_MONITOR_POLL_SECONDS '$POLL_SECONDS' is not a number of seconds: fix it"
}

# On any exit: a change set this run made and did not execute is deleted, and so is a stack that
# only a --what-if change set created; then the work directory goes.
cleanup() {
  local rc=$?
  if [[ -n ${CHANGE_SET:-} ]]; then
    aws_json cloudformation delete-change-set --change-set-name "$CHANGE_SET" >/dev/null 2>&1 || true
  fi
  if [[ -n ${WHAT_IF_STACK:-} ]]; then
    aws_json cloudformation delete-stack --stack-name "$AWS_STACK_NAME" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}

run_check() {
  prepare check
  check_all
}

run_what_if() {
  local status type params
  require_aws
  require_cmd jq
  prepare what-if
  require_settings
  require_credentials
  status=$(stack_status)
  BUCKET=$(code_bucket)
  CODE_KEY=lambda/not-yet-built.zip
  case $status in
    NONE | REVIEW_IN_PROGRESS | ROLLBACK_COMPLETE)
      type=CREATE
      # A new stack's change set needs every value; the key is a throwaway, not saved.
      [[ -n ${AWS_FUNCTION_KEY:-} ]] || AWS_FUNCTION_KEY=$(new_key)
      params=$(parameters_file value value)
      ;;
    *_IN_PROGRESS) die "stack $AWS_STACK_NAME is busy ($status): wait until it settles and run ./$SCRIPT_NAME --what-if again" ;;
    *)
      type=UPDATE
      # The code and, when .env holds none, the key stay as deployed: what changes is the rest.
      if [[ -n ${AWS_FUNCTION_KEY:-} ]]; then params=$(parameters_file value previous); else params=$(parameters_file previous previous); fi
      ;;
  esac
  if [[ $status == ROLLBACK_COMPLETE ]]; then
    info "Stack $AWS_STACK_NAME is ROLLBACK_COMPLETE (a failed first deploy): a deploy deletes it and creates it anew with every resource of $TEMPLATE."
    return 0
  fi
  info "==> what a deploy would change in stack $AWS_STACK_NAME ($AWS_REGION), from a change set that is deleted afterwards:"
  [[ $status != NONE ]] || WHAT_IF_STACK=1
  if create_change_set "$type" "$params"; then
    describe_changes
    delete_change_set
  else
    info "  no change: the stack is up to date (the code is compared only by a deploy, which builds it)"
  fi
  if [[ $status == NONE ]]; then
    # The CREATE change set made the stack in REVIEW_IN_PROGRESS; it goes with the change set.
    aws_json cloudformation delete-stack --stack-name "$AWS_STACK_NAME" >/dev/null || aws_die "deleting the review stack $AWS_STACK_NAME"
    WHAT_IF_STACK=
  fi
  info "Nothing was changed. Run ./$SCRIPT_NAME to deploy."
}

run_package() {
  require_cmd zip
  prepare package
  require_build_tools
  build_static lambda "the Lambda function"
  package_lambda
  info "==> wrote the package ($(du -k "$LAMBDA_PACKAGE" | cut -f1) KB):"
  printf '%s\n' "$LAMBDA_PACKAGE"
}

run_deploy() {
  require_aws
  require_cmd jq
  require_cmd zip
  require_cmd curl
  command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust from https://rustup.rs and run ./$SCRIPT_NAME again"
  command -v rustc >/dev/null 2>&1 || die "rustc is not installed: install Rust from https://rustup.rs and run ./$SCRIPT_NAME again"
  prepare deploy
  ask_alert_email
  require_settings
  require_build_tools
  require_credentials
  info "==> deploying to AWS account $ACCOUNT_ID, region $AWS_REGION, stack $AWS_STACK_NAME"
  ensure_function_key
  build_static lambda "the Lambda function"
  package_lambda
  ensure_bucket
  upload_package
  deploy_stack
  NEW_KEY=$AWS_FUNCTION_KEY
  HEARTBEAT_HINT_401="AWS_FUNCTION_KEY in $ENV_FILE differs from the deployed one: run ./$SCRIPT_NAME again"
  HEARTBEAT_HINT_404="the function does not serve /api/ping; check $TEMPLATE's HeartbeatUrl output"
  HEARTBEAT_HINT_LOGS="the log group ${LOG_GROUP:-of the function} in CloudWatch (docs/aws.md)"
  send_heartbeat
  save_settings
  next_steps
}

main() {
  (($# <= 1)) || die "one option at most, got '$*': run ./$SCRIPT_NAME --help"
  case ${1:-} in
    "") run_deploy ;;
    --check) run_check ;;
    --what-if) run_what_if ;;
    --package) run_package ;;
    -h | --help) usage ;;
    *) die "unknown option '$1': run ./$SCRIPT_NAME --help" ;;
  esac
}

main "$@"

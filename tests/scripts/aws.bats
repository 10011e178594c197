#!/usr/bin/env bats
# deploy_aws.sh against the aws stand-in (tests/scripts/stubs/aws), the cargo/rustc stand-ins and,
# for the heartbeat it sends, the key-checking loopback peer (keygate.pl, which checks
# x-functions-key as the Lambda function does). Nothing reaches AWS or the internet. Every aws
# line recorded here is replayed through the real AWS CLI's parser by tests/awscli.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

# Whose one-line reason assert_failed_with (test_helper.bash) expects.
# shellcheck disable=SC2034 # read by test_helper.bash
SCRIPT_UNDER_TEST=deploy_aws.sh

setup() {
  common_setup
  aws_setup
  # The heartbeat is retried for at most 3 s; the stack's own wait is bounded by the stand-in's
  # AWS_STUB_STACK_POLLS (a busy machine makes each call slow, so no tight bound there).
  export ISP_MONITOR_DEPLOY_TIMEOUT=3 ISP_MONITOR_STACK_TIMEOUT=120 ISP_MONITOR_POLL_SECONDS=0.05
  write_env \
    "# my settings" \
    "ALERT_EMAIL=me@example.com" \
    "HEARTBEAT_DEVICE=den-pc" \
    "HEARTBEAT_DEVICES=den-pc,kitchen.pi" \
    "HEARTBEAT_URL=https://old.example.net/api/ping" \
    "KEEP_ME='untouched value' # a line deploy_aws.sh must not rewrite"
}

teardown() {
  common_teardown
}

# The aws scripts, the template (the repository's once aws/template.yaml is there) and the stand-in.
aws_setup() {
  local var
  for var in $(compgen -v | grep -E '^AWS_' | grep -vx AWS_REPLAY_RECORD || true); do
    unset "$var"
  done
  unset HEARTBEAT_DEVICES
  export AWS_STUB_STATE=$BATS_TEST_TMPDIR/aws-state
  cp "$REAL_ROOT/deploy_aws.sh" "$REAL_ROOT/deploy_cloud.sh" "$REPO/"
  mkdir -p "$REPO/aws"
  if [[ -f $REAL_ROOT/aws/template.yaml ]]; then
    cp "$REAL_ROOT/aws/template.yaml" "$REPO/aws/"
  else
    printf '# aws/template.yaml is not in this clone yet (h-awsinfra writes it)\n' >"$REPO/aws/template.yaml"
  fi
  ln -sf "$STAND_INS/aws" "$STUBS/aws"
}

use_keygate() {
  start_keygate "$1"
  export AWS_STUB_HEARTBEAT_URL=http://127.0.0.1:$KEYGATE_PORT/api/ping
}

env_value() {
  sed -n "s/^$1=//p" "$REPO/.env"
}

# Deploys once with a key already in .env, behind the key-checking peer.
deploy_with_key() {
  printf 'AWS_FUNCTION_KEY=%s\n' "$1" >>"$REPO/.env"
  use_keygate "$1"
  run "$REPO/deploy_aws.sh"
}

# ---------------------------------------------------------------------------------- happy path

@test "deploy_aws: identity, build, zip, bucket, upload, change set, execute, heartbeat, in that order" {
  ISP_MONITOR_DEPLOY_TIMEOUT=1 run "$REPO/deploy_aws.sh" </dev/null
  # The key is made during the run: the peer learns it from .env afterwards, so this first run is
  # checked for its steps up to the heartbeat, which the peer (started without the key) refuses.
  assert_in_order \
    "aws sts get-caller-identity --region us-east-1 --output json" \
    "cargo build --release --locked --manifest-path $REPO/Cargo.toml --target x86_64-unknown-linux-musl --bin lambda" \
    "aws s3api head-bucket --bucket ispmon-code-123456789012-us-east-1 --region us-east-1 --output json" \
    "aws s3api create-bucket --bucket ispmon-code-123456789012-us-east-1 --region us-east-1 --output json" \
    "aws s3api put-object --bucket ispmon-code-123456789012-us-east-1 --key lambda/" \
    "aws cloudformation describe-stacks --stack-name isp-monitor" \
    "aws cloudformation create-change-set --stack-name isp-monitor --change-set-name isp-monitor-" \
    "aws cloudformation describe-change-set --change-set-name arn:aws:cloudformation:us-east-1:123456789012:changeSet/" \
    "aws cloudformation execute-change-set --change-set-name arn:aws:cloudformation:" \
    "aws cloudformation describe-stacks --stack-name isp-monitor"
  calls "create-change-set" | grep -q -- "--change-set-type CREATE --template-body file://$REPO/aws/template.yaml --parameters file://"
  calls "create-change-set" | grep -q -- "--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND"
  # Every aws call names the region and asks for JSON.
  [ "$(grep -c '^aws ' "$STUB_LOG")" -eq "$(grep -c -- '--region us-east-1 --output json$' "$STUB_LOG")" ]
}

@test "deploy_aws: the heartbeat carries the generated key; .env gets URL, key and the AWS keys, other lines untouched" {
  local key=k0123456789abcdef0123456789abcdef
  deploy_with_key "$key"
  [ "$status" -eq 0 ]
  [[ $output == *"answered 200 ok"* ]]
  run grep -c '^POST /api/ping key=match body=.*"device":"den-pc".*"note":"deploy_aws.sh check"' "$KEYGATE_LOG"
  [ "$output" -eq 1 ]
  [ "$(file_mode "$REPO/.env")" = 600 ]
  run cat "$REPO/.env"
  [ "$output" = "$(printf '%s\n' "# my settings" "ALERT_EMAIL=me@example.com" "HEARTBEAT_DEVICE=den-pc" \
    "HEARTBEAT_DEVICES=den-pc,kitchen.pi" "HEARTBEAT_URL=http://127.0.0.1:$KEYGATE_PORT/api/ping" \
    "KEEP_ME='untouched value' # a line deploy_aws.sh must not rewrite" "AWS_FUNCTION_KEY=$key" \
    "HEARTBEAT_KEY=$key" "AWS_REGION=us-east-1" "AWS_STACK_NAME=isp-monitor")" ]
}

@test "deploy_aws: the key is made once (43 URL-safe characters), kept, reused, and shown nowhere" {
  # The peer cannot know the new key yet: this first run stops at the heartbeat, the key kept.
  ISP_MONITOR_DEPLOY_TIMEOUT=1 run "$REPO/deploy_aws.sh"
  local key
  key=$(env_value AWS_FUNCTION_KEY)
  [[ $key =~ ^[A-Za-z0-9_-]{43}$ ]] || fail_test "key shape: ${#key} characters"
  [[ $output != *"$key"* ]]
  refute grep -q -- "$key" "$STUB_LOG"
  # It travels in the parameters file only, as FunctionKey.
  [ "$(jq -r '.[] | select(.ParameterKey == "FunctionKey") | .ParameterValue' "$AWS_STUB_STATE/parameters-1.json")" = "$key" ]
  # The second run (now with the peer knowing it) keeps it.
  use_keygate "$key"
  run "$REPO/deploy_aws.sh"
  [ "$status" -eq 0 ]
  [ "$(env_value AWS_FUNCTION_KEY)" = "$key" ]
  [ "$(env_value HEARTBEAT_KEY)" = "$key" ]
  [[ $output != *"$key"* ]]
  refute grep -q -- "$key" "$STUB_LOG"
  # Two runs never make the same key.
  rm "$REPO/.env"
  write_env "ALERT_EMAIL=me@example.com"
  ISP_MONITOR_DEPLOY_TIMEOUT=1 run "$REPO/deploy_aws.sh"
  [[ $(env_value AWS_FUNCTION_KEY) =~ ^[A-Za-z0-9_-]{43}$ ]]
  [ "$(env_value AWS_FUNCTION_KEY)" != "$key" ]
}

@test "deploy_aws: the parameters are the template's, from .env, with the uploaded zip's bucket and key" {
  deploy_with_key k0123456789abcdef0123456789abcdef
  [ "$status" -eq 0 ]
  run jq -c 'map({(.ParameterKey): .ParameterValue}) | add | del(.FunctionKey)' "$AWS_STUB_STATE/parameters-1.json"
  local code
  code=$(ls "$AWS_STUB_STATE/objects")
  [[ $code =~ ^lambda_[0-9a-f]{64}\.zip$ ]]
  [ "$output" = '{"NamePrefix":"ispmon","AlertEmail":"me@example.com","DeviceNames":"den-pc,kitchen.pi","CodeS3Bucket":"ispmon-code-123456789012-us-east-1","CodeS3Key":"lambda/'"${code#lambda_}"'","Architecture":"x86_64"}' ]
  # The zip holds bootstrap only, the built binary, mode 755.
  run zipinfo -1 "$AWS_STUB_STATE/objects/$code"
  [ "$output" = bootstrap ]
  run zipinfo "$AWS_STUB_STATE/objects/$code"
  [[ $output == *"-rwxr-xr-x"*" bootstrap"* ]]
  unzip -p "$AWS_STUB_STATE/objects/$code" bootstrap | cmp - "$REPO/target/x86_64-unknown-linux-musl/release/lambda"
}

@test "deploy_aws: the template names every parameter deploy_aws.sh passes, and its outputs" {
  [[ -f $REAL_ROOT/aws/template.yaml ]] || fail_test "aws/template.yaml is missing from this clone"
  local name
  for name in NamePrefix AlertEmail DeviceNames SilenceMinutes ReminderMinutes FunctionKey CodeS3Bucket CodeS3Key Architecture \
    HeartbeatUrl FunctionName LogGroupName TopicArn; do
    grep -qE "^  $name:" "$REAL_ROOT/aws/template.yaml" || fail_test "aws/template.yaml has no $name"
  done
  # FunctionKey is NoEcho: CloudFormation never shows it.
  awk '/^  FunctionKey:/ { f = 1; next } f && /^  [A-Za-z]/ { f = 0 } f' "$REAL_ROOT/aws/template.yaml" | grep -q 'NoEcho: true'
}

@test "deploy_aws: running it again converges: one bucket, no new change set executed for the same build, one line per key" {
  deploy_with_key k0123456789abcdef0123456789abcdef
  [ "$status" -eq 0 ]
  run "$REPO/deploy_aws.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"no change: the stack is up to date"* ]]
  [[ $output == *"code bucket s3://ispmon-code-123456789012-us-east-1 exists"* ]]
  [ "$(calls 'aws s3api create-bucket' | wc -l)" -eq 1 ]
  [ "$(calls 'aws cloudformation create-change-set' | wc -l)" -eq 2 ]
  [ "$(calls 'aws cloudformation execute-change-set' | wc -l)" -eq 1 ]
  calls 'create-change-set' | tail -n1 | grep -q -- '--change-set-type UPDATE'
  # The empty change set was deleted.
  [ "$(calls 'aws cloudformation delete-change-set' | wc -l)" -eq 1 ]
  local k
  for k in HEARTBEAT_URL HEARTBEAT_KEY AWS_FUNCTION_KEY AWS_REGION AWS_STACK_NAME HEARTBEAT_DEVICES; do
    [ "$(count_lines "^$k=" "$REPO/.env")" -eq 1 ] || fail_test "$k: $(grep "^$k=" "$REPO/.env")"
  done
  # A changed setting is an update that runs.
  printf 'SILENCE_MINUTES=10\n' >>"$REPO/.env"
  run "$REPO/deploy_aws.sh"
  [ "$status" -eq 0 ]
  [ "$(calls 'aws cloudformation execute-change-set' | wc -l)" -eq 2 ]
  [ "$(jq -r '.[] | select(.ParameterKey == "SilenceMinutes") | .ParameterValue' "$AWS_STUB_STATE/parameters-3.json")" = 10 ]
  # No REMINDER_MINUTES: the template's default (15) applies, no parameter is passed.
  [ "$(jq '[.[] | select(.ParameterKey == "ReminderMinutes")] | length' "$AWS_STUB_STATE/parameters-3.json")" -eq 0 ]
}

@test "deploy_aws: REMINDER_MINUTES reaches the template as ReminderMinutes; --check reports it" {
  printf 'REMINDER_MINUTES=30\n' >>"$REPO/.env"
  deploy_with_key k0123456789abcdef0123456789abcdef
  [ "$status" -eq 0 ]
  [ "$(jq -r '.[] | select(.ParameterKey == "ReminderMinutes") | .ParameterValue' "$AWS_STUB_STATE/parameters-1.json")" = 30 ]
  run "$REPO/deploy_aws.sh" --check
  [[ $output == *"reminders while a device stays silent: every 30 minutes (REMINDER_MINUTES)"* ]]
  grep -v '^REMINDER_MINUTES=' "$REPO/.env" >"$BATS_TEST_TMPDIR/env"
  printf 'REMINDER_MINUTES=0\n' >>"$BATS_TEST_TMPDIR/env"
  cp "$BATS_TEST_TMPDIR/env" "$REPO/.env"
  run "$REPO/deploy_aws.sh" --check
  [[ $output == *"reminders while a device stays silent: off (REMINDER_MINUTES=0)"* ]]
}

@test "deploy_aws: another region gets its LocationConstraint; AWS_REGION and AWS_STACK_NAME come from .env" {
  printf '%s\n' "AWS_REGION=eu-west-1" "AWS_STACK_NAME=home-monitor" >>"$REPO/.env"
  deploy_with_key k0123456789abcdef0123456789abcdef
  [ "$status" -eq 0 ]
  calls "aws s3api create-bucket" | grep -q -- "--bucket ispmon-code-123456789012-eu-west-1 --create-bucket-configuration LocationConstraint=eu-west-1 --region eu-west-1"
  calls "create-change-set" | grep -q -- "--stack-name home-monitor"
  [ "$(env_value AWS_REGION)" = eu-west-1 ]
}

@test "deploy_aws: a pending email subscription gets the confirmation box; a confirmed one a line" {
  deploy_with_key k0123456789abcdef0123456789abcdef
  [ "$status" -eq 0 ]
  [[ $output == *"| ACTION NEEDED: confirm your alert email within 2 days"* ]]
  [[ $output == *"|   me@example.com "* ]]
  calls "aws sns list-subscriptions-by-topic --topic-arn arn:aws:sns:us-east-1:123456789012:ispmon-alerts" | grep -q .
  AWS_STUB_SUBSCRIPTION=confirmed run "$REPO/deploy_aws.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"Alert email me@example.com is confirmed"* ]]
  [[ $output != *"ACTION NEEDED"* ]]
}

# ---------------------------------------------------------------------------------------- failures

@test "fails: a first deploy that rolls back names the resource and reason; the next run deletes the stack and creates it" {
  printf 'AWS_FUNCTION_KEY=%s\n' k0123456789abcdef0123456789abcdef >>"$REPO/.env"
  AWS_STUB_DEPLOY_FAIL=code run "$REPO/deploy_aws.sh"
  assert_failed_with "the first deployment of isp-monitor failed and CloudFormation rolled it back (Function: Resource handler returned message: \"Error occurred while GetObject. S3 Error Code: NoSuchKey"
  refute grep -q '^HEARTBEAT_KEY=' "$REPO/.env"
  grep -qx 'HEARTBEAT_URL=https://old.example.net/api/ping' "$REPO/.env"
  use_keygate k0123456789abcdef0123456789abcdef
  run "$REPO/deploy_aws.sh"
  [ "$status" -eq 0 ]
  [[ $output == *"is ROLLBACK_COMPLETE (a failed first deploy): deleting it"* ]]
  assert_in_order "aws cloudformation execute-change-set" "aws cloudformation delete-stack --stack-name isp-monitor" \
    "aws cloudformation create-change-set --stack-name isp-monitor" "aws cloudformation execute-change-set"
}

@test "fails: an update that rolls back leaves .env as it was and says which resource failed" {
  deploy_with_key k0123456789abcdef0123456789abcdef
  [ "$status" -eq 0 ]
  cp "$REPO/.env" "$BATS_TEST_TMPDIR/env.before"
  printf 'SILENCE_MINUTES=7\n' >>"$REPO/.env"
  cp "$REPO/.env" "$BATS_TEST_TMPDIR/env.before"
  AWS_STUB_DEPLOY_FAIL=code run "$REPO/deploy_aws.sh"
  assert_failed_with "the deployment of isp-monitor failed (stack UPDATE_ROLLBACK_COMPLETE; Function: Resource handler returned message"
  cmp "$REPO/.env" "$BATS_TEST_TMPDIR/env.before"
}

@test "fails: no credentials, or expired ones: says to run aws configure, before any build" {
  AWS_STUB_CREDENTIALS=none run "$REPO/deploy_aws.sh"
  assert_failed_with "no AWS credentials (Unable to locate credentials. You can configure credentials by running \"aws configure\".): run 'aws configure' (or 'aws sso login'), then ./deploy_aws.sh again"
  [ -z "$(calls cargo)" ]
  [ "$(grep -c '^aws ' "$STUB_LOG")" -eq 1 ]
  AWS_STUB_CREDENTIALS=expired run "$REPO/deploy_aws.sh"
  assert_failed_with "(An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired): run 'aws configure'"
  refute grep -q '^AWS_FUNCTION_KEY=' "$REPO/.env"
}

@test "fails: without the aws CLI: where to get it, nothing else runs" {
  hide_command aws
  run "$REPO/deploy_aws.sh"
  assert_failed_with "aws (the AWS CLI) is not installed: install it (see https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
  [ -z "$(calls cargo)" ]
}

@test "fails: a bucket name another account holds (403): set AWS_CODE_BUCKET; with it set, that bucket is used" {
  printf 'AWS_FUNCTION_KEY=%s\n' k0123456789abcdef0123456789abcdef >>"$REPO/.env"
  AWS_STUB_BUCKET=foreign run "$REPO/deploy_aws.sh"
  assert_failed_with "the bucket name ispmon-code-123456789012-us-east-1 is taken by another account (403): set AWS_CODE_BUCKET"
  [ -z "$(calls create-change-set)" ]
  printf 'AWS_CODE_BUCKET=my-own-bucket\n' >>"$REPO/.env"
  use_keygate k0123456789abcdef0123456789abcdef
  run "$REPO/deploy_aws.sh"
  [ "$status" -eq 0 ]
  calls "aws s3api put-object --bucket my-own-bucket" | grep -q .
}

@test "fails: the deployed function refuses the key (401): .env keeps its old URL" {
  printf 'AWS_FUNCTION_KEY=%s\n' k0123456789abcdef0123456789abcdef >>"$REPO/.env"
  use_keygate some-other-key-entirely-0123456789
  run "$REPO/deploy_aws.sh"
  assert_failed_with "the heartbeat was refused with 401: the function key was not accepted; AWS_FUNCTION_KEY in $REPO/.env differs from the deployed one"
  grep -qx 'HEARTBEAT_URL=https://old.example.net/api/ping' "$REPO/.env"
  refute grep -q '^HEARTBEAT_KEY=' "$REPO/.env"
}

@test "fails: bad settings are refused before any aws call, each with the fix" {
  local setting
  for setting in "NAME_PREFIX=Home:must be 2 to 20 lowercase" "AWS_REGION=Frankfurt:is not a region name like 'us-east-1'" \
    "SILENCE_MINUTES=120:must be a whole number from 2 to 60 on AWS" "HEARTBEAT_DEVICES=my pc:must be 1 to 100 ASCII letters" \
    "HEARTBEAT_DEVICES=my-pc,mypc:differs from another name only in" "AWS_FUNCTION_KEY=short:must be 32 to 128" \
    "ALERT_EMAIL=nobody:is not an email address" "AWS_STACK_NAME=1stack:must start with a letter" \
    "REMINDER_MINUTES=7:REMINDER_MINUTES '7' must be one of 0 (off), 5, 10, 15, 30 or 60"; do
    : >"$STUB_LOG"
    write_env "ALERT_EMAIL=me@example.com" "${setting%%:*}"
    run "$REPO/deploy_aws.sh"
    assert_failed_with "${setting#*:}"
    [ -z "$(calls 'aws ')" ] || fail_test "$setting: aws was called"
  done
}

@test "fails: a stack busy with another operation is left alone" {
  printf 'AWS_FUNCTION_KEY=%s\n' k0123456789abcdef0123456789abcdef >>"$REPO/.env"
  AWS_STUB_STACK_STATUS=UPDATE_IN_PROGRESS AWS_STUB_STACK_POLLS=1000 run "$REPO/deploy_aws.sh"
  assert_failed_with "stack isp-monitor is busy (UPDATE_IN_PROGRESS): wait until it settles"
  [ -z "$(calls create-change-set)" ]
}

# ------------------------------------------------------------------------------- --check, --what-if

@test "--check: without the aws CLI it still checks the rest and says what is missing, exit 1" {
  hide_command aws
  run "$REPO/deploy_aws.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  aws (the AWS CLI) is not installed: see https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html (then 'aws configure'); the credentials and the stack are not checked without it"* ]]
  [[ $output == *"ok    alerts go to me@example.com"* ]]
  [[ $output == *"ok    devices watched: den-pc,kitchen.pi (one silence alarm each)"* ]]
  [[ $output == *"ok    build path: musl-gcc for a static x86_64-unknown-linux-musl bootstrap"* ]]
  [ "${lines[${#lines[@]} - 1]}" = "deploy_aws.sh: 1 problem(s) found: fix them and run ./deploy_aws.sh --check again" ]
}

@test "--check: all good: read-only aws calls only, .env untouched, exit 0" {
  cp "$REPO/.env" "$BATS_TEST_TMPDIR/env.before"
  run "$REPO/deploy_aws.sh" --check
  [ "$status" -eq 0 ]
  [[ $output == *"ok    AWS credentials work: account 123456789012 as arn:aws:iam::123456789012:user/home"* ]]
  [[ $output == *"ok    stack isp-monitor will be created in us-east-1"* ]]
  [[ $output == *"All checks passed: run ./deploy_aws.sh to deploy."* ]]
  [ "$(grep -c '^aws ' "$STUB_LOG")" -eq "$(grep -cE '^aws (sts get-caller-identity|cloudformation describe-stacks) ' "$STUB_LOG")" ]
  cmp "$REPO/.env" "$BATS_TEST_TMPDIR/env.before"
}

@test "--check: no credentials and bad settings are all reported at once" {
  write_env "NAME_PREFIX=-x"
  AWS_STUB_CREDENTIALS=none run "$REPO/deploy_aws.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  ALERT_EMAIL is not set"* ]]
  [[ $output == *"FAIL  NAME_PREFIX '-x' must be"* ]]
  [[ $output == *"FAIL  no working AWS credentials (Unable to locate credentials."* ]]
  [ "${lines[${#lines[@]} - 1]}" = "deploy_aws.sh: 3 problem(s) found: fix them and run ./deploy_aws.sh --check again" ]
}

@test "--what-if: a new stack: lists what would be added, deletes the change set and the review stack, builds nothing" {
  cp "$REPO/.env" "$BATS_TEST_TMPDIR/env.before"
  run "$REPO/deploy_aws.sh" --what-if
  [ "$status" -eq 0 ]
  [[ $output == *"  Add	Function	AWS::Lambda::Function"* ]]
  [[ $output == *"  Add	SilenceAlarmkitchenpi	AWS::CloudWatch::Alarm"* ]]
  [[ $output == *"Nothing was changed."* ]]
  assert_in_order "aws cloudformation create-change-set" "aws cloudformation describe-change-set" \
    "aws cloudformation delete-change-set" "aws cloudformation delete-stack --stack-name isp-monitor"
  [ -z "$(calls execute-change-set)" ]
  [ -z "$(calls 's3api')" ]
  [ -z "$(calls cargo)" ]
  [ ! -e "$AWS_STUB_STATE/stack.json" ] || [ "$(jq -r .status "$AWS_STUB_STATE/stack.json")" = DELETE_IN_PROGRESS ]
  cmp "$REPO/.env" "$BATS_TEST_TMPDIR/env.before"
}

@test "--what-if: a deployed stack: an update change set that keeps the deployed code and key" {
  deploy_with_key k0123456789abcdef0123456789abcdef
  [ "$status" -eq 0 ]
  printf 'HEARTBEAT_DEVICES=den-pc,kitchen.pi,attic\n' >>"$REPO/.env"
  run "$REPO/deploy_aws.sh" --what-if
  [ "$status" -eq 0 ]
  [[ $output == *"  Modify	Function	AWS::Lambda::Function"* ]]
  calls create-change-set | tail -n1 | grep -q -- '--change-set-type UPDATE'
  local last
  last=$AWS_STUB_STATE/parameters-$(find "$AWS_STUB_STATE" -name "parameters-*.json" | wc -l | tr -d " ").json
  [ "$(jq -c '[.[] | select(.UsePreviousValue == true) | .ParameterKey]' "$last")" = '["CodeS3Bucket","CodeS3Key"]' ]
  [ "$(calls 'aws cloudformation execute-change-set' | wc -l)" -eq 1 ]
  [ "$(calls 'aws cloudformation delete-stack' | wc -l)" -eq 0 ]
}

# ------------------------------------------------------------------------------------------ --package

@test "--package: builds lambda, zips it as bootstrap, prints the path last, touches no AWS and no .env" {
  rm "$REPO/.env"
  run "$REPO/deploy_aws.sh" --package
  [ "$status" -eq 0 ]
  [ "${lines[${#lines[@]} - 1]}" = "$REPO/target/lambda.zip" ]
  [[ $output == *"building the Lambda function (release, x86_64-unknown-linux-musl, musl-gcc"* ]]
  [ -z "$(calls 'aws ')" ]
  [ ! -e "$REPO/.env" ]
  run zipinfo -1 "$REPO/target/lambda.zip"
  [ "$output" = bootstrap ]
}

@test "--package: a build that is not static x86-64 is refused with the AWS reason; no zip" {
  STUB_ELF_MACHINE=183 run "$REPO/deploy_aws.sh" --package
  assert_failed_with "is built for ELF machine 183, not x86-64 (62): the template deploys the function for x86_64 (its Architecture parameter); the package must hold a static x86-64 Linux executable; build with ./deploy_aws.sh --package and see docs/aws.md"
  [ ! -e "$REPO/target/lambda.zip" ]
  STUB_ELF_KIND=interp run "$REPO/deploy_aws.sh" --package
  assert_failed_with "needs a program interpreter"
}

@test "usage: --help prints the header; an unknown option fails with a pointer to it" {
  run "$REPO/deploy_aws.sh" --help
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "deploy_aws.sh: puts ISP Monitor's heartbeat endpoint on AWS Lambda"* ]]
  run "$REPO/deploy_aws.sh" --bogus
  assert_failed_with "unknown option '--bogus': run ./deploy_aws.sh --help"
}

# --------------------------------------------------------------------------------- the stand-in

@test "aws stand-in: fails like the real CLI on what deploy_aws.sh must get right (so the tests above can fail)" {
  # These lines are wrong on purpose: not for the replay through the real CLI.
  unset AWS_REPLAY_RECORD
  mkdir -p "$AWS_STUB_STATE"
  # No --output json, no region, an unknown command: usage errors (252).
  run aws sts get-caller-identity --region us-east-1
  [ "$status" -eq 252 ]
  run aws sts get-caller-identity --output json
  [ "$status" -eq 252 ]
  run aws lambda invoke --function-name f --region us-east-1 --output json
  [ "$status" -eq 252 ]
  # us-east-1 with a LocationConstraint, another region without one.
  run aws s3api create-bucket --bucket b --create-bucket-configuration LocationConstraint=us-east-1 --region us-east-1 --output json
  [ "$status" -eq 254 ]
  [[ $output == *"InvalidLocationConstraint"* ]]
  run aws s3api create-bucket --bucket b --region eu-west-1 --output json
  [[ $output == *"IllegalLocationConstraintException"* ]]
  # A change set without CAPABILITY_IAM, with an unknown or a missing parameter, or the key on the command line.
  printf 'x: 1\n' >"$BATS_TEST_TMPDIR/t.yaml"
  printf '[{"ParameterKey":"AlertEmail","ParameterValue":"a@b.c"},{"ParameterKey":"DeviceNames","ParameterValue":"d"},{"ParameterKey":"FunctionKey","ParameterValue":"k"},{"ParameterKey":"CodeS3Bucket","ParameterValue":"b"},{"ParameterKey":"CodeS3Key","ParameterValue":"k"}]' >"$BATS_TEST_TMPDIR/p.json"
  run aws cloudformation create-change-set --stack-name s --change-set-name c --change-set-type CREATE \
    --template-body "file://$BATS_TEST_TMPDIR/t.yaml" --parameters "file://$BATS_TEST_TMPDIR/p.json" --region us-east-1 --output json
  [[ $output == *"InsufficientCapabilities"* ]]
  jq '. + [{"ParameterKey":"Colour","ParameterValue":"x"}]' "$BATS_TEST_TMPDIR/p.json" >"$BATS_TEST_TMPDIR/p2.json"
  run aws cloudformation create-change-set --stack-name s --change-set-name c --change-set-type CREATE --capabilities CAPABILITY_IAM \
    --template-body "file://$BATS_TEST_TMPDIR/t.yaml" --parameters "file://$BATS_TEST_TMPDIR/p2.json" --region us-east-1 --output json
  [[ $output == *"Parameters: [Colour] do not exist in the template"* ]]
  jq 'map(select(.ParameterKey != "FunctionKey"))' "$BATS_TEST_TMPDIR/p.json" >"$BATS_TEST_TMPDIR/p3.json"
  run aws cloudformation create-change-set --stack-name s --change-set-name c --change-set-type CREATE --capabilities CAPABILITY_IAM \
    --template-body "file://$BATS_TEST_TMPDIR/t.yaml" --parameters "file://$BATS_TEST_TMPDIR/p3.json" --region us-east-1 --output json
  [[ $output == *"Parameters: [FunctionKey] must have values"* ]]
  run aws cloudformation create-change-set --stack-name s --change-set-name c --change-set-type CREATE --capabilities CAPABILITY_IAM \
    --template-body "file://$BATS_TEST_TMPDIR/t.yaml" --parameters ParameterKey=FunctionKey,ParameterValue=k --region us-east-1 --output json
  [ "$status" -eq 252 ]
  # An UPDATE of a stack that does not exist; executing a change set with no changes.
  run aws cloudformation create-change-set --stack-name s --change-set-name c --change-set-type UPDATE --capabilities CAPABILITY_IAM \
    --template-body "file://$BATS_TEST_TMPDIR/t.yaml" --parameters "file://$BATS_TEST_TMPDIR/p.json" --region us-east-1 --output json
  [[ $output == *"Stack [s] does not exist"* ]]
}

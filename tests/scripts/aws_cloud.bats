#!/usr/bin/env bats
# deploy_cloud.sh dispatching to deploy.sh (against the az stand-in) and deploy_aws.sh (against the
# aws stand-in). Nothing reaches a cloud.

# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

setup() {
  common_setup
  export AWS_STUB_STATE=$BATS_TEST_TMPDIR/aws-state ISP_MONITOR_DEPLOY_TIMEOUT=3 ISP_MONITOR_POLL_SECONDS=0.05
  cp "$REAL_ROOT/deploy_aws.sh" "$REAL_ROOT/deploy_cloud.sh" "$REPO/"
  mkdir -p "$REPO/aws"
  if [[ -f $REAL_ROOT/aws/template.yaml ]]; then
    cp "$REAL_ROOT/aws/template.yaml" "$REPO/aws/"
  else
    printf '# aws/template.yaml is not in this clone yet (h-awsinfra writes it)\n' >"$REPO/aws/template.yaml"
  fi
  ln -sf "$STAND_INS/aws" "$STUBS/aws"
  write_env "ALERT_EMAIL=me@example.com" "HEARTBEAT_DEVICE=den-pc"
}

teardown() {
  common_teardown
}

@test "deploy_cloud --cloud=both --check: each cloud's checks, a summary of who is ready, exit 0" {
  run "$REPO/deploy_cloud.sh" --cloud=both --check
  [ "$status" -eq 0 ]
  [[ $output == *"== azure: ./deploy.sh --check"*"All checks passed: run ./deploy.sh to deploy."* ]]
  [[ $output == *"== aws: ./deploy_aws.sh --check"*"All checks passed: run ./deploy_aws.sh to deploy."* ]]
  [[ $output == *"Ready to deploy: azure aws"* ]]
  refute grep -qE '^(az (group create|deployment)|aws cloudformation create)' "$STUB_LOG"
}

@test "deploy_cloud --cloud=both --check: without the aws CLI and not logged in to Azure, says what each still needs" {
  hide_command aws
  AZ_STUB_LOGGED_IN=0 run "$REPO/deploy_cloud.sh" --cloud=both --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  not logged in to Azure: run 'az login'"* ]]
  [[ $output == *"FAIL  aws (the AWS CLI) is not installed"* ]]
  [ "${lines[${#lines[@]} - 1]}" = "deploy_cloud.sh: not ready: azure aws: fix what the FAIL lines above say for each, then run ./deploy_cloud.sh --cloud=both --check again" ]
}

@test "deploy_cloud --cloud=aws --check runs deploy_aws.sh only; --cloud=azure deploy.sh only" {
  run "$REPO/deploy_cloud.sh" --cloud=aws --check
  [ "$status" -eq 0 ]
  [ -z "$(calls 'az ')" ]
  [ -n "$(calls 'aws sts get-caller-identity')" ]
  : >"$STUB_LOG"
  run "$REPO/deploy_cloud.sh" --check --cloud=azure
  [ "$status" -eq 0 ]
  [ -z "$(calls 'aws ')" ]
  [ -n "$(calls 'az account show')" ]
}

@test "deploy_cloud --cloud=aws deploys through deploy_aws.sh, and its failure is named" {
  AWS_STUB_CREDENTIALS=none run "$REPO/deploy_cloud.sh" --cloud=aws
  [ "$status" -ne 0 ]
  [[ $output == *"deploy_aws.sh: no AWS credentials"* ]]
  [ "${lines[${#lines[@]} - 1]}" = "deploy_cloud.sh: the aws deployment failed (above): fix it and run ./deploy_cloud.sh --cloud=aws" ]
}

@test "deploy_cloud: usage errors: no cloud, an unknown one, an unknown option; --help" {
  run "$REPO/deploy_cloud.sh"
  [ "$status" -eq 1 ]
  [[ $output == *"say which cloud: ./deploy_cloud.sh --cloud=azure|aws|both"* ]]
  run "$REPO/deploy_cloud.sh" --cloud=gcp
  [[ $output == *"unknown cloud 'gcp'"* ]]
  run "$REPO/deploy_cloud.sh" --cloud=aws --fast
  [[ $output == *"unknown option '--fast'"* ]]
  run "$REPO/deploy_cloud.sh" --help
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == "deploy_cloud.sh: deploys ISP Monitor's heartbeat endpoint to Azure, to AWS, or to both"* ]]
}

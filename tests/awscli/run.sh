#!/usr/bin/env bash
# Replays every aws command line the aws stand-in recorded during tests/scripts/aws*.bats through
# the real AWS CLI v1's parser and botocore's validation (tests/awscli/replay.py), offline; then
# shows that the replay can fail: lines the real CLI must refuse are refused.
#
# With AWS_REPLAY_RECORD naming a non-empty record (tests/run-all.sh sets it while the bats suites
# run), that record is replayed; otherwise this runs tests/scripts/aws*.bats first, recording.
#
# Usage: tests/awscli/run.sh
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT
readonly PY=$ROOT/tests/awscli/.venv/bin/python

die() {
  echo "tests/awscli/run.sh: $*" >&2
  exit 1
}

main() {
  cd "$ROOT"
  [[ -x $PY ]] || die "the AWS CLI is not installed for the tests: run tests/install-tools.sh"
  TMP_DIR=$(mktemp -d)
  trap 'rm -rf "$TMP_DIR"' EXIT
  if [[ -z ${AWS_REPLAY_RECORD:-} || ! -s ${AWS_REPLAY_RECORD:-} ]]; then
    export AWS_REPLAY_RECORD=$TMP_DIR/aws-calls.record
    echo "recording the aws calls of tests/scripts/aws*.bats"
    bats tests/scripts/aws*.bats >"$TMP_DIR/bats.log" 2>&1 || { cat "$TMP_DIR/bats.log"; die "the bats suites failed (above)"; }
  fi
  "$PY" tests/awscli/replay.py "$AWS_REPLAY_RECORD" || die "the real aws CLI refused command lines (above)"
  # The replay can fail: each of these is a mistake the real CLI refuses before sending anything.
# (Not among them: an enum value such as --change-set-type MAYBE. botocore does not check enums
# on the client; the service would refuse it.)
  : >"$TMP_DIR/wrong.record"
  printf '[{"ParameterKey": "A"' >"$TMP_DIR/broken.json"
  local line
  while IFS= read -r line; do
    # shellcheck disable=SC2086 # each line is words
    set -- $line
    { printf '%s\0' "$#"; printf '%s\0' "$@"; } >>"$TMP_DIR/wrong.record"
  done <<EOT
cloudformation create-change-set --stack-name s --change-set-type CREATE --template-body x --region us-east-1 --output json
cloudformation create-change-set --stack-name s --change-set-name c --parameters ParameterKey=A,Colour=b --template-body x --region us-east-1 --output json
cloudformation create-change-set --stack-name s --change-set-name c --parameters file://$TMP_DIR/broken.json --template-body x --region us-east-1 --output json
cloudformation describe-change-set --region us-east-1 --output json
cloudformation execute-changeset --change-set-name c --region us-east-1 --output json
s3api put-object --bucket b --key k --body /nonexistent/lambda.zip --region us-east-1 --output json
s3api create-bucket --bucket b --create-bucket-configuration LocationConstraint --region us-east-1 --output json
sts get-caller-identity --no-cli-pager --region us-east-1 --output json
EOT
  "$PY" tests/awscli/replay.py "$TMP_DIR/wrong.record" --expect-fail || die "the replay accepted a line the real CLI must refuse (above)"
}

main "$@"

#!/usr/bin/env bash
# deploy_cloud.sh: deploys ISP Monitor's heartbeat endpoint to Azure, to AWS, or to both, through
# ./deploy.sh (Azure Functions) and ./deploy_aws.sh (AWS Lambda).
#
# Usage: ./deploy_cloud.sh --cloud=azure|aws|both [--check] [--help]
#
#   --cloud=CLOUD  which cloud: azure (./deploy.sh), aws (./deploy_aws.sh) or both, Azure first.
#                  The agent sends to one endpoint, the HEARTBEAT_URL in .env: after both, that is
#                  the AWS one (run ./deploy.sh again to point it back at Azure).
#   --check        only check, for each cloud chosen, what it still needs (tools, login,
#                  settings); changes nothing. With both, each cloud is checked even if the
#                  first one fails, and the summary says which ones are ready.
#   --help         show this text
#
# Settings come from .env, as for the two scripts it runs (see .env.example).
set -Eeuo pipefail

readonly SCRIPT_NAME=deploy_cloud.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}" # BSD sed needs the ';' before '}'
}

# script_of CLOUD: the script that deploys it.
script_of() {
  case $1 in
    azure) echo deploy.sh ;;
    aws) echo deploy_aws.sh ;;
  esac
}

run_checks() {
  local cloud failed="" ready="" rc
  for cloud in "$@"; do
    info "== $cloud: ./$(script_of "$cloud") --check"
    rc=0
    "$ROOT/$(script_of "$cloud")" --check || rc=$?
    if ((rc == 0)); then ready+=" $cloud"; else failed+=" $cloud"; fi
    info ""
  done
  [[ -z $ready ]] || info "Ready to deploy:$ready"
  [[ -z $failed ]] || die "not ready:$failed: fix what the FAIL lines above say for each, then run ./deploy_cloud.sh --cloud=$CLOUD --check again"
  info "All checks passed: run ./deploy_cloud.sh --cloud=$CLOUD to deploy."
}

run_deploys() {
  local cloud
  for cloud in "$@"; do
    info "== $cloud: ./$(script_of "$cloud")"
    "$ROOT/$(script_of "$cloud")" ||
      die "the $cloud deployment failed (above)$([[ $cloud == aws && $# -gt 1 ]] && printf ' after Azure was deployed'): fix it and run ./deploy_cloud.sh --cloud=$cloud"
  done
  (($# == 1)) || info "Both clouds are deployed; the agent sends to the last one, AWS (HEARTBEAT_URL in .env)."
}

main() {
  local arg check=0 clouds=()
  CLOUD=""
  for arg in "$@"; do
    case $arg in
      --cloud=*) CLOUD=${arg#--cloud=} ;;
      --cloud) die "--cloud needs a value: --cloud=azure, --cloud=aws or --cloud=both" ;;
      --check) check=1 ;;
      -h | --help)
        usage
        return 0
        ;;
      *) die "unknown option '$arg': run ./deploy_cloud.sh --help" ;;
    esac
  done
  case $CLOUD in
    azure | aws) clouds=("$CLOUD") ;;
    both) clouds=(azure aws) ;;
    "") die "say which cloud: ./deploy_cloud.sh --cloud=azure|aws|both [--check] (see --help)" ;;
    *) die "unknown cloud '$CLOUD': use --cloud=azure, --cloud=aws or --cloud=both" ;;
  esac
  if ((check)); then run_checks "${clouds[@]}"; else run_deploys "${clouds[@]}"; fi
}

main "$@"

#!/usr/bin/env bash
# Installs the real AWS CLI v1 (PyPI awscli, which pins botocore) into tests/awscli/.venv, for the
# replay of every aws command line through its parser (tests/awscli/run.sh). Redone only when
# requirements.txt or python3 changes. Uses only the PyPI registry; about 100 MB.
#
# Usage: tests/awscli/install.sh
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly VENV=$HERE/.venv

main() {
  local stamp
  command -v python3 >/dev/null || { echo "tests/awscli/install.sh: python3 is missing" >&2; exit 1; }
  stamp=$({ cat "$HERE/requirements.txt"; python3 --version; } 2>&1 | cksum | cut -d' ' -f1)
  if [[ -x $VENV/bin/python && "$(cat "$VENV/.installed" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  echo "installing the AWS CLI v1 (PyPI awscli) into tests/awscli/.venv"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp" >"$VENV/.installed"
}

main "$@"

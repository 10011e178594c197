#!/usr/bin/env bash
# Installs what the AWS tests need into tests/aws/.venv: cfn-lint, botocore and pytest (PyPI,
# pinned in requirements.txt). Redone only when requirements.txt or python3 changes.
#
# Usage: tests/aws/install.sh
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly VENV=$HERE/.venv

die() {
  echo "tests/aws/install.sh: $*" >&2
  exit 1
}

main() {
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.10 or newer"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 is $(python3 --version 2>&1); cfn-lint needs 3.10 or newer here"
  local stamp
  stamp=$({ cat "$HERE/requirements.txt"; python3 --version; } 2>&1 | cksum | cut -d' ' -f1)
  if [[ -x $VENV/bin/python && "$(cat "$VENV/.installed" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  echo "installing the AWS test tools (cfn-lint, botocore, pytest) into tests/aws/.venv"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" ||
    die "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)"
  # --no-compile: byte-compiling every module (sympy's thousands) costs more CPU than the install
  # itself; run.sh caches what the tests import instead (PYTHONPYCACHEPREFIX).
  "$VENV/bin/python" -m pip install --quiet --no-compile --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp" >"$VENV/.installed"
}

main "$@"

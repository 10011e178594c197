#!/usr/bin/env bash
# Installs the real Azure CLI (PyPI azure-cli) and pytest into tests/azcli/.venv, for the replay of
# every az command line through the real parser (tests/azcli/run.sh). Redone only when
# requirements.txt or python3 changes. Uses only the PyPI registry; about 3 minutes and 750 MB.
#
# Usage: tests/azcli/install.sh
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly VENV=$HERE/.venv

die() {
  echo "tests/azcli/install.sh: $*" >&2
  exit 1
}

main() {
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.10 or newer"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 is $(python3 --version 2>&1); azure-cli needs 3.10 or newer"
  local stamp
  stamp=$({ cat "$HERE/requirements.txt"; python3 --version; } 2>&1 | cksum | cut -d' ' -f1)
  if [[ -x $VENV/bin/python && "$(cat "$VENV/.installed" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  echo "installing the Azure CLI (PyPI azure-cli) into tests/azcli/.venv"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" ||
    die "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp" >"$VENV/.installed"
}

main "$@"

#!/usr/bin/env bash
# Installs what the infrastructure tests need, inside tests/infra only:
#   .venv/         Python packages from requirements.txt (checkov, duckdb-kql, tree-sitter-bicep, pytest, ...)
#   node_modules/  npm packages from package-lock.json (Microsoft's Kusto.Language)
# Idempotent and fast when nothing changed: each part is redone only when its lock file changes.
# Needs python3 (3.11 or newer), node and npm; uses only the PyPI and npm registries.
#
# Usage: tests/infra/install.sh
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly VENV="$HERE/.venv"

die() {
  echo "tests/infra/install.sh: $*" >&2
  exit 1
}

# sha256sum (GNU) or shasum -a 256 (macOS has no sha256sum); both print "HASH  NAME" lines.
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}

stamp_of() {
  { sha256 "$@"; python3 --version; node --version; } 2>/dev/null | sha256 | cut -d' ' -f1
}

install_python() {
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 or newer"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "python3 is $(python3 --version 2>&1); duckdb-kql needs 3.11 or newer"
  local stamp
  stamp="$(stamp_of "$HERE/requirements.txt")"
  if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.installed" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  echo "installing Python test tools into tests/infra/.venv"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp" >"$VENV/.installed"
}

install_node() {
  command -v node >/dev/null || die "node is missing: install Node.js 20 or newer"
  command -v npm >/dev/null || die "npm is missing: install npm"
  local stamp
  stamp="$(stamp_of "$HERE/package-lock.json")"
  if [[ -d "$HERE/node_modules" && "$(cat "$HERE/node_modules/.installed" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  echo "installing npm test tools into tests/infra/node_modules"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$stamp" >"$HERE/node_modules/.installed"
}

main() {
  install_python
  install_node
}

main "$@"

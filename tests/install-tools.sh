#!/usr/bin/env bash
# Installs the tools the test suites need, skipping whatever is already there.
# Each suite declares its own needs in the lists below; nothing here is downloaded from outside the
# package registries (Debian, Python, npm and Rust packages).
set -Eeuo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Usage: tests/install-tools.sh [--system | --environments]
#   --system        only what the Rust suites need: Debian packages, the Rust target, tests/aws/.venv
#   --environments  only the Python and npm environments, Chromium and the zig build tools
# With neither, both (tests/run-all.sh runs the second beside the Rust build).
part=${1:-all}
case $part in
  all | --system | --environments) ;;
  *) echo "install-tools.sh: unknown option '$part': use --system, --environments or nothing" >&2; exit 2 ;;
esac
system() { [[ $part != --environments ]]; }
environments() { [[ $part != --system ]]; }

# Debian packages: command:package (a list, not an associative array, so bash 3.2 can read it).
# chromium: the HTML report rendered headless to a PNG and a DOM dump (tests/infra/test_report_period.py).
apt_tools=()
system && apt_tools+=(tmux:tmux bats:bats shellcheck:shellcheck jq:jq zip:zip unzip:unzip openssl:openssl)
# Chromium (the HTML report's test) is the largest download; it comes with the environments.
environments && apt_tools+=(chromium:chromium)

missing=()
for pair in "${apt_tools[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python and npm tools for the infrastructure suite live in their own environments under
# tests/infra (see tests/infra/install.sh), so they never touch the user's global packages.
if environments && [[ -x tests/infra/install.sh ]]; then
  tests/infra/install.sh
fi

# The real Azure CLI (PyPI azure-cli) for the replay of every az command line, in tests/azcli/.venv.
if environments && [[ -x tests/azcli/install.sh ]]; then
  tests/azcli/install.sh
fi
# The real AWS CLI v1 (PyPI awscli) for the replay of every aws command line, in tests/awscli/.venv.
if environments; then
  tests/awscli/install.sh
fi

# cfn-lint, botocore and pytest for the AWS tests (tests/aws/.venv).
# The Rust suite tests/sns.rs checks signatures with botocore from this environment, so it comes
# with the system part, before the Rust build.
if system && [[ -x tests/aws/install.sh ]]; then
  tests/aws/install.sh
fi

# The package tests (tests/scripts/package-build.bats) build the handler both ways deploy.sh can
# (docs/deploy.md, "How the handler is built"): Debian's musl-tools for musl-gcc, the Rust target
# x86_64-unknown-linux-musl, and cargo-zigbuild + zig (PyPI) in .tools/venv, installed by the
# same command a user runs.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
if system && ! command -v x86_64-linux-musl-gcc >/dev/null 2>&1; then
  echo "installing Debian packages: musl-tools"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null
fi
if system && [[ ! -d $(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-musl ]]; then
  command -v rustup >/dev/null 2>&1 || { echo "install-tools.sh: rustup is needed to add the Rust target x86_64-unknown-linux-musl (https://rustup.rs)" >&2; exit 1; }
  rustup target add x86_64-unknown-linux-musl
fi
if environments && { [[ ! -x .tools/venv/bin/cargo-zigbuild ]] || ! .tools/venv/bin/python3 -c 'import ziglang' 2>/dev/null; }; then
  ./deploy.sh --install-build-tools
fi

#!/usr/bin/env bash
# Runs the benchmark (benches/bench.rs) once against the glibc release handler cargo builds for
# `cargo bench` and once against the static musl handler deploy.sh packages, then prints the rows
# that differ by C library side by side: throughput at concurrency 64 with telemetry off and on,
# and RSS. Loopback only, like the benchmark. About 10 minutes (two benchmark runs, plus the
# builds the first time). Not part of the test run.
#
# Usage: benches/compare-libc.sh [MUSL_HANDLER]
#   MUSL_HANDLER  a musl handler binary to measure; default: build one with ./deploy.sh --package
# Each run's full table is kept in target/bench-libc/{glibc,musl}.txt.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly OUT=${CARGO_TARGET_DIR:-$ROOT/target}/bench-libc
readonly ROWS='throughput, concurrency 64|handler RSS|handler CPU per heartbeat'

die() {
  printf 'compare-libc.sh: %s\n' "$*" >&2
  exit 1
}

# value FILE LABEL: the value column of the table row whose measurement starts with LABEL.
value() {
  awk -F' [|] ' -v label="$2" 'index($1, "| " label) == 1 { print $2; exit }' "$1"
}

main() {
  local musl=${1:-} label g m gn mn
  cd "$ROOT"
  if [[ -z $musl ]]; then
    ISP_MONITOR_ENV_FILE=${ISP_MONITOR_ENV_FILE:-$ROOT/.env} ./deploy.sh --package </dev/null >&2 ||
      die "./deploy.sh --package failed (above): fix it, or pass a musl handler binary"
    musl=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release/handler
  fi
  [[ -x $musl ]] || die "$musl is not an executable: pass a musl handler binary"
  mkdir -p "$OUT"
  echo "== benchmark, glibc handler (cargo bench's own release build)" >&2
  env -u ISP_MONITOR_TEST_HANDLER cargo bench --locked --bench bench | tee "$OUT/glibc.txt" >&2
  echo "== benchmark, musl handler ($musl)" >&2
  ISP_MONITOR_TEST_HANDLER=$musl cargo bench --locked --bench bench | tee "$OUT/musl.txt" >&2

  printf '\n| measurement | glibc | musl | musl / glibc |\n| --- | --- | --- | --- |\n'
  while IFS= read -r label; do
    g=$(value "$OUT/glibc.txt" "$label")
    m=$(value "$OUT/musl.txt" "$label")
    gn=${g%% *} mn=${m%% *}
    if [[ $gn =~ ^[0-9.]+$ && $mn =~ ^[0-9.]+$ ]]; then
      printf '| %s | %s | %s | %s |\n' "$label" "$g" "$m" "$(awk -v a="$mn" -v b="$gn" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "-" }')"
    else
      printf '| %s | %s | %s | |\n' "$label" "$g" "$m"
    fi
  done < <(sed -n 's/^| \([^|]*\) | .*/\1/p' "$OUT/glibc.txt" | grep -E "^($ROWS)")
}

main "$@"

#!/usr/bin/env bats
# The real package builds: ./deploy.sh --package through musl-gcc and through cargo-zigbuild (real
# cargo, real C compilers, real zig), each zip checked with binutils' readelf, then the Functions
# host stand-in's contract tests (tests/contract.rs) run against the handler taken out of the zip.
# Needs what tests/install-tools.sh installs: musl-tools, the Rust target x86_64-unknown-linux-musl
# and .tools/venv (./deploy.sh --install-build-tools). Slow the first time (two release builds,
# 5-7 minutes each on 2 cores); each build path keeps its own target directory under
# target/package-test/ (they differ in C compiler and linker flags, so cargo could share nothing
# but would rebuild everything on every switch), and later runs reuse it.

bats_require_minimum_version 1.5.0
load test_helper

# Wall-clock bound per test: a cold release build plus the contract tests.
export BATS_TEST_TIMEOUT=1500
readonly MAX_ZIP_BYTES=$((10 * 1024 * 1024))

setup() {
  command -v readelf >/dev/null 2>&1 || fail_test "readelf (binutils) is missing: run tests/install-tools.sh"
}

# check_package BUILD_PATH: builds, checks the zip and its handler, runs the contract tests on it.
check_package() {
  local build=$1 dir=$REAL_ROOT/target/package-test/$1 zip out=$BATS_TEST_TMPDIR/unzipped
  ISP_MONITOR_ENV_FILE=$BATS_TEST_TMPDIR/absent.env ISP_MONITOR_BUILD=$build CARGO_TARGET_DIR=$dir \
    run "$REAL_ROOT/deploy.sh" --package </dev/null
  [ "$status" -eq 0 ] || fail_test "deploy.sh --package ($build) failed: $output" || return 1
  [[ $output == *"x86_64-unknown-linux-musl, $build"* ]] || fail_test "not the $build build: $output" || return 1
  zip=${lines[${#lines[@]} - 1]}
  [ "$zip" = "$dir/isp-monitor-functions.zip" ] || fail_test "last line is not the zip's path: $zip" || return 1

  # At most 10 MB, exactly three files at the root, the handler with mode 755.
  (($(wc -c <"$zip") <= MAX_ZIP_BYTES)) || fail_test "$zip is $(wc -c <"$zip") bytes, over 10 MB" || return 1
  run zipinfo -1 "$zip"
  [ "$(sort <<<"$output")" = "$(printf '%s\n' Ping/function.json handler host.json)" ] ||
    fail_test "zip entries: $output" || return 1
  run zipinfo "$zip"
  [[ $(grep ' handler$' <<<"$output") == "-rwxr-xr-x "* ]] || fail_test "handler mode: $output" || return 1
  mkdir -p "$out"
  (cd "$out" && unzip -q "$zip")
  cmp "$out/host.json" "$REAL_ROOT/host.json"
  cmp "$out/Ping/function.json" "$REAL_ROOT/Ping/function.json"

  # An x86-64 ELF executable with no interpreter and no shared library: it runs on any x86-64 Linux.
  run readelf -hW "$out/handler"
  [[ $output == *"Class:"*"ELF64"* && $output == *"Machine:"*"X86-64"* ]] || fail_test "header: $output" || return 1
  [[ $output =~ Type:[[:space:]]+(EXEC|DYN) ]] || fail_test "not an executable: $output" || return 1
  run readelf -lW "$out/handler"
  [ "$status" -eq 0 ] && refute grep -q INTERP <<<"$output"
  run readelf -dW "$out/handler"
  refute grep -q NEEDED <<<"$output"

  # The contract tests, with the host stand-in launching this binary.
  (cd "$REAL_ROOT" && ISP_MONITOR_TEST_HANDLER=$out/handler cargo test --locked -q --test contract) ||
    fail_test "the contract tests failed against the $build package's handler"
}

@test "package (musl-gcc): a static x86-64 handler, host.json and Ping/function.json; the contract holds" {
  command -v x86_64-linux-musl-gcc >/dev/null 2>&1 || fail_test "musl-gcc is missing: run tests/install-tools.sh (Debian: musl-tools)"
  check_package musl-gcc
}

@test "package (cargo-zigbuild): the same from the zig build" {
  [[ -x $REAL_ROOT/.tools/venv/bin/cargo-zigbuild ]] ||
    fail_test "cargo-zigbuild is missing from .tools/venv: run tests/install-tools.sh (./deploy.sh --install-build-tools)"
  # The release profile without its thin LTO and with more codegen units: the same compilers, zig
  # linker, target and static-ELF check as a user's build (LTO happens inside rustc, before the
  # linker), in about half the time. The musl-gcc test above builds with the shipped profile.
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 check_package zigbuild
}

@test "package: the contract tests fail with a binary that is not the handler (the stand-in can fail)" {
  cd "$REAL_ROOT"
  ISP_MONITOR_TEST_HANDLER=$(type -P false) run cargo test --locked -q --test contract committed_configuration
  [ "$status" -ne 0 ]
  [[ $output == *"handler exited with exit status: 1 before it was ready"* ]]
}

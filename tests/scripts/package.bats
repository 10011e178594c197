#!/usr/bin/env bats
# deploy.sh --package, --install-build-tools and the build-path choice, against the cargo, rustc,
# cargo-zigbuild and musl-gcc stand-ins (tests/scripts/stubs): which build runs, with which C
# compiler, what the zip holds, and every refusal (missing toolchain, a glibc, non-x86-64 or
# non-ELF result) before Azure is touched. The real builds are in package-build.bats.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031

bats_require_minimum_version 1.5.0
load test_helper

# Whose one-line reason assert_failed_with (test_helper.bash) expects.
# shellcheck disable=SC2034 # read by test_helper.bash
SCRIPT_UNDER_TEST=deploy.sh

setup() {
  common_setup
  write_env "ALERT_EMAIL=me@example.com"
}

teardown() {
  common_teardown
}

readonly BUILT=x86_64-unknown-linux-musl/release/handler

# fake_uname SYSTEM MACHINE: `uname -s` / `uname -m` answer as on that platform.
fake_uname() {
  # shellcheck disable=SC2016 # $1 belongs to the generated script
  printf '#!/bin/sh\ncase "$1" in -s) echo %s ;; -m) echo %s ;; *) echo %s ;; esac\n' "$1" "$2" "$1" >"$STUBS/uname"
  chmod +x "$STUBS/uname"
}

# An executable named zig, so the zig build counts as complete.
fake_zig() {
  printf '#!/bin/sh\nexit 0\n' >"$STUBS/zig"
  chmod +x "$STUBS/zig"
}

@test "--package: builds with musl-gcc, writes the zip, prints its path last, touches no Azure and no .env" {
  rm "$REPO/.env"
  run "$REPO/deploy.sh" --package
  [ "$status" -eq 0 ]
  [ "${lines[${#lines[@]} - 1]}" = "$REPO/target/isp-monitor-functions.zip" ]
  [[ $output == *"building the handler (release, x86_64-unknown-linux-musl, musl-gcc"* ]]
  calls "cargo build --release --locked --manifest-path $REPO/Cargo.toml --target x86_64-unknown-linux-musl --bin handler" | grep -q .
  # aws-lc-sys's C is compiled by musl's gcc (cc-rs reads CC_<target>).
  grep -qx "CC_x86_64_unknown_linux_musl=$STUBS/x86_64-linux-musl-gcc" "$STUB_LOG.cc"
  [ -z "$(calls 'az ')" ]
  [ ! -e "$REPO/.env" ]
  run zipinfo -1 "$REPO/target/isp-monitor-functions.zip"
  [ "$(sort <<<"$output")" = "$(printf '%s\n' Ping/function.json handler host.json)" ]
  unzip -p "$REPO/target/isp-monitor-functions.zip" handler | cmp - "$REPO/target/$BUILT"
}

@test "--package: CARGO_TARGET_DIR moves the build and the zip" {
  export CARGO_TARGET_DIR=$BATS_TEST_TMPDIR/elsewhere
  run "$REPO/deploy.sh" --package
  [ "$status" -eq 0 ]
  [ "${lines[${#lines[@]} - 1]}" = "$CARGO_TARGET_DIR/isp-monitor-functions.zip" ]
  [ -f "$CARGO_TARGET_DIR/$BUILT" ]
}

@test "--package: without musl-gcc on Linux it builds with cargo-zigbuild, never for glibc" {
  hide_command x86_64-linux-musl-gcc
  fake_zig
  run "$REPO/deploy.sh" --package
  [ "$status" -eq 0 ]
  calls "cargo-zigbuild build --release --locked --manifest-path $REPO/Cargo.toml --target x86_64-unknown-linux-musl --bin handler" | grep -q .
  refute grep -q -- '-gnu' "$STUB_LOG"
  grep -qx "CC_x86_64_unknown_linux_musl=" "$STUB_LOG.cc"
}

@test "--package: ISP_MONITOR_BUILD=zigbuild (here from .env) picks zig even where musl-gcc is" {
  fake_zig
  write_env "ISP_MONITOR_BUILD=zigbuild"
  run "$REPO/deploy.sh" --package
  [ "$status" -eq 0 ]
  [ -n "$(calls cargo-zigbuild)" ]
}

@test "--package: macOS always builds with zig, even with a musl-gcc on PATH" {
  fake_uname Darwin arm64
  fake_zig
  run "$REPO/deploy.sh" --package
  [ "$status" -eq 0 ]
  [[ $output == *"x86_64-unknown-linux-musl, zigbuild"* ]]
  [ -n "$(calls cargo-zigbuild)" ]
}

@test "--check on macOS without zig: reports the zig build and the exact commands, no brew" {
  hide_command cargo-zigbuild
  fake_uname Darwin x86_64
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"ok    build path: cargo-zigbuild"* ]]
  [[ $output == *"FAIL  the zig build needs cargo-zigbuild and zig: run ./deploy.sh --install-build-tools (or by hand: python3 -m venv .tools/venv && .tools/venv/bin/pip install ziglang==0.17.1 cargo-zigbuild==0.24.1)"* ]]
  refute grep -q brew <<<"$output"
  refute grep -q musl-tools <<<"$output"
}

@test "--check on Linux without musl-gcc or zig: offers both routes" {
  hide_command x86_64-linux-musl-gcc cargo-zigbuild
  printf '#!/bin/sh\nexit 0\n' >"$STUBS/apt-get"
  chmod +x "$STUBS/apt-get"
  run "$REPO/deploy.sh" --check
  [ "$status" -eq 1 ]
  [[ $output == *"FAIL  the zig build needs cargo-zigbuild and zig: run ./deploy.sh --install-build-tools"*"; or run 'sudo apt-get install -y musl-tools' to build with musl-gcc instead"* ]]
}

@test "fails: no zig and nobody at the terminal: stops with the commands, installs nothing, before any az call" {
  hide_command x86_64-linux-musl-gcc
  run "$REPO/deploy.sh" </dev/null
  assert_failed_with "cannot build the handler (zigbuild build): the zig build needs zig: run ./deploy.sh --install-build-tools"
  [ ! -e "$REPO/.tools" ]
  [ -z "$(calls 'az ')" ]
  [ -z "$(calls cargo)" ]
  run "$REPO/deploy.sh" --package </dev/null
  assert_failed_with "the zig build needs zig"
  [ ! -e "$REPO/.tools" ]
}

@test "fails: ISP_MONITOR_BUILD=musl-gcc where it cannot work, or an unknown value" {
  fake_uname Darwin arm64
  ISP_MONITOR_BUILD=musl-gcc run "$REPO/deploy.sh" --package
  assert_failed_with "ISP_MONITOR_BUILD=musl-gcc needs an x86-64 Linux machine, this is Darwin arm64: unset it to build with zig"
  rm "$STUBS/uname"
  hide_command x86_64-linux-musl-gcc
  ISP_MONITOR_BUILD=musl-gcc run "$REPO/deploy.sh" --package
  assert_failed_with "musl-gcc (x86_64-linux-musl-gcc) is not installed"
  ISP_MONITOR_BUILD=gnu run "$REPO/deploy.sh" --package
  assert_failed_with "ISP_MONITOR_BUILD 'gnu' must be musl-gcc or zigbuild"
  [ -z "$(calls cargo)" ]
}

@test "fails: a build that is not a static x86-64 Linux ELF is refused, no zip written, nothing deployed" {
  local kind
  for kind in interp:"needs a program interpreter" needed:"needs shared libraries (DT_NEEDED)"; do
    STUB_ELF_KIND=${kind%%:*} run "$REPO/deploy.sh" --package
    assert_failed_with "$REPO/target/$BUILT ${kind#*:}"
    [ ! -e "$REPO/target/isp-monitor-functions.zip" ]
  done
  STUB_ELF_MACHINE=183 run "$REPO/deploy.sh" --package
  assert_failed_with "is built for ELF machine 183, not x86-64 (62): Azure Functions on Linux Consumption runs x86-64 only"
  STUB_BINARY_SOURCE=$REPO/host.json run "$REPO/deploy.sh" --package
  assert_failed_with "is not a 64-bit little-endian ELF file (a Linux executable)"
  [ ! -e "$REPO/target/isp-monitor-functions.zip" ]
  # The full deploy stops at the same check: no group, template or upload (the read-only look at
  # the last deployment and the app, which the plan check makes before the build, is allowed).
  STUB_ELF_MACHINE=183 run "$REPO/deploy.sh"
  assert_failed_with "not x86-64"
  run grep -E '^az (group create|deployment group (create|what-if)|functionapp (deployment|config appsettings set))' "$STUB_LOG"
  [ -z "$output" ]
}

@test "--package: a static-pie build (PT_DYNAMIC without DT_NEEDED) is accepted" {
  STUB_ELF_KIND=pie run "$REPO/deploy.sh" --package
  [ "$status" -eq 0 ]
}

@test "--install-build-tools: without python3 it says how to get it" {
  hide_command python3
  fake_uname Darwin arm64
  run "$REPO/deploy.sh" --install-build-tools
  assert_failed_with "python3 is not installed: run 'xcode-select --install', then run ./deploy.sh --install-build-tools again"
  [ ! -e "$REPO/.tools" ]
}

#!/usr/bin/env bats
# Stock macOS: the scripts run on bash 3.2 and BSD userland. tests/scripts/run.sh runs every suite a
# second time with a real bash 3.2 and the BSD stand-ins of tests/scripts/bsd/ first on PATH; this
# file shows that pass is what it claims (the bash really is 3.2, and it really rejects bash-4
# code), that each stand-in refuses the GNU-only forms stock macOS rejects, and that every option
# of every script has a test, so the second pass runs it.

# Each @test runs in its own subshell by design: its exports are meant to stay local.
# shellcheck disable=SC2030,SC2031
# SC2016: the single-quoted snippets are bash code for the bash under test, expanded there.
# shellcheck disable=SC2016

bats_require_minimum_version 1.5.0
load test_helper

BASH32=$REAL_ROOT/../shared/tools/bash-3.2/bash
BSD=$REAL_ROOT/tests/scripts/bsd

setup() {
  common_setup
  cp "$REAL_ROOT/scripts/report.sh" "$REAL_ROOT/scripts/report_aws.sh" "$REPO/scripts/"
}

teardown() {
  common_teardown
}

require_bash32() {
  [[ -x $BASH32 ]] || skip "../shared/tools/bash-3.2/bash is not here (a clone without our shared tools)"
}

# ------------------------------------------------------------------------------- the bash 3.2 pass

@test "macos pass: the scripts' bash (and every nested #!/usr/bin/env bash) is 3.2, next to the BSD stand-ins" {
  [[ -n $COMPAT_PATH ]] || skip "only in tests/scripts/run.sh's bash 3.2 pass"
  [[ $BASH_VERSION == 3.2.* ]] # bats and this test, too
  run env bash -c 'echo "$BASH_VERSION"'
  [[ $output == 3.2.* ]]
  [ "$(type -P sed)" = "${COMPAT_PATH%:}/sed" ]
  [ "$(readlink "$(type -P stat)")" = "$BSD/stat" ]
}

@test "bash 3.2 rejects what bash 4 accepts, so the pass can fail: a local -A in load_env breaks deploy.sh --check" {
  require_bash32
  # The defect of issue 11, put back into a copy of common.sh.
  awk '{ print } /^load_env\(\) \{$/ { print "  local -A probe=()" }' "$REAL_ROOT/scripts/common.sh" >"$REPO/scripts/common.sh"
  grep -q 'local -A probe' "$REPO/scripts/common.sh"
  write_env "ALERT_EMAIL=me@example.com"
  run "$BASH32" "$REPO/deploy.sh" --check
  [ "$status" -ne 0 ]
  [[ $output == *"local: -A: invalid option"* ]]
  run /bin/bash "$REPO/deploy.sh" --check
  [ "$status" -eq 0 ]
  # And the others bash 3.2 lacks (/work/shared/tools/bash-3.2/README.md).
  run -127 "$BASH32" -c 'mapfile -t a < /dev/null' # command not found
  # bash 3.2 exits 127 on an unbound "${a[@]}" as well
  run -127 "$BASH32" -c 'set -u; a=(); echo "${a[@]}"'
  [[ $output == *"a[@]: unbound variable"* ]]
  run "$BASH32" -c 'x=AB; echo "${x,,}"'
  [ "$status" -ne 0 ]
}

@test "a bash older than 3.2 gets a clear refusal from every script, before anything runs" {
  # No bash older than 3.2 is at hand: the check is fed an older version instead.
  sed 's/^if bash_too_old "${BASH_VERSINFO\[0\]}" "${BASH_VERSINFO\[1\]}"; then$/if bash_too_old 3 1; then/' \
    "$REAL_ROOT/scripts/common.sh" >"$REPO/scripts/common.sh"
  grep -q '^if bash_too_old 3 1; then$' "$REPO/scripts/common.sh"
  local script
  for script in deploy.sh deploy_aws.sh deploy_cloud.sh start_heartbeat.sh stop_heartbeat.sh scripts/report.sh; do
    run "$REPO/$script" --help
    [ "$status" -eq 1 ] || fail_test "$script: status $status" || return 1
    [[ $output == "${script#scripts/}: needs bash 3.2 or newer, but this is bash $BASH_VERSION"* ]] ||
      fail_test "$script: $output" || return 1
  done
  [ ! -s "$STUB_LOG" ]
  # The comparison itself.
  run bash -c "source '$REAL_ROOT/scripts/common.sh'; for v in '2 5' '3 1' '3 2' '4 0' '5 2'; do bash_too_old \$v && echo \"\$v old\" || echo \"\$v ok\"; done"
  [ "$output" = "$(printf '%s\n' '2 5 old' '3 1 old' '3 2 ok' '4 0 ok' '5 2 ok')" ]
}

@test "usage: every option in each script's --help has a test, so the bash 3.2 pass runs it" {
  local script option missing=""
  for script in deploy.sh deploy_aws.sh deploy_cloud.sh start_heartbeat.sh stop_heartbeat.sh scripts/report.sh; do
    for option in $("$REAL_ROOT/$script" --help | grep -oE '^ +--[a-z-]+' | tr -d ' ' | sort -u); do
      grep -qE -- "$option([^a-z-]|\$)" "$BATS_TEST_DIRNAME"/*.bats ||
        missing+=" $script $option;"
    done
  done
  [ -z "$missing" ] || fail_test "options without a test:$missing"
}

# ---------------------------------------------------------------------------- the BSD stand-ins

# refused TOOL ARGS...: the stand-in refuses this form (exit 64, a line naming it).
refused() {
  run "$BSD/$1" "${@:2}"
  [ "$status" -eq 64 ] || fail_test "$*: status $status, output: $output" || return 1
  [[ $output == "$1: "*"not portable to stock macOS"* ]] || fail_test "$*: $output"
}

@test "BSD sed stand-in: refuses -r, -i without a suffix, '{...;p}' without ';', GNU BRE operators, long options" {
  printf 'a\nb\n' >"$BATS_TEST_TMPDIR/in"
  refused sed -r 's/a/b/' "$BATS_TEST_TMPDIR/in"
  refused sed -i 's/a/b/' "$BATS_TEST_TMPDIR/in"
  refused sed -n '1,2{p}' "$BATS_TEST_TMPDIR/in"
  # usage()'s old script, before the fix
  refused sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p}' "$REAL_ROOT/deploy.sh"
  refused sed 's/a\+/b/' "$BATS_TEST_TMPDIR/in"
  refused sed 's/a/b/' -n "$BATS_TEST_TMPDIR/in"
  refused sed '1a text' "$BATS_TEST_TMPDIR/in"
  refused sed --quiet p "$BATS_TEST_TMPDIR/in"
  # What both accept runs GNU sed.
  run "$BSD/sed" -n '1,2{s/a/A/;p;}' "$BATS_TEST_TMPDIR/in"
  [ "$output" = "$(printf 'A\nb')" ]
  run "$BSD/sed" -E 's/(a|b)+/x/' "$BATS_TEST_TMPDIR/in"
  [ "$output" = "$(printf 'x\nx')" ]
  "$BSD/sed" -i.bak 's/b/B/' "$BATS_TEST_TMPDIR/in"
  [ "$(cat "$BATS_TEST_TMPDIR/in")" = "$(printf 'a\nB')" ]
  [ -f "$BATS_TEST_TMPDIR/in.bak" ]
}

@test "BSD date stand-in: refuses -d and long options; -r SECONDS prints that time as BSD date does" {
  refused date -d @0
  refused date --iso-8601
  refused date -u --date=2026-11-01 +%s
  run "$BSD/date" -u -r 86400 '+%Y-%m-%d %H:%M:%S'
  [ "$output" = "1970-01-02 00:00:00" ]
  run "$BSD/date" -u +%Y
  [[ $output =~ ^[0-9]{4}$ ]]
}

@test "BSD stat stand-in: refuses -c; -f %Lp is the mode, as BSD stat prints it" {
  touch "$BATS_TEST_TMPDIR/f"
  chmod 640 "$BATS_TEST_TMPDIR/f"
  refused stat -c %a "$BATS_TEST_TMPDIR/f"
  refused stat --format=%a "$BATS_TEST_TMPDIR/f"
  run "$BSD/stat" -f %Lp "$BATS_TEST_TMPDIR/f"
  [ "$output" = 640 ]
}

@test "BSD readlink, mktemp and grep stand-ins: refuse readlink -f, mktemp without a template or with -t, grep -P" {
  ln -s "$REAL_ROOT/deploy.sh" "$BATS_TEST_TMPDIR/link"
  refused readlink -f "$BATS_TEST_TMPDIR/link"
  refused readlink --canonicalize "$BATS_TEST_TMPDIR/link"
  run "$BSD/readlink" "$BATS_TEST_TMPDIR/link"
  [ "$output" = "$REAL_ROOT/deploy.sh" ]
  refused mktemp
  refused mktemp -d
  refused mktemp -t isp
  refused mktemp --tmpdir x.XXXXXX
  run "$BSD/mktemp" -d "$BATS_TEST_TMPDIR/d.XXXXXX"
  [ -d "$output" ]
  refused grep -P '\d' "$REAL_ROOT/deploy.sh"
  refused grep --perl-regexp x "$REAL_ROOT/deploy.sh"
  refused grep --no-ignore-case x "$REAL_ROOT/deploy.sh"
  run "$BSD/grep" -c -E '^readonly (ROOT|ENV_FILE)' "$REAL_ROOT/deploy.sh"
  [ "$output" = 2 ]
}

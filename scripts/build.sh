# shellcheck shell=bash
# The static x86-64 Linux build of ISP Monitor's cloud binaries, shared by deploy.sh (the Azure
# handler, `handler`) and deploy_aws.sh (the Lambda function, `lambda`, shipped as `bootstrap`):
# choosing musl-gcc or cargo-zigbuild, installing the zig build's tools, the build itself, the
# static-ELF check and the Azure zip. Sourced after scripts/common.sh, never run.
#
# The sourcing script sets ROOT, TARGET_DIR and SCRIPT_NAME (named in every message); it may set
# BUILD_DOC (the doc a refused build points to) and BUILD_X86_ONLY (why only x86-64 runs there)
# before sourcing. Portable to stock macOS: bash 3.2 and BSD userland.

readonly MUSL_TARGET=x86_64-unknown-linux-musl
# The zig build's tools (PyPI), installed by ./deploy.sh --install-build-tools into the project's
# own venv.
readonly TOOLS_VENV=$ROOT/.tools/venv
readonly ZIG_PACKAGES="ziglang==0.17.1 cargo-zigbuild==0.24.1"
: "${BUILD_DOC:=docs/deploy.md}"
: "${BUILD_X86_ONLY:=Azure Functions on Linux Consumption runs x86-64 only}"

# The handler is always a static x86-64 Linux executable (target x86_64-unknown-linux-musl): the
# image that runs custom handlers on Linux Consumption, and its glibc, are not public
# (docs/platform.md §2, §7). It is built one of two ways, never as a glibc build:
#   musl-gcc  on x86-64 Linux with musl's gcc wrapper (Debian/Ubuntu: musl-tools): aws-lc-sys, the
#             TLS provider's C code, is compiled with it; rustc links its own static musl.
#   zigbuild  everywhere else, and always on macOS: cargo-zigbuild, with zig as C compiler and
#             linker, both from PyPI in .tools/venv (./deploy.sh --install-build-tools).
# ISP_MONITOR_BUILD=musl-gcc|zigbuild picks one by hand.

# Prints musl-gcc or zigbuild (see above).
build_path() {
  case ${ISP_MONITOR_BUILD:-} in
    musl-gcc | zigbuild) echo "$ISP_MONITOR_BUILD" ;;
    "") if host_builds_musl && musl_cc >/dev/null; then echo musl-gcc; else echo zigbuild; fi ;;
    *) die "ISP_MONITOR_BUILD '$ISP_MONITOR_BUILD' must be musl-gcc or zigbuild, or unset to choose by platform: fix it" ;;
  esac
}

# True on x86-64 Linux, the only host where musl-gcc compiles for the target.
host_builds_musl() {
  [[ $(uname -s) == Linux ]] || return 1
  case $(uname -m) in x86_64 | amd64) return 0 ;; *) return 1 ;; esac
}

# Prints the musl C compiler wrapper on PATH, if any.
musl_cc() {
  command -v x86_64-linux-musl-gcc 2>/dev/null || command -v musl-gcc 2>/dev/null
}

musl_target_installed() {
  local sysroot
  sysroot=$(rustc --print sysroot 2>/dev/null) && [[ -d $sysroot/lib/rustlib/$MUSL_TARGET ]]
}

# PATH for the zig build: the project's .tools/venv first, where --install-build-tools puts
# cargo-zigbuild and the ziglang module (cargo-zigbuild runs `python3 -m ziglang` when no `zig`
# is on PATH).
zig_path() {
  printf '%s:%s' "$TOOLS_VENV/bin" "$PATH"
}

# Prints one line per tool the zig build lacks; nothing when it is complete.
zig_tools_missing() {
  PATH=$(zig_path) command -v cargo-zigbuild >/dev/null 2>&1 || echo cargo-zigbuild
  PATH=$(zig_path) command -v zig >/dev/null 2>&1 ||
    PATH=$(zig_path) python3 -c 'import ziglang' >/dev/null 2>&1 || echo zig
}

# The commands that give the zig build its tools, in one line.
zig_install_commands() {
  printf "./deploy.sh --install-build-tools (or by hand: python3 -m venv .tools/venv && .tools/venv/bin/pip install %s)" "$ZIG_PACKAGES"
}

# The command that installs musl-gcc here, or nothing when no package manager we know has it.
musl_install_command() {
  if command -v apt-get >/dev/null 2>&1; then
    printf 'sudo apt-get install -y musl-tools'
  elif command -v dnf >/dev/null 2>&1; then
    printf 'sudo dnf install -y musl-gcc'
  fi
}

# Prints one line per problem with the build toolchain for this build path, each with the exact
# commands for this OS; prints nothing when the build can start.
build_problems() {
  local path=$1 missing musl_cmd
  if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
    echo "cargo and rustc are needed: install Rust from https://rustup.rs"
    return 0
  fi
  if ! musl_target_installed; then
    if command -v rustup >/dev/null 2>&1; then
      echo "the Rust target $MUSL_TARGET is not installed: run 'rustup target add $MUSL_TARGET'"
    else
      echo "the Rust target $MUSL_TARGET is not installed and there is no rustup to add it: install Rust from https://rustup.rs, then run 'rustup target add $MUSL_TARGET'"
    fi
  fi
  if [[ $path == musl-gcc ]]; then
    host_builds_musl || echo "ISP_MONITOR_BUILD=musl-gcc needs an x86-64 Linux machine, this is $(uname -s) $(uname -m): unset it to build with zig"
    if ! musl_cc >/dev/null; then
      musl_cmd=$(musl_install_command)
      [[ -z $musl_cmd ]] || musl_cmd="run '$musl_cmd', or "
      echo "musl-gcc (x86_64-linux-musl-gcc) is not installed: ${musl_cmd}unset ISP_MONITOR_BUILD to build with zig"
    fi
    return 0
  fi
  missing=$(zig_tools_missing | tr '\n' ' ')
  missing=${missing% }
  [[ -n $missing ]] || return 0
  musl_cmd=""
  host_builds_musl && musl_cmd=$(musl_install_command)
  [[ -z $musl_cmd ]] || musl_cmd="; or run '$musl_cmd' to build with musl-gcc instead"
  echo "the zig build needs ${missing/ / and }: run $(zig_install_commands)${musl_cmd}"
}

# Stops before anything else happens when the build cannot start. Offers to install the zig build's
# tools into .tools/venv when a person is at the terminal; never installs without asking.
require_build_tools() {
  local path problems answer
  path=$(build_path)
  problems=$(build_problems "$path")
  if [[ -n $problems && $path == zigbuild && -t 0 && -t 2 ]] &&
    [[ $(build_problems_without_zig "$problems") == "" ]]; then
    read -r -p "The zig build needs $ZIG_PACKAGES from PyPI in .tools/venv. Install them now? [y/N] " answer
    if [[ $answer == [yY]* ]]; then
      install_build_tools
      problems=$(build_problems "$path")
    fi
  fi
  [[ -z $problems ]] || die "cannot build the handler ($path build): $(printf '%s' "$problems" | head -n1), then run ./$SCRIPT_NAME again"
  BUILD_PATH=$path
}

# The problem lines that the zig tools' install does not solve.
build_problems_without_zig() {
  printf '%s\n' "$1" | grep -v '^the zig build needs' || true
}

# ./deploy.sh --install-build-tools: the zig build's tools from PyPI into .tools/venv.
install_build_tools() {
  command -v python3 >/dev/null 2>&1 ||
    die "python3 is not installed: $(if [[ $(uname -s) == Darwin ]]; then printf "run 'xcode-select --install'"; else printf "install it with '%s'" "$(install_hint python3)"; fi), then run ./deploy.sh --install-build-tools again"
  info "==> installing $ZIG_PACKAGES from PyPI into $TOOLS_VENV"
  if [[ ! -x $TOOLS_VENV/bin/python3 ]]; then
    python3 -m venv "$TOOLS_VENV" ||
      die "python3 could not create $TOOLS_VENV$(command -v apt-get >/dev/null 2>&1 && printf " (Debian/Ubuntu: run 'sudo apt-get install -y python3-venv')"): fix it and run ./deploy.sh --install-build-tools again"
  fi
  # shellcheck disable=SC2086 # ZIG_PACKAGES is a list of words
  "$TOOLS_VENV/bin/python3" -m pip install --quiet --disable-pip-version-check $ZIG_PACKAGES ||
    die "pip could not install $ZIG_PACKAGES into $TOOLS_VENV (see above): check the connection and run ./deploy.sh --install-build-tools again"
  info "    cargo-zigbuild and zig are in $TOOLS_VENV"
}

# build_static BIN WHAT: builds the cargo binary BIN (release, $MUSL_TARGET) through BUILD_PATH
# (set by require_build_tools) into BUILT_BIN and checks that it is a static x86-64 executable.
# WHAT names it in the messages ("the handler").
build_static() {
  local bin=$1 what=$2 cc cargo_cmd
  info "==> building $what (release, $MUSL_TARGET, $BUILD_PATH; a first build takes several minutes)"
  if [[ $BUILD_PATH == musl-gcc ]]; then
    cc=$(musl_cc)
    # cc-rs reads the C compiler for the target from CC_<target> (docs/platform.md §7).
    cargo_cmd="cargo build"
    CC_x86_64_unknown_linux_musl=$cc cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" \
      --target "$MUSL_TARGET" --bin "$bin" ||
      die "cargo build failed for $MUSL_TARGET with $cc (see above): fix the error and run ./$SCRIPT_NAME again"
  else
    cargo_cmd="cargo-zigbuild build"
    PATH=$(zig_path) cargo-zigbuild build --release --locked --manifest-path "$ROOT/Cargo.toml" \
      --target "$MUSL_TARGET" --bin "$bin" ||
      die "cargo-zigbuild failed for $MUSL_TARGET (see above): fix the error and run ./$SCRIPT_NAME again"
  fi
  BUILT_BIN=$TARGET_DIR/$MUSL_TARGET/release/$bin
  [[ -f $BUILT_BIN ]] || die "the build reported success but $BUILT_BIN is missing: run '$cargo_cmd --release --target $MUSL_TARGET --bin $bin' to see why"
  check_static_x86_64 "$BUILT_BIN"
}

# Builds the Azure handler into HANDLER_BIN.
build_handler() {
  build_static handler "the handler"
  HANDLER_BIN=$BUILT_BIN
}

# elf_uint FILE OFFSET SIZE: the little-endian unsigned integer of SIZE bytes at OFFSET (od is in
# POSIX, so this reads the same on macOS and Linux).
elf_uint() {
  local bytes=() i value=0
  # shellcheck disable=SC2207 # od prints plain numbers
  bytes=($(od -A n -v -t u1 -j "$2" -N "$3" "$1" 2>/dev/null))
  ((${#bytes[@]} == $3)) || return 1
  for ((i = $3 - 1; i >= 0; i--)); do
    value=$((value * 256 + bytes[i]))
  done
  echo "$value"
}

# Refuses anything but a static x86-64 Linux ELF executable: ELF64 little-endian, machine x86-64,
# no program interpreter (PT_INTERP) and no shared library (DT_NEEDED). Each refusal names the fix.
check_static_x86_64() {
  local f=$1 magic machine phoff phentsize phnum i ph type dyn_off dyn_size j tag
  local fix="the package must hold a static x86-64 Linux executable; build with ./$SCRIPT_NAME --package and see $BUILD_DOC"
  magic=$(od -A n -v -t x1 -N 6 "$f" 2>/dev/null | tr -d ' \n')
  [[ $magic == 7f454c460201 ]] || die "$f is not a 64-bit little-endian ELF file (a Linux executable): $fix"
  machine=$(elf_uint "$f" 18 2) || die "$f is truncated: $fix"
  ((machine == 62)) || die "$f is built for ELF machine $machine, not x86-64 (62): $BUILD_X86_ONLY; $fix"
  if ! { phoff=$(elf_uint "$f" 32 8) && phentsize=$(elf_uint "$f" 54 2) && phnum=$(elf_uint "$f" 56 2); }; then
    die "$f is truncated: $fix"
  fi
  dyn_off="" dyn_size=0
  for ((i = 0; i < phnum; i++)); do
    ph=$((phoff + i * phentsize))
    type=$(elf_uint "$f" "$ph" 4) || die "$f is truncated: $fix"
    case $type in
      3) die "$f needs a program interpreter (it is dynamically linked, e.g. against glibc): $fix" ;;
      2)
        if ! { dyn_off=$(elf_uint "$f" $((ph + 8)) 8) && dyn_size=$(elf_uint "$f" $((ph + 32)) 8); }; then
          die "$f is truncated: $fix"
        fi
        ;;
    esac
  done
  [[ -n $dyn_off ]] || return 0
  for ((j = 0; j < dyn_size / 16; j++)); do
    tag=$(elf_uint "$f" $((dyn_off + j * 16)) 8) || die "$f is truncated: $fix"
    ((tag != 0)) || break
    ((tag != 1)) || die "$f needs shared libraries (DT_NEEDED): $fix"
  done
}

# Zips host.json, Ping/function.json and the handler (mode 755) into $PACKAGE.
package_app() {
  local exe stage=$WORK/package
  exe=$(jq -r '.customHandler.description.defaultExecutablePath // empty' "$ROOT/host.json") ||
    die "host.json is not valid JSON: fix it and run ./$SCRIPT_NAME again"
  [[ -n $exe && $exe != /* && $exe != *..* ]] ||
    die "host.json has no relative customHandler.description.defaultExecutablePath: set it to \"handler\" and run ./$SCRIPT_NAME again"
  info "==> packaging host.json, Ping/function.json and $exe"
  mkdir -p "$stage/Ping" "$stage/$(dirname "$exe")"
  cp "$ROOT/host.json" "$stage/host.json"
  cp "$ROOT/Ping/function.json" "$stage/Ping/function.json"
  cp "$HANDLER_BIN" "$stage/$exe"
  chmod 644 "$stage/host.json" "$stage/Ping/function.json"
  # Linux Consumption drops the mode on extraction and adds u+x to the launched file itself;
  # keep 755 in the zip anyway (docs/platform.md §2).
  chmod 755 "$stage/$exe"
  mkdir -p "$(dirname "$PACKAGE")"
  rm -f "$PACKAGE"
  (cd "$stage" && zip -q -X -D "$PACKAGE" host.json Ping/function.json "$exe") ||
    die "zip could not write $PACKAGE: check free space and permissions and run ./$SCRIPT_NAME again"
}

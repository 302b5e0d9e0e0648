# Shared by scripts/demo, scripts/test and scripts/bench: packages, configure, build.
# shellcheck shell=bash

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SLUICE_PACKAGES=(
  cmake ninja-build g++ pkg-config python3
  libtomlplusplus-dev libsqlite3-dev libspdlog-dev libfmt-dev
  libboost-dev libboost-filesystem-dev libre2-dev
  libcli11-dev nlohmann-json3-dev libsystemd-dev
  libgtest-dev libgmock-dev googletest libtrompeloeil-cpp-dev
  systemd
)
SLUICE_FUZZ_PACKAGES=(clang libclang-rt-14-dev)

# Installs the Debian packages that are missing (as root, apt-get install -y).
install_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "sluice: missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build_tree DIR [cmake options...]: configure and build everything ($SLUICE_TARGET: one target).
build_tree() {
  local dir="$1"
  shift
  cmake -S "$SLUICE_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" ${SLUICE_TARGET:+--target "$SLUICE_TARGET"} -- -j"$(nproc)"
}

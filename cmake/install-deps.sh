#!/usr/bin/env bash
# Installs tern's build and test dependencies from Debian packages (run as root, or with sudo present).
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libhwloc-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libicu-dev
  catch2 libbenchmark-dev
  g++-aarch64-linux-gnu qemu-user  # the AArch64 (NEON) kernel tests: cross build, run under qemu
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

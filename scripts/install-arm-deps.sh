#!/usr/bin/env bash
# Installs what cross-building and testing Sparrow for ARM needs (Debian 12):
# the aarch64 / armhf Linux cross compilers, qemu user and system emulation,
# cmocka for both targets (multiarch: arm64 + armhf are added to dpkg), and
# the bare-metal arm-none-eabi compiler with newlib. Usage:
# scripts/install-arm-deps.sh   (uses sudo when not root)
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
PKGS=(
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
  qemu-user qemu-system-arm
  libc6:arm64 libcmocka-dev:arm64 zlib1g:arm64 libc6:armhf libcmocka-dev:armhf zlib1g:armhf
  gcc-arm-none-eabi libnewlib-arm-none-eabi
)
for a in arm64 armhf; do
  dpkg --print-foreign-architectures | grep -qx "$a" || $SUDO dpkg --add-architecture "$a"
done
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # A mirror can serve one foreign index mid-sync (apt-get update then fails
  # for it); the install below fails if anything it needs is really missing.
  $APT update -q || echo "install-arm-deps: apt-get update reported errors, continuing with the indexes it has"
  $APT install -y -q --no-install-recommends "${missing[@]}"
fi

#!/usr/bin/env bash
# Installs what building and testing Sparrow needs, from Debian's archive only.
# Usage: scripts/install-deps.sh   (uses sudo when not root)
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
PKGS=(
  build-essential cmake ninja-build pkg-config
  libsimde-dev libxnnpack-dev libpthreadpool-dev libcmocka-dev libstb-dev zlib1g-dev
  python3 python3-numpy python3-torch libopenblas0-pthread
  dataset-fashion-mnist
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $APT update -q
  $APT install -y -q --no-install-recommends "${missing[@]}"
fi

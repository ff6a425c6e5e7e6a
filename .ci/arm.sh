#!/usr/bin/env bash
# ARM part of CI (called by .ci/run after the host suites; docs/arm.md):
#   1. every NEON / dotprod ukernel is native NEON on A64 and A32;
#   2. aarch64 cross build (-Werror), whole CTest suite under qemu-aarch64
#      -cpu max (NEON + dotprod + i8mm) and -cpu cortex-a53 (NEON only: the
#      dotprod ukernels must give way to the NEON ones);
#   3. armv7 (armhf) cross build (-Werror), whole suite under qemu-arm
#      -cpu cortex-a7 (Raspberry Pi 2/3 class, 32-bit);
#   4. Cortex-M7 and Cortex-M55 (with Helium) firmware: built (-Werror), the
#      demo's arena planned on the target, the demo and 12 tests/unit programs
#      run under qemu-system-arm (mps2-an500, mps3-an547), libsparrow.a checked
#      for malloc/threads/mmap/file references.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-arm-deps.sh
JOBS="$(nproc)"
T0=$(date +%s)
LAST=$T0
lap() {
  local now
  now=$(date +%s)
  echo "--- $1: $((now - LAST)) s"
  LAST=$now
}
cross() { # build-dir toolchain [cmake args...]
  local dir=$1 tc=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPR_WERROR=ON \
    -DCMAKE_TOOLCHAIN_FILE="cmake/toolchains/$tc.cmake" "$@"
  cmake --build "$dir" -j "$JOBS"
}

echo "=== native NEON on A64 and A32"
scripts/arm-neon-native-check.sh
lap "native NEON check"

echo "=== aarch64: build"
cross build-aarch64 aarch64-linux-gnu -DSPR_QEMU_CPU=max
lap "aarch64 build"
for cpu in max cortex-a53; do
  echo "=== aarch64: ctest under qemu-aarch64 -cpu $cpu"
  cmake build-aarch64 -DSPR_QEMU_CPU=$cpu > /dev/null
  ctest --test-dir build-aarch64 --output-on-failure -j "$JOBS"
  ctest --test-dir build-aarch64 -R test_cpu_isa -V | grep -E "spr_cpu_isa|ukernels \(best\)"
  lap "aarch64 ctest ($cpu)"
done

echo "=== armv7: build + ctest under qemu-arm -cpu cortex-a7"
cross build-armv7 arm-linux-gnueabihf -DSPR_QEMU_CPU=cortex-a7
lap "armv7 build"
ctest --test-dir build-armv7 --output-on-failure -j "$JOBS"
lap "armv7 ctest"

echo "=== firmware: Cortex-M7 (mps2-an500) and Cortex-M55 (mps3-an547)"
cross build-m7 cortex-m7 -DSPR_FIRMWARE=ON
ctest --test-dir build-m7 --output-on-failure
cross build-m55 cortex-m55 -DSPR_FIRMWARE=ON -DSPR_FW_HOST_BIN="$PWD/build-m7/host/bin"
ctest --test-dir build-m55 --output-on-failure
arm-none-eabi-size build-m7/bin/sparrow_fw_demo.elf build-m55/bin/sparrow_fw_demo.elf
lap "firmware"
echo "=== ARM CI passed in $(($(date +%s) - T0)) s"

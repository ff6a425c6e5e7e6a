# Cross build for 64-bit ARM Linux: Raspberry Pi 3/4/5 (64-bit OS), Jetson,
# Graviton, ... Debian packages: gcc-aarch64-linux-gnu, qemu-user (tests),
# libcmocka-dev:arm64 (tests; dpkg --add-architecture arm64).
#   cmake -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#   ctest --test-dir build-aarch64              # runs under qemu-aarch64 -cpu ${SPR_QEMU_CPU}
# SPR_QEMU_CPU: max (dotprod + i8mm + fp16, the default) or cortex-a53 (plain
# NEON: exercises the fallback from the dotprod ukernels), cortex-a72 (Pi 4), ...
# The library itself targets armv8-a (every AArch64 core); the dotprod files
# get -march=armv8.2-a+dotprod and are chosen at run time from HWCAP.
set(SPR_CROSS_TRIPLE aarch64-linux-gnu)
set(SPR_CROSS_PROCESSOR aarch64)
set(SPR_QEMU aarch64)
set(SPR_QEMU_CPU_DEFAULT max)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross-common.cmake)

# What platform/cpu.c must report under that CPU model (checked by
# tests/unit/test_cpu_isa.c; "-x": must not be reported).
if(SPR_QEMU_CPU STREQUAL "max")
  set(SPR_QEMU_EXPECT_ISA "neon dotprod i8mm fp16")
elseif(SPR_QEMU_CPU MATCHES "^cortex-a(35|53|57|72)$")
  set(SPR_QEMU_EXPECT_ISA "neon -dotprod -i8mm -fp16")
elseif(SPR_QEMU_CPU MATCHES "^(cortex-a55|cortex-a76|neoverse-n1)$")
  set(SPR_QEMU_EXPECT_ISA "neon dotprod -i8mm fp16")
else()
  set(SPR_QEMU_EXPECT_ISA "neon")
endif()

# Cross build for 32-bit ARM Linux with hard float: Raspberry Pi 2/3/4 on a
# 32-bit OS (Raspberry Pi OS armhf), BeagleBone, ... ARMv7-A + NEON (VFPv4).
# Debian packages: gcc-arm-linux-gnueabihf, qemu-user (tests),
# libcmocka-dev:armhf (tests; dpkg --add-architecture armhf).
#   cmake -B build-armv7 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake
#   ctest --test-dir build-armv7                # runs under qemu-arm -cpu ${SPR_QEMU_CPU}
# NEON ukernels are chosen at run time (HWCAP NEON + VFPv4); the baseline code
# may use NEON/VFPv4 registers too (-mfpu=neon-vfpv4), so the binaries need a
# Cortex-A7 or newer (every Pi from the Pi 2 on).
set(SPR_CROSS_TRIPLE arm-linux-gnueabihf)
set(SPR_CROSS_PROCESSOR armv7-a)
set(SPR_QEMU arm)
set(SPR_QEMU_CPU_DEFAULT cortex-a7) # Raspberry Pi 2 class: NEON + VFPv4
set(CMAKE_C_FLAGS_INIT "-march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard")
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross-common.cmake)

# What platform/cpu.c must report under that CPU model (checked by
# tests/unit/test_cpu_isa.c; "-x": must not be reported).
if(SPR_QEMU_CPU MATCHES "^cortex-a(7|15)$")
  set(SPR_QEMU_EXPECT_ISA "neon -dotprod")
elseif(SPR_QEMU_CPU MATCHES "^cortex-a(8|9)$")
  set(SPR_QEMU_EXPECT_ISA "-neon -dotprod") # NEON without VFPv4 (no FMA): the scalar ukernels run
else()
  set(SPR_QEMU_EXPECT_ISA "")
endif()

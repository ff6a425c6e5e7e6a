# Bare-metal Cortex-M7 with the double-precision FPU (STM32F7/H7, i.MX RT1060,
# SAM E70, ...; qemu: mps2-an500). Configure with:
#   cmake -B build-m7 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/cortex-m7.cmake -DSPR_FIRMWARE=ON
# builds libsparrow.a (no threads, mmap, files or malloc) and the demo in
# tools/firmware (ctest runs it under qemu-system-arm -machine mps2-an500).
# A part with the single-precision FPU only (fpv5-sp-d16) needs that -mfpu.
set(SPR_MCU_CPU cortex-m7)
set(SPR_MCU_FLAGS "-mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard")
set(SPR_FW_BOARD_DEFAULT mps2-an500)
include(${CMAKE_CURRENT_LIST_DIR}/cortex-m-common.cmake)

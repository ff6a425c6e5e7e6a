# Bare-metal Cortex-M55 (Armv8.1-M with Helium/MVE and FPU; Alif Ensemble,
# Corstone-300; qemu: mps3-an547). Configure with:
#   cmake -B build-m55 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/cortex-m55.cmake -DSPR_FIRMWARE=ON
# -mcpu=cortex-m55 enables MVE (integer + float) and the FPU; the compiler may
# auto-vectorize the scalar ukernels with MVE.
set(SPR_MCU_CPU cortex-m55)
set(SPR_MCU_FLAGS "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard")
set(SPR_FW_BOARD_DEFAULT mps3-an547)
include(${CMAKE_CURRENT_LIST_DIR}/cortex-m-common.cmake)

# Shared part of the bare-metal Cortex-M toolchains (arm-none-eabi-gcc +
# newlib; Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi).
# Included by cortex-m7.cmake / cortex-m55.cmake after they set
# SPR_MCU_FLAGS, SPR_MCU_CPU and the qemu board of the demo.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR ${SPR_MCU_CPU})
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY) # no startup code to link a test program

# Every object in its own section so the final image keeps only what it calls.
# (The demo links newlib-nano, --specs=nano.specs; the test images the full
# newlib, whose printf has %zu and floats for the failure messages.)
set(CMAKE_C_FLAGS_INIT "${SPR_MCU_FLAGS} -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH /usr/lib/arm-none-eabi)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# libm by name: the compiler driver picks the newlib multilib matching the
# CPU/FPU flags (a found path would be the default soft-float one).
set(SPR_LIBM m CACHE STRING "math library (firmware: by name)")
# Bare metal has no OS: the firmware configuration of the library.
set(SPR_FIRMWARE ON CACHE BOOL "Bare-metal build")
# The demo in tools/firmware runs on this qemu board (see docs/arm.md).
set(SPR_FW_BOARD "${SPR_FW_BOARD_DEFAULT}" CACHE STRING "Board of the firmware demo: mps2-an500 or mps3-an547")

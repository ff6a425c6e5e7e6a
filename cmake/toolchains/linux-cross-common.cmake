# Shared part of the Debian cross toolchains (included by aarch64-linux-gnu.cmake
# and arm-linux-gnueabihf.cmake after they set SPR_CROSS_TRIPLE, SPR_CROSS_PROCESSOR
# and SPR_QEMU). Debian layout: the cross libc lives in /usr/<triple>
# (libc6-dev-<arch>-cross); multiarch packages (libcmocka-dev:<arch>) put their
# libraries in /usr/lib/<triple> and their headers in the shared /usr/include.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${SPR_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${SPR_CROSS_TRIPLE}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${SPR_CROSS_TRIPLE})

set(CMAKE_FIND_ROOT_PATH /usr/${SPR_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# cmocka for the tests: the multiarch library of the target architecture. The
# header is architecture independent; CMakeLists.txt exposes it (and SIMDe) to
# the cross compiler without putting the build machine's /usr/include on the
# include path (that would shadow the target's libc headers).
if(NOT SPR_CMOCKA_LIB AND EXISTS /usr/lib/${SPR_CROSS_TRIPLE}/libcmocka.so)
  set(SPR_CMOCKA_LIB /usr/lib/${SPR_CROSS_TRIPLE}/libcmocka.so CACHE FILEPATH "cmocka for the target")
endif()
# zlib for the CLI: the development link when zlib1g-dev:<arch> is installed,
# else the runtime library of zlib1g:<arch> (zlib1g-dev:<arch> pulls in
# libc6-dev:<arch>, which a mirror mid-sync cannot always match to the
# build machine's versions); the header is the shared /usr/include/zlib.h.
foreach(spr_z libz.so libz.so.1)
  if(NOT ZLIB_LIBRARY AND EXISTS /usr/lib/${SPR_CROSS_TRIPLE}/${spr_z})
    set(ZLIB_LIBRARY /usr/lib/${SPR_CROSS_TRIPLE}/${spr_z} CACHE FILEPATH "zlib for the target")
  endif()
endforeach()

# CTest (and add_test COMMANDs naming a target) run the cross-built programs
# under qemu user mode. -L is where the target's dynamic loader and libraries
# are looked up. Prefer "/": Debian's multiarch runtime (libc6:<arch>, pulled in
# by libcmocka-dev:<arch>) sits in /lib/<triple> and /usr/lib/<triple> there.
# The cross-compiler's own copy in /usr/<triple> (libc6-<arch>-cross
# 2.36-8cross1) hangs (aarch64) or crashes (armhf) in pthread_create under
# qemu 7.2, so it is only the fallback.
if(EXISTS /lib/${SPR_CROSS_TRIPLE}/libc.so.6)
  set(SPR_QEMU_LD_PREFIX_DEFAULT /)
else()
  set(SPR_QEMU_LD_PREFIX_DEFAULT /usr/${SPR_CROSS_TRIPLE})
endif()
set(SPR_QEMU_LD_PREFIX "${SPR_QEMU_LD_PREFIX_DEFAULT}" CACHE PATH "qemu -L: root of the target's runtime libraries")
set(SPR_QEMU_CPU "${SPR_QEMU_CPU_DEFAULT}" CACHE STRING
    "CPU model qemu emulates for the tests (qemu-${SPR_QEMU} -cpu help lists them)")
find_program(SPR_QEMU_PROGRAM qemu-${SPR_QEMU})
if(SPR_QEMU_PROGRAM)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SPR_QEMU_PROGRAM};-L;${SPR_QEMU_LD_PREFIX};-cpu;${SPR_QEMU_CPU})
endif()

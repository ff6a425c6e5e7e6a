# Installs the build tree into a fresh prefix, then configures, builds and
# runs tests/install/consumer against it with find_package(sparrow).
# Inputs: -DBIN=<build dir> -DSRC=<source dir> [-DMODEL=<gguf to load>] [-DSAN=ON: the
# library was built with ASan+UBSan, so the consumer must link their runtimes too]
# [-DTOOLCHAIN=<file> -DEMULATOR=<cmd|args>: cross build, run the consumer under the emulator]
set(prefix ${BIN}/install-test/prefix)
set(cbin ${BIN}/install-test/consumer)
file(REMOVE_RECURSE ${BIN}/install-test)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${prefix} RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "install failed: ${rc}")
endif()
set(extra)
if(SAN)
  list(APPEND extra "-DCMAKE_C_FLAGS=-fsanitize=address,undefined" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
endif()
set(emulator)
if(TOOLCHAIN)
  # A cross toolchain re-roots package searches into the target's sysroot:
  # point find_package at the installed config directly.
  file(GLOB cfg ${prefix}/lib*/cmake/sparrow/sparrowConfig.cmake)
  get_filename_component(cfg_dir "${cfg}" DIRECTORY)
  list(APPEND extra "-DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN}" "-Dsparrow_DIR=${cfg_dir}")
  string(REPLACE "|" ";" emulator "${EMULATOR}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/install/consumer -B ${cbin} -DCMAKE_PREFIX_PATH=${prefix}
                        ${extra} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${cbin} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed: ${rc}")
endif()
execute_process(COMMAND ${emulator} ${cbin}/consumer ${MODEL} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer failed: ${rc}")
endif()

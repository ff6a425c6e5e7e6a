# tools/firmware/run_qemu.cmake — the CTest check of a firmware image: runs it
# under qemu-system-arm with semihosting and a timeout, prints its output, and
# fails unless it exits with 0 and its output matches EXPECT (a regex).
# cmake -DQEMU=... -DMACHINE=... -DCPU=... -DELF=... -DEXPECT=... -P run_qemu.cmake
execute_process(COMMAND ${QEMU} -machine ${MACHINE} -cpu ${CPU} -nographic -monitor none -serial none
                        -semihosting -kernel ${ELF}
                TIMEOUT 120 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}") # (qemu writes the semihosting console to stderr)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${ELF} exited with ${rc} under qemu -machine ${MACHINE}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "the output does not match '${EXPECT}'")
endif()

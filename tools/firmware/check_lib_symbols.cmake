# tools/firmware/check_lib_symbols.cmake — the firmware library must not
# reference an allocator, threads, memory mapping or file I/O: lists the
# undefined symbols of every object in libsparrow.a and fails on any of them.
# cmake -DNM=arm-none-eabi-nm -DLIB=libsparrow.a -P check_lib_symbols.cmake
execute_process(COMMAND ${NM} -u ${LIB} RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIB}")
endif()
string(REGEX MATCHALL "U [A-Za-z0-9_]+" refs "${out}")
list(TRANSFORM refs REPLACE "^U " "")
list(REMOVE_DUPLICATES refs)
# only what the archive does not define itself: what the library needs from libc, libm, libgcc
execute_process(COMMAND ${NM} -g --defined-only ${LIB} OUTPUT_VARIABLE defs)
string(REGEX MATCHALL " [TDRBVW] [A-Za-z0-9_]+" defs "${defs}")
list(TRANSFORM defs REPLACE "^ [TDRBVW] " "")
list(REMOVE_ITEM refs ${defs})
set(bad)
foreach(sym IN LISTS refs)
  if(sym MATCHES "^(_?malloc|_?free|_?calloc|_?realloc|aligned_alloc|posix_memalign|memalign|_?sbrk|mmap|munmap|pthread_.*|fopen|fread|fwrite|fclose|open|read|close|fstat|stat|getauxval|sysconf|clock_gettime|printf|puts|abort|exit)$")
    list(APPEND bad ${sym})
  endif()
endforeach()
list(LENGTH refs n)
if(bad)
  message(FATAL_ERROR "libsparrow.a references: ${bad}")
endif()
list(SORT refs)
string(REPLACE ";" " " refs "${refs}")
message("libsparrow.a needs ${n} external symbols, none of malloc/free/calloc/realloc/mmap/pthread_*/file I/O:\n${refs}")

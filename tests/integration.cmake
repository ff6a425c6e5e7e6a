# Tests that are not cmocka executables.
add_test(NAME install_find_package
         COMMAND ${CMAKE_COMMAND} -DBIN=${CMAKE_BINARY_DIR} -DSRC=${PROJECT_SOURCE_DIR} -DSAN=${SPR_SANITIZE} -P
                 ${PROJECT_SOURCE_DIR}/tests/install/run.cmake)
set_tests_properties(install_find_package PROPERTIES TIMEOUT 300)

# Tests that are not cmocka executables.
add_test(NAME install_find_package
         COMMAND ${CMAKE_COMMAND} -DBIN=${CMAKE_BINARY_DIR} -DSRC=${PROJECT_SOURCE_DIR} -DSAN=${SPR_SANITIZE} -P
                 ${PROJECT_SOURCE_DIR}/tests/install/run.cmake)
set_tests_properties(install_find_package PROPERTIES TIMEOUT 300)

if(SPR_BUILD_TOOLS AND NOT CMAKE_CROSSCOMPILING)
  add_test(NAME cli COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/cli_test.sh $<TARGET_FILE:sparrow_cli> ${PROJECT_SOURCE_DIR})
  add_test(NAME vit_accuracy_agreement
           COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/accuracy_agreement.sh $<TARGET_FILE:sparrow_cli> ${PROJECT_SOURCE_DIR})
  add_test(NAME nat_accuracy_agreement
           COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/accuracy_agreement.sh $<TARGET_FILE:sparrow_cli> ${PROJECT_SOURCE_DIR} nat)
  add_test(NAME biformer_accuracy_agreement
           COMMAND ${PROJECT_SOURCE_DIR}/tests/cli/accuracy_agreement.sh $<TARGET_FILE:sparrow_cli> ${PROJECT_SOURCE_DIR}
                   biformer)
  add_test(NAME sparse_vision_bad_models
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/cli/sparse_vision_bad_models.py $<TARGET_FILE:sparrow_cli>
                   ${PROJECT_SOURCE_DIR})
  set_tests_properties(sparse_vision_bad_models PROPERTIES TIMEOUT 300)
  set_tests_properties(cli vit_accuracy_agreement nat_accuracy_agreement biformer_accuracy_agreement
                       PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77)
endif()

/* tools/firmware/cmocka/cmocka.h — the part of cmocka's API that tests/unit
 * uses, for running those tests on a Cortex-M under qemu-system-arm (Debian
 * has no cmocka for arm-none-eabi). Same semantics for what the tests rely on:
 * a failed assertion ends the current test (longjmp) and the group goes on;
 * skip() marks the test skipped; cmocka_run_group_tests returns the number of
 * failed tests; output follows cmocka's format. No mocking. */
#ifndef SPR_FW_CMOCKA_H
#define SPR_FW_CMOCKA_H

#include <stddef.h>
#include <stdint.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
  const char *name;
  CMUnitTestFunction test_func;
  CMFixtureFunction setup_func, teardown_func;
  void *initial_state;
};

#define cmocka_unit_test(f) \
  { #f, f, NULL, NULL, NULL }
#define cmocka_unit_test_setup_teardown(f, setup, teardown) \
  { #f, f, setup, teardown, NULL }
#define cmocka_run_group_tests(tests, setup, teardown) \
  spr_fw_cm_run(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

int spr_fw_cm_run(const char *group, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
                  CMFixtureFunction teardown);
__attribute__((noreturn, format(printf, 3, 4))) void spr_fw_cm_fail(const char *file, int line, const char *fmt, ...);
__attribute__((noreturn)) void spr_fw_cm_skip(const char *file, int line);
void spr_fw_cm_int(uintmax_t a, uintmax_t b, int equal, const char *file, int line);
void spr_fw_cm_str(const char *a, const char *b, const char *file, int line);
void spr_fw_cm_mem(const void *a, const void *b, size_t n, const char *file, int line);
__attribute__((format(printf, 1, 2))) void print_message(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void print_error(const char *fmt, ...);

#define fail() spr_fw_cm_fail(__FILE__, __LINE__, "%s", "Failure!")
#define fail_msg(...) spr_fw_cm_fail(__FILE__, __LINE__, __VA_ARGS__)
#define skip() spr_fw_cm_skip(__FILE__, __LINE__)
#define assert_true(c) ((c) ? (void)0 : spr_fw_cm_fail(__FILE__, __LINE__, "%s", #c))
#define assert_false(c) (!(c) ? (void)0 : spr_fw_cm_fail(__FILE__, __LINE__, "!(%s)", #c))
#define assert_non_null(p) ((p) != NULL ? (void)0 : spr_fw_cm_fail(__FILE__, __LINE__, "%s is NULL", #p))
#define assert_null(p) ((p) == NULL ? (void)0 : spr_fw_cm_fail(__FILE__, __LINE__, "%s is not NULL", #p))
#define assert_ptr_equal(a, b) \
  ((const void *)(a) == (const void *)(b) ? (void)0 : spr_fw_cm_fail(__FILE__, __LINE__, "%s != %s", #a, #b))
#define assert_int_equal(a, b) spr_fw_cm_int((uintmax_t)(a), (uintmax_t)(b), 1, __FILE__, __LINE__)
#define assert_int_not_equal(a, b) spr_fw_cm_int((uintmax_t)(a), (uintmax_t)(b), 0, __FILE__, __LINE__)
#define assert_string_equal(a, b) spr_fw_cm_str((a), (b), __FILE__, __LINE__)
#define assert_memory_equal(a, b, n) spr_fw_cm_mem((a), (b), (n), __FILE__, __LINE__)

#endif

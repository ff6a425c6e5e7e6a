/* tools/firmware/cmocka/cmocka.c — see cmocka.h. */
#include "cmocka.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static jmp_buf g_env;
static int g_skipped;

/* The tests print sizes with %zu, which this newlib lacks (no C99 'z'); on
 * this target size_t is unsigned int, so the z is dropped. */
static const char *plain(const char *fmt, char *buf, size_t len) {
  size_t o = 0;
  for (const char *p = fmt; *p != '\0' && o + 1 < len; p++) {
    if (p[0] == 'z' && o > 0) {
      size_t q = o;
      while (q > 0 && strchr("0123456789.-+ #", buf[q - 1]) != NULL) q--;
      if (q > 0 && buf[q - 1] == '%' && (q < 2 || buf[q - 2] != '%')) continue;
    }
    buf[o++] = *p;
  }
  buf[o] = '\0';
  return buf;
}

void print_message(const char *fmt, ...) {
  char f[256];
  va_list ap;
  va_start(ap, fmt);
  vprintf(plain(fmt, f, sizeof f), ap);
  va_end(ap);
}

void print_error(const char *fmt, ...) {
  char f[256];
  va_list ap;
  va_start(ap, fmt);
  vprintf(plain(fmt, f, sizeof f), ap);
  va_end(ap);
}

void spr_fw_cm_fail(const char *file, int line, const char *fmt, ...) {
  char f[512];
  va_list ap;
  va_start(ap, fmt);
  printf("[  ERROR   ] --- ");
  vprintf(plain(fmt, f, sizeof f), ap);
  printf("\n[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
  va_end(ap);
  g_skipped = 0;
  longjmp(g_env, 1);
}

void spr_fw_cm_skip(const char *file, int line) {
  (void)file, (void)line;
  g_skipped = 1;
  longjmp(g_env, 1);
}

void spr_fw_cm_int(uintmax_t a, uintmax_t b, int equal, const char *file, int line) {
  if ((a == b) == (equal != 0)) return;
  /* in hex halves: newlib-nano's printf may lack %ll */
  spr_fw_cm_fail(file, line, "0x%08lx%08lx %s 0x%08lx%08lx", (unsigned long)(a >> 32), (unsigned long)(a & 0xffffffffu),
                 equal ? "!=" : "==", (unsigned long)(b >> 32), (unsigned long)(b & 0xffffffffu));
}

void spr_fw_cm_str(const char *a, const char *b, const char *file, int line) {
  if (a != NULL && b != NULL && strcmp(a, b) == 0) return;
  spr_fw_cm_fail(file, line, "\"%s\" != \"%s\"", a ? a : "(null)", b ? b : "(null)");
}

void spr_fw_cm_mem(const void *a, const void *b, size_t n, const char *file, int line) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) spr_fw_cm_fail(file, line, "byte %lu differs: 0x%02x != 0x%02x", (unsigned long)i, x[i], y[i]);
  }
}

int spr_fw_cm_run(const char *group, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
                  CMFixtureFunction teardown) {
  printf("[==========] %s: Running %lu test(s).\n", group, (unsigned long)n);
  void *group_state = NULL;
  if (setup != NULL && setup(&group_state) != 0) {
    printf("[  ERROR   ] group setup failed\n");
    return (int)n;
  }
  unsigned long failed = 0, skipped = 0;
  for (size_t i = 0; i < n; i++) {
    const struct CMUnitTest *t = &tests[i];
    void *state = t->initial_state != NULL ? t->initial_state : group_state;
    printf("[ RUN      ] %s\n", t->name);
    if (setjmp(g_env) == 0) {
      if (t->setup_func != NULL && t->setup_func(&state) != 0) spr_fw_cm_fail(__FILE__, __LINE__, "setup failed");
      t->test_func(&state);
      if (t->teardown_func != NULL) t->teardown_func(&state);
      printf("[       OK ] %s\n", t->name);
    } else if (g_skipped) {
      printf("[  SKIPPED ] %s\n", t->name);
      skipped++;
    } else {
      printf("[  FAILED  ] %s\n", t->name);
      failed++;
    }
  }
  if (teardown != NULL) teardown(&group_state);
  printf("[==========] %lu test(s) run.\n[  PASSED  ] %lu test(s).\n", (unsigned long)n,
         (unsigned long)(n - failed - skipped));
  if (skipped) printf("[  SKIPPED ] %lu test(s).\n", skipped);
  if (failed) printf("[  FAILED  ] %lu test(s).\n", failed);
  return (int)failed;
}

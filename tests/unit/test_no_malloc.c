/* tests/unit/test_no_malloc.c — the library never allocates during a run.
 *
 * malloc/calloc/realloc/free/posix_memalign are interposed in this
 * executable (glibc lets a program define them and forwards to __libc_*);
 * calls are counted only while spr_session_run executes, on every thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sparrow/sparrow.h"
#include "support/test_util.h"
#include "support/tiny_models.h"

#if defined(__SANITIZE_ADDRESS__)
#define SPR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPR_SANITIZED 1
#endif
#endif

#if !defined(SPR_SANITIZED) && defined(__GLIBC__)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static atomic_int g_counting;
static atomic_long g_calls;

static void count(void) {
  if (atomic_load_explicit(&g_counting, memory_order_relaxed)) atomic_fetch_add(&g_calls, 1);
}
void *malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  count();
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void free(void *p) {
  if (p != NULL) count();
  __libc_free(p);
}
int posix_memalign(void **out, size_t align, size_t n) {
  count();
  void *p = __libc_memalign(align, n);
  if (p == NULL) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

static void run_counted(int threads) {
  struct spr_tiny_vit c;
  spr_tiny_vit_defaults(&c);
  void *blob;
  size_t size;
  assert_int_equal(spr_tiny_vit_write(&c, &blob, &size), SPR_STATUS_OK);
  struct spr_model *m = NULL;
  struct spr_error err;
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = threads;
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  struct spr_tensor_view in;
  assert_int_equal(spr_session_input(s, 0, &in), SPR_STATUS_OK);
  spr_test_fill(in.data, in.nbytes / 4, 3, -1.0f, 1.0f);
  atomic_store(&g_calls, 0);
  atomic_store(&g_counting, 1);
  for (int r = 0; r < 5; r++) assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  atomic_store(&g_counting, 0);
  const long calls = atomic_load(&g_calls);
  if (calls != 0) fail_msg("%ld allocator calls during spr_session_run with %d thread(s)", calls, threads);
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  free(blob);
}

/* The interposition works: counting catches a malloc. */
static void test_counter_works(void **state) {
  (void)state;
  atomic_store(&g_calls, 0);
  atomic_store(&g_counting, 1);
  void *volatile p = malloc(16);
  atomic_store(&g_counting, 0);
  free(p);
  assert_int_equal(atomic_load(&g_calls), 1);
}

static void test_no_malloc_1_thread(void **state) {
  (void)state;
  run_counted(1);
}

static void test_no_malloc_2_threads(void **state) {
  (void)state;
  run_counted(2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_works),
      cmocka_unit_test(test_no_malloc_1_thread),
      cmocka_unit_test(test_no_malloc_2_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void) {
  fprintf(stderr, "skipped: malloc interposition needs glibc and no sanitizer runtime\n");
  return 77;
}
#endif

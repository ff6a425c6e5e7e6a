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

#include "sparrow/llm.h"
#include "sparrow/sparrow.h"
#include "support/test_util.h"
#include "support/tiny_models.h"
#include "tools/sparrow/quantize.h"

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

/* An LLM with the core-neuron FFN (sparse_ffn_*): prefill (selection), sparse
 * decode and sentence re-selection, for both ffn_down layouts; spr_llm_eval
 * is counted as a whole. */
static void run_counted_sparse_llm(int threads, bool sparse_layout) {
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  void *blob;
  size_t size;
  assert_int_equal(spr_tiny_llama_write(&c, &blob, &size), SPR_STATUS_OK);
  struct spr_model *m = NULL;
  struct spr_error err;
  void *file_blob = NULL;
  if (sparse_layout) {
    const char *in = SPR_BINARY_DIR "/no_malloc_llm.gguf", *out = SPR_BINARY_DIR "/no_malloc_llm_sparse.gguf";
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(blob, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
    const struct spr_quantize_opts o = {SPR_DTYPE_Q8_0, false, 1, NULL, true, 0, 1 << 30};
    assert_int_equal(spr_quantize_file(in, out, &o, NULL, &err), SPR_STATUS_OK);
    file_blob = spr_test_read_file(out, &size);
    assert_non_null(file_blob);
  }
  assert_int_equal(spr_model_load_blob(sparse_layout ? file_blob : blob, size, NULL, &m, &err), SPR_STATUS_OK);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = threads;
  cfg.ctx = 64;
  cfg.batch = 8;
  cfg.sparse_ffn_beta = 0.4f;
  cfg.sparse_ffn_first = 0;
  cfg.sparse_ffn_last = 1;
  cfg.sparse_ffn_reselect = 1;
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  const int32_t prompt[12] = {1, 259, 261, 270, 5, 299, 42, 259, 262, 263, 264, 40};
  const int32_t bang = 3 + '!'; /* the byte token of '!': ends a sentence */
  atomic_store(&g_calls, 0);
  atomic_store(&g_counting, 1);
  assert_int_equal(spr_llm_eval(s, prompt, 12, NULL), SPR_STATUS_OK);
  for (int i = 0; i < 12; i++) {
    const int32_t tok = i == 6 ? bang : 259 + i;
    assert_int_equal(spr_llm_eval(s, &tok, 1, NULL), SPR_STATUS_OK);
  }
  atomic_store(&g_counting, 0);
  const long calls = atomic_load(&g_calls);
  if (calls != 0) fail_msg("%ld allocator calls during sparse LLM steps with %d thread(s)", calls, threads);
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  free(blob);
  free(file_blob);
}

static void test_no_malloc_sparse_llm(void **state) {
  (void)state;
  for (int threads = 1; threads <= 2; threads++) {
    run_counted_sparse_llm(threads, false);
    run_counted_sparse_llm(threads, true);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_works),
      cmocka_unit_test(test_no_malloc_1_thread),
      cmocka_unit_test(test_no_malloc_2_threads),
      cmocka_unit_test(test_no_malloc_sparse_llm),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void) {
  fprintf(stderr, "skipped: malloc interposition needs glibc and no sanitizer runtime\n");
  return 77;
}
#endif

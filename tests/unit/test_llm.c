/* tests/unit/test_llm.c — the LLM runtime on tiny random llama models.
 *
 *   - the plan is exact (a sweep of smaller arenas is refused);
 *   - 1 and 2 threads give bit-identical logits;
 *   - a prompt fed in one prefill step and token by token agree (GEMM vs
 *     GEMV paths: within 1e-4);
 *   - a sliding window that covers the whole sequence equals dense attention
 *     bit for bit; with a small window the KV memory does not grow with ctx;
 *   - bad input is refused with a status (ids out of range, context overflow,
 *     ctx beyond the model's, sinks without a window);
 *   - tokenize/piece round trip on the synthetic vocabulary; sampling is
 *     deterministic for a seed and greedy picks the arg-max. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sparrow/llm.h"
#include "support/test_util.h"
#include "support/tiny_models.h"

struct llm {
  void *blob;
  struct spr_model *model;
  struct spr_session *session;
  void *arena;
  struct spr_plan plan;
};

static void open_llm(struct llm *t, const struct spr_tiny_llama *c, const struct spr_config *cfg) {
  memset(t, 0, sizeof *t);
  size_t size;
  assert_int_equal(spr_tiny_llama_write(c, &t->blob, &size), SPR_STATUS_OK);
  struct spr_error err;
  if (spr_model_load_blob(t->blob, size, NULL, &t->model, &err) != SPR_STATUS_OK) fail_msg("load: %s", err.msg);
  if (spr_plan(t->model, cfg, &t->plan, &err) != SPR_STATUS_OK) fail_msg("plan: %s", err.msg);
  t->arena = spr_test_aligned_alloc(t->plan.arena_bytes);
  if (spr_session_create(t->model, cfg, t->arena, t->plan.arena_bytes, &t->session, &err) != SPR_STATUS_OK)
    fail_msg("session: %s", err.msg);
}

static void close_llm(struct llm *t) {
  spr_session_destroy(t->session);
  free(t->arena);
  spr_model_free(t->model);
  free(t->blob);
}

static const int32_t k_prompt[12] = {1, 259, 261, 270, 5, 300 - 1, 42, 259, 262, 263, 264, 40};

/* Logits of every position, token by token or in one step. */
static void run_tokens(struct llm *t, const int32_t *tok, size_t n, bool one_step, float *out, size_t V) {
  spr_llm_reset(t->session);
  const float *lg = NULL;
  if (one_step) {
    assert_int_equal(spr_llm_eval(t->session, tok, n, &lg), SPR_STATUS_OK);
    memcpy(out, lg, V * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(spr_llm_eval(t->session, &tok[i], 1, &lg), SPR_STATUS_OK);
    memcpy(out + i * V, lg, V * sizeof(float));
  }
}

static void test_exact_arena(void **state) {
  (void)state;
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 32;
  cfg.batch = 8;
  struct llm t;
  open_llm(&t, &c, &cfg);
  struct spr_error err;
  const size_t step = t.plan.arena_bytes / 53 + 1;
  for (size_t sz = t.plan.arena_bytes - 1;; sz = sz > step ? sz - step : 0) {
    struct spr_session *s = NULL;
    const enum spr_status st = spr_session_create(t.model, &cfg, t.arena, sz, &s, &err);
    if (st != SPR_STATUS_ARENA_TOO_SMALL) fail_msg("arena %zu of %zu gave %s", sz, t.plan.arena_bytes, spr_status_name(st));
    if (sz == 0) break;
  }
  /* KV cache: 2 layers x (K + V) x 32 rows x 16 wide x f16 */
  assert_true(t.plan.persistent_bytes >= 2u * 2u * 32u * 16u * 2u);
  close_llm(&t);
}

static void test_threads_and_steps(void **state) {
  (void)state;
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  const size_t V = (size_t)c.vocab, n = 12;
  float *a = malloc(n * V * sizeof(float)), *b = malloc(n * V * sizeof(float)), *last = malloc(V * sizeof(float));
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 32;
  cfg.batch = 16;
  struct llm t1, t2;
  open_llm(&t1, &c, &cfg);
  cfg.threads = 2;
  open_llm(&t2, &c, &cfg);
  run_tokens(&t1, k_prompt, n, false, a, V);
  run_tokens(&t2, k_prompt, n, false, b, V);
  assert_memory_equal(a, b, n * V * sizeof(float));
  for (size_t i = 0; i < n * V; i++) assert_true(isfinite(a[i]));
  run_tokens(&t1, k_prompt, n, true, last, V);
  for (size_t k = 0; k < V; k++) {
    const float want = a[(n - 1) * V + k];
    if (fabsf(last[k] - want) > 1e-4f * (1.0f + fabsf(want)))
      fail_msg("logit %zu: one prefill step %g vs token by token %g", k, last[k], want);
  }
  close_llm(&t1);
  close_llm(&t2);
  free(a);
  free(b);
  free(last);
}

static void test_window_covering_equals_dense(void **state) {
  (void)state;
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  const size_t V = (size_t)c.vocab, n = 12;
  float *a = malloc(n * V * sizeof(float)), *b = malloc(n * V * sizeof(float));
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 32;
  cfg.batch = 4;
  struct llm dense, win;
  open_llm(&dense, &c, &cfg);
  cfg.window = 16;
  cfg.sinks = 2;
  open_llm(&win, &c, &cfg);
  run_tokens(&dense, k_prompt, n, false, a, V);
  run_tokens(&win, k_prompt, n, false, b, V);
  assert_memory_equal(a, b, n * V * sizeof(float));
  close_llm(&dense);
  close_llm(&win);
  free(a);
  free(b);
}

static void test_window_memory_is_constant(void **state) {
  (void)state;
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  c.ctx = 4096;
  void *blob;
  size_t size;
  assert_int_equal(spr_tiny_llama_write(&c, &blob, &size), SPR_STATUS_OK);
  struct spr_model *m;
  struct spr_error err;
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_OK);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.window = 8;
  cfg.sinks = 2;
  cfg.batch = 4;
  struct spr_plan p1, p2;
  cfg.ctx = 64;
  assert_int_equal(spr_plan(m, &cfg, &p1, &err), SPR_STATUS_OK);
  cfg.ctx = 4096;
  assert_int_equal(spr_plan(m, &cfg, &p2, &err), SPR_STATUS_OK);
  assert_int_equal(p1.arena_bytes, p2.arena_bytes);
  /* generating far past the window works: capacity is unlimited */
  void *arena = spr_test_aligned_alloc(p2.arena_bytes);
  struct spr_session *s;
  assert_int_equal(spr_session_create(m, &cfg, arena, p2.arena_bytes, &s, &err), SPR_STATUS_OK);
  assert_int_equal(spr_llm_capacity(s), UINT32_MAX);
  for (int i = 0; i < 100; i++) {
    const int32_t tok = 259 + i % 41;
    const float *lg;
    assert_int_equal(spr_llm_eval(s, &tok, 1, &lg), SPR_STATUS_OK);
    assert_true(isfinite(lg[0]));
  }
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  free(blob);
}

static void test_bad_input(void **state) {
  (void)state;
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 8;
  cfg.batch = 4;
  struct llm t;
  open_llm(&t, &c, &cfg);
  const int32_t bad[2] = {1, 300};
  assert_int_equal(spr_llm_eval(t.session, bad, 2, NULL), SPR_STATUS_BAD_INPUT);
  const int32_t neg = -1;
  assert_int_equal(spr_llm_eval(t.session, &neg, 1, NULL), SPR_STATUS_BAD_INPUT);
  assert_int_equal(spr_llm_eval(t.session, k_prompt, 0, NULL), SPR_STATUS_BAD_INPUT);
  assert_int_equal(spr_llm_eval(t.session, k_prompt, 9, NULL), SPR_STATUS_CAPACITY);
  assert_int_equal(spr_llm_eval(t.session, k_prompt, 8, NULL), SPR_STATUS_OK);
  assert_int_equal(spr_llm_eval(t.session, k_prompt, 1, NULL), SPR_STATUS_CAPACITY);
  assert_int_equal(spr_llm_position(t.session), 8);
  struct spr_plan p;
  struct spr_error err;
  cfg.ctx = 65; /* the model's context is 64 */
  assert_int_equal(spr_plan(t.model, &cfg, &p, &err), SPR_STATUS_UNSUPPORTED);
  assert_non_null(strstr(err.msg, "context length 64"));
  cfg.ctx = 8;
  cfg.sinks = 2;
  assert_int_equal(spr_plan(t.model, &cfg, &p, &err), SPR_STATUS_INVALID_ARGUMENT);
  close_llm(&t);
}

static void test_tokenizer_and_sampler(void **state) {
  (void)state;
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 32;
  struct llm t;
  open_llm(&t, &c, &cfg);
  const char *text = "the cat sat on the mat!";
  char work[8192];
  int32_t tok[64];
  size_t n = 0;
  assert_true(spr_llm_tokenize_work_bytes(t.model, strlen(text)) <= sizeof work);
  assert_int_equal(spr_llm_tokenize(t.model, text, strlen(text), true, tok, 64, &n, work, sizeof work), SPR_STATUS_OK);
  assert_int_equal(tok[0], 1);
  char out[256] = "";
  size_t used = 0;
  for (size_t i = 1; i < n; i++) {
    size_t k = 0;
    assert_int_equal(spr_llm_token_piece(t.model, tok[i], out + used, sizeof out - used, &k), SPR_STATUS_OK);
    used += k;
  }
  out[used] = '\0';
  assert_string_equal(out, " the cat sat on the mat!"); /* the leading space is SentencePiece's */
  const float *lg;
  assert_int_equal(spr_llm_eval(t.session, tok, n, &lg), SPR_STATUS_OK);
  size_t best = 0;
  for (size_t i = 1; i < (size_t)c.vocab; i++) best = lg[i] > lg[best] ? i : best;
  struct spr_sampler sp;
  spr_sampler_init(&sp);
  sp.temperature = 0;
  assert_int_equal(spr_llm_sample(t.session, &sp, tok, n), (int32_t)best);
  spr_sampler_init(&sp);
  sp.seed = 99;
  const int32_t s1 = spr_llm_sample(t.session, &sp, tok, n);
  spr_sampler_init(&sp);
  sp.seed = 99;
  assert_int_equal(spr_llm_sample(t.session, &sp, tok, n), s1);
  assert_true(s1 >= 0 && s1 < c.vocab);
  close_llm(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_arena),
      cmocka_unit_test(test_threads_and_steps),
      cmocka_unit_test(test_window_covering_equals_dense),
      cmocka_unit_test(test_window_memory_is_constant),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_tokenizer_and_sampler),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

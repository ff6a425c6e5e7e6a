/* tests/unit/test_session.c — load, plan, bind and run a tiny random ViT.
 *
 * The promises of the runtime core:
 *   - a session over exactly the planned bytes runs; one byte less (and a
 *     sweep of smaller sizes) is refused with ARENA_TOO_SMALL and the message
 *     names the bytes needed;
 *   - the result does not depend on what the arena held before (every byte a
 *     run reads was written by that run);
 *   - 1 and 2 threads give bit-identical results, node by node;
 *   - the scalar path agrees with the best path within tolerance;
 *   - bad models are refused with a specific status and a message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sparrow/sparrow.h"
#include "support/test_util.h"
#include "support/tiny_models.h"

struct fixture {
  void *blob;
  size_t size;
  struct spr_model *model;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  struct spr_tiny_vit c;
  spr_tiny_vit_defaults(&c);
  if (spr_tiny_vit_write(&c, &f->blob, &f->size) != SPR_STATUS_OK) return -1;
  struct spr_error err;
  if (spr_model_load_blob(f->blob, f->size, NULL, &f->model, &err) != SPR_STATUS_OK) {
    fprintf(stderr, "load: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  spr_model_free(f->model);
  free(f->blob);
  free(f);
  return 0;
}

/* Every node's output, copied when the node has run (later nodes may reuse
 * its memory). */
struct trace {
  float *data;
  size_t n, cap;
};

static void record(void *user, uint32_t index, const struct spr_node_info *info) {
  (void)index;
  struct trace *t = user;
  const size_t n = (size_t)(info->ne[0] * info->ne[1] * info->ne[2] * info->ne[3]);
  if (t->n + n > t->cap) {
    t->cap = 2 * (t->n + n);
    t->data = realloc(t->data, t->cap * sizeof(float));
  }
  memcpy(t->data + t->n, info->data, n * sizeof(float));
  t->n += n;
}

/* Runs once with a given arena fill, threads and isa; copies the logits out. */
static void run_once(struct spr_model *m, int threads, uint32_t isa, int fill, float *logits, size_t n_logits,
                     struct trace *trace) {
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = threads;
  cfg.isa_mask = isa;
  struct spr_plan plan;
  struct spr_error err;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  memset(arena, fill, plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  if (trace != NULL) spr_session_set_observer(s, record, trace);
  struct spr_tensor_view in, out;
  assert_int_equal(spr_session_input(s, 0, &in), SPR_STATUS_OK);
  spr_test_fill(in.data, in.nbytes / 4, 7, -2.0f, 2.0f);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  assert_int_equal(spr_session_output(s, 0, &out), SPR_STATUS_OK);
  assert_int_equal(out.nbytes, n_logits * sizeof(float));
  memcpy(logits, out.data, out.nbytes);
  spr_session_destroy(s);
  free(arena);
}

static void test_exact_arena(void **state) {
  struct fixture *f = *state;
  struct spr_config cfg;
  spr_config_init(&cfg);
  struct spr_plan plan;
  struct spr_error err;
  assert_int_equal(spr_plan(f->model, &cfg, &plan, &err), SPR_STATUS_OK);
  assert_true(plan.arena_bytes > 0);
  assert_int_equal(plan.arena_bytes,
                   plan.activations_bytes + plan.scratch_bytes + plan.persistent_bytes + plan.backend_bytes);
  assert_true(plan.activations_bytes <= plan.activations_naive_bytes);
  assert_true(plan.weights_bytes > 0);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(f->model, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  spr_session_destroy(s);

  /* One byte less, and a sweep down to zero. */
  const size_t step = plan.arena_bytes / 97 + 1;
  for (size_t sz = plan.arena_bytes - 1;; sz = sz > step ? sz - step : 0) {
    s = NULL;
    err.msg[0] = '\0';
    const enum spr_status st = spr_session_create(f->model, &cfg, arena, sz, &s, &err);
    if (st != SPR_STATUS_ARENA_TOO_SMALL) fail_msg("arena of %zu (plan %zu) gave %s", sz, plan.arena_bytes, spr_status_name(st));
    assert_null(s);
    char want[64];
    snprintf(want, sizeof want, "needs %zu", plan.arena_bytes);
    if (strstr(err.msg, want) == NULL) fail_msg("message '%s' does not say '%s'", err.msg, want);
    if (sz == 0) break;
  }
  free(arena);
}

static void test_misaligned_arena(void **state) {
  struct fixture *f = *state;
  struct spr_plan plan;
  struct spr_error err;
  assert_int_equal(spr_plan(f->model, NULL, &plan, &err), SPR_STATUS_OK);
  uint8_t *arena = spr_test_aligned_alloc(plan.arena_bytes + 64);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(f->model, NULL, arena + 8, plan.arena_bytes, &s, &err), SPR_STATUS_MISALIGNED);
  free(arena);
}

static void test_arena_contents_do_not_matter(void **state) {
  struct fixture *f = *state;
  float a[10], b[10];
  run_once(f->model, 1, SPR_ISA_ALL, 0x00, a, 10, NULL);
  run_once(f->model, 1, SPR_ISA_ALL, 0xff, b, 10, NULL); /* 0xffffffff is a NaN */
  assert_memory_equal(a, b, sizeof a);
  for (int i = 0; i < 10; i++) assert_true(isfinite(a[i]));
}

static void test_threads_bit_identical(void **state) {
  struct fixture *f = *state;
  float a[10], b[10];
  struct trace ta = {0}, tb = {0};
  run_once(f->model, 1, SPR_ISA_ALL, 0, a, 10, &ta);
  run_once(f->model, 2, SPR_ISA_ALL, 0, b, 10, &tb);
  assert_memory_equal(a, b, sizeof a);
  assert_int_equal(ta.n, tb.n);
  for (size_t i = 0; i < ta.n; i++) {
    if (memcmp(&ta.data[i], &tb.data[i], sizeof(float)) != 0)
      fail_msg("element %zu of the node trace differs: %a (1 thread) vs %a (2 threads)", i, ta.data[i], tb.data[i]);
  }
  free(ta.data);
  free(tb.data);
}

static void test_scalar_agrees(void **state) {
  struct fixture *f = *state;
  float a[10], b[10];
  run_once(f->model, 1, SPR_ISA_ALL, 0, a, 10, NULL);
  run_once(f->model, 1, 0, 0, b, 10, NULL);
  for (int i = 0; i < 10; i++) {
    if (fabsf(a[i] - b[i]) > 1e-4f * (1.0f + fabsf(b[i]))) fail_msg("logit %d: best %g vs scalar %g", i, a[i], b[i]);
  }
}

static void test_bad_config(void **state) {
  struct fixture *f = *state;
  struct spr_config cfg;
  spr_config_init(&cfg);
  struct spr_plan plan;
  struct spr_error err;
  cfg.threads = 0;
  assert_int_equal(spr_plan(f->model, &cfg, &plan, &err), SPR_STATUS_INVALID_ARGUMENT);
  cfg.threads = 100000;
  assert_int_equal(spr_plan(f->model, &cfg, &plan, &err), SPR_STATUS_INVALID_ARGUMENT);
  cfg.threads = 1;
  cfg.image_size = 32; /* the ViT's position embeddings fix the size */
  assert_int_equal(spr_plan(f->model, &cfg, &plan, &err), SPR_STATUS_UNSUPPORTED);
  assert_non_null(strstr(err.msg, "16x16"));
}

static void test_bad_models(void **state) {
  (void)state;
  struct spr_error err;
  struct spr_model *m = NULL;
  struct spr_tiny_vit c;
  void *blob;
  size_t size;
  spr_tiny_vit_defaults(&c);
  assert_int_equal(spr_tiny_vit_write(&c, &blob, &size), SPR_STATUS_OK);
  /* misaligned blob */
  uint8_t *copy = spr_test_aligned_alloc(size + 64);
  memcpy(copy + 4, blob, size);
  assert_int_equal(spr_model_load_blob(copy + 4, size, NULL, &m, &err), SPR_STATUS_MISALIGNED);
  assert_null(m);
  /* not GGUF */
  memcpy(copy, blob, size);
  copy[0] = 'X';
  assert_int_equal(spr_model_load_blob(copy, size, NULL, &m, &err), SPR_STATUS_BAD_MAGIC);
  free(copy);
  free(blob);

  /* head count that does not divide the width */
  c.heads = 3;
  assert_int_equal(spr_tiny_vit_write(&c, &blob, &size), SPR_STATUS_OK);
  assert_int_equal(spr_model_load_blob(blob, size, NULL, &m, &err), SPR_STATUS_BAD_METADATA);
  assert_non_null(strstr(err.msg, "heads"));
  free(blob);
}

static void test_file_errors(void **state) {
  (void)state;
  struct spr_error err;
  struct spr_model *m = NULL;
  assert_int_equal(spr_model_load_file("/nonexistent/model.gguf", NULL, &m, &err), SPR_STATUS_IO);
  assert_non_null(strstr(err.msg, "/nonexistent/model.gguf"));
  assert_int_equal(spr_model_load_file("/", NULL, &m, &err), SPR_STATUS_IO);
  assert_null(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_arena),
      cmocka_unit_test(test_misaligned_arena),
      cmocka_unit_test(test_arena_contents_do_not_matter),
      cmocka_unit_test(test_threads_bit_identical),
      cmocka_unit_test(test_scalar_agrees),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_bad_models),
      cmocka_unit_test(test_file_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

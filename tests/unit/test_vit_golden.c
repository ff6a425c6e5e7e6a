/* tests/unit/test_vit_golden.c — ViT models converted by tools/convert/vit.py
 * against an independent PyTorch forward (tools/reference/vit_ref.py).
 *
 * Each tests/fixtures/vit/<cfg>.golden.gguf holds the normalized input image
 * and the reference's activations named like Sparrow's graph nodes; its KV
 * golden.model names the model file. Sparrow runs the model (best ISA, and
 * scalar) and every node whose name has a golden tensor is compared.
 * Tolerance: |sparrow - ref| <= 1e-4 on the logits (the bar, f32),
 * and <= 1e-4 * (1 + |ref|) on intermediates. */
#include <dirent.h>
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

#define FIXTURES SPR_SOURCE_DIR "/tests/fixtures/vit"

struct compare {
  const struct spr_gguf *golden;
  const char *cfg;
  const char *isa;
  int matched;
  double worst_logit;
};

static void on_node(void *user, uint32_t index, const struct spr_node_info *info) {
  (void)index;
  struct compare *c = user;
  struct spr_gguf_tensor ref;
  if (spr_gguf_find_tensor(c->golden, info->name, &ref) != SPR_STATUS_OK) return;
  const size_t n = (size_t)(info->ne[0] * info->ne[1] * info->ne[2] * info->ne[3]);
  if (ref.type != SPR_DTYPE_F32 || ref.nbytes != n * sizeof(float))
    fail_msg("%s: node %s has shape {%lld,%lld} but the golden tensor has %zu bytes", c->cfg, info->name,
             (long long)info->ne[0], (long long)info->ne[1], ref.nbytes);
  const float *got = info->data;
  const bool logits = strcmp(info->name, "logits") == 0;
  for (size_t i = 0; i < n; i++) {
    float want;
    memcpy(&want, (const uint8_t *)ref.data + 4 * i, 4);
    const double err = fabs((double)got[i] - (double)want);
    const double tol = logits ? 1e-4 : 1e-4 * (1.0 + fabs((double)want));
    if (!(err <= tol))
      fail_msg("%s (%s): node %s element %zu (col %zu, row %zu): sparrow %.8g, reference %.8g, |diff| %.3g > %.3g",
               c->cfg, c->isa, info->name, i, i % (size_t)info->ne[0], i / (size_t)info->ne[0], got[i], want, err,
               tol);
    if (logits && err > c->worst_logit) c->worst_logit = err;
  }
  c->matched++;
}

static void run_fixture(const char *golden_name, const char *isa_name, uint32_t isa, int threads) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", FIXTURES, golden_name);
  size_t gsize = 0;
  void *gblob = spr_test_read_file(path, &gsize);
  assert_non_null(gblob);
  struct spr_gguf golden;
  struct spr_error err;
  assert_int_equal(spr_gguf_parse(gblob, gsize, &golden, &err), SPR_STATUS_OK);
  struct spr_gguf_str model_name;
  assert_int_equal(spr_gguf_get_str(&golden, "golden.model", &model_name), SPR_STATUS_OK);
  snprintf(path, sizeof path, "%s/%.*s", FIXTURES, (int)model_name.len, model_name.ptr);

  struct spr_model *m = NULL;
  if (spr_model_load_file(path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("%s: %s", path, err.msg);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.isa_mask = isa;
  cfg.threads = threads;
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);

  struct spr_gguf_tensor image;
  assert_int_equal(spr_gguf_find_tensor(&golden, "image", &image), SPR_STATUS_OK);
  struct spr_tensor_view in;
  assert_int_equal(spr_session_input(s, 0, &in), SPR_STATUS_OK);
  assert_int_equal(in.nbytes, image.nbytes);
  memcpy(in.data, image.data, in.nbytes);

  struct compare c = {&golden, golden_name, isa_name, 0, 0};
  spr_session_set_observer(s, on_node, &c);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  /* every golden activation but the input must have been compared */
  if ((uint64_t)c.matched != golden.n_tensors - 1)
    fail_msg("%s: compared %d nodes, the golden file has %llu activations", golden_name, c.matched,
             (unsigned long long)(golden.n_tensors - 1));
  printf("  %-34s %-6s %d thread(s): %d nodes match, max |logit diff| %.2e\n", golden_name, isa_name, threads,
         c.matched, c.worst_logit);
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  free(gblob);
}

static void test_all_fixtures(void **state) {
  (void)state;
  DIR *d = opendir(FIXTURES);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const size_t len = strlen(e->d_name);
    if (len < 12 || strcmp(e->d_name + len - 12, ".golden.gguf") != 0) continue;
    run_fixture(e->d_name, "best", SPR_ISA_ALL, 1);
    run_fixture(e->d_name, "best", SPR_ISA_ALL, 2);
    run_fixture(e->d_name, "scalar", 0, 1);
    n++;
  }
  closedir(d);
  assert_true(n >= 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_fixtures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

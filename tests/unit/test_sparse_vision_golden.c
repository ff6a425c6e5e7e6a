/* tests/unit/test_sparse_vision_golden.c — NAT / DiNAT and BiFormer models
 * converted by tools/convert/{nat,biformer}.py against the independent
 * PyTorch forwards (tools/reference/{nat,biformer}_ref.py).
 *
 * Each tests/fixtures/{nat,biformer}/<cfg>.golden.gguf holds the normalized
 * input image and the reference's activations named like the graph's nodes;
 * its KV golden.model names the model file. Sparrow runs the model (best ISA
 * with 1 and 2 threads, and scalar) and every node whose name has a golden
 * tensor is compared; every golden tensor must be matched by a node.
 * Tolerance: |sparrow - ref| <= 1e-4 on the logits (f32), <= 1e-4 * (1 +
 * |ref|) on intermediates. The 2-thread logits must equal the 1-thread ones
 * bit for bit. */
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

#define FIXTURES SPR_SOURCE_DIR "/tests/fixtures/"

struct compare {
  const struct spr_gguf *golden;
  const char *cfg;
  const char *isa;
  int matched;
  double worst_logit, worst_inner;
  char worst_inner_name[64];
};

static void on_node(void *user, uint32_t index, const struct spr_node_info *info) {
  (void)index;
  struct compare *c = user;
  struct spr_gguf_tensor ref;
  if (spr_gguf_find_tensor(c->golden, info->name, &ref) != SPR_STATUS_OK) return;
  const size_t n = (size_t)(info->ne[0] * info->ne[1] * info->ne[2] * info->ne[3]);
  if (ref.type != SPR_DTYPE_F32 || ref.nbytes != n * sizeof(float))
    fail_msg("%s: node %s has shape {%lld,%lld,%lld} but the golden tensor has %zu bytes", c->cfg, info->name,
             (long long)info->ne[0], (long long)info->ne[1], (long long)info->ne[2], ref.nbytes);
  const float *got = info->data;
  const bool logits = strcmp(info->name, "logits") == 0;
  for (size_t i = 0; i < n; i++) {
    float want;
    memcpy(&want, (const uint8_t *)ref.data + 4 * i, 4);
    const double err = fabs((double)got[i] - (double)want);
    const double tol = logits ? 1e-4 : 1e-4 * (1.0 + fabs((double)want));
    if (!(err <= tol))
      fail_msg(
          "%s (%s): node %s element %zu (channel %zu, pixel %zu): sparrow %.8g, reference %.8g, |diff| %.3g > %.3g",
          c->cfg, c->isa, info->name, i, i % (size_t)info->ne[0], i / (size_t)info->ne[0], got[i], want, err, tol);
    if (logits && err > c->worst_logit) c->worst_logit = err;
    if (!logits && err / (1.0 + fabs((double)want)) > c->worst_inner) {
      c->worst_inner = err / (1.0 + fabs((double)want));
      snprintf(c->worst_inner_name, sizeof c->worst_inner_name, "%s", info->name);
    }
  }
  c->matched++;
}

/* Runs one fixture; copies the logits to logits_out (n_logits floats). */
static void run_fixture(const char *dir, const char *golden_name, const char *isa_name, uint32_t isa, int threads,
                        float *logits_out, size_t n_logits) {
  char path[512];
  snprintf(path, sizeof path, "%s%s/%s", FIXTURES, dir, golden_name);
  size_t gsize = 0;
  void *gblob = spr_test_read_file(path, &gsize);
  assert_non_null(gblob);
  struct spr_gguf golden;
  struct spr_error err;
  assert_int_equal(spr_gguf_parse(gblob, gsize, &golden, &err), SPR_STATUS_OK);
  struct spr_gguf_str model_name;
  assert_int_equal(spr_gguf_get_str(&golden, "golden.model", &model_name), SPR_STATUS_OK);
  snprintf(path, sizeof path, "%s%s/%.*s", FIXTURES, dir, (int)model_name.len, model_name.ptr);

  struct spr_model *m = NULL;
  if (spr_model_load_file(path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("%s: %s", path, err.msg);
  assert_string_equal(spr_model_arch(m), dir);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.isa_mask = isa;
  cfg.threads = threads;
  struct spr_plan plan;
  if (spr_plan(m, &cfg, &plan, &err) != SPR_STATUS_OK) fail_msg("%s: plan: %s", path, err.msg);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  if (spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err) != SPR_STATUS_OK)
    fail_msg("%s: session: %s", path, err.msg);

  struct spr_gguf_tensor image;
  assert_int_equal(spr_gguf_find_tensor(&golden, "image", &image), SPR_STATUS_OK);
  struct spr_tensor_view in;
  assert_int_equal(spr_session_input(s, 0, &in), SPR_STATUS_OK);
  assert_int_equal(in.nbytes, image.nbytes);
  memcpy(in.data, image.data, in.nbytes);

  struct compare c = {&golden, golden_name, isa_name, 0, 0, 0, ""};
  spr_session_set_observer(s, on_node, &c);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  if ((uint64_t)c.matched != golden.n_tensors - 1)
    fail_msg("%s: compared %d nodes, the golden file has %llu activations", golden_name, c.matched,
             (unsigned long long)(golden.n_tensors - 1));
  struct spr_tensor_view out;
  assert_int_equal(spr_session_output(s, 0, &out), SPR_STATUS_OK);
  assert_true(out.nbytes == n_logits * sizeof(float));
  memcpy(logits_out, out.data, out.nbytes);
  printf("  %-30s %-6s %d thread(s): %2d nodes match, max |logit diff| %.2e, worst intermediate %.2e (%s)\n",
         golden_name, isa_name, threads, c.matched, c.worst_logit, c.worst_inner, c.worst_inner_name);
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
  free(gblob);
}

static size_t fixture_classes(const char *dir, const char *golden_name) {
  char path[512];
  snprintf(path, sizeof path, "%s%s/%s", FIXTURES, dir, golden_name);
  size_t gsize = 0;
  void *gblob = spr_test_read_file(path, &gsize);
  assert_non_null(gblob);
  struct spr_gguf golden;
  struct spr_error err;
  assert_int_equal(spr_gguf_parse(gblob, gsize, &golden, &err), SPR_STATUS_OK);
  struct spr_gguf_tensor t;
  assert_int_equal(spr_gguf_find_tensor(&golden, "logits", &t), SPR_STATUS_OK);
  free(gblob);
  return t.nbytes / sizeof(float);
}

static void run_dir(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", FIXTURES, dir);
  DIR *d = opendir(path);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const size_t len = strlen(e->d_name);
    if (len < 12 || strcmp(e->d_name + len - 12, ".golden.gguf") != 0) continue;
    const size_t k = fixture_classes(dir, e->d_name);
    float *l1 = malloc(k * sizeof *l1), *l2 = malloc(k * sizeof *l2), *ls = malloc(k * sizeof *ls);
    assert_non_null(l1), assert_non_null(l2), assert_non_null(ls);
    run_fixture(dir, e->d_name, "best", SPR_ISA_ALL, 1, l1, k);
    run_fixture(dir, e->d_name, "best", SPR_ISA_ALL, 2, l2, k);
    run_fixture(dir, e->d_name, "scalar", 0, 1, ls, k);
    if (memcmp(l1, l2, k * sizeof *l1) != 0) fail_msg("%s/%s: 1 and 2 threads give different logits", dir, e->d_name);
    free(l1), free(l2), free(ls);
    n++;
  }
  closedir(d);
  assert_true(n >= 1);
}

static void test_nat_fixtures(void **state) {
  (void)state;
  run_dir("nat");
}

static void test_biformer_fixtures(void **state) {
  (void)state;
  run_dir("biformer");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nat_fixtures),
      cmocka_unit_test(test_biformer_fixtures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_vit_quant_golden.c — quantized ViTs (Q8_0, Q4_0 linear
 * layers) against an independent PyTorch reference that quantizes the same
 * way (tools/reference/vit_quant_ref.py; fixtures in tests/fixtures/vit_quant).
 *
 * The reference replaces each linear weight by dequantize(quantize(W)) with
 * ggml's reference quantizer, written in Python from the block formats, and
 * quantizes each linear layer's input per row in blocks of 32 to Q8_0 (scale
 * amax/127, round half away from zero, the fp16-rounded scale in the dot
 * product), as the runtime's quantized GEMM does for every M; the rest is the
 * float64 ViT forward. Checks:
 *   1. bytes: the C reference quantizer applied to the f32 source of a few
 *      weight matrices (src.* in the golden file) gives the model's bytes;
 *   2. every graph node with a golden tensor, best ISA (1 and 2 threads, which
 *      must give bit-identical logits) and scalar:
 *        |sparrow - ref| <= 1e-4 * (1 + |ref|)   (the f32 ViT golden test's bar)
 * Why f32 tolerances hold for a quantized model: Sparrow's f32 activations
 * differ from the float64 reference's by ~1e-6 at most (measured: <= 1e-6 on
 * every node), i.e. ~1e-4 quantization steps. An activation closer than that
 * to a rounding boundary (x/d = n + 0.5) could get a code one step apart on
 * the two sides, which moves outputs by up to ~5e-2 (measured in the
 * reference by flipping one code). The generator therefore redraws the input
 * image until every quantized activation is >= 3e-4 steps from a rounding
 * boundary and every block scale amax/127 >= 3e-3 fp16 ulps from an fp16
 * rounding boundary (golden.code_margin / golden.scale_margin record the
 * margins). Then both sides make the same codes and scales and only f32
 * rounding differs. The bar is far below the effect of the activation
 * quantization itself: the reference without it (dequantized weights, float64
 * activations) differs by up to 2e-2..5e-2 per node, 6e-3..2e-2 on the logits,
 * so a runtime that skipped or mis-scaled it, or used other weight bytes,
 * fails. See docs/quant-vision.md.  */
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

#include "ops/quant/quant.h"
#include "sparrow/sparrow.h"
#include "support/test_util.h"

#define FIXTURES SPR_SOURCE_DIR "/tests/fixtures/vit_quant"

struct compare {
  const struct spr_gguf *golden;
  const char *cfg, *isa;
  int matched;
  double worst_abs; /* over all nodes */
  float *logits;    /* copy of the logits (thread determinism) */
  size_t n_logits;
};

static void on_node(void *user, uint32_t index, const struct spr_node_info *info) {
  (void)index;
  struct compare *c = user;
  struct spr_gguf_tensor ref;
  if (spr_gguf_find_tensor(c->golden, info->name, &ref) != SPR_STATUS_OK) return;
  const size_t n = (size_t)(info->ne[0] * info->ne[1] * info->ne[2] * info->ne[3]);
  if (ref.type != SPR_DTYPE_F32 || ref.nbytes != n * sizeof(float))
    fail_msg("%s: node %s has %zu values but the golden tensor has %zu bytes", c->cfg, info->name, n, ref.nbytes);
  const float *got = info->data;
  for (size_t i = 0; i < n; i++) {
    float want;
    memcpy(&want, (const uint8_t *)ref.data + 4 * i, 4);
    const double err = fabs((double)got[i] - (double)want);
    if (!(err <= 1e-4 * (1.0 + fabs((double)want))))
      fail_msg("%s (%s): node %s element %zu (col %zu, row %zu): sparrow %.8g, reference %.8g, |diff| %.3g", c->cfg,
               c->isa, info->name, i, i % (size_t)info->ne[0], i / (size_t)info->ne[0], got[i], want, err);
    if (err > c->worst_abs) c->worst_abs = err;
  }
  if (strcmp(info->name, "logits") == 0) {
    c->logits = malloc(n * sizeof(float));
    memcpy(c->logits, got, n * sizeof(float));
    c->n_logits = n;
  }
  c->matched++;
}

/* The C reference quantizer on the golden file's f32 source tensors gives the model's bytes. */
static void check_bytes(const struct spr_gguf *golden, const struct spr_gguf *model, const char *cfg) {
  int n = 0;
  for (uint64_t i = 0; i < golden->n_tensors; i++) {
    struct spr_gguf_tensor src, q;
    assert_int_equal(spr_gguf_tensor_at(golden, i, &src), SPR_STATUS_OK);
    if (src.name.len < 4 || memcmp(src.name.ptr, "src.", 4) != 0) continue;
    char name[SPR_GGUF_MAX_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)(src.name.len - 4), src.name.ptr + 4);
    assert_int_equal(spr_gguf_find_tensor(model, name, &q), SPR_STATUS_OK);
    assert_int_equal(src.type, SPR_DTYPE_F32);
    const size_t ne = src.nbytes / 4;
    float *x = malloc(src.nbytes);
    memcpy(x, src.data, src.nbytes);
    void *mine = malloc(q.nbytes);
    spr_quantize_row_get(q.type)(x, mine, (int64_t)ne);
    if (memcmp(mine, q.data, q.nbytes) != 0)
      fail_msg("%s: %s: the C quantizer's %s bytes differ from the reference's", cfg, name, spr_dtype_name(q.type));
    free(x), free(mine);
    n++;
  }
  assert_true(n >= 1);
}

static void run_fixture(const char *golden_name, const char *isa_name, uint32_t isa, int threads, float **logits,
                        size_t *n_logits) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", FIXTURES, golden_name);
  size_t gsize = 0;
  void *gblob = spr_test_read_file(path, &gsize);
  assert_non_null(gblob);
  struct spr_gguf golden;
  struct spr_error err;
  assert_int_equal(spr_gguf_parse(gblob, gsize, &golden, &err), SPR_STATUS_OK);
  struct spr_gguf_str model_name, qtype;
  assert_int_equal(spr_gguf_get_str(&golden, "golden.model", &model_name), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_get_str(&golden, "golden.type", &qtype), SPR_STATUS_OK);
  snprintf(path, sizeof path, "%s/%.*s", FIXTURES, (int)model_name.len, model_name.ptr);

  struct spr_model *m = NULL;
  if (spr_model_load_file(path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("%s: %s", path, err.msg);
  check_bytes(&golden, spr_model_gguf(m), golden_name);
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

  struct compare c;
  memset(&c, 0, sizeof c);
  c.golden = &golden, c.cfg = golden_name, c.isa = isa_name;
  spr_session_set_observer(s, on_node, &c);
  assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
  uint64_t n_act = 0; /* golden activations: everything but the image and the src.* tensors */
  for (uint64_t i = 0; i < golden.n_tensors; i++) {
    struct spr_gguf_tensor t;
    assert_int_equal(spr_gguf_tensor_at(&golden, i, &t), SPR_STATUS_OK);
    n_act += !(spr_gguf_str_eq(t.name, "image") || (t.name.len >= 4 && memcmp(t.name.ptr, "src.", 4) == 0));
  }
  if ((uint64_t)c.matched != n_act)
    fail_msg("%s: compared %d nodes, the golden file has %llu activations", golden_name, c.matched,
             (unsigned long long)n_act);
  printf("  %-30s %.*s %-6s %d thread(s): %d nodes match, max |diff| %.2e\n", golden_name, (int)qtype.len, qtype.ptr,
         isa_name, threads, c.matched, c.worst_abs);
  *logits = c.logits;
  *n_logits = c.n_logits;
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
    float *l1 = NULL, *l2 = NULL, *ls = NULL;
    size_t n1 = 0, n2 = 0, ns = 0;
    run_fixture(e->d_name, "best", SPR_ISA_ALL, 1, &l1, &n1);
    run_fixture(e->d_name, "best", SPR_ISA_ALL, 2, &l2, &n2);
    run_fixture(e->d_name, "scalar", 0, 1, &ls, &ns);
    assert_int_equal(n1, n2);
    if (memcmp(l1, l2, n1 * sizeof(float)) != 0) fail_msg("%s: 1 and 2 threads give different logits", e->d_name);
    free(l1), free(l2), free(ls);
    n++;
  }
  closedir(d);
  assert_true(n >= 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_fixtures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

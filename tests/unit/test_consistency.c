/* tests/unit/test_consistency.c — the same answer every time, on every path.
 *
 * Models: the bundled vit-fmnist and llm-kjv, a tiny f16 DeiT-style ViT, the
 * llama fixtures (q8_0, q4_0, f16 weights) and a tiny llama converted to
 * q4_k and q6_k by the quantizer. For every model and every ISA level this
 * CPU (or the NEON emulation) offers — scalar, avx2, avx512f, avx512vnni,
 * neon, dotprod — every node's output is recorded (vision: one run on a fixed
 * input; LLM: an 8-token prefill step, GEMM, then two decode steps, GEMV):
 *   - repeated: a second run in the same session is bit-identical;
 *   - threads: 2 and 3 threads are bit-identical to 1, node by node;
 *   - ISA: every node is compared with the scalar path. The difference of a
 *     node is max|x - x_scalar| / max|x_scalar| over its output (the error
 *     relative to the output's own scale; nodes run on their own path's
 *     inputs, so upstream differences are included). The test prints the
 *     largest difference per (model, op) and ISA as a table.
 * Tolerances (relative to the output's scale, see above):
 *   SPR_TOL_NODE  2e-3 for every node of every model on every path: f32 and
 *                 f16 weights differ by summation order and by the SIMD exp/
 *                 erf/silu approximations (documented in ops/common/vmath_*.h);
 *                 quantized weights multiply activations quantized to 8 bits
 *                 in blocks on SIMD paths as on the scalar path, so an
 *                 activation that rounds the other way moves a block by one
 *                 step of its scale;
 *   SPR_TOL_OUT   1e-3 for the model's output (logits). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sparrow/llm.h"
#include "sparrow/sparrow.h"
#include "support/test_util.h"
#include "support/tiny_models.h"
#include "tools/sparrow/quantize.h"

#define SPR_TOL_NODE 2e-3
#define SPR_TOL_OUT 1e-3

enum { MAX_LEVELS = 8, MAX_MODELS = 10, MAX_OPS = 32 };

struct level {
  const char *name;
  uint32_t need; /* CPU bit that must be present */
  uint32_t mask; /* allowed ISAs */
};

static const struct level k_levels[] = {
    {"scalar", 0, 0},
    {"avx2", SPR_ISA_X86_AVX2, SPR_ISA_X86_AVX2},
    {"avx512f", SPR_ISA_X86_AVX512F, SPR_ISA_X86_AVX2 | SPR_ISA_X86_AVX512F},
    {"avx512vnni", SPR_ISA_X86_AVX512VNNI, SPR_ISA_X86_AVX2 | SPR_ISA_X86_AVX512F | SPR_ISA_X86_AVX512VNNI},
    {"neon", SPR_ISA_ARM_NEON, SPR_ISA_ARM_NEON | SPR_ISA_ARM_FP16},
    {"dotprod", SPR_ISA_ARM_DOTPROD, SPR_ISA_ARM_NEON | SPR_ISA_ARM_FP16 | SPR_ISA_ARM_DOTPROD},
};
enum { N_LEVELS = sizeof k_levels / sizeof k_levels[0] };

/* ---- one recorded run: every node's f32 output, concatenated ------------------------- */

struct node_rec {
  char op[24];
  size_t at, n; /* floats in trace.data */
};

struct trace {
  float *data;
  size_t n, cap;
  struct node_rec *nodes;
  size_t n_nodes, cap_nodes;
};

static void record(void *user, uint32_t index, const struct spr_node_info *info) {
  (void)index;
  struct trace *t = user;
  if (strcmp(info->op, "kv_store") == 0) return; /* f16 cache rows: checked through attention */
  const size_t n = (size_t)(info->ne[0] * info->ne[1] * info->ne[2] * info->ne[3]);
  if (t->n + n > t->cap) {
    t->cap = 2 * (t->n + n);
    t->data = realloc(t->data, t->cap * sizeof(float));
  }
  if (t->n_nodes == t->cap_nodes) {
    t->cap_nodes = t->cap_nodes ? 2 * t->cap_nodes : 256;
    t->nodes = realloc(t->nodes, t->cap_nodes * sizeof *t->nodes);
  }
  struct node_rec *r = &t->nodes[t->n_nodes++];
  snprintf(r->op, sizeof r->op, "%s", info->op);
  r->at = t->n;
  r->n = n;
  memcpy(t->data + t->n, info->data, n * sizeof(float));
  t->n += n;
}

static void trace_free(struct trace *t) {
  free(t->data);
  free(t->nodes);
  memset(t, 0, sizeof *t);
}

/* ---- models ---------------------------------------------------------------------------- */

struct model {
  char name[32];
  void *blob;
  size_t size;
  struct spr_model *m;
  bool llm;
};

static struct model g_models[MAX_MODELS];
static int g_n_models;

static void add_blob(const char *name, void *blob, size_t size) {
  if (blob == NULL) {
    printf("(skipped %s: not found)\n", name);
    return;
  }
  struct model *md = &g_models[g_n_models];
  snprintf(md->name, sizeof md->name, "%s", name);
  md->blob = blob;
  md->size = size;
  struct spr_error err;
  if (spr_model_load_blob(blob, size, NULL, &md->m, &err) != SPR_STATUS_OK) fail_msg("%s: %s", name, err.msg);
  struct spr_llm_info li;
  md->llm = spr_llm_info(md->m, &li) == SPR_STATUS_OK;
  g_n_models++;
}

static void add_file(const char *name, const char *path) {
  size_t size = 0;
  void *blob = spr_test_read_file(path, &size);
  add_blob(name, blob, size);
}

static void add_quantized(const char *name, const void *blob, size_t size, enum spr_dtype type) {
  char in[] = "/tmp/spr_consistency_in_XXXXXX", out[] = "/tmp/spr_consistency_out_XXXXXX";
  const int fi = mkstemp(in), fo = mkstemp(out);
  assert_true(fi >= 0 && fo >= 0);
  assert_int_equal(write(fi, blob, size), (ssize_t)size);
  close(fi);
  close(fo);
  const struct spr_quantize_opts o = {type, false, 1, NULL, false, -1, -1};
  struct spr_error err;
  if (spr_quantize_file(in, out, &o, NULL, &err) != SPR_STATUS_OK) fail_msg("quantize %s: %s", name, err.msg);
  add_file(name, out);
  remove(in);
  remove(out);
}

static int setup(void **state) {
  (void)state;
  add_file("vit-fmnist", SPR_SOURCE_DIR "/models/vit-fmnist.gguf");
  struct spr_tiny_vit v;
  spr_tiny_vit_defaults(&v);
  v.linear_type = SPR_DTYPE_F16;
  v.distilled = true;
  void *blob;
  size_t size;
  assert_int_equal(spr_tiny_vit_write(&v, &blob, &size), SPR_STATUS_OK);
  add_blob("tiny-deit-f16", blob, size);
  add_file("llm-kjv", SPR_SOURCE_DIR "/models/llm-kjv.gguf");
  add_file("llama-q8_0", SPR_SOURCE_DIR "/tests/fixtures/llama/gqa2_tied_q8_0.gguf");
  add_file("llama-q4_0", SPR_SOURCE_DIR "/tests/fixtures/llama/gqa2_untied_d64_q4_0.gguf");
  add_file("llama-f16", SPR_SOURCE_DIR "/tests/fixtures/llama/mqa_tied_f16.gguf");
  struct spr_tiny_llama l;
  spr_tiny_llama_defaults(&l);
  l.dim = 256;
  l.heads = 4;
  l.kv_heads = 2;
  l.ffn = 256;
  l.layers = 1;
  assert_int_equal(spr_tiny_llama_write(&l, &blob, &size), SPR_STATUS_OK);
  add_quantized("llama-q4_k", blob, size, SPR_DTYPE_Q4_K);
  add_quantized("llama-q6_k", blob, size, SPR_DTYPE_Q6_K);
  free(blob);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < g_n_models; i++) {
    spr_model_free(g_models[i].m);
    free(g_models[i].blob);
  }
  return 0;
}

/* Records every node of one session (vision: one run; LLM: prefill of 8
 * tokens, then 2 decode steps), `repeat` times; repeats must be identical. */
static void run(const struct model *md, uint32_t mask, int threads, struct trace *out) {
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.threads = threads;
  cfg.isa_mask = mask;
  if (md->llm) {
    cfg.ctx = 32;
    cfg.batch = 8;
  }
  struct spr_plan plan;
  struct spr_error err;
  if (spr_plan(md->m, &cfg, &plan, &err) != SPR_STATUS_OK) fail_msg("%s: plan: %s", md->name, err.msg);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  if (spr_session_create(md->m, &cfg, arena, plan.arena_bytes, &s, &err) != SPR_STATUS_OK)
    fail_msg("%s: session: %s", md->name, err.msg);
  struct trace second = {0};
  for (int rep = 0; rep < 2; rep++) {
    struct trace *t = rep == 0 ? out : &second;
    spr_session_set_observer(s, record, t);
    if (md->llm) {
      struct spr_llm_info li;
      assert_int_equal(spr_llm_info(md->m, &li), SPR_STATUS_OK);
      int32_t tok[10];
      for (int i = 0; i < 10; i++) tok[i] = (int32_t)((7u + 131u * (uint32_t)i) % li.n_vocab);
      spr_llm_reset(s);
      assert_int_equal(spr_llm_eval(s, tok, 8, NULL), SPR_STATUS_OK);
      assert_int_equal(spr_llm_eval(s, tok + 8, 1, NULL), SPR_STATUS_OK);
      assert_int_equal(spr_llm_eval(s, tok + 9, 1, NULL), SPR_STATUS_OK);
    } else {
      struct spr_tensor_view in;
      assert_int_equal(spr_session_input(s, 0, &in), SPR_STATUS_OK);
      spr_test_fill(in.data, in.nbytes / sizeof(float), 11, -2.0f, 2.0f);
      assert_int_equal(spr_session_run(s), SPR_STATUS_OK);
    }
  }
  if (second.n != out->n || memcmp(second.data, out->data, out->n * sizeof(float)) != 0)
    fail_msg("%s, isa mask 0x%x, %d thread(s): a repeated run differs", md->name, mask, threads);
  trace_free(&second);
  spr_session_destroy(s);
  free(arena);
}

/* Largest |a-b| / max|b| of node k. */
static double node_diff(const struct trace *a, const struct trace *b, size_t k) {
  const float *x = a->data + a->nodes[k].at, *y = b->data + b->nodes[k].at;
  double d = 0, scale = 0;
  for (size_t i = 0; i < b->nodes[k].n; i++) {
    const double e = fabs((double)x[i] - (double)y[i]);
    if (!(e <= d)) d = e; /* NaN propagates */
    if (fabs((double)y[i]) > scale) scale = fabs((double)y[i]);
  }
  return d / (scale > 0 ? scale : 1.0);
}

static void test_consistency(void **state) {
  (void)state;
  const uint32_t cpu = spr_cpu_isa();
  int levels[MAX_LEVELS], n_levels = 0;
  uint32_t seen[MAX_LEVELS];
  for (int l = 0; l < N_LEVELS; l++) {
    if ((cpu & k_levels[l].need) != k_levels[l].need) continue;
    const uint32_t eff = cpu & k_levels[l].mask;
    bool dup = false;
    for (int j = 0; j < n_levels; j++) dup = dup || seen[j] == eff;
    if (dup) continue;
    seen[n_levels] = eff;
    levels[n_levels++] = l;
  }
  printf("max |x - x_scalar| / max|x_scalar| per node, largest per (model, op); tolerance %.0e (output %.0e)\n",
         SPR_TOL_NODE, SPR_TOL_OUT);
  printf("%-14s %-12s", "model", "op");
  for (int j = 1; j < n_levels; j++) printf(" %12s", k_levels[levels[j]].name);
  printf("\n");
  int failures = 0;
  for (int mi = 0; mi < g_n_models; mi++) {
    const struct model *md = &g_models[mi];
    struct trace ref = {0};
    run(md, k_levels[levels[0]].mask, 1, &ref);
    char ops[MAX_OPS][24];
    double worst[MAX_OPS][MAX_LEVELS];
    int n_ops = 0;
    memset(worst, 0, sizeof worst);
    for (int j = 0; j < n_levels; j++) {
      struct trace t1 = {0};
      run(md, k_levels[levels[j]].mask, 1, &t1);
      assert_int_equal(t1.n_nodes, ref.n_nodes);
      for (int threads = 2; threads <= 3; threads++) {
        struct trace tt = {0};
        run(md, k_levels[levels[j]].mask, threads, &tt);
        assert_int_equal(tt.n, t1.n);
        for (size_t k = 0; k < t1.n_nodes; k++) {
          if (memcmp(tt.data + tt.nodes[k].at, t1.data + t1.nodes[k].at, t1.nodes[k].n * sizeof(float)) != 0)
            fail_msg("%s, %s: node %zu (%s) differs between 1 and %d threads", md->name, k_levels[levels[j]].name, k,
                     t1.nodes[k].op, threads);
        }
        trace_free(&tt);
      }
      for (size_t k = 0; k < t1.n_nodes; k++) {
        int o = 0;
        while (o < n_ops && strcmp(ops[o], t1.nodes[k].op) != 0) o++;
        if (o == n_ops && n_ops < MAX_OPS) snprintf(ops[n_ops++], sizeof ops[0], "%s", t1.nodes[k].op);
        const double d = node_diff(&t1, &ref, k);
        if (!(d <= worst[o][j])) worst[o][j] = d;
        const bool last = k + 1 == t1.n_nodes;
        if (!(d <= (last ? SPR_TOL_OUT : SPR_TOL_NODE))) {
          printf("FAIL %s %s node %zu (%s): %.3g\n", md->name, k_levels[levels[j]].name, k, t1.nodes[k].op, d);
          failures++;
        }
      }
      trace_free(&t1);
    }
    for (int o = 0; o < n_ops; o++) {
      printf("%-14s %-12s", md->name, ops[o]);
      for (int j = 1; j < n_levels; j++) printf(" %12.2e", worst[o][j]);
      printf("\n");
    }
    trace_free(&ref);
  }
  if (failures) fail_msg("%d node(s) beyond the tolerance", failures);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_consistency)};
  return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/cuda/test_cuda_session.c — attaching the CUDA backend to sessions.
 *
 * Usage as test_cuda_ops: no argument = the CUDA device (exit 77 without
 * one), --emulate = host emulation.
 *
 * For the bundled ViT and LLM: a session attached to the backend gives the
 * CPU session's outputs (within the validate tolerances); the one device
 * allocation is exactly planned + scratch + weights with planned = the
 * arena's state + activation bytes; repeated runs are identical; and after
 * detach the same session runs on the CPU again, bit-identical to a CPU
 * session. The bundled LLM's matrices (K = 128) cannot take the K-quants,
 * so a random-weight llama with dim 256 / ffn 512, quantized to q4_k and
 * q6_k (every matrix), runs the K-quant GEMM/GEMV and get_rows end to end.
 * A weightless graph of neighborhood attention and BRA (no bundled model
 * uses them yet) runs the sparse-attention kernels inside a session. The
 * sparse FFN's compact copy of the core bundles is CPU-only: attaching a
 * session that has one is refused with a message that says so. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/backends/cuda/cuda_backend.h"
#include "runtime/session.h"
#include "sparrow/llm.h"
#include "support/test_util.h"
#include "support/tiny_models.h"
#include "tools/sparrow/quantize.h"

static enum spr_cuda_mode g_mode = SPR_CUDA_DEVICE;

static struct spr_session *open_session(struct spr_model *m, const struct spr_config *cfg, void **arena) {
  struct spr_plan plan;
  struct spr_error err;
  if (spr_plan(m, cfg, &plan, &err) != SPR_STATUS_OK) fail_msg("plan: %s", err.msg);
  *arena = spr_test_aligned_alloc(plan.arena_bytes);
  memset(*arena, 0, plan.arena_bytes);
  struct spr_session *s = NULL;
  if (spr_session_create(m, cfg, *arena, plan.arena_bytes, &s, &err) != SPR_STATUS_OK) fail_msg("session: %s", err.msg);
  return s;
}

static double max_rel(const float *got, const float *want, size_t n) {
  double d = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(got[i]) || isnan(want[i])) return INFINITY;
    d = fmax(d, fabs((double)got[i] - (double)want[i]));
    mx = fmax(mx, fabs((double)want[i]));
  }
  return mx > 0 ? d / mx : d;
}

static void check_info(struct spr_session *s, struct spr_cuda *c) {
  struct spr_cuda_info ci;
  spr_cuda_info(c, &ci);
  const size_t planned = (s->layout.state + s->layout.act + 255) & ~(size_t)255;
  assert_int_equal(ci.planned_bytes, planned);
  assert_int_equal(ci.total_bytes, ci.planned_bytes + ci.scratch_bytes + ci.weights_bytes);
  assert_true(ci.weights_bytes >= spr_model_weights_bytes(s->model) / 2); /* the graph's weights, aligned */
}

static void test_vit(void **state) {
  (void)state;
  struct spr_model *m = NULL;
  struct spr_error err;
  if (spr_model_load_file(SPR_SOURCE_DIR "/models/vit-fmnist.gguf", NULL, &m, &err) != SPR_STATUS_OK)
    fail_msg("%s", err.msg);
  struct spr_config cfg;
  spr_config_init(&cfg);
  void *a_cpu, *a_gpu;
  struct spr_session *cpu = open_session(m, &cfg, &a_cpu), *gpu = open_session(m, &cfg, &a_gpu);
  struct spr_tensor_view in_c, in_g, out_c, out_g;
  spr_session_input(cpu, 0, &in_c);
  spr_session_input(gpu, 0, &in_g);
  /* inputs share arena bytes with later tensors: write them before every run */
  float *image = malloc(in_c.nbytes);
  spr_test_fill(image, in_c.nbytes / sizeof(float), 7, -2.0f, 2.0f);
  memcpy(in_c.data, image, in_c.nbytes);
  assert_int_equal(spr_session_run(cpu), SPR_STATUS_OK);
  spr_session_output(cpu, 0, &out_c);
  spr_session_output(gpu, 0, &out_g);
  const size_t n = out_c.nbytes / sizeof(float);
  float *first = malloc(out_c.nbytes);

  struct spr_cuda *c = NULL;
  if (spr_cuda_attach(gpu, g_mode, &c, &err) != SPR_STATUS_OK) fail_msg("attach: %s", err.msg);
  check_info(gpu, c);
  memcpy(in_g.data, image, in_g.nbytes);
  assert_int_equal(spr_session_run(gpu), SPR_STATUS_OK);
  const double rel = max_rel(out_g.data, out_c.data, n);
  printf("  vit: logits rel. difference %.3g\n", rel);
  assert_true(rel < 1e-4);
  memcpy(first, out_g.data, out_g.nbytes);
  memcpy(in_g.data, image, in_g.nbytes);
  assert_int_equal(spr_session_run(gpu), SPR_STATUS_OK);
  assert_memory_equal(first, out_g.data, out_g.nbytes);

  spr_cuda_detach(c);
  memcpy(in_g.data, image, in_g.nbytes);
  assert_int_equal(spr_session_run(gpu), SPR_STATUS_OK);
  assert_memory_equal(out_c.data, out_g.data, out_c.nbytes); /* the CPU again, bit for bit */
  free(first);
  free(image);
  spr_session_destroy(cpu);
  spr_session_destroy(gpu);
  free(a_cpu);
  free(a_gpu);
  spr_model_free(m);
}

/* Prompt (two prefill steps) then greedy decode, CPU vs the backend. */
static void compare_llm(const char *path, double tol) {
  struct spr_model *m = NULL;
  struct spr_error err;
  if (spr_model_load_file(path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("%s: %s", path, err.msg);
  struct spr_llm_info info;
  assert_int_equal(spr_llm_info(m, &info), SPR_STATUS_OK);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 64;
  cfg.batch = 8;
  void *a_cpu, *a_gpu;
  struct spr_session *cpu = open_session(m, &cfg, &a_cpu), *gpu = open_session(m, &cfg, &a_gpu);
  struct spr_cuda *c = NULL;
  if (spr_cuda_attach(gpu, g_mode, &c, &err) != SPR_STATUS_OK) fail_msg("attach: %s", err.msg);
  check_info(gpu, c);
  /* a 11-token prompt (two prefill steps of <= 8), then greedy decoding */
  int32_t tok[32] = {info.bos >= 0 ? info.bos : 1, 5, 17, 99, 3, 250, 7, 31, 64, 2, 11};
  for (int i = 0; i < 11; i++) tok[i] %= (int32_t)info.n_vocab;
  size_t n = 11;
  const float *lc = NULL, *lg = NULL;
  assert_int_equal(spr_llm_eval(cpu, tok, n, &lc), SPR_STATUS_OK);
  assert_int_equal(spr_llm_eval(gpu, tok, n, &lg), SPR_STATUS_OK);
  for (int step = 0; step < 12; step++) {
    const double rel = max_rel(lg, lc, info.n_vocab);
    if (rel > tol) fail_msg("%s: step %d: logits rel. difference %.3g", path, step, rel);
    size_t best = 0;
    for (size_t i = 1; i < info.n_vocab; i++) best = lc[i] > lc[best] ? i : best;
    tok[n] = (int32_t)best;
    assert_int_equal(spr_llm_eval(cpu, &tok[n], 1, &lc), SPR_STATUS_OK);
    assert_int_equal(spr_llm_eval(gpu, &tok[n], 1, &lg), SPR_STATUS_OK);
    n++;
  }
  assert_int_equal(spr_llm_position(gpu), n);
  printf("  %s: %zu tokens, logits within %.0e at every step\n", path, n, tol);
  spr_cuda_detach(c);
  spr_session_destroy(cpu);
  spr_session_destroy(gpu);
  free(a_cpu);
  free(a_gpu);
  spr_model_free(m);
}

static void test_llm(void **state) {
  (void)state;
  compare_llm(SPR_SOURCE_DIR "/models/llm-kjv.gguf", 2e-3);
}

static void test_llm_k_quants(void **state) {
  (void)state;
  struct spr_tiny_llama c;
  spr_tiny_llama_defaults(&c);
  c.dim = 256;
  c.ffn = 512;
  c.heads = 4;
  c.kv_heads = 2;
  c.layers = 2;
  void *blob = NULL;
  size_t size = 0;
  assert_int_equal(spr_tiny_llama_write(&c, &blob, &size), SPR_STATUS_OK);
  char f32_path[512];
  snprintf(f32_path, sizeof f32_path, "%s/cuda-tiny-llama-f32.gguf", SPR_BINARY_DIR);
  FILE *f = fopen(f32_path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(blob, 1, size, f), size);
  fclose(f);
  free(blob);
  const enum spr_dtype types[] = {SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  for (size_t i = 0; i < 2; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/cuda-tiny-llama-%s.gguf", SPR_BINARY_DIR, spr_dtype_name(types[i]));
    const struct spr_quantize_opts o = {types[i], true, 1, NULL, false, -1, -1};
    struct spr_error err;
    if (spr_quantize_file(f32_path, path, &o, NULL, &err) != SPR_STATUS_OK) fail_msg("quantize: %s", err.msg);
    compare_llm(path, 2e-2);
  }
}

/* A graph of the sparse-attention ops (no model on main uses them yet):
 * qkv {3 * 32, 8x8 tokens} -> neighborhood attention (2-D, K 3, dilation 2)
 * and BRA (2x2 regions, topk 2) on the fused qkv, their sum, then
 * neighborhood attention (even K 4, stride 2, causal rows) over the sum.
 * Bound by spr_session_bind (no weights), attached: the kernels are found,
 * BRA's routing scratch comes out of the one device allocation, and the
 * output matches the CPU session's. */
#define SPARSE_HW 8
#define SPARSE_C 32

static enum spr_status build_sparse(const void *model, const struct spr_config *cfg, struct spr_graph *g) {
  (void)model;
  (void)cfg;
  const int64_t ne_qkv[2] = {3 * SPARSE_C, SPARSE_HW * SPARSE_HW};
  const int32_t x = spr_g_input(g, SPR_DTYPE_F32, 2, ne_qkv, "qkv");
  struct spr_na_params na;
  memset(&na, 0, sizeof na);
  na.n_heads = 2;
  na.head_dim = SPARSE_C / 2;
  na.n_dims = 2;
  for (int a = 0; a < 2; a++) {
    na.size[a] = SPARSE_HW;
    na.kernel[a] = 3;
    na.dilation[a] = 2;
    na.stride[a] = 1;
  }
  na.k_col = SPARSE_C;
  na.v_col = 2 * SPARSE_C;
  const int32_t a = spr_g_neighborhood_attn(g, x, x, x, -1, &na, "na", 0);
  struct spr_bra_params bp;
  memset(&bp, 0, sizeof bp);
  bp.n_heads = 2;
  bp.n_win = 2;
  bp.topk = 2;
  bp.h = bp.w = SPARSE_HW;
  bp.qk_dim = bp.v_dim = SPARSE_C;
  bp.k_col = SPARSE_C;
  bp.v_col = 2 * SPARSE_C;
  const int32_t b = spr_g_bra(g, x, x, x, &bp, "bra", 0);
  const int32_t sum = spr_g_binary(g, SPR_OP_ADD, a, b, "sum", 0);
  struct spr_na_params n2 = na;
  n2.kernel[0] = n2.kernel[1] = 4;
  n2.dilation[0] = n2.dilation[1] = 1;
  n2.stride[0] = n2.stride[1] = 2;
  n2.causal = 1;
  n2.k_col = n2.v_col = 0;
  const int32_t y = spr_g_neighborhood_attn(g, sum, sum, sum, -1, &n2, "na2", 1);
  spr_g_output(g, y);
  return spr_graph_finalize(g);
}

static struct spr_session *bind_sparse(void **arena) {
  const size_t bytes = 4u << 20;
  *arena = spr_test_aligned_alloc(bytes);
  memset(*arena, 0, bytes);
  struct spr_config cfg;
  spr_config_init(&cfg);
  struct spr_session *s = NULL;
  struct spr_error err;
  if (spr_session_bind(NULL, build_sparse, NULL, &cfg, NULL, *arena, bytes, &s, &err) != SPR_STATUS_OK)
    fail_msg("bind: %s", err.msg);
  return s;
}

static void test_sparse_attention_graph(void **state) {
  (void)state;
  void *a_cpu, *a_gpu;
  struct spr_session *cpu = bind_sparse(&a_cpu), *gpu = bind_sparse(&a_gpu);
  struct spr_tensor_view in_c, in_g, out_c, out_g;
  spr_session_input(cpu, 0, &in_c);
  spr_session_input(gpu, 0, &in_g);
  float *x = malloc(in_c.nbytes);
  spr_test_fill(x, in_c.nbytes / sizeof(float), 11, -2.0f, 2.0f);
  memcpy(in_c.data, x, in_c.nbytes);
  assert_int_equal(spr_session_run(cpu), SPR_STATUS_OK);
  spr_session_output(cpu, 0, &out_c);
  spr_session_output(gpu, 0, &out_g);
  struct spr_cuda *c = NULL;
  struct spr_error err;
  if (spr_cuda_attach(gpu, g_mode, &c, &err) != SPR_STATUS_OK) fail_msg("attach: %s", err.msg);
  struct spr_cuda_info ci;
  spr_cuda_info(c, &ci);
  const size_t planned = (gpu->layout.state + gpu->layout.act + 255) & ~(size_t)255;
  assert_int_equal(ci.planned_bytes, planned);
  assert_int_equal(ci.weights_bytes, 0);
  /* BRA's k and q region means (4 x 32 f32: 512 bytes each), kept lists
   * (4 x 2 i32) and their scores (4 x 2 f64), each part 256-aligned */
  assert_int_equal(ci.scratch_bytes, 2 * 512 + 2 * 256);
  assert_int_equal(ci.total_bytes, ci.planned_bytes + ci.scratch_bytes);
  memcpy(in_g.data, x, in_g.nbytes);
  assert_int_equal(spr_session_run(gpu), SPR_STATUS_OK);
  const double rel = max_rel(out_g.data, out_c.data, out_c.nbytes / sizeof(float));
  printf("  sparse attention graph: rel. difference %.3g\n", rel);
  assert_true(rel < 1e-5);
  spr_cuda_detach(c);
  free(x);
  spr_session_destroy(cpu);
  spr_session_destroy(gpu);
  free(a_cpu);
  free(a_gpu);
}

static void test_compact_refused(void **state) {
  (void)state;
  char path[512];
  snprintf(path, sizeof path, "%s/cuda-llm-kjv-bundle.gguf", SPR_BINARY_DIR);
  const struct spr_quantize_opts o = {SPR_DTYPE_Q4_0, false, 1, NULL, true, 0, 1 << 30};
  struct spr_error err;
  if (spr_quantize_file_bundle(SPR_SOURCE_DIR "/models/llm-kjv.gguf", path, &o, true, NULL, &err) != SPR_STATUS_OK)
    fail_msg("quantize: %s", err.msg);
  struct spr_model *m = NULL;
  if (spr_model_load_file(path, NULL, &m, &err) != SPR_STATUS_OK) fail_msg("%s: %s", path, err.msg);
  struct spr_config cfg;
  spr_config_init(&cfg);
  cfg.ctx = 64;
  cfg.sparse_ffn_beta = 0.4f;
  cfg.sparse_ffn_compact = 1;
  struct spr_plan plan;
  assert_int_equal(spr_plan(m, &cfg, &plan, &err), SPR_STATUS_OK);
  void *arena = spr_test_aligned_alloc(plan.arena_bytes);
  struct spr_session *s = NULL;
  assert_int_equal(spr_session_create(m, &cfg, arena, plan.arena_bytes, &s, &err), SPR_STATUS_OK);
  struct spr_cuda *c = NULL;
  assert_int_equal(spr_cuda_attach(s, g_mode, &c, &err), SPR_STATUS_UNSUPPORTED);
  assert_null(c);
  assert_non_null(strstr(err.msg, "compact"));
  spr_session_destroy(s);
  free(arena);
  spr_model_free(m);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--emulate") == 0) {
    g_mode = SPR_CUDA_EMULATE;
  } else {
    char msg[200];
    if (spr_cuda_probe(msg, sizeof msg) != SPR_STATUS_OK) {
      printf("skipped: %s\n", msg);
      return SPR_CUDA_EXIT_NO_DEVICE;
    }
    printf("CUDA device: %s\n", msg);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vit),
      cmocka_unit_test(test_llm),
      cmocka_unit_test(test_llm_k_quants),
      cmocka_unit_test(test_sparse_attention_graph),
      cmocka_unit_test(test_compact_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

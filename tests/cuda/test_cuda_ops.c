/* tests/cuda/test_cuda_ops.c — every CUDA kernel against the CPU _ref oracle.
 *
 * Usage: test_cuda_ops            the first CUDA device; exits 77 (CTest
 *                                 SKIP_RETURN_CODE) when cudaGetDeviceCount
 *                                 fails (no driver: cudaErrorInsufficientDriver)
 *                                 or finds no device
 *        test_cuda_ops --emulate  the same kernels' code in the backend's host
 *                                 emulation (runs anywhere)
 *
 * Each case builds one node with deterministic random data, checks the node
 * with the op's own check(), runs it through spr_cuda_op_run and compares
 * with the oracle: max |gpu - ref| <= tol * max(max |ref|, 1). Tolerances:
 *   f32 arithmetic (f32 sums vs the oracles' double):  2e-5 (GEMM/conv: K
 *     terms of f32 rounding), 1e-5 elementwise, norms, softmax and every
 *     attention (dense, cached, neighborhood, BRA; BRA's routing is double
 *     arithmetic in the oracle's order on both sides, so it keeps the same
 *     regions, which the all-ties cases pin: a different kept set is an
 *     O(1) error)
 *   quantized GEMM and GEMM_MULTI: the oracle quantizes activations the same way (ggml's
 *     reference quantizers), so only the f32 block-scale sums differ: 1e-4
 *   data movement (get_rows, kv_store, concat, last_row): bit-exact
 *   RoPE: the oracle's angles are exact, the op's are ggml's float
 *     recurrence: 1e-5 * (1 + position) (see tests/unit/test_llm_ops.c). */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/act/act.h"
#include "ops/attention/attention.h"
#include "ops/backends/cuda/cuda_backend.h"
#include "ops/bra/bra.h"
#include "ops/common/fp16.h"
#include "ops/conv/conv.h"
#include "ops/coreffn/coreffn.h"
#include "ops/eltwise/eltwise.h"
#include "ops/gemm/gemm.h"
#include "ops/gemm/qgemm.h"
#include "ops/layout/layout.h"
#include "ops/llm/llm.h"
#include "ops/natten/natten.h"
#include "ops/norm/norm.h"
#include "ops/op.h"
#include "ops/quant/quant.h"
#include "ops/softmax/softmax.h"
#include "sparrow/gguf.h"
#include "support/op_harness.h"
#include "support/test_util.h"

static enum spr_cuda_mode g_mode = SPR_CUDA_DEVICE;

static float *falloc(size_t n) {
  return spr_test_aligned_alloc((n ? n : 1) * sizeof(float));
}

static float *frand(size_t n, uint64_t seed) {
  float *x = falloc(n);
  spr_test_fill(x, n, seed, -1.0f, 1.0f);
  return x;
}

static void node_init(struct spr_node *n, enum spr_op op, int n_src, int32_t dst) {
  memset(n, 0, sizeof *n);
  n->op = (uint16_t)op;
  n->n_src = (uint8_t)n_src;
  for (int i = 0; i < SPR_MAX_SRCS; i++) n->src[i] = i < n_src ? i : -1;
  n->dst = dst;
}

/* check() must accept the node, then the GPU runs it. */
static void run_gpu(const char *what, struct spr_tensor *ts, int32_t n_ts, struct spr_node *n,
                    const struct spr_run_state *run) {
  struct spr_error err = {SPR_STATUS_OK, ""};
  const struct spr_op_def *def = spr_op_get((enum spr_op)n->op);
  if (def->check != NULL && def->check(ts, n, &err) != SPR_STATUS_OK) fail_msg("%s: check(): %s", what, err.msg);
  if (spr_cuda_kernel_name(ts, n) == NULL) fail_msg("%s: no CUDA kernel", what);
  const enum spr_status s = spr_cuda_op_run(ts, n_ts, n, run, g_mode, &err);
  if (s != SPR_STATUS_OK) fail_msg("%s: spr_cuda_op_run: %s (%s)", what, err.msg, spr_status_name(s));
}

/* Returns max |got - want| / max(max |want|, 1). */
static double expect_close(const char *what, const float *got, const float *want, size_t n, double tol) {
  double max_ref = 1.0, worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) max_ref = fabs(want[i]) > max_ref ? fabs(want[i]) : max_ref;
  for (size_t i = 0; i < n; i++) {
    const double d = fabs((double)got[i] - (double)want[i]);
    if (isnan(got[i]) != isnan(want[i]) || d > worst) {
      worst = isnan(got[i]) != isnan(want[i]) ? INFINITY : d;
      at = i;
    }
  }
  if (worst > tol * max_ref)
    fail_msg("%s: index %zu: got %.9g, want %.9g (|diff| %.3g > %.3g)", what, at, got[at], want[at], worst,
             tol * max_ref);
  return worst / max_ref;
}

static void expect_bits(const char *what, const void *got, const void *want, size_t bytes) {
  if (memcmp(got, want, bytes) != 0) {
    const uint8_t *a = got, *b = want;
    size_t i = 0;
    while (a[i] == b[i]) i++;
    fail_msg("%s: byte %zu differs (%u vs %u)", what, i, a[i], b[i]);
  }
}

/* ---- GEMM ------------------------------------------------------------------------------ */

static void *make_weights(enum spr_dtype t, const float *w, size_t n, size_t k, size_t *bytes) {
  const int64_t ne[2] = {(int64_t)k, (int64_t)n};
  *bytes = spr_tensor_nbytes(t, ne, 2);
  uint8_t *q = spr_test_aligned_alloc(*bytes);
  const size_t row = *bytes / n;
  spr_quantize_row_fn fn = spr_quantize_row_get(t);
  for (size_t j = 0; j < n; j++) fn(w + j * k, q + j * row, (int64_t)k);
  return q;
}

static void gemm_case(enum spr_dtype wt, size_t m, size_t n, size_t k, int act, bool bias, bool res) {
  char what[128];
  snprintf(what, sizeof what, "gemm %s m=%zu n=%zu k=%zu act=%d bias=%d res=%d", spr_dtype_name(wt), m, n, k, act, bias,
           res);
  float *x = frand(m * k, 1 + m), *wf = frand(n * k, 2 + n), *b = frand(n, 3), *r = frand(m * n, 4);
  float *got = falloc(m * n), *want = falloc(m * n);
  size_t wbytes;
  void *w = make_weights(wt, wf, n, k, &wbytes);
  struct spr_tensor ts[5];
  const int64_t ne_x[2] = {(int64_t)k, (int64_t)m}, ne_w[2] = {(int64_t)k, (int64_t)n}, ne_b[1] = {(int64_t)n},
                ne_y[2] = {(int64_t)n, (int64_t)m};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
  spr_test_tensor(&ts[1], wt, 2, ne_w, w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 1, ne_b, b);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_y, r);
  spr_test_tensor(&ts[4], SPR_DTYPE_F32, 2, ne_y, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_GEMM, 4, 4);
  nd.src[2] = bias ? 2 : -1;
  nd.src[3] = res ? 3 : -1;
  nd.p.gemm.act = (uint8_t)act;
  run_gpu(what, ts, 5, &nd, NULL);
  if (wt == SPR_DTYPE_F32 || wt == SPR_DTYPE_F16) {
    spr_f32_gemm_ref(m, n, k, x, w, wt, bias ? b : NULL, (enum spr_act)act, res ? r : NULL, want);
    expect_close(what, got, want, m * n, 2e-5);
  } else {
    spr_qgemm_ref(wt, m, n, k, x, w, bias ? b : NULL, (enum spr_act)act, res ? r : NULL, want);
    expect_close(what, got, want, m * n, 1e-4);
  }
  free(x), free(wf), free(b), free(r), free(got), free(want), free(w);
}

static void test_gemm(void **state) {
  (void)state;
  const enum spr_dtype types[] = {SPR_DTYPE_F32,  SPR_DTYPE_F16,  SPR_DTYPE_Q8_0,
                                  SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    const size_t k = spr_dtype_block_elems(types[t]) == 256 ? 512 : 96;
    gemm_case(types[t], 1, 37, k, SPR_ACT_NONE, false, false); /* GEMV */
    gemm_case(types[t], 5, 19, k, SPR_ACT_GELU, true, true);
    gemm_case(types[t], 17, 8, k, SPR_ACT_SILU, true, false);
    gemm_case(types[t], 3, 9, k, SPR_ACT_RELU, false, true);
  }
}

/* GEMM_MULTI: the activations quantized once, two or three weights side by
 * side (glu 0) or act(x.W1) * (x.W2) (glu 1), vs spr_qgemm_multi_ref. */
static void gemm_multi_case(enum spr_dtype wt, size_t m, size_t k, size_t n1, size_t n2, size_t n3, int glu, int act) {
  char what[128];
  snprintf(what, sizeof what, "gemm_multi %s m=%zu k=%zu n=%zu+%zu+%zu glu=%d act=%d", spr_dtype_name(wt), m, k, n1, n2,
           n3, glu, act);
  const size_t nw[3] = {n1, n2, n3}, nn = glu ? n1 : n1 + n2 + n3;
  float *x = frand(m * k, 5 + m), *got = falloc(m * nn), *want = falloc(m * nn);
  void *w[3] = {NULL, NULL, NULL};
  struct spr_tensor ts[5];
  const int64_t ne_x[2] = {(int64_t)k, (int64_t)m}, ne_y[2] = {(int64_t)nn, (int64_t)m};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
  int n_w = 0;
  for (int s = 0; s < 3; s++) {
    if (nw[s] == 0) continue;
    float *wf = frand(nw[s] * k, 11 + (uint64_t)s * 7 + nw[s]);
    size_t bytes;
    w[s] = make_weights(wt, wf, nw[s], k, &bytes);
    const int64_t ne_w[2] = {(int64_t)k, (int64_t)nw[s]};
    spr_test_tensor(&ts[1 + s], wt, 2, ne_w, w[s]);
    free(wf);
    n_w++;
  }
  spr_test_tensor(&ts[4], SPR_DTYPE_F32, 2, ne_y, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_GEMM_MULTI, 1 + n_w, 4);
  nd.p.gemm_multi.glu = (uint8_t)glu;
  nd.p.gemm_multi.act = (uint8_t)act;
  run_gpu(what, ts, 5, &nd, NULL);
  spr_qgemm_multi_ref(wt, m, k, x, w[0], n1, w[1], n2, w[2], n3, glu, (enum spr_act)act, want);
  expect_close(what, got, want, m * nn, 1e-4);
  free(x), free(got), free(want), free(w[0]), free(w[1]), free(w[2]);
}

static void test_gemm_multi(void **state) {
  (void)state;
  const enum spr_dtype types[] = {SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    const size_t k = spr_dtype_block_elems(types[t]) == 256 ? 512 : 96;
    gemm_multi_case(types[t], 1, k, 16, 8, 8, 0, SPR_ACT_NONE); /* fused QKV, GEMV */
    gemm_multi_case(types[t], 7, k, 12, 5, 9, 0, SPR_ACT_NONE);
    gemm_multi_case(types[t], 3, k, 11, 6, 0, 0, SPR_ACT_NONE);  /* two weights */
    gemm_multi_case(types[t], 1, k, 19, 19, 0, 1, SPR_ACT_SILU); /* SwiGLU, GEMV */
    gemm_multi_case(types[t], 6, k, 10, 10, 0, 1, SPR_ACT_SILU);
    gemm_multi_case(types[t], 4, k, 9, 9, 0, 1, SPR_ACT_GELU);
  }
}

/* ---- norms, softmax, activations, eltwise -------------------------------------------- */

static void test_norms_softmax(void **state) {
  (void)state;
  const size_t d = 77, rows = 6;
  float *x = frand(d * rows, 11), *g = frand(d, 12), *b = frand(d, 13), *got = falloc(d * rows),
        *want = falloc(d * rows);
  for (size_t i = 0; i < d * rows; i++) x[i] = x[i] * 3.0f + 0.5f;
  struct spr_tensor ts[4];
  const int64_t ne_x[2] = {(int64_t)d, (int64_t)rows}, ne_g[1] = {(int64_t)d};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 1, ne_g, g);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 1, ne_g, b);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_x, got);
  struct spr_node nd;

  node_init(&nd, SPR_OP_LAYERNORM, 3, 3);
  nd.p.norm.eps = 1e-5f;
  run_gpu("layernorm", ts, 4, &nd, NULL);
  for (size_t r = 0; r < rows; r++) spr_f32_layernorm_ref(d, x + r * d, g, b, 1e-5f, want + r * d);
  expect_close("layernorm", got, want, d * rows, 1e-5);

  node_init(&nd, SPR_OP_LAYERNORM, 3, 3);
  nd.src[2] = -1;
  nd.p.norm.eps = 1e-6f;
  run_gpu("layernorm (no beta)", ts, 4, &nd, NULL);
  for (size_t r = 0; r < rows; r++) spr_f32_layernorm_ref(d, x + r * d, g, NULL, 1e-6f, want + r * d);
  expect_close("layernorm (no beta)", got, want, d * rows, 1e-5);

  node_init(&nd, SPR_OP_RMSNORM, 2, 3);
  nd.p.norm.eps = 1e-5f;
  run_gpu("rmsnorm", ts, 4, &nd, NULL);
  for (size_t r = 0; r < rows; r++) spr_f32_rmsnorm_ref(d, x + r * d, g, 1e-5f, want + r * d);
  expect_close("rmsnorm", got, want, d * rows, 1e-5);

  node_init(&nd, SPR_OP_SOFTMAX, 1, 3);
  nd.p.softmax.scale = 0.7f;
  run_gpu("softmax", ts, 4, &nd, NULL);
  for (size_t r = 0; r < rows; r++) spr_f32_softmax_ref(d, x + r * d, 0.7f, want + r * d);
  expect_close("softmax", got, want, d * rows, 1e-5);

  node_init(&nd, SPR_OP_GELU, 1, 3);
  run_gpu("gelu", ts, 4, &nd, NULL);
  for (size_t i = 0; i < d * rows; i++) want[i] = spr_f32_gelu_ref(x[i]);
  expect_close("gelu", got, want, d * rows, 1e-5);

  node_init(&nd, SPR_OP_SILU, 1, 3);
  run_gpu("silu", ts, 4, &nd, NULL);
  for (size_t i = 0; i < d * rows; i++) want[i] = spr_f32_silu_ref(x[i]);
  expect_close("silu", got, want, d * rows, 1e-5);

  node_init(&nd, SPR_OP_SCALE, 1, 3);
  nd.p.scale.s = -1.25f;
  run_gpu("scale", ts, 4, &nd, NULL);
  spr_f32_scale_ref(d * rows, x, -1.25f, want);
  expect_close("scale", got, want, d * rows, 1e-6);

  node_init(&nd, SPR_OP_MEAN_ROWS, 1, 3);
  const int64_t ne_m[2] = {(int64_t)d, 1};
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_m, got);
  run_gpu("mean_rows", ts, 4, &nd, NULL);
  spr_f32_mean_rows_ref(d, rows, x, want);
  expect_close("mean_rows", got, want, d, 1e-6);
  free(x), free(g), free(b), free(got), free(want);
}

static void test_eltwise(void **state) {
  (void)state;
  const size_t d = 45, rows = 7, rb = 3;
  float *a = frand(d * rows, 21), *b = frand(d * rows, 22), *c = frand(d * rb, 23), *got = falloc(d * (rows + rb)),
        *want = falloc(d * (rows + rb));
  struct spr_tensor ts[3];
  const int64_t ne_a[2] = {(int64_t)d, (int64_t)rows}, ne_v[1] = {(int64_t)d};
  for (int op = 0; op < 2; op++) {
    for (int bc = 0; bc < 2; bc++) {
      const char *what = op ? (bc ? "mul (broadcast)" : "mul") : (bc ? "add (broadcast)" : "add");
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, a);
      if (bc)
        spr_test_tensor(&ts[1], SPR_DTYPE_F32, 1, ne_v, b);
      else
        spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_a, b);
      spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_a, got);
      struct spr_node nd;
      node_init(&nd, op ? SPR_OP_MUL : SPR_OP_ADD, 2, 2);
      run_gpu(what, ts, 3, &nd, NULL);
      (op ? spr_f32_mul_ref : spr_f32_add_ref)(d, rows, a, b, bc ? 1 : rows, want);
      expect_close(what, got, want, d * rows, 1e-6);
    }
  }
  /* concat_rows */
  const int64_t ne_c[2] = {(int64_t)d, (int64_t)rb}, ne_y[2] = {(int64_t)d, (int64_t)(rows + rb)};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, a);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_c, c);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_CONCAT_ROWS, 2, 2);
  run_gpu("concat_rows", ts, 3, &nd, NULL);
  spr_f32_concat_rows_ref(d, rows, a, rb, c, want);
  expect_bits("concat_rows", got, want, d * (rows + rb) * sizeof(float));
  free(a), free(b), free(c), free(got), free(want);
}

/* ---- convolutions ------------------------------------------------------------------------- */

static void conv_case(enum spr_dtype wt, size_t h, size_t w, size_t cin, size_t cout, struct spr_conv_params p,
                      bool bias) {
  char what[128];
  snprintf(what, sizeof what, "conv2d %s %zux%zux%zu->%zu k%ux%u s%u p%u", spr_dtype_name(wt), h, w, cin, cout, p.kh,
           p.kw, p.sh, p.ph);
  const size_t oh = (h + 2u * p.ph - p.kh) / p.sh + 1, ow = (w + 2u * p.pw - p.kw) / p.sw + 1;
  const size_t nw = cout * p.kh * p.kw * cin;
  float *x = frand(h * w * cin, 31), *wf = frand(nw, 32), *b = frand(cout, 33), *got = falloc(oh * ow * cout),
        *want = falloc(oh * ow * cout);
  void *wd = wf;
  uint16_t *wh = NULL;
  if (wt == SPR_DTYPE_F16) {
    wh = spr_test_aligned_alloc(nw * 2);
    for (size_t i = 0; i < nw; i++) wh[i] = spr_fp16_from_f32(wf[i]);
    wd = wh;
  }
  struct spr_tensor ts[4];
  const int64_t ne_x[3] = {(int64_t)cin, (int64_t)w, (int64_t)h}, ne_w[4] = {(int64_t)cin, p.kw, p.kh, (int64_t)cout},
                ne_b[1] = {(int64_t)cout}, ne_y[3] = {(int64_t)cout, (int64_t)ow, (int64_t)oh};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, ne_x, x);
  spr_test_tensor(&ts[1], wt, 4, ne_w, wd);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 1, ne_b, b);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 3, ne_y, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_CONV2D, 3, 3);
  nd.src[2] = bias ? 2 : -1;
  nd.p.conv = p;
  run_gpu(what, ts, 4, &nd, NULL);
  spr_f32_conv2d_ref(x, h, w, cin, wd, wt, bias ? b : NULL, cout, &p, want);
  expect_close(what, got, want, oh * ow * cout, 2e-5);
  free(x), free(wf), free(b), free(got), free(want), free(wh);
}

static void dwconv_case(size_t h, size_t w, size_t c, struct spr_conv_params p, bool bias) {
  char what[128];
  snprintf(what, sizeof what, "dwconv2d %zux%zux%zu k%ux%u s%u p%u", h, w, c, p.kh, p.kw, p.sh, p.ph);
  const size_t oh = (h + 2u * p.ph - p.kh) / p.sh + 1, ow = (w + 2u * p.pw - p.kw) / p.sw + 1;
  float *x = frand(h * w * c, 41), *wt = frand((size_t)p.kh * p.kw * c, 42), *b = frand(c, 43),
        *got = falloc(oh * ow * c), *want = falloc(oh * ow * c);
  struct spr_tensor ts[4];
  const int64_t ne_x[3] = {(int64_t)c, (int64_t)w, (int64_t)h}, ne_w[3] = {(int64_t)c, p.kw, p.kh},
                ne_b[1] = {(int64_t)c}, ne_y[3] = {(int64_t)c, (int64_t)ow, (int64_t)oh};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, ne_x, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 3, ne_w, wt);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 1, ne_b, b);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 3, ne_y, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_DWCONV2D, 3, 3);
  nd.src[2] = bias ? 2 : -1;
  nd.p.conv = p;
  run_gpu(what, ts, 4, &nd, NULL);
  spr_f32_dwconv2d_ref(x, h, w, c, wt, bias ? b : NULL, &p, want);
  expect_close(what, got, want, oh * ow * c, 1e-5);
  free(x), free(wt), free(b), free(got), free(want);
}

static void test_conv(void **state) {
  (void)state;
  const struct spr_conv_params patch = {4, 4, 4, 4, 0, 0}, same3 = {3, 3, 1, 1, 1, 1}, s2 = {3, 3, 2, 2, 1, 1};
  conv_case(SPR_DTYPE_F32, 28, 28, 1, 16, patch, true);
  conv_case(SPR_DTYPE_F16, 12, 10, 3, 8, same3, false);
  conv_case(SPR_DTYPE_F32, 9, 11, 5, 7, s2, true);
  dwconv_case(14, 14, 24, same3, true);
  dwconv_case(9, 7, 5, s2, false);
}

/* ---- attention -------------------------------------------------------------------------- */

static void attn_dense_case(size_t nh, size_t nkv, size_t hd, size_t tq, size_t tk, bool causal, bool fused) {
  char what[160];
  snprintf(what, sizeof what, "attention heads %zu/%zu hd %zu tq %zu tk %zu causal %d fused %d", nh, nkv, hd, tq, tk,
           causal, fused);
  /* fused: one qkv tensor [q | k | v] per row (tq == tk), column offsets */
  const size_t wq = nh * hd, wkv = nkv * hd, wrow = wq + 2 * wkv;
  float *q = frand(fused ? tq * wrow : tq * wq, 51), *k = frand(tk * wkv, 52), *v = frand(tk * wkv, 53);
  float *got = falloc(tq * wq), *want = falloc(tq * wq);
  double *scores = malloc((tk + 1) * sizeof(double));
  struct spr_tensor ts[4];
  struct spr_attn_params p;
  memset(&p, 0, sizeof p);
  p.n_heads = (uint16_t)nh;
  p.n_kv_heads = (uint16_t)nkv;
  p.head_dim = (uint16_t)hd;
  p.causal = causal;
  p.scale = 1.0f / sqrtf((float)hd);
  const int64_t ne_y[2] = {(int64_t)wq, (int64_t)tq};
  struct spr_node nd;
  if (fused) {
    const int64_t ne_qkv[2] = {(int64_t)wrow, (int64_t)tq};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_qkv, q);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_y, got);
    node_init(&nd, SPR_OP_ATTENTION, 3, 1);
    nd.src[1] = nd.src[2] = 0;
    p.q_col = 0;
    p.k_col = (uint32_t)wq;
    p.v_col = (uint32_t)(wq + wkv);
    nd.p.attn = p;
    run_gpu(what, ts, 2, &nd, NULL);
    spr_f32_attention_ref(&p, tq, tq, q, wrow, q, wrow, q, wrow, want, scores);
  } else {
    const int64_t ne_q[2] = {(int64_t)wq, (int64_t)tq}, ne_k[2] = {(int64_t)wkv, (int64_t)tk};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_q, q);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_k, k);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_k, v);
    spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_y, got);
    node_init(&nd, SPR_OP_ATTENTION, 3, 3);
    nd.p.attn = p;
    run_gpu(what, ts, 4, &nd, NULL);
    spr_f32_attention_ref(&p, tq, tk, q, wq, k, wkv, v, wkv, want, scores);
  }
  expect_close(what, got, want, tq * wq, 1e-5);
  free(q), free(k), free(v), free(got), free(want), free(scores);
}

/* Cached attention over a KV cache written at positions [0, n_past + tq). */
static void attn_cached_case(enum spr_dtype kvt, size_t nh, size_t nkv, size_t hd, size_t n_past, size_t tq,
                             uint32_t window, uint32_t sinks) {
  char what[160];
  snprintf(what, sizeof what, "cached attention %s heads %zu/%zu hd %zu past %zu tq %zu window %u sinks %u",
           spr_dtype_name(kvt), nh, nkv, hd, n_past, tq, window, sinks);
  const size_t wq = nh * hd, w = nkv * hd, n_pos = n_past + tq;
  const uint32_t ring = window > 0 ? window + (uint32_t)tq - 1 : 0;
  const size_t cap = window > 0 ? sinks + ring : n_pos + 3;
  float *q = frand(tq * wq, 61), *kp = frand(n_pos * w, 62), *vp = frand(n_pos * w, 63);
  float *got = falloc(tq * wq), *want = falloc(tq * wq);
  const size_t esz = kvt == SPR_DTYPE_F16 ? 2 : 4;
  uint8_t *kc = spr_test_aligned_alloc(cap * w * esz), *vc = spr_test_aligned_alloc(cap * w * esz);
  memset(kc, 0, cap * w * esz);
  memset(vc, 0, cap * w * esz);
  /* the cache holds the last writer of each slot; the oracle reads values by
   * position as the cache stores them (f16-rounded) */
  for (size_t j = 0; j < n_pos; j++) {
    const uint32_t slot = spr_kv_slot((uint32_t)j, window, sinks, ring);
    for (size_t c = 0; c < w; c++) {
      float *kj = &kp[j * w + c], *vj = &vp[j * w + c];
      if (kvt == SPR_DTYPE_F16) {
        const uint16_t hk = spr_fp16_from_f32(*kj), hv = spr_fp16_from_f32(*vj);
        ((uint16_t *)kc)[slot * w + c] = hk;
        ((uint16_t *)vc)[slot * w + c] = hv;
        *kj = spr_fp16_to_f32(hk);
        *vj = spr_fp16_to_f32(hv);
      } else {
        ((float *)kc)[slot * w + c] = *kj;
        ((float *)vc)[slot * w + c] = *vj;
      }
    }
  }
  struct spr_attn_params p;
  memset(&p, 0, sizeof p);
  p.n_heads = (uint16_t)nh;
  p.n_kv_heads = (uint16_t)nkv;
  p.head_dim = (uint16_t)hd;
  p.causal = 1;
  p.kv_cache = 1;
  p.scale = 1.0f / sqrtf((float)hd);
  p.window = window;
  p.sinks = sinks;
  p.ring = ring;
  struct spr_tensor ts[4];
  const int64_t ne_q[2] = {(int64_t)wq, (int64_t)tq}, ne_c[2] = {(int64_t)w, (int64_t)cap};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_q, q);
  spr_test_tensor(&ts[1], kvt, 2, ne_c, kc);
  spr_test_tensor(&ts[2], kvt, 2, ne_c, vc);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_q, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_ATTENTION, 3, 3);
  nd.p.attn = p;
  const struct spr_run_state run = {(int32_t)n_past, (int32_t)tq};
  run_gpu(what, ts, 4, &nd, &run);
  double *scores = malloc((n_pos + 1) * sizeof(double));
  spr_f32_attention_cached_ref(&p, n_past, tq, q, wq, kp, vp, w, want, scores);
  expect_close(what, got, want, tq * wq, 1e-5);
  free(q), free(kp), free(vp), free(got), free(want), free(kc), free(vc), free(scores);
}

static void test_attention(void **state) {
  (void)state;
  attn_dense_case(4, 4, 16, 17, 17, false, true); /* ViT: fused qkv */
  attn_dense_case(2, 2, 8, 5, 9, false, false);
  attn_dense_case(4, 2, 8, 7, 7, true, false); /* GQA, causal */
  attn_dense_case(2, 2, 8, 3, 8, true, false); /* causal, tk > tq */
  attn_cached_case(SPR_DTYPE_F32, 4, 2, 16, 0, 6, 0, 0);
  attn_cached_case(SPR_DTYPE_F16, 4, 2, 16, 9, 1, 0, 0); /* decode */
  attn_cached_case(SPR_DTYPE_F16, 4, 4, 8, 5, 4, 0, 0);  /* prefill after a prefix */
  attn_cached_case(SPR_DTYPE_F16, 2, 1, 8, 30, 3, 8, 2); /* sliding window + sinks */
  attn_cached_case(SPR_DTYPE_F32, 2, 2, 8, 20, 1, 6, 0); /* window, no sinks */
}

/* ---- neighborhood attention -------------------------------------------------------------- */

struct na_case {
  const char *name;
  uint8_t n_dims, causal;
  uint16_t size[3], kernel[3], dilation[3], stride[3];
  uint16_t n_heads, head_dim;
  bool rpb, fused;
};

static void na_run_case(const struct na_case *cs) {
  char what[200];
  snprintf(what, sizeof what, "neighborhood attention %s (%u-D heads %u hd %u rpb %d fused %d)", cs->name,
           (unsigned)cs->n_dims, (unsigned)cs->n_heads, (unsigned)cs->head_dim, cs->rpb, cs->fused);
  struct spr_na_params p;
  memset(&p, 0, sizeof p);
  p.n_heads = cs->n_heads;
  p.head_dim = cs->head_dim;
  p.n_dims = cs->n_dims;
  p.causal = cs->causal;
  size_t n_tok = 1, rpb_n = cs->n_heads, n_win = 1;
  for (int a = 0; a < cs->n_dims; a++) {
    p.size[a] = cs->size[a];
    p.kernel[a] = cs->kernel[a];
    p.dilation[a] = cs->dilation[a];
    p.stride[a] = cs->stride[a];
    n_tok *= cs->size[a];
    rpb_n *= 2 * (size_t)cs->kernel[a] - 1;
    n_win *= cs->kernel[a];
  }
  const size_t w = (size_t)cs->n_heads * cs->head_dim, wrow = cs->fused ? 3 * w : w;
  float *q = frand(n_tok * wrow, 71), *k = frand(n_tok * w, 72), *v = frand(n_tok * w, 73), *b = frand(rpb_n, 74);
  /* scale the logits up so that the softmax is far from uniform */
  for (size_t i = 0; i < n_tok * wrow; i++) q[i] *= 3.0f;
  float *got = falloc(n_tok * w), *want = falloc(n_tok * w);
  double *scores = malloc(n_win * sizeof(double));
  struct spr_tensor ts[6];
  const int64_t ne_q[2] = {(int64_t)wrow, (int64_t)n_tok}, ne_kv[2] = {(int64_t)w, (int64_t)n_tok};
  int64_t ne_b[4] = {1, 1, 1, 1};
  for (int a = 0; a < cs->n_dims; a++) ne_b[cs->n_dims - 1 - a] = 2 * (int64_t)cs->kernel[a] - 1;
  ne_b[cs->n_dims] = cs->n_heads;
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_q, q);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_kv, k);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_kv, v);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, cs->n_dims + 1, ne_b, b);
  spr_test_tensor(&ts[4], SPR_DTYPE_F32, 2, ne_kv, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_NEIGHBORHOOD_ATTN, 4, 4);
  if (!cs->rpb) nd.src[3] = -1;
  if (cs->fused) {
    nd.src[1] = nd.src[2] = 0;
    p.k_col = (uint32_t)w;
    p.v_col = (uint32_t)(2 * w);
  }
  nd.p.na = p;
  run_gpu(what, ts, 5, &nd, NULL);
  if (cs->fused)
    spr_f32_na_ref(&p, q, wrow, q, wrow, q, wrow, cs->rpb ? b : NULL, want, w, scores);
  else
    spr_f32_na_ref(&p, q, w, k, w, v, w, cs->rpb ? b : NULL, want, w, scores);
  print_message("  %-80s %.3g\n", what, expect_close(what, got, want, n_tok * w, 1e-5));
  free(q), free(k), free(v), free(b), free(got), free(want), free(scores);
}

static void test_neighborhood_attn(void **state) {
  (void)state;
  static const struct na_case cases[] = {
      /* 1-D: border shift (K 5 at the ends), dilation 2 with uneven groups (7 / 6), rpb */
      {"1d dil uneven rpb", 1, 0, {13}, {5}, {2}, {1}, 2, 8, true, false},
      /* even K (2 left, 1 right), stride 3 (windows shared by leaders), no shift at K = L */
      {"1d even K stride", 1, 0, {11}, {4}, {1}, {3}, 2, 8, false, false},
      {"1d K = L", 1, 0, {6}, {6}, {1}, {1}, 1, 4, false, false},
      /* causal: first queries see fewer keys; dilation 3 with uneven groups (5 / 4 / 4), stride 2 */
      {"1d causal dil stride", 1, 1, {13}, {4}, {3}, {2}, 2, 8, false, true},
      /* 2-D: odd K per axis, dilation (2, 3) with uneven groups on both axes, rpb, fused qkv (NAT / DiNAT) */
      {"2d dil rpb fused", 2, 0, {9, 16}, {3, 5}, {2, 3}, {1, 1}, 2, 8, true, true},
      {"2d 14x14 K7 dil2 rpb", 2, 0, {14, 14}, {7, 7}, {2, 2}, {1, 1}, 3, 32, true, false},
      /* 2-D: even K, strides, causal rows only */
      {"2d causal rows even K stride", 2, 1, {8, 10}, {4, 3}, {1, 2}, {2, 3}, 2, 8, false, false},
      {"2d causal both", 2, 3, {7, 9}, {3, 4}, {2, 1}, {1, 2}, 2, 8, false, true},
      /* 3-D: mixed per-axis K (odd / even), dilation, stride, causal x */
      {"3d mixed causal x", 3, 4, {5, 6, 7}, {3, 2, 5}, {1, 2, 1}, {1, 2, 2}, 2, 8, false, false},
      {"3d rpb dil", 3, 0, {4, 5, 6}, {3, 3, 3}, {1, 1, 2}, {1, 1, 1}, 2, 8, true, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) na_run_case(&cases[i]);
}

/* ---- bi-level routing attention ---------------------------------------------------------- */

/* Every region's key mean becomes the same vector, exactly: keys are
 * multiples of 1/8 and each region's last token makes its sum M * target, so
 * every routing score of a region ties with all others (different keys
 * behind them): the tie rule (lower region index first) decides the kept
 * set, and the output depends on it. */
static void bra_tie_keys(float *k, size_t stride, const struct spr_bra_params *p) {
  const size_t S = p->n_win, rh = p->h / S, rw = p->w / S, M = rh * rw;
  for (size_t r = 0; r < S * S; r++) {
    for (size_t c = 0; c < p->qk_dim; c++) {
      const float target = (float)((int)(c % 7) - 3) * 0.125f;
      float sum = 0.0f;
      for (size_t t = 0; t < M; t++) {
        const size_t tok = ((r / S) * rh + t / rw) * p->w + (r % S) * rw + t % rw;
        float *x = &k[tok * stride + p->k_col + c];
        if (t + 1 < M) {
          *x = roundf(*x * 8.0f) * 0.125f;
          sum += *x;
        } else {
          *x = (float)M * target - sum;
        }
      }
    }
  }
}

/* pad > 0: the map's last `pad` rows and columns are padding tokens, all
 * carrying the same q/k/v (the qkv Linear's bias, as BiFormer's auto_pad
 * gives them): whole regions of identical content tie in the routing.
 * tie: every routing score ties (bra_tie_keys). */
static void bra_case(uint16_t h, uint16_t w, uint16_t n_win, uint16_t topk, uint16_t nh, uint32_t qk, uint32_t vd,
                     uint16_t pad, bool fused, bool tie) {
  char what[200];
  snprintf(what, sizeof what, "bra %ux%u n_win %u topk %u heads %u qk %u v %u pad %u fused %d tie %d", h, w, n_win,
           topk, nh, qk, vd, pad, fused, tie);
  struct spr_bra_params p;
  memset(&p, 0, sizeof p);
  p.n_heads = nh;
  p.n_win = n_win;
  p.topk = topk;
  p.h = h;
  p.w = w;
  p.qk_dim = qk;
  p.v_dim = vd;
  const size_t n_tok = (size_t)h * w, wq = fused ? 2 * qk + vd : qk, wk = fused ? wq : qk, wv = fused ? wq : vd;
  float *q = frand(n_tok * wq, 81), *k = frand(n_tok * wk, 82), *v = frand(n_tok * wv, 83);
  float *bias = frand(2 * qk + vd, 84);
  for (size_t i = 0; i < n_tok * wq; i++) q[i] *= 2.0f;
  if (pad > 0) {
    for (size_t t = 0; t < n_tok; t++) {
      if (t / w < (size_t)(h - pad) && t % w < (size_t)(w - pad)) continue;
      if (fused) {
        memcpy(q + t * wq, bias, (2 * qk + vd) * sizeof(float));
      } else {
        memcpy(q + t * wq, bias, qk * sizeof(float));
        memcpy(k + t * wk, bias + qk, qk * sizeof(float));
        memcpy(v + t * wv, bias + 2 * qk, vd * sizeof(float));
      }
    }
  }
  if (fused) {
    p.k_col = qk;
    p.v_col = 2 * qk;
  }
  if (tie) bra_tie_keys(fused ? q : k, wk, &p);
  float *got = falloc(n_tok * vd), *want = falloc(n_tok * vd);
  double *scratch = malloc(spr_bra_ref_scratch_doubles(&p) * sizeof(double));
  struct spr_tensor ts[4];
  const int64_t ne_q[2] = {(int64_t)wq, (int64_t)n_tok}, ne_k[2] = {(int64_t)wk, (int64_t)n_tok},
                ne_v[2] = {(int64_t)wv, (int64_t)n_tok}, ne_o[2] = {(int64_t)vd, (int64_t)n_tok};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_q, q);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_k, k);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_v, v);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_o, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_BRA, 3, 3);
  if (fused) nd.src[1] = nd.src[2] = 0;
  nd.p.bra = p;
  run_gpu(what, ts, 4, &nd, NULL);
  if (fused)
    spr_f32_bra_ref(&p, q, wq, q, wq, q, wq, want, vd, scratch);
  else
    spr_f32_bra_ref(&p, q, wq, k, wk, v, wv, want, vd, scratch);
  print_message("  %-80s %.3g\n", what, expect_close(what, got, want, n_tok * vd, 1e-5));
  free(q), free(k), free(v), free(bias), free(got), free(want), free(scratch);
}

static void test_bra(void **state) {
  (void)state;
  bra_case(8, 8, 2, 2, 2, 16, 16, 0, true, false);    /* fused qkv, 4 regions keep 2 */
  bra_case(12, 8, 4, 4, 4, 32, 24, 0, false, false);  /* 3x2-token regions, hq 8 / hv 6 */
  bra_case(6, 6, 2, 4, 2, 16, 8, 0, false, false);    /* topk = S^2: dense attention */
  bra_case(9, 6, 3, 3, 3, 12, 9, 0, true, false);     /* qk 12: routing partial sums with a tail */
  bra_case(8, 8, 4, 3, 2, 16, 16, 3, true, false);    /* 5x5 map padded to 8x8: tied all-padding regions */
  bra_case(16, 16, 4, 1, 2, 16, 16, 5, false, false); /* topk 1, 11x11 padded to 16x16 */
  bra_case(14, 14, 7, 4, 2, 64, 64, 0, true, false);  /* BiFormer-T stage 1-like: 7x7 regions of 2x2, hd 32 */
  bra_case(8, 8, 2, 2, 2, 16, 16, 0, false, true);    /* every routing score ties: lower index wins */
  bra_case(12, 12, 3, 4, 3, 24, 12, 0, true, true);   /* the same, fused, 9 regions keep 4 */
}

/* ---- the sparse ops' PyTorch golden outputs (tests/fixtures/sparse) ------------------- */

#define SPARSE_FIXTURES SPR_SOURCE_DIR "/tests/fixtures/sparse"

static uint32_t golden_u32(const struct spr_gguf *g, const char *file, const char *key) {
  uint32_t v = 0;
  if (spr_gguf_get_u32(g, key, &v) != SPR_STATUS_OK) fail_msg("%s lacks %s", file, key);
  return v;
}

/* One fixture: fused qkv in, the independent PyTorch implementation's output
 * (tools/reference/sparse_op_fixtures.py) to compare with, |err| <= 1e-5 as
 * the CPU ops' golden tests. */
static void sparse_golden(const char *file) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", SPARSE_FIXTURES, file);
  size_t size = 0;
  void *blob = spr_test_read_file(path, &size);
  if (blob == NULL) fail_msg("cannot read %s", path);
  struct spr_gguf g;
  struct spr_error err;
  if (spr_gguf_parse(blob, size, &g, &err) != SPR_STATUS_OK) fail_msg("%s: %s", file, err.msg);
  struct spr_gguf_tensor qkv, out, rpb;
  assert_int_equal(spr_gguf_find_tensor(&g, "qkv", &qkv), SPR_STATUS_OK);
  assert_int_equal(spr_gguf_find_tensor(&g, "out", &out), SPR_STATUS_OK);
  const bool is_na = strncmp(file, "na_", 3) == 0;
  const bool has_rpb = is_na && spr_gguf_find_tensor(&g, "rpb", &rpb) == SPR_STATUS_OK;
  struct spr_node nd;
  node_init(&nd, is_na ? SPR_OP_NEIGHBORHOOD_ATTN : SPR_OP_BRA, is_na ? 4 : 3, 1);
  nd.src[0] = nd.src[1] = nd.src[2] = 0;
  size_t w;
  if (is_na) {
    struct spr_na_params *p = &nd.p.na;
    p->n_dims = (uint8_t)golden_u32(&g, file, "na.n_dims");
    p->n_heads = (uint16_t)golden_u32(&g, file, "na.n_heads");
    p->head_dim = (uint16_t)golden_u32(&g, file, "na.head_dim");
    p->causal = (uint8_t)golden_u32(&g, file, "na.causal");
    static const char *const keys[4] = {"size", "kernel", "dilation", "stride"};
    for (int a = 0; a < p->n_dims; a++) {
      uint16_t *dst[4] = {&p->size[a], &p->kernel[a], &p->dilation[a], &p->stride[a]};
      for (int j = 0; j < 4; j++) {
        char key[64];
        snprintf(key, sizeof key, "na.%s.%d", keys[j], a);
        *dst[j] = (uint16_t)golden_u32(&g, file, key);
      }
    }
    w = (size_t)p->n_heads * p->head_dim;
    p->k_col = (uint32_t)w;
    p->v_col = (uint32_t)(2 * w);
    nd.src[3] = has_rpb ? 2 : -1;
  } else {
    struct spr_bra_params *p = &nd.p.bra;
    p->h = (uint16_t)golden_u32(&g, file, "bra.h");
    p->w = (uint16_t)golden_u32(&g, file, "bra.w");
    p->n_win = (uint16_t)golden_u32(&g, file, "bra.n_win");
    p->topk = (uint16_t)golden_u32(&g, file, "bra.topk");
    p->n_heads = (uint16_t)golden_u32(&g, file, "bra.n_heads");
    p->qk_dim = golden_u32(&g, file, "bra.qk_dim");
    p->v_dim = golden_u32(&g, file, "bra.v_dim");
    p->k_col = p->qk_dim;
    p->v_col = 2 * p->qk_dim;
    w = p->v_dim;
  }
  const size_t n_tok = (size_t)qkv.ne[1];
  float *src = spr_test_aligned_alloc(qkv.nbytes), *o = falloc(w * n_tok), *want = falloc(w * n_tok);
  float *bias = has_rpb ? spr_test_aligned_alloc(rpb.nbytes) : NULL;
  memcpy(src, qkv.data, qkv.nbytes);
  memcpy(want, out.data, w * n_tok * sizeof(float));
  if (has_rpb) memcpy(bias, rpb.data, rpb.nbytes);
  struct spr_tensor ts[3];
  const int64_t nq[2] = {qkv.ne[0], (int64_t)n_tok}, no[2] = {(int64_t)w, (int64_t)n_tok};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, nq, src);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, no, o);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, has_rpb ? (int)rpb.n_dims : 1, has_rpb ? rpb.ne : nq, bias);
  run_gpu(file, ts, 3, &nd, NULL);
  double worst = 0.0;
  for (size_t i = 0; i < w * n_tok; i++) {
    const double e = fabs((double)o[i] - (double)want[i]);
    if (!(e <= 1e-5))
      fail_msg("%s: token %zu col %zu: got %.8g, PyTorch %.8g (err %.3g)", file, i / w, i % w, (double)o[i],
               (double)want[i], e);
    if (e > worst) worst = e;
  }
  print_message("  %-34s vs PyTorch: max abs err %.3g\n", file, worst);
  free(src), free(o), free(want), free(bias), free(blob);
}

static void test_sparse_golden(void **state) {
  (void)state;
  DIR *d = opendir(SPARSE_FIXTURES);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if ((strncmp(e->d_name, "na_", 3) != 0 && strncmp(e->d_name, "bra_", 4) != 0) ||
        strstr(e->d_name, ".golden.gguf") == NULL)
      continue;
    sparse_golden(e->d_name);
    n++;
  }
  closedir(d);
  assert_true(n >= 2);
}

/* ---- LLM ops ---------------------------------------------------------------------------------- */

static void test_get_rows(void **state) {
  (void)state;
  const enum spr_dtype types[] = {SPR_DTYPE_F32,  SPR_DTYPE_F16,  SPR_DTYPE_Q8_0,
                                  SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  const int32_t ids[] = {3, 0, 6, 6, 1};
  const size_t n = 5, v = 7;
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    const size_t d = spr_dtype_block_elems(types[t]) == 256 ? 512 : 64;
    float *tf = frand(d * v, 71 + t), *got = falloc(d * n), *want = falloc(d * n);
    size_t bytes;
    uint8_t *tab = make_weights(types[t], tf, v, d, &bytes);
    for (size_t i = 0; i < n; i++)
      assert_int_equal(spr_dequantize_row(types[t], tab + (size_t)ids[i] * (bytes / v), want + i * d, (int64_t)d),
                       SPR_STATUS_OK);
    struct spr_tensor ts[3];
    const int64_t ne_t[2] = {(int64_t)d, (int64_t)v}, ne_i[1] = {(int64_t)n}, ne_y[2] = {(int64_t)d, (int64_t)n};
    spr_test_tensor(&ts[0], types[t], 2, ne_t, tab);
    spr_test_tensor(&ts[1], SPR_DTYPE_I32, 1, ne_i, (void *)ids);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, got);
    struct spr_node nd;
    node_init(&nd, SPR_OP_GET_ROWS, 2, 2);
    char what[64];
    snprintf(what, sizeof what, "get_rows %s", spr_dtype_name(types[t]));
    run_gpu(what, ts, 3, &nd, NULL);
    expect_bits(what, got, want, d * n * sizeof(float));
    free(tf), free(got), free(want), free(tab);
  }
}

static void test_rope(void **state) {
  (void)state;
  /* the last two read the heads from a column offset of a wider row (K
   * inside a fused QKV row) */
  const struct spr_rope_params cases[] = {
      {4, 16, 16, 10000.0f, 1.0f, 0},
      {2, 32, 16, 500000.0f, 0.5f, 0}, /* partial rotation */
      {2, 16, 16, 10000.0f, 1.0f, 64},
      {2, 32, 16, 10000.0f, 1.0f, 32},
  };
  const size_t extra[] = {0, 0, 96, 32}; /* source row = col + heads + extra */
  const int32_t pasts[] = {0, 37};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (size_t pp = 0; pp < 2; pp++) {
      const struct spr_rope_params *p = &cases[c];
      const size_t row = (size_t)p->n_heads * p->head_dim, x_row = p->col + row + extra[c], nt = 5;
      float *x = frand(x_row * nt, 81), *got = falloc(row * nt), *want = falloc(row * nt);
      struct spr_tensor ts[2];
      const int64_t ne_x[2] = {(int64_t)x_row, (int64_t)nt}, ne[2] = {(int64_t)row, (int64_t)nt};
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
      spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne, got);
      struct spr_node nd;
      node_init(&nd, SPR_OP_ROPE, 1, 1);
      nd.p.rope = *p;
      const struct spr_run_state run = {pasts[pp], (int32_t)nt};
      char what[96];
      snprintf(what, sizeof what, "rope case %zu col %u n_past %d", c, (unsigned)p->col, pasts[pp]);
      run_gpu(what, ts, 2, &nd, &run);
      spr_f32_rope_ref(p, nt, pasts[pp], x, x_row, want);
      expect_close(what, got, want, row * nt, 1e-5 * (1.0 + pasts[pp] + nt));
      free(x), free(got), free(want);
    }
  }
}

static void test_kv_store_last_row(void **state) {
  (void)state;
  const size_t w = 24, n = 3;
  /* the third reads V from columns [40, 64) of a fused row of 72 */
  const struct spr_kv_params kvs[] = {{0, 0, 0, 0}, {4, 1, 6, 0}, {0, 0, 0, 40}};
  const size_t x_rows[] = {24, 24, 72};
  const int32_t pasts[] = {2, 9, 5};
  for (int f16 = 0; f16 < 2; f16++) {
    for (size_t c = 0; c < sizeof kvs / sizeof kvs[0]; c++) {
      const enum spr_dtype t = f16 ? SPR_DTYPE_F16 : SPR_DTYPE_F32;
      const size_t cap = 12, esz = f16 ? 2 : 4, x_row = x_rows[c];
      float *x = frand(x_row * n, 91);
      uint8_t *got = spr_test_aligned_alloc(cap * w * esz), *want = spr_test_aligned_alloc(cap * w * esz);
      for (size_t i = 0; i < cap * w * esz; i++) got[i] = want[i] = (uint8_t)(i * 7);
      struct spr_tensor ts[2];
      const int64_t ne_x[2] = {(int64_t)x_row, (int64_t)n}, ne_c[2] = {(int64_t)w, (int64_t)cap};
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
      spr_test_tensor(&ts[1], t, 2, ne_c, got);
      struct spr_node nd;
      node_init(&nd, SPR_OP_KV_STORE, 1, 1);
      nd.p.kv = kvs[c];
      const struct spr_run_state run = {pasts[c], (int32_t)n};
      char what[80];
      snprintf(what, sizeof what, "kv_store %s window %u col %u", spr_dtype_name(t), kvs[c].window, kvs[c].col);
      run_gpu(what, ts, 2, &nd, &run);
      spr_kv_store_ref(&kvs[c], w, n, pasts[c], x, x_row, t, want, cap);
      expect_bits(what, got, want, cap * w * esz);
      free(x), free(got), free(want);
    }
  }
  /* last_row: row n_tokens - 1 */
  const size_t d = 33, rows = 6;
  float *x = frand(d * rows, 95), *got = falloc(d);
  struct spr_tensor ts[2];
  const int64_t ne_x[2] = {(int64_t)d, (int64_t)rows}, ne_y[2] = {(int64_t)d, 1};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_y, got);
  struct spr_node nd;
  node_init(&nd, SPR_OP_LAST_ROW, 1, 1);
  const struct spr_run_state run = {0, 4};
  run_gpu("last_row", ts, 2, &nd, &run);
  expect_bits("last_row", got, x + 3 * d, d * sizeof(float));
  free(x), free(got);
}

/* ---- core-neuron FFN (ops/coreffn) ------------------------------------------------------------ */

/* n of range, ascending, deterministic */
static void pick_core(int32_t *ids, size_t n, size_t range, uint64_t seed) {
  uint64_t s = seed;
  size_t got = 0;
  for (size_t r = 0; r < range && got < n; r++) {
    const size_t left = range - r, need = n - got;
    if (spr_test_rng_next(&s) % left < need) ids[got++] = (int32_t)r;
  }
}

struct core_state {
  int32_t *sel, *ctl;
  size_t sel_words;
};

static void core_state_init(struct core_state *b, size_t F) {
  b->sel_words = spr_core_sel_words(F);
  b->sel = calloc(b->sel_words, sizeof(int32_t));
  b->ctl = calloc(SPR_CORE_CTL_WORDS + 8, sizeof(int32_t));
}

static struct spr_core_sel *sel_of(struct core_state *b) {
  return (struct spr_core_sel *)(void *)b->sel;
}

static struct spr_core_ctl *ctl_of(struct core_state *b) {
  return (struct spr_core_ctl *)(void *)b->ctl;
}

static void core_tensors(struct spr_tensor *sel, struct spr_tensor *ctl, struct core_state *b) {
  const int64_t sne[1] = {(int64_t)b->sel_words}, cne[1] = {SPR_CORE_CTL_WORDS + 8};
  spr_test_tensor(sel, SPR_DTYPE_I32, 1, sne, b->sel);
  spr_test_tensor(ctl, SPR_DTYPE_I32, 1, cne, b->ctl);
}

/* GEMM_ROWS: dense steps (mode SELECT, or several rows) are the GEMM; a
 * sparse single-token step gives act(x . W[core[i]]) for i < n_core and
 * leaves the rest of dst alone. Oracle: the GEMM oracle's rows. */
static void gemm_rows_case(enum spr_dtype wt, size_t m, size_t n, size_t k, size_t n_core, int act) {
  char what[128];
  snprintf(what, sizeof what, "gemm_rows %s m=%zu n=%zu k=%zu n_core=%zu act=%d", spr_dtype_name(wt), m, n, k, n_core,
           act);
  float *x = frand(m * k, 21 + m), *wf = frand(n * k, 22 + n), *got = falloc(m * n), *want = falloc(m * n);
  size_t wbytes;
  void *w = make_weights(wt, wf, n, k, &wbytes);
  struct core_state b;
  core_state_init(&b, n);
  int32_t *core = spr_core_sel_core(sel_of(&b), n);
  pick_core(core, n_core, n, 7 + n_core);
  sel_of(&b)->n_core = (int32_t)n_core;
  struct spr_tensor ts[5];
  const int64_t ne_x[2] = {(int64_t)k, (int64_t)m}, ne_w[2] = {(int64_t)k, (int64_t)n},
                ne_y[2] = {(int64_t)n, (int64_t)m};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
  spr_test_tensor(&ts[1], wt, 2, ne_w, w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, got);
  core_tensors(&ts[3], &ts[4], &b);
  struct spr_node nd;
  node_init(&nd, SPR_OP_GEMM_ROWS, 6, 2);
  const int32_t src[6] = {0, 1, -1, -1, 3, 4};
  memcpy(nd.src, src, sizeof src);
  nd.p.gemm.act = (uint8_t)act;
  if (wt == SPR_DTYPE_F32 || wt == SPR_DTYPE_F16)
    spr_f32_gemm_ref(m, n, k, x, w, wt, NULL, (enum spr_act)act, NULL, want);
  else
    spr_qgemm_ref(wt, m, n, k, x, w, NULL, (enum spr_act)act, NULL, want);
  const double tol = wt == SPR_DTYPE_F32 || wt == SPR_DTYPE_F16 ? 2e-5 : 1e-4;
  for (int mode = SPR_CORE_MODE_DENSE; mode <= SPR_CORE_MODE_SPARSE; mode++) {
    ctl_of(&b)->mode = mode;
    for (size_t i = 0; i < m * n; i++) got[i] = -7.0f;
    char w2[160];
    snprintf(w2, sizeof w2, "%s mode %d", what, mode);
    run_gpu(w2, ts, 5, &nd, NULL);
    if (mode != SPR_CORE_MODE_SPARSE || m > 1) {
      expect_close(w2, got, want, m * n, tol);
      continue;
    }
    float *sw = falloc(n_core);
    for (size_t i = 0; i < n_core; i++) sw[i] = want[core[i]];
    expect_close(w2, got, sw, n_core, tol);
    for (size_t i = n_core; i < n; i++)
      if (got[i] != -7.0f) fail_msg("%s: dst[%zu] written past n_core", w2, i);
    free(sw);
  }
  free(x), free(wf), free(got), free(want), free(w), free(b.sel), free(b.ctl);
}

/* The axpy.inc entry of `fn` (a CPU node's node->impl after prepare). */
static const struct spr_axpy_ukernel *axpy_entry(spr_axpy_ukernel_fn fn) {
  for (size_t i = 0; i < spr_axpy_ukernels_count; i++)
    if (spr_axpy_ukernels[i].fn == fn) return &spr_axpy_ukernels[i];
  fail_msg("axpy ukernel not in axpy.inc");
  return NULL;
}

/* FFN_DOWN: dst = residual + h . W (ffn_down {F, E}: the GEMM; ffn_down_t
 * {E, F}: neuron rows), in a sparse single-token step over the compacted
 * core activations. Oracles: the GEMM oracles on the scattered activations
 * (ffn_down); for ffn_down_t the CPU op's rules:
 *   prefill (T > 1), Q4_0 / Q8_0, F % 32 == 0: the weights requantized by
 *     the scalar rqt ukernel into row-major Q8_0 rows, then spr_qgemm_ref
 *     (1e-4), and bit for bit the CPU op itself at isa 0 (scalar rqt + the
 *     scalar Q8_0 GEMM, whose block dot the kernel shares);
 *   decode (T == 1), Q4_0, node->impl an axpyq entry (impl = the scalar
 *     axpyq ukernel here): spr_axpyq_rows_ref (1e-5, which the f32 rule's
 *     ~1/254 difference would fail) and bit for bit the scalar axpyq ukernel;
 *   otherwise (impl NULL or an f32 axpy entry): spr_axpy_rows_ref (1e-5).
 * zero_group: activations 32..63 are 0 (an axpyq group that adds nothing). */
static void ffn_down_case(enum spr_dtype wt, bool down_t, size_t F, size_t E, size_t T, size_t n_core,
                          const struct spr_axpy_ukernel *impl, bool zero_group) {
  char what[160];
  snprintf(what, sizeof what, "ffn_down%s %s F=%zu E=%zu T=%zu n_core=%zu impl=%s%s", down_t ? "_t" : "",
           spr_dtype_name(wt), F, E, T, n_core, impl != NULL ? impl->name : "none", zero_group ? " zero group" : "");
  float *h = frand(T * F, 31 + T), *wf = frand(F * E, 32 + F), *res = frand(T * E, 33);
  if (zero_group)
    for (size_t i = 32; i < 64 && i < F; i++) h[i] = 0.0f;
  float *got = falloc(T * E), *want = falloc(T * E), *hs = falloc(T * F), *cpu = falloc(T * E);
  size_t wbytes;
  void *w = down_t ? make_weights(wt, wf, F, E, &wbytes) : make_weights(wt, wf, E, F, &wbytes);
  const size_t ldw = wbytes / (down_t ? F : E);
  struct core_state b;
  core_state_init(&b, F);
  int32_t *core = spr_core_sel_core(sel_of(&b), F);
  pick_core(core, n_core, F, 9 + n_core);
  sel_of(&b)->n_core = (int32_t)n_core;
  struct spr_tensor ts[6];
  const int64_t ne_h[2] = {(int64_t)F, (int64_t)T}, ne_y[2] = {(int64_t)E, (int64_t)T};
  const int64_t ne_w[2] = {down_t ? (int64_t)E : (int64_t)F, down_t ? (int64_t)F : (int64_t)E};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_h, h);
  spr_test_tensor(&ts[1], wt, 2, ne_w, w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, got);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, ne_y, res);
  core_tensors(&ts[4], &ts[5], &b);
  struct spr_node nd;
  node_init(&nd, SPR_OP_FFN_DOWN, 6, 2);
  const int32_t src[6] = {0, 1, -1, 3, 4, 5};
  memcpy(nd.src, src, sizeof src);
  nd.p.core.down_t = down_t;
  nd.impl = impl;
  nd.impl_name = impl != NULL ? impl->name : NULL;
  const bool quant = wt != SPR_DTYPE_F32 && wt != SPR_DTYPE_F16;
  const bool rqt = down_t && T > 1 && (wt == SPR_DTYPE_Q4_0 || wt == SPR_DTYPE_Q8_0) && F % 32 == 0;
  const bool axpyq = down_t && T == 1 && wt == SPR_DTYPE_Q4_0 && impl != NULL && strstr(impl->name, "_axpyq_") != NULL;
  /* the rqt oracle's weights: E rows of F/32 Q8_0 blocks */
  const size_t ldq = F / 32 * 34;
  uint8_t *wq = rqt ? spr_test_aligned_alloc(E * ldq) : NULL;
  if (rqt) {
    const struct spr_rqt_ukernel *rk = spr_rqt_select(wt, 0);
    for (size_t g = 0; g < F / 32; g++) rk->fn((const uint8_t *)w + 32 * g * ldw, ldw, E, wq + 34 * g, ldq);
  }
  int32_t *all = malloc(F * sizeof(int32_t));
  for (size_t i = 0; i < F; i++) all[i] = (int32_t)i;
  for (int mode = SPR_CORE_MODE_DENSE; mode <= SPR_CORE_MODE_SPARSE; mode++) {
    const bool sparse = mode == SPR_CORE_MODE_SPARSE && T == 1;
    ctl_of(&b)->mode = mode;
    char w2[200];
    snprintf(w2, sizeof w2, "%s mode %d", what, mode);
    run_gpu(w2, ts, 6, &nd, NULL);
    /* the activations the oracle sees: all, or the core ones scattered */
    memcpy(hs, h, T * F * sizeof(float));
    if (sparse) {
      memset(hs, 0, F * sizeof(float));
      for (size_t i = 0; i < n_core; i++) hs[core[i]] = h[i];
    }
    if (rqt) {
      spr_qgemm_ref(SPR_DTYPE_Q8_0, T, E, F, h, wq, NULL, SPR_ACT_NONE, res, want);
      expect_close(w2, got, want, T * E, 1e-4);
      /* the CPU op at isa 0, one thread, into cpu[]: the same bits */
      struct spr_node cn = nd;
      struct spr_error err = {SPR_STATUS_OK, ""};
      ts[2].data = cpu;
      const enum spr_status st = spr_test_op_run(ts, &cn, 0, 1, 1, NULL, &err);
      ts[2].data = got;
      if (st != SPR_STATUS_OK) fail_msg("%s: CPU op: %s", w2, err.msg);
      expect_bits(w2, got, cpu, T * E * sizeof(float));
    } else if (axpyq) {
      const size_t nn = sparse ? n_core : F;
      const int32_t *idx = sparse ? core : all;
      spr_axpyq_rows_ref(nn, idx, h, w, ldw, E, want);
      spr_q4_0_axpyq_ukernel_32__scalar(nn, idx, h, w, ldw, E, cpu);
      for (size_t e = 0; e < E; e++) {
        want[e] += res[e];
        cpu[e] += res[e];
      }
      expect_close(w2, got, want, E, 1e-5);
      expect_bits(w2, got, cpu, E * sizeof(float));
    } else if (down_t) {
      for (size_t t = 0; t < T; t++) {
        spr_axpy_rows_ref(wt, sparse ? n_core : F, sparse ? core : all, sparse ? h : h + t * F, w, ldw, E,
                          want + t * E);
        for (size_t e = 0; e < E; e++) want[t * E + e] += res[t * E + e];
      }
      expect_close(w2, got, want, T * E, 1e-5);
    } else if (quant) {
      spr_qgemm_ref(wt, T, E, F, hs, w, NULL, SPR_ACT_NONE, res, want);
      expect_close(w2, got, want, T * E, 1e-4);
    } else {
      spr_f32_gemm_ref(T, E, F, hs, w, wt, NULL, SPR_ACT_NONE, res, want);
      expect_close(w2, got, want, T * E, 2e-5);
    }
  }
  free(h), free(wf), free(res), free(got), free(want), free(hs), free(cpu), free(w), free(b.sel), free(b.ctl);
  free(all), free(wq);
}

static void test_gemm_rows(void **state) {
  (void)state;
  const enum spr_dtype types[] = {SPR_DTYPE_F32,  SPR_DTYPE_F16,  SPR_DTYPE_Q8_0,
                                  SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
    const size_t k = spr_dtype_block_elems(types[t]) == 256 ? 512 : 96, n = 37;
    gemm_rows_case(types[t], 1, n, k, 1, SPR_ACT_SILU);
    gemm_rows_case(types[t], 1, n, k, 14, SPR_ACT_SILU);
    gemm_rows_case(types[t], 1, n, k, n, SPR_ACT_NONE);
    gemm_rows_case(types[t], 5, n, k, 14, SPR_ACT_SILU); /* prefill: dense in every mode */
  }
}

static void test_ffn_down(void **state) {
  (void)state;
  const enum spr_dtype rm[] = {SPR_DTYPE_F32,  SPR_DTYPE_F16,  SPR_DTYPE_Q8_0,
                               SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  for (size_t t = 0; t < sizeof rm / sizeof rm[0]; t++) {
    const size_t F = spr_dtype_block_elems(rm[t]) == 256 ? 512 : 160;
    ffn_down_case(rm[t], false, F, 48, 1, 61, NULL, false);
    ffn_down_case(rm[t], false, F, 48, 5, 61, NULL, false);
  }
  const enum spr_dtype tt[] = {SPR_DTYPE_F32, SPR_DTYPE_F16, SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0};
  for (size_t t = 0; t < sizeof tt / sizeof tt[0]; t++) {
    /* impl: what the CPU's prepare stores at isa 0 (the f32 axpy rule) */
    const struct spr_axpy_ukernel *f32 = spr_axpy_select(tt[t], 0);
    ffn_down_case(tt[t], true, 75, 32, 1, 1, NULL, false);
    ffn_down_case(tt[t], true, 95, 96, 1, 12, f32, false);
    ffn_down_case(tt[t], true, 115, 320, 19, 23, f32, false); /* prefill, F % 32 != 0: the f32 path */
    ffn_down_case(tt[t], true, 64, 64, 1, 64, f32, false);
    /* prefill, F % 32 == 0: requantized Q8_0 rows for Q4_0 / Q8_0 */
    ffn_down_case(tt[t], true, 32, 64, 2, 1, f32, false);
    ffn_down_case(tt[t], true, 96, 96, 5, 1, f32, true);
    ffn_down_case(tt[t], true, 160, 320, 19, 23, f32, false);
  }
  /* decode through Q4_0 ffn_down_t with the CPU's axpyq ukernel: groups of 32
   * neurons (n_core 1, 31, 32, 33; F a multiple of 32 or not), a zero group */
  const struct spr_axpy_ukernel *q = axpy_entry(spr_q4_0_axpyq_ukernel_32__scalar);
  ffn_down_case(SPR_DTYPE_Q4_0, true, 75, 32, 1, 1, q, false);
  ffn_down_case(SPR_DTYPE_Q4_0, true, 95, 96, 1, 31, q, false);
  ffn_down_case(SPR_DTYPE_Q4_0, true, 64, 64, 1, 32, q, false);
  ffn_down_case(SPR_DTYPE_Q4_0, true, 160, 320, 1, 33, q, true);
  ffn_down_case(SPR_DTYPE_Q4_0, true, 96, 96, 5, 33, q, false); /* prefill: the rqt rule whatever impl */
}

/* CORE_SELECT: the core list of a window (one step, then a second step of
 * the same window) is spr_core_select_ref's, bit for bit; other modes leave
 * the state alone. Activations with ties, zeros and -0. */
static void select_run(const float *a, size_t T, size_t F, float alpha, float beta, struct core_state *b) {
  struct spr_tensor ts[3];
  const int64_t ne_a[2] = {(int64_t)F, (int64_t)T};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_a, (void *)a);
  core_tensors(&ts[2], &ts[1], b);
  struct spr_node nd;
  node_init(&nd, SPR_OP_CORE_SELECT, 2, 2);
  nd.p.core.alpha = alpha;
  nd.p.core.beta = beta;
  char what[96];
  snprintf(what, sizeof what, "core_select T=%zu F=%zu alpha %g beta %g", T, F, (double)alpha, (double)beta);
  run_gpu(what, ts, 3, &nd, NULL);
}

static void test_core_select(void **state) {
  (void)state;
  const size_t Fs[] = {300, 172, 33}, T1 = 9, T2 = 5;
  const float alphas[] = {0.2f, 0.5f, 1.0f}, betas[] = {0.4f, 0.1f, 1.0f};
  for (size_t c = 0; c < 3; c++) {
    const size_t F = Fs[c];
    float *a = frand((T1 + T2) * F, 41 + c);
    for (size_t i = 0; i < (T1 + T2) * F; i += 7) a[i] = 0.25f; /* ties */
    for (size_t i = 3; i < (T1 + T2) * F; i += 11) a[i] = (i & 1) ? -0.0f : 0.0f;
    int32_t *want = malloc(F * sizeof(int32_t));
    struct core_state b;
    core_state_init(&b, F);
    memset(b.sel, 0x5A, b.sel_words * sizeof(int32_t)); /* a new window clears it */
    ctl_of(&b)->mode = SPR_CORE_MODE_SELECT;
    ctl_of(&b)->new_window = 1;
    select_run(a, T1, F, alphas[c], betas[c], &b);
    size_t n = spr_core_select_ref(a, T1, F, T1, alphas[c], betas[c], want);
    assert_int_equal(sel_of(&b)->n_core, (int32_t)n);
    assert_int_equal(sel_of(&b)->tokens, (int64_t)T1);
    assert_memory_equal(spr_core_sel_core(sel_of(&b), F), want, n * sizeof(int32_t));
    ctl_of(&b)->new_window = 0;
    select_run(a + T1 * F, T2, F, alphas[c], betas[c], &b);
    n = spr_core_select_ref(a, T1 + T2, F, T1, alphas[c], betas[c], want);
    assert_int_equal(sel_of(&b)->n_core, (int32_t)n);
    assert_memory_equal(spr_core_sel_core(sel_of(&b), F), want, n * sizeof(int32_t));
    int32_t *copy = malloc(b.sel_words * sizeof(int32_t));
    memcpy(copy, b.sel, b.sel_words * sizeof(int32_t));
    ctl_of(&b)->mode = SPR_CORE_MODE_SPARSE;
    select_run(a, 1, F, alphas[c], betas[c], &b);
    ctl_of(&b)->mode = SPR_CORE_MODE_DENSE;
    select_run(a, T1, F, alphas[c], betas[c], &b);
    assert_memory_equal(copy, b.sel, b.sel_words * sizeof(int32_t));
    free(copy), free(a), free(want), free(b.sel), free(b.ctl);
  }
}

/* PAD2D: pad (bottom/right), crop, mixed; bit-exact vs spr_f32_pad2d_ref. */
static void test_pad2d(void **state) {
  (void)state;
  const size_t cases[][5] = {{3, 5, 4, 8, 6}, {16, 8, 8, 7, 7}, {5, 7, 3, 4, 5}, {1, 1, 1, 3, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const size_t c = cases[i][0], w1 = cases[i][1], h1 = cases[i][2], w2 = cases[i][3], h2 = cases[i][4];
    float *x = frand(c * w1 * h1, 61 + i), *got = falloc(c * w2 * h2), *want = falloc(c * w2 * h2);
    for (size_t k = 0; k < c * w2 * h2; k++) got[k] = NAN;
    struct spr_tensor ts[2];
    const int64_t ne_x[3] = {(int64_t)c, (int64_t)w1, (int64_t)h1}, ne_y[3] = {(int64_t)c, (int64_t)w2, (int64_t)h2};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, ne_x, x);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 3, ne_y, got);
    struct spr_node nd;
    node_init(&nd, SPR_OP_PAD2D, 1, 1);
    char what[96];
    snprintf(what, sizeof what, "pad2d c %zu %zux%zu -> %zux%zu", c, w1, h1, w2, h2);
    run_gpu(what, ts, 2, &nd, NULL);
    spr_f32_pad2d_ref(x, c, w1, h1, want, w2, h2);
    expect_bits(what, got, want, c * w2 * h2 * sizeof(float));
    free(x), free(got), free(want);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--emulate") == 0) {
    g_mode = SPR_CUDA_EMULATE;
    printf("CUDA kernels in host emulation\n");
  } else {
    char msg[200];
    if (spr_cuda_probe(msg, sizeof msg) != SPR_STATUS_OK) {
      printf("skipped: %s\n", msg);
      return SPR_CUDA_EXIT_NO_DEVICE;
    }
    printf("CUDA device: %s\n", msg);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_gemm_multi),
      cmocka_unit_test(test_norms_softmax),
      cmocka_unit_test(test_eltwise),
      cmocka_unit_test(test_conv),
      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_get_rows),
      cmocka_unit_test(test_rope),
      cmocka_unit_test(test_kv_store_last_row),
      cmocka_unit_test(test_neighborhood_attn),
      cmocka_unit_test(test_bra),
      cmocka_unit_test(test_sparse_golden),
      cmocka_unit_test(test_gemm_rows),
      cmocka_unit_test(test_ffn_down),
      cmocka_unit_test(test_core_select),
      cmocka_unit_test(test_pad2d),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

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
 *     terms of f32 rounding), 1e-5 elementwise, norms and softmax
 *   quantized GEMM: the oracle quantizes activations the same way (ggml's
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
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/act/act.h"
#include "ops/attention/attention.h"
#include "ops/backends/cuda/cuda_backend.h"
#include "ops/common/fp16.h"
#include "ops/conv/conv.h"
#include "ops/eltwise/eltwise.h"
#include "ops/gemm/gemm.h"
#include "ops/gemm/qgemm.h"
#include "ops/llm/llm.h"
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

static void expect_close(const char *what, const float *got, const float *want, size_t n, double tol) {
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
  const struct spr_rope_params cases[] = {
      {4, 16, 16, 10000.0f, 1.0f}, {2, 32, 16, 500000.0f, 0.5f}, /* partial rotation */
  };
  const int32_t pasts[] = {0, 37};
  for (size_t c = 0; c < 2; c++) {
    for (size_t pp = 0; pp < 2; pp++) {
      const struct spr_rope_params *p = &cases[c];
      const size_t row = (size_t)p->n_heads * p->head_dim, nt = 5;
      float *x = frand(row * nt, 81), *got = falloc(row * nt), *want = falloc(row * nt);
      struct spr_tensor ts[2];
      const int64_t ne[2] = {(int64_t)row, (int64_t)nt};
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, x);
      spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne, got);
      struct spr_node nd;
      node_init(&nd, SPR_OP_ROPE, 1, 1);
      nd.p.rope = *p;
      const struct spr_run_state run = {pasts[pp], (int32_t)nt};
      char what[96];
      snprintf(what, sizeof what, "rope case %zu n_past %d", c, pasts[pp]);
      run_gpu(what, ts, 2, &nd, &run);
      spr_f32_rope_ref(p, nt, pasts[pp], x, want);
      expect_close(what, got, want, row * nt, 1e-5 * (1.0 + pasts[pp] + nt));
      free(x), free(got), free(want);
    }
  }
}

static void test_kv_store_last_row(void **state) {
  (void)state;
  const size_t w = 24, n = 3;
  const struct spr_kv_params kvs[] = {{0, 0, 0}, {4, 1, 6}};
  const int32_t pasts[] = {2, 9};
  for (int f16 = 0; f16 < 2; f16++) {
    for (size_t c = 0; c < 2; c++) {
      const enum spr_dtype t = f16 ? SPR_DTYPE_F16 : SPR_DTYPE_F32;
      const size_t cap = 12, esz = f16 ? 2 : 4;
      float *x = frand(w * n, 91);
      uint8_t *got = spr_test_aligned_alloc(cap * w * esz), *want = spr_test_aligned_alloc(cap * w * esz);
      for (size_t i = 0; i < cap * w * esz; i++) got[i] = want[i] = (uint8_t)(i * 7);
      struct spr_tensor ts[2];
      const int64_t ne_x[2] = {(int64_t)w, (int64_t)n}, ne_c[2] = {(int64_t)w, (int64_t)cap};
      spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne_x, x);
      spr_test_tensor(&ts[1], t, 2, ne_c, got);
      struct spr_node nd;
      node_init(&nd, SPR_OP_KV_STORE, 1, 1);
      nd.p.kv = kvs[c];
      const struct spr_run_state run = {pasts[c], (int32_t)n};
      char what[64];
      snprintf(what, sizeof what, "kv_store %s window %u", spr_dtype_name(t), kvs[c].window);
      run_gpu(what, ts, 2, &nd, &run);
      spr_kv_store_ref(&kvs[c], w, n, pasts[c], x, t, want, cap);
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
      cmocka_unit_test(test_gemm), cmocka_unit_test(test_norms_softmax),     cmocka_unit_test(test_eltwise),
      cmocka_unit_test(test_conv), cmocka_unit_test(test_attention),         cmocka_unit_test(test_get_rows),
      cmocka_unit_test(test_rope), cmocka_unit_test(test_kv_store_last_row),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

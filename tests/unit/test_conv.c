/* tests/unit/test_conv.c — CONV2D (through every GEMM ukernel) and DWCONV2D (every
 * dwconv ukernel) against their oracles.
 *
 * Tolerance: |got - ref| <= 1.25 * (taps + 8) * FLT_EPSILON * (sum |x w| + |bias|) + 1e-6,
 * taps = KH*KW*Cin (conv) or KH*KW (depthwise): the worst-case bound of an
 * f32 sum of that many products. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
// clang-format on
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common/fp16.h"
#include "ops/conv/conv.h"
#include "ops/gemm/gemm.h"
#include "runtime/error.h"
#include "support/op_harness.h"
#include "support/test_util.h"

static bool host_has(uint32_t isa) {
  return (isa & ~spr_cpu_isa()) == 0;
}

struct shape {
  size_t h, w, cin, cout; /* cout unused by dwconv (cout = cin) */
  uint16_t kh, kw, sh, sw, ph, pw;
};

static size_t out_dim(size_t in, unsigned k, unsigned s, unsigned p) {
  return (in + 2u * p - k) / s + 1;
}

struct conv_case {
  struct shape s;
  bool depthwise, has_bias;
  enum spr_dtype wt;
  size_t oh, ow, n_out, n_w;
  float *x, *wf, *bias, *dst, *ref, *tol;
  uint16_t *wh;
};

static void case_init(struct conv_case *c, const struct shape *s, bool depthwise, bool bias, enum spr_dtype wt,
                      uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->s = *s, c->depthwise = depthwise, c->has_bias = bias, c->wt = wt;
  const size_t cout = depthwise ? s->cin : s->cout;
  c->oh = out_dim(s->h, s->kh, s->sh, s->ph), c->ow = out_dim(s->w, s->kw, s->sw, s->pw);
  c->n_out = c->oh * c->ow * cout;
  c->n_w = depthwise ? (size_t)s->kh * s->kw * s->cin : cout * s->kh * s->kw * s->cin;
  c->x = spr_test_aligned_alloc(s->h * s->w * s->cin * sizeof(float));
  c->wf = spr_test_aligned_alloc(c->n_w * sizeof(float));
  c->wh = spr_test_aligned_alloc(c->n_w * sizeof(uint16_t) + 64);
  c->bias = bias ? spr_test_aligned_alloc(cout * sizeof(float)) : NULL;
  c->dst = spr_test_aligned_alloc(c->n_out * sizeof(float));
  c->ref = spr_test_aligned_alloc(c->n_out * sizeof(float));
  c->tol = spr_test_aligned_alloc(c->n_out * sizeof(float));
  spr_test_fill(c->x, s->h * s->w * s->cin, seed, -1.0f, 1.0f);
  spr_test_fill(c->wf, c->n_w, seed + 1, -1.0f, 1.0f);
  for (size_t i = 0; i < c->n_w; i++) {
    c->wh[i] = spr_fp16_from_f32(c->wf[i]);
    if (wt == SPR_DTYPE_F16) c->wf[i] = spr_fp16_to_f32(c->wh[i]);
  }
  if (bias) spr_test_fill(c->bias, cout, seed + 2, -1.0f, 1.0f);
  for (size_t i = 0; i < c->n_out; i++) c->dst[i] = NAN;
  const struct spr_conv_params p = {s->kh, s->kw, s->sh, s->sw, s->ph, s->pw};
  if (depthwise) {
    spr_f32_dwconv2d_ref(c->x, s->h, s->w, s->cin, c->wf, c->bias, &p, c->ref);
  } else {
    spr_f32_conv2d_ref(c->x, s->h, s->w, s->cin, wt == SPR_DTYPE_F16 ? (const void *)c->wh : (const void *)c->wf, wt,
                       c->bias, cout, &p, c->ref);
  }
  /* tolerance from the same loops on absolute values */
  float *ax = spr_test_aligned_alloc(s->h * s->w * s->cin * sizeof(float));
  float *aw = spr_test_aligned_alloc(c->n_w * sizeof(float));
  float *ab = bias ? spr_test_aligned_alloc(cout * sizeof(float)) : NULL;
  for (size_t i = 0; i < s->h * s->w * s->cin; i++) ax[i] = fabsf(c->x[i]);
  for (size_t i = 0; i < c->n_w; i++) aw[i] = fabsf(c->wf[i]);
  for (size_t i = 0; bias && i < cout; i++) ab[i] = fabsf(c->bias[i]);
  if (depthwise) {
    spr_f32_dwconv2d_ref(ax, s->h, s->w, s->cin, aw, ab, &p, c->tol);
  } else {
    spr_f32_conv2d_ref(ax, s->h, s->w, s->cin, aw, SPR_DTYPE_F32, ab, cout, &p, c->tol);
  }
  const double taps = depthwise ? (double)s->kh * s->kw : (double)s->kh * s->kw * s->cin;
  for (size_t i = 0; i < c->n_out; i++) c->tol[i] = (float)(1.25 * (taps + 8) * FLT_EPSILON * c->tol[i] + 1e-6);
  free(ax), free(aw), free(ab);
}

static void case_free(struct conv_case *c) {
  free(c->x), free(c->wf), free(c->wh), free(c->bias), free(c->dst), free(c->ref), free(c->tol);
}

static void case_expect(const struct conv_case *c, const char *kernel) {
  const size_t cout = c->depthwise ? c->s.cin : c->s.cout;
  for (size_t i = 0; i < c->n_out; i++) {
    if (!(fabsf(c->dst[i] - c->ref[i]) <= c->tol[i])) {
      const size_t ch = i % cout, ox = (i / cout) % c->ow, oy = i / cout / c->ow;
      fail_msg(
          "%s %s H=%zu W=%zu Cin=%zu Cout=%zu k=%ux%u s=%ux%u p=%ux%u bias=%d: dst[%zu][%zu][%zu] = %.9g, ref "
          "%.9g (tol %.3g)",
          kernel, spr_dtype_name(c->wt), c->s.h, c->s.w, c->s.cin, cout, c->s.kh, c->s.kw, c->s.sh, c->s.sw, c->s.ph,
          c->s.pw, (int)c->has_bias, oy, ox, ch, (double)c->dst[i], (double)c->ref[i], (double)c->tol[i]);
    }
  }
}

enum { TX, TW, TB, TD, NT };

static enum spr_status case_run(struct conv_case *c, uint32_t isa, int threads, const char **name) {
  struct spr_tensor ts[NT];
  const struct shape *s = &c->s;
  const size_t cout = c->depthwise ? s->cin : s->cout;
  const int64_t xne[3] = {(int64_t)s->cin, (int64_t)s->w, (int64_t)s->h};
  const int64_t wne[4] = {(int64_t)s->cin, s->kw, s->kh, (int64_t)cout};
  const int64_t bne[1] = {(int64_t)cout}, dne[3] = {(int64_t)cout, (int64_t)c->ow, (int64_t)c->oh};
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 3, xne, c->x);
  spr_test_tensor(&ts[TW], c->wt, c->depthwise ? 3 : 4, wne, c->wt == SPR_DTYPE_F16 ? (void *)c->wh : c->wf);
  spr_test_tensor(&ts[TB], SPR_DTYPE_F32, 1, bne, c->bias);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 3, dne, c->dst);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = c->depthwise ? SPR_OP_DWCONV2D : SPR_OP_CONV2D;
  nd.n_src = 3;
  nd.src[0] = TX, nd.src[1] = TW, nd.src[2] = c->has_bias ? TB : -1;
  nd.dst = TD;
  nd.p.conv = (struct spr_conv_params){s->kh, s->kw, s->sh, s->sw, s->ph, s->pw};
  struct spr_error err;
  const enum spr_status st = spr_test_op_run(ts, &nd, isa, threads, 1, name, &err);
  if (st != SPR_STATUS_OK) printf("case_run: %s\n", err.msg);
  return st;
}

/* ---- conv2d --------------------------------------------------------------------------- */

static const struct shape k_conv_shapes[] = {
    {32, 32, 3, 19, 16, 16, 16, 16, 0, 0}, /* ViT patch embedding (small image) */
    {28, 28, 1, 17, 4, 4, 4, 4, 0, 0},     /* patch 4 on MNIST */
    {17, 15, 3, 32, 3, 3, 2, 2, 1, 1},     /* stem 3x3 s2, odd sizes */
    {9, 8, 32, 7, 3, 3, 2, 2, 1, 1},       /* stem second conv */
    {6, 7, 5, 33, 3, 3, 1, 1, 1, 1},       /* 3x3 s1 same */
    {5, 5, 13, 16, 1, 1, 1, 1, 0, 0},      /* pointwise: plain GEMM path */
    {7, 6, 4, 9, 5, 3, 1, 2, 0, 2},        /* asymmetric kernel, stride, pad */
    {4, 4, 2, 3, 3, 3, 1, 1, 3, 3},        /* padding larger than the kernel reach */
    {1, 1, 3, 5, 1, 1, 1, 1, 0, 0},        /* one pixel */
};

static void test_conv2d_isas(void **state) {
  (void)state;
  for (size_t u = 0; u < spr_gemm_ukernels_count; u++) {
    const struct spr_gemm_ukernel *uk = &spr_gemm_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    for (size_t i = 0; i < sizeof k_conv_shapes / sizeof k_conv_shapes[0]; i++) {
      struct conv_case c;
      case_init(&c, &k_conv_shapes[i], false, (i & 1) == 0, (i % 3 == 1) ? SPR_DTYPE_F16 : SPR_DTYPE_F32, 40 + i);
      const char *name = NULL;
      assert_int_equal(case_run(&c, uk->isa, 1, &name), SPR_STATUS_OK);
      assert_string_equal(name, uk->name);
      case_expect(&c, name);
      case_free(&c);
    }
  }
}

static void expect_same(const float *a, const float *b, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++) {
    if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
      fail_msg("%s: 1 vs 2 threads differ at %zu: %.9g vs %.9g", what, i, (double)a[i], (double)b[i]);
  }
}

static void test_conv2d_threads(void **state) {
  (void)state;
  const struct shape shapes[] = {{33, 31, 3, 32, 3, 3, 2, 2, 1, 1}, {64, 48, 3, 40, 16, 16, 16, 16, 0, 0}};
  for (size_t i = 0; i < 2; i++) {
    struct conv_case c;
    case_init(&c, &shapes[i], false, true, SPR_DTYPE_F32, 90 + i);
    const char *name = NULL;
    assert_int_equal(case_run(&c, SPR_ISA_ALL, 1, &name), SPR_STATUS_OK);
    case_expect(&c, name);
    float *one = spr_test_aligned_alloc(c.n_out * sizeof(float));
    memcpy(one, c.dst, c.n_out * sizeof(float));
    assert_int_equal(case_run(&c, SPR_ISA_ALL, 2, &name), SPR_STATUS_OK);
    expect_same(one, c.dst, c.n_out, name);
    free(one);
    case_free(&c);
  }
}

/* ---- dwconv2d ------------------------------------------------------------------------- */

static void test_dwconv2d_ukernels(void **state) {
  (void)state;
  for (size_t u = 0; u < spr_dwconv_ukernels_count; u++) {
    const struct spr_dwconv_ukernel *uk = &spr_dwconv_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    /* channel counts: 1, tile-1, tile, tile+1, 3*tile+1, odd, one that fills the
     * widest block, and 256 (rows copied to a ring, see conv.h) */
    const size_t t = uk->tile;
    const size_t cs[] = {1, t > 1 ? t - 1 : 2, t, t + 1, 3 * t + 1, 37, 4 * t + 3, 256};
    /* {k, stride, pad, non-square}: same padding, stride 2, no padding, padding beyond the kernel reach */
    const uint16_t geo[][4] = {{3, 1, 1, 0}, {5, 1, 2, 0}, {3, 2, 1, 0}, {3, 1, 0, 0}, {5, 2, 2, 1}, {3, 1, 3, 0}};
    unsigned n = 0;
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
      for (size_t g = 0; g < sizeof geo / sizeof geo[0]; g++, n++) {
        const uint16_t k = geo[g][0], s = geo[g][1], p = geo[g][2];
        /* geo[g][3]: non-square kernel (k x k-2) */
        const uint16_t kw = geo[g][3] ? (uint16_t)(k - 2) : k;
        const struct shape sh = {7 + (n % 3), 6 + (n % 4), cs[ci], 0, k, kw, s, s, p, geo[g][3] ? 0 : p};
        struct conv_case c;
        case_init(&c, &sh, true, (n & 1) == 0, SPR_DTYPE_F32, 200 + n);
        const char *name = NULL;
        assert_int_equal(case_run(&c, uk->isa, 1, &name), SPR_STATUS_OK);
        assert_string_equal(name, uk->name);
        case_expect(&c, name);
        case_free(&c);
      }
    }
  }
}

static void test_dwconv2d_threads(void **state) {
  (void)state;
  const struct shape s = {23, 19, 67, 0, 5, 5, 1, 1, 2, 2};
  struct conv_case c;
  case_init(&c, &s, true, true, SPR_DTYPE_F32, 300);
  const char *name = NULL;
  assert_int_equal(case_run(&c, SPR_ISA_ALL, 1, &name), SPR_STATUS_OK);
  case_expect(&c, name);
  float *one = spr_test_aligned_alloc(c.n_out * sizeof(float));
  memcpy(one, c.dst, c.n_out * sizeof(float));
  assert_int_equal(case_run(&c, SPR_ISA_ALL, 2, &name), SPR_STATUS_OK);
  expect_same(one, c.dst, c.n_out, name);
  free(one);
  case_free(&c);
}

/* ---- check() ----------------------------------------------------------------------------- */

static enum spr_status check_with(enum spr_op op, void (*edit)(struct spr_tensor *ts, struct spr_node *nd)) {
  static float buf[4096];
  struct spr_tensor ts[NT];
  const bool dw = op == SPR_OP_DWCONV2D;
  const int64_t xne[3] = {4, 9, 8}, wne[4] = {4, 3, 3, dw ? 1 : 6}, bne[1] = {dw ? 4 : 6};
  const int64_t dne[3] = {dw ? 4 : 6, 5, 4}; /* 3x3, stride 2, pad 1: 8x9 -> 4x5 */
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 3, xne, buf);
  spr_test_tensor(&ts[TW], SPR_DTYPE_F32, dw ? 3 : 4, wne, buf);
  spr_test_tensor(&ts[TB], SPR_DTYPE_F32, 1, bne, buf);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 3, dne, buf);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = (uint16_t)op;
  nd.n_src = 3;
  nd.src[0] = TX, nd.src[1] = TW, nd.src[2] = TB;
  nd.dst = TD;
  nd.p.conv = (struct spr_conv_params){3, 3, 2, 2, 1, 1};
  if (edit != NULL) edit(ts, &nd);
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_op_get(op)->check(ts, &nd, &err);
  if (s != SPR_STATUS_OK) assert_true(strlen(err.msg) > 0);
  return s;
}

static void e_stride0(struct spr_tensor *ts, struct spr_node *nd) {
  (void)ts, nd->p.conv.sh = 0;
}
static void e_kernel(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].ne[1] = 2;
}
static void e_cin(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].ne[0] = 3;
}
static void e_dst(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TD].ne[1] = 4;
}
static void e_bias(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TB].ne[0] = 2;
}
static void e_wtype(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].type = SPR_DTYPE_Q8_0;
}
static void e_wf16(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].type = SPR_DTYPE_F16;
}
static void e_xtype(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TX].type = SPR_DTYPE_F16;
}
static void e_small(struct spr_tensor *ts, struct spr_node *nd) {
  (void)ts, nd->p.conv.ph = 0, nd->p.conv.kh = 11;
}
static void e_batch(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TX].ne[3] = 2;
}
static void e_kh_big(struct spr_tensor *ts, struct spr_node *nd) {
  ts[TW].ne[2] = 32, nd->p.conv.kh = 32;
}
static void e_nobias(struct spr_tensor *ts, struct spr_node *nd) {
  (void)ts, nd->src[2] = -1;
}

static void test_conv_check(void **state) {
  (void)state;
  const enum spr_op ops[2] = {SPR_OP_CONV2D, SPR_OP_DWCONV2D};
  for (int i = 0; i < 2; i++) {
    const enum spr_op op = ops[i];
    assert_int_equal(check_with(op, NULL), SPR_STATUS_OK);
    assert_int_equal(check_with(op, e_nobias), SPR_STATUS_OK);
    assert_int_equal(check_with(op, e_stride0), SPR_STATUS_INVALID_ARGUMENT);
    assert_int_equal(check_with(op, e_kernel), SPR_STATUS_BAD_SHAPE);
    assert_int_equal(check_with(op, e_cin), SPR_STATUS_BAD_SHAPE);
    assert_int_equal(check_with(op, e_dst), SPR_STATUS_BAD_SHAPE);
    assert_int_equal(check_with(op, e_bias), SPR_STATUS_BAD_SHAPE);
    assert_int_equal(check_with(op, e_small), SPR_STATUS_BAD_SHAPE);
    assert_int_equal(check_with(op, e_batch), SPR_STATUS_BAD_SHAPE);
    assert_int_equal(check_with(op, e_wtype), SPR_STATUS_BAD_TENSOR_TYPE);
    assert_int_equal(check_with(op, e_xtype), SPR_STATUS_BAD_TENSOR_TYPE);
    assert_int_equal(check_with(op, e_wf16), op == SPR_OP_CONV2D ? SPR_STATUS_OK : SPR_STATUS_BAD_TENSOR_TYPE);
    assert_int_equal(check_with(op, e_kh_big), op == SPR_OP_CONV2D ? SPR_STATUS_BAD_SHAPE : SPR_STATUS_UNSUPPORTED);
  }
}

static void test_conv_flops(void **state) {
  (void)state;
  struct spr_tensor ts[NT];
  const int64_t xne[3] = {3, 224, 224}, wne[4] = {3, 16, 16, 192}, dne[3] = {192, 14, 14};
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 3, xne, NULL);
  spr_test_tensor(&ts[TW], SPR_DTYPE_F32, 4, wne, NULL);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 3, dne, NULL);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_CONV2D, nd.n_src = 2, nd.src[0] = TX, nd.src[1] = TW, nd.dst = TD;
  nd.p.conv = (struct spr_conv_params){16, 16, 16, 16, 0, 0};
  assert_true(spr_op_get(SPR_OP_CONV2D)->flops(ts, &nd) == 2ull * 14 * 14 * 192 * 16 * 16 * 3);
  const int64_t dxne[3] = {64, 56, 56}, dwne[3] = {64, 3, 3}, ddne[3] = {64, 56, 56};
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 3, dxne, NULL);
  spr_test_tensor(&ts[TW], SPR_DTYPE_F32, 3, dwne, NULL);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 3, ddne, NULL);
  nd.op = SPR_OP_DWCONV2D;
  nd.p.conv = (struct spr_conv_params){3, 3, 1, 1, 1, 1};
  assert_true(spr_op_get(SPR_OP_DWCONV2D)->flops(ts, &nd) == 2ull * 56 * 56 * 64 * 9);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_check),        cmocka_unit_test(test_conv_flops),
      cmocka_unit_test(test_conv2d_isas),       cmocka_unit_test(test_conv2d_threads),
      cmocka_unit_test(test_dwconv2d_ukernels), cmocka_unit_test(test_dwconv2d_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

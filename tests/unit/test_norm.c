/* tests/unit/test_norm.c — LayerNorm / RMSNorm ukernels and ops against the
 * double-precision oracles.
 *
 * Tolerances (each output y vs the oracle r):
 *   |y - r| <= 1e-5 * max(1, |r|)   every ukernel, every size, both ops
 * Op level: 1 vs 2 threads bit-identical; beta optional; check() rejections. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/norm/norm.h"
#include "support/op_harness.h"
#include "support/test_util.h"

#define TOL 1e-5

static const struct spr_f32_layernorm_ukernel k_ln[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/norm/layernorm.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_rmsnorm_ukernel k_rms[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/norm/rmsnorm.inc"
#undef SPR_UKERNEL
};
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool host_has(uint32_t isa, const char *name) {
  if ((isa & ~spr_cpu_isa()) == 0) return true;
  printf("  skip %s (ISA not on this host)\n", name);
  return false;
}

/* The sizes every ukernel is tested at: 1, tile-1, tile, tile+1, 3*tile+1, odd ones. */
static size_t test_sizes(size_t tile, size_t *out) {
  const size_t cand[] = {1, tile - 1, tile, tile + 1, 3 * tile + 1, 7, 77, 1001};
  size_t m = 0;
  for (size_t i = 0; i < N_ELEMS(cand); i++) {
    bool dup = cand[i] == 0;
    for (size_t j = 0; j < m; j++) dup = dup || out[j] == cand[i];
    if (!dup) out[m++] = cand[i];
  }
  return m;
}

static double g_max_err; /* largest error seen since the last report */

static void expect_close(const char *kernel, const char *what, size_t n, const float *got, const float *want) {
  for (size_t i = 0; i < n; i++) {
    const double err = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
    if (err > g_max_err) g_max_err = err;
    if (!(err <= TOL))
      fail_msg("%s (%s) n=%zu index %zu: got %.9g want %.9g (err %.3g > %.1g)", kernel, what, n, i, (double)got[i],
               (double)want[i], err, TOL);
  }
}

/* data sets: centered, offset (tests the two-pass variance), tiny values (eps matters) */
static void fill_case(int c, float *x, size_t n, uint64_t seed) {
  switch (c) {
    case 0:
      spr_test_fill(x, n, seed, -2.0f, 2.0f);
      break;
    case 1:
      spr_test_fill(x, n, seed, 2.0f, 4.0f);
      break;
    default:
      spr_test_fill(x, n, seed, -1e-3f, 1e-3f);
      break;
  }
}

static void test_layernorm_ukernels(void **state) {
  (void)state;
  for (size_t k = 0; k < N_ELEMS(k_ln); k++) {
    if (!host_has(k_ln[k].isa, k_ln[k].name)) continue;
    g_max_err = 0.0;
    size_t sizes[8];
    const size_t ns = test_sizes(k_ln[k].tile, sizes);
    for (size_t s = 0; s < ns; s++) {
      const size_t n = sizes[s];
      float *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g), *b = malloc(n * sizeof *b);
      float *y = malloc(n * sizeof *y), *r = malloc(n * sizeof *r);
      assert_non_null(x), assert_non_null(g), assert_non_null(b), assert_non_null(y), assert_non_null(r);
      spr_test_fill(g, n, 11 + n, 0.5f, 2.0f);
      spr_test_fill(b, n, 12 + n, -1.0f, 1.0f);
      for (int c = 0; c < 3; c++) {
        fill_case(c, x, n, 100 * (uint64_t)c + n);
        const float eps = c == 2 ? 1e-6f : 1e-5f;
        char what[48];
        snprintf(what, sizeof what, "case %d, beta", c);
        k_ln[k].fn(n, x, g, b, eps, y);
        spr_f32_layernorm_ref(n, x, g, b, eps, r);
        expect_close(k_ln[k].name, what, n, y, r);
        snprintf(what, sizeof what, "case %d, no beta", c);
        k_ln[k].fn(n, x, g, NULL, eps, y);
        spr_f32_layernorm_ref(n, x, g, NULL, eps, r);
        expect_close(k_ln[k].name, what, n, y, r);
        /* in place */
        memcpy(y, x, n * sizeof *y);
        k_ln[k].fn(n, y, g, b, eps, y);
        spr_f32_layernorm_ref(n, x, g, b, eps, r);
        snprintf(what, sizeof what, "case %d, in place", c);
        expect_close(k_ln[k].name, what, n, y, r);
      }
      free(x), free(g), free(b), free(y), free(r);
    }
    printf("  %-40s max err %.3g\n", k_ln[k].name, g_max_err);
  }
}

static void test_rmsnorm_ukernels(void **state) {
  (void)state;
  for (size_t k = 0; k < N_ELEMS(k_rms); k++) {
    if (!host_has(k_rms[k].isa, k_rms[k].name)) continue;
    g_max_err = 0.0;
    size_t sizes[8];
    const size_t ns = test_sizes(k_rms[k].tile, sizes);
    for (size_t s = 0; s < ns; s++) {
      const size_t n = sizes[s];
      float *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g), *y = malloc(n * sizeof *y),
            *r = malloc(n * sizeof *r);
      assert_non_null(x), assert_non_null(g), assert_non_null(y), assert_non_null(r);
      spr_test_fill(g, n, 21 + n, 0.5f, 2.0f);
      for (int c = 0; c < 3; c++) {
        fill_case(c, x, n, 200 * (uint64_t)c + n);
        const float eps = c == 2 ? 1e-6f : 1e-5f;
        char what[32];
        snprintf(what, sizeof what, "case %d", c);
        k_rms[k].fn(n, x, g, eps, y);
        spr_f32_rmsnorm_ref(n, x, g, eps, r);
        expect_close(k_rms[k].name, what, n, y, r);
      }
      free(x), free(g), free(y), free(r);
    }
    printf("  %-40s max err %.3g\n", k_rms[k].name, g_max_err);
  }
}

/* ---- op level -------------------------------------------------------------- */

enum { T_X, T_G, T_B, T_Y, T_COUNT };

struct norm_case {
  struct spr_tensor ts[T_COUNT];
  struct spr_node node;
  float *x, *g, *b, *y;
};

static void norm_case_init(struct norm_case *c, enum spr_op op, int64_t d, int64_t rows, int64_t ne2, bool beta,
                           uint64_t seed) {
  memset(c, 0, sizeof *c);
  const size_t nel = (size_t)(d * rows * ne2);
  c->x = malloc(nel * sizeof(float));
  c->y = malloc(nel * sizeof(float));
  c->g = malloc((size_t)d * sizeof(float));
  c->b = malloc((size_t)d * sizeof(float));
  assert_non_null(c->x), assert_non_null(c->y), assert_non_null(c->g), assert_non_null(c->b);
  spr_test_fill(c->x, nel, seed, -3.0f, 3.0f);
  spr_test_fill(c->g, (size_t)d, seed + 1, 0.5f, 1.5f);
  spr_test_fill(c->b, (size_t)d, seed + 2, -0.5f, 0.5f);
  const int64_t ne[3] = {d, rows, ne2};
  spr_test_tensor(&c->ts[T_X], SPR_DTYPE_F32, 3, ne, c->x);
  spr_test_tensor(&c->ts[T_Y], SPR_DTYPE_F32, 3, ne, c->y);
  spr_test_tensor(&c->ts[T_G], SPR_DTYPE_F32, 1, ne, c->g);
  spr_test_tensor(&c->ts[T_B], SPR_DTYPE_F32, 1, ne, c->b);
  c->node.op = (uint16_t)op;
  c->node.n_src = op == SPR_OP_LAYERNORM ? 3 : 2;
  for (int i = 0; i < SPR_MAX_SRCS; i++) c->node.src[i] = -1;
  c->node.src[0] = T_X;
  c->node.src[1] = T_G;
  if (op == SPR_OP_LAYERNORM && beta) c->node.src[2] = T_B;
  c->node.dst = T_Y;
  c->node.p.norm.eps = 1e-6f;
}

static void norm_case_free(struct norm_case *c) {
  free(c->x), free(c->y), free(c->g), free(c->b);
}

static void run_op_case(enum spr_op op, int64_t d, int64_t rows, int64_t ne2, bool beta) {
  struct norm_case c;
  norm_case_init(&c, op, d, rows, ne2, beta, (uint64_t)(d * 1000 + rows));
  struct spr_error err = {SPR_STATUS_OK, ""};
  const char *impl = NULL;
  assert_int_equal(spr_test_op_run(c.ts, &c.node, SPR_ISA_ALL, 1, 1, &impl, &err), SPR_STATUS_OK);
  assert_non_null(impl);
  const size_t nel = (size_t)(d * rows * ne2);
  float *y1 = malloc(nel * sizeof(float)), *r = malloc((size_t)d * sizeof(float));
  assert_non_null(y1), assert_non_null(r);
  memcpy(y1, c.y, nel * sizeof(float));
  for (int64_t row = 0; row < rows * ne2; row++) {
    const float *xr = c.x + row * d;
    if (op == SPR_OP_LAYERNORM)
      spr_f32_layernorm_ref((size_t)d, xr, c.g, beta ? c.b : NULL, 1e-6f, r);
    else
      spr_f32_rmsnorm_ref((size_t)d, xr, c.g, 1e-6f, r);
    char what[64];
    snprintf(what, sizeof what, "op, %lld rows, row %lld", (long long)(rows * ne2), (long long)row);
    expect_close(impl, what, (size_t)d, c.y + row * d, r);
  }
  /* 2 and 3 threads: bit-identical to 1 thread */
  for (int t = 2; t <= 3; t++) {
    memset(c.y, 0, nel * sizeof(float));
    assert_int_equal(spr_test_op_run(c.ts, &c.node, SPR_ISA_ALL, t, 1, NULL, &err), SPR_STATUS_OK);
    if (memcmp(c.y, y1, nel * sizeof(float)) != 0)
      fail_msg("%s: %d threads differ from 1 (d=%lld)", impl, t, (long long)d);
  }
  free(y1), free(r);
  norm_case_free(&c);
}

static void test_ops(void **state) {
  (void)state;
  const int64_t ds[] = {1, 17, 192, 768};
  const int64_t rows[] = {1, 5, 197};
  for (size_t i = 0; i < N_ELEMS(ds); i++) {
    for (size_t j = 0; j < N_ELEMS(rows); j++) {
      run_op_case(SPR_OP_LAYERNORM, ds[i], rows[j], 1, true);
      run_op_case(SPR_OP_LAYERNORM, ds[i], rows[j], 2, false);
      run_op_case(SPR_OP_RMSNORM, ds[i], rows[j], 2, false);
    }
  }
}

static void test_forced_scalar(void **state) {
  (void)state;
  struct norm_case c;
  norm_case_init(&c, SPR_OP_RMSNORM, 64, 4, 1, false, 5);
  const char *impl = NULL;
  assert_int_equal(spr_test_op_run(c.ts, &c.node, 0, 1, 1, &impl, NULL), SPR_STATUS_OK);
  assert_string_equal(impl, "spr_f32_rmsnorm_ukernel_1__scalar");
  norm_case_free(&c);
}

static void expect_reject(struct norm_case *c, enum spr_status want, const char *why) {
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_run(c->ts, &c->node, SPR_ISA_ALL, 1, 1, NULL, &err);
  if (s != want) fail_msg("check should reject (%s) with %d, got %d", why, (int)want, (int)s);
  assert_true(strlen(err.msg) > 0);
}

static void test_check_rejects(void **state) {
  (void)state;
  for (int op = SPR_OP_LAYERNORM; op <= SPR_OP_RMSNORM; op++) {
    struct norm_case c;
    norm_case_init(&c, (enum spr_op)op, 8, 3, 1, true, 9);
    c.ts[T_G].ne[0] = 7; /* gamma length != ne0 */
    expect_reject(&c, SPR_STATUS_BAD_SHAPE, "gamma length");
    c.ts[T_G].ne[0] = 8;
    c.ts[T_G].ne[1] = 2; /* gamma not 1-D */
    expect_reject(&c, SPR_STATUS_BAD_SHAPE, "gamma 2-D");
    c.ts[T_G].ne[1] = 1;
    c.ts[T_G].type = SPR_DTYPE_F16;
    expect_reject(&c, SPR_STATUS_BAD_TENSOR_TYPE, "f16 gamma");
    c.ts[T_G].type = SPR_DTYPE_F32;
    c.ts[T_X].type = SPR_DTYPE_Q8_0;
    expect_reject(&c, SPR_STATUS_BAD_TENSOR_TYPE, "q8_0 input");
    c.ts[T_X].type = SPR_DTYPE_F32;
    c.ts[T_Y].ne[1] = 4;
    expect_reject(&c, SPR_STATUS_BAD_SHAPE, "output shape");
    c.ts[T_Y].ne[1] = 3;
    c.node.p.norm.eps = NAN;
    expect_reject(&c, SPR_STATUS_INVALID_ARGUMENT, "NaN eps");
    c.node.p.norm.eps = -1.0f;
    expect_reject(&c, SPR_STATUS_INVALID_ARGUMENT, "negative eps");
    c.node.p.norm.eps = 1e-5f;
    c.node.src[1] = -1;
    expect_reject(&c, SPR_STATUS_INVALID_ARGUMENT, "no gamma");
    c.node.src[1] = T_G;
    if (op == SPR_OP_LAYERNORM) {
      c.ts[T_B].ne[0] = 9;
      expect_reject(&c, SPR_STATUS_BAD_SHAPE, "beta length");
      c.ts[T_B].ne[0] = 8;
    }
    assert_int_equal(spr_test_op_run(c.ts, &c.node, SPR_ISA_ALL, 1, 1, NULL, NULL), SPR_STATUS_OK);
    norm_case_free(&c);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layernorm_ukernels), cmocka_unit_test(test_rmsnorm_ukernels), cmocka_unit_test(test_ops),
      cmocka_unit_test(test_forced_scalar),      cmocka_unit_test(test_check_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

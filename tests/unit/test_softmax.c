/* tests/unit/test_softmax.c — softmax ukernels and the SOFTMAX op against the
 * double-precision oracle.
 *
 * Tolerances (y vs the oracle r, per element; S = sum of a row's y in double):
 *   |y - r| <= 1e-5 * r + 1e-7     every ukernel, size, scale and data set
 *   |S - 1| <= 1e-6                rows sum to 1
 *   large inputs (+-1e30, +-1e4, -Inf entries): no NaN/Inf, same bounds
 * Op level: 1 vs 2 threads bit-identical; check() rejections. */
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

#include "ops/softmax/softmax.h"
#include "support/op_harness.h"
#include "support/test_util.h"

#define TOL_REL 1e-5
#define TOL_ABS 1e-7
#define TOL_SUM 1e-6

static const struct spr_f32_softmax_ukernel k_sm[] = {
#define SPR_UKERNEL(isa, fn, tile) {(isa), (tile), fn, #fn},
#include "ops/softmax/softmax.inc"
#undef SPR_UKERNEL
};
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static size_t test_sizes(size_t tile, size_t *out) {
  const size_t cand[] = {1, tile - 1, tile, tile + 1, 3 * tile + 1, 7, 77, 1001, 4099};
  size_t m = 0;
  for (size_t i = 0; i < N_ELEMS(cand); i++) {
    bool dup = cand[i] == 0;
    for (size_t j = 0; j < m; j++) dup = dup || out[j] == cand[i];
    if (!dup) out[m++] = cand[i];
  }
  return m;
}

static double g_max_err, g_max_sum_err;

static void expect_softmax(const char *kernel, const char *what, size_t n, const float *x, float scale,
                           const float *y) {
  float *r = malloc(n * sizeof *r);
  assert_non_null(r);
  spr_f32_softmax_ref(n, x, scale, r);
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double err = fabs((double)y[i] - r[i]);
    if (!isfinite(y[i]) || !(err <= TOL_REL * r[i] + TOL_ABS))
      fail_msg("%s (%s, scale %g) n=%zu index %zu: x=%.9g got %.9g want %.9g", kernel, what, (double)scale, n, i,
               (double)x[i], (double)y[i], (double)r[i]);
    g_max_err = fmax(g_max_err, err);
    sum += y[i];
  }
  if (!(fabs(sum - 1.0) <= TOL_SUM))
    fail_msg("%s (%s, scale %g) n=%zu: row sums to 1 %+.3g", kernel, what, (double)scale, n, sum - 1.0);
  g_max_sum_err = fmax(g_max_sum_err, fabs(sum - 1.0));
  free(r);
}

/* data sets */
static const char *fill_case(int c, float *x, size_t n, uint64_t seed) {
  switch (c) {
    case 0:
      spr_test_fill(x, n, seed, -10.0f, 10.0f);
      return "U(-10,10)";
    case 1:
      spr_test_fill(x, n, seed, -100.0f, 100.0f);
      return "U(-100,100)";
    case 2:
      for (size_t i = 0; i < n; i++) x[i] = 3.5f;
      return "constant";
    case 3:
      spr_test_fill(x, n, seed, -1.0f, 1.0f);
      for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.6f ? 1e30f : x[i] < -0.6f ? -1e30f : x[i] * 1e4f;
      return "+-1e30, +-1e4";
    default:
      spr_test_fill(x, n, seed, -5.0f, 5.0f);
      for (size_t i = 0; i + 1 < n; i += 3) x[i] = -INFINITY;
      return "-Inf entries";
  }
}

static void test_ukernels(void **state) {
  (void)state;
  const float scales[] = {1.0f, 0.125f, -0.7f};
  for (size_t k = 0; k < N_ELEMS(k_sm); k++) {
    if ((k_sm[k].isa & ~spr_cpu_isa()) != 0) {
      printf("  skip %s (ISA not on this host)\n", k_sm[k].name);
      continue;
    }
    g_max_err = g_max_sum_err = 0.0;
    size_t sizes[10];
    const size_t ns = test_sizes(k_sm[k].tile, sizes);
    for (size_t s = 0; s < ns; s++) {
      const size_t n = sizes[s];
      float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
      assert_non_null(x), assert_non_null(y);
      for (int c = 0; c < 5; c++) {
        for (size_t si = 0; si < N_ELEMS(scales); si++) {
          if (c >= 3 && scales[si] != 1.0f) continue; /* huge values times a scale: same test */
          const char *what = fill_case(c, x, n, 31 * n + (uint64_t)c);
          k_sm[k].fn(n, x, scales[si], y);
          expect_softmax(k_sm[k].name, what, n, x, scales[si], y);
          memcpy(y, x, n * sizeof *y); /* in place */
          k_sm[k].fn(n, y, scales[si], y);
          expect_softmax(k_sm[k].name, what, n, x, scales[si], y);
        }
      }
      free(x), free(y);
    }
    printf("  %-38s max abs err %.3g, max |sum-1| %.3g\n", k_sm[k].name, g_max_err, g_max_sum_err);
  }
}

/* ---- op level -------------------------------------------------------------- */

static void init_node(struct spr_node *node, float scale) {
  memset(node, 0, sizeof *node);
  node->op = SPR_OP_SOFTMAX;
  node->n_src = 1;
  for (int i = 0; i < SPR_MAX_SRCS; i++) node->src[i] = -1;
  node->src[0] = 0;
  node->dst = 1;
  node->p.softmax.scale = scale;
}

static void op_case(int64_t d, int64_t rows, int64_t heads) {
  const size_t nel = (size_t)(d * rows * heads);
  float *x = malloc(nel * sizeof *x), *y = malloc(nel * sizeof *y), *y1 = malloc(nel * sizeof *y1);
  assert_non_null(x), assert_non_null(y), assert_non_null(y1);
  spr_test_fill(x, nel, nel, -6.0f, 6.0f);
  struct spr_tensor ts[2];
  const int64_t ne[3] = {d, rows, heads};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, ne, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 3, ne, y);
  struct spr_node node;
  init_node(&node, 0.125f);
  const char *impl = NULL;
  struct spr_error err = {SPR_STATUS_OK, ""};
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, &impl, &err), SPR_STATUS_OK);
  for (int64_t r = 0; r < rows * heads; r++) expect_softmax(impl, "op", (size_t)d, x + r * d, 0.125f, y + r * d);
  memcpy(y1, y, nel * sizeof *y);
  for (int t = 2; t <= 3; t++) {
    memset(y, 0, nel * sizeof *y);
    assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, t, 1, NULL, &err), SPR_STATUS_OK);
    if (memcmp(y, y1, nel * sizeof *y) != 0)
      fail_msg("%s op: %d threads differ from 1 (d=%lld)", impl, t, (long long)d);
  }
  assert_int_equal(spr_test_op_run(ts, &node, 0, 1, 1, &impl, &err), SPR_STATUS_OK);
  assert_string_equal(impl, "spr_f32_softmax_ukernel_1__scalar");
  free(x), free(y), free(y1);
}

static void test_ops(void **state) {
  (void)state;
  op_case(1, 1, 1);
  op_case(197, 197, 3);
  op_case(49, 7, 2);
  op_case(1000, 3, 1);
}

static void test_check_rejects(void **state) {
  (void)state;
  float x[12], y[12];
  spr_test_fill(x, 12, 3, -1.0f, 1.0f);
  struct spr_tensor ts[2];
  const int64_t ne[2] = {4, 3}, ne_bad[2] = {6, 2};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_bad, y);
  struct spr_node node;
  init_node(&node, 1.0f);
  struct spr_error err = {SPR_STATUS_OK, ""};
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_BAD_SHAPE);
  assert_true(strlen(err.msg) > 0);
  spr_test_tensor(&ts[1], SPR_DTYPE_F16, 2, ne, y);
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_BAD_TENSOR_TYPE);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne, y);
  node.p.softmax.scale = INFINITY;
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
  node.p.softmax.scale = NAN;
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
  node.p.softmax.scale = 1.0f;
  node.src[0] = -1;
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
  node.src[0] = 0;
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ukernels),
      cmocka_unit_test(test_ops),
      cmocka_unit_test(test_check_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

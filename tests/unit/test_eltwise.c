/* tests/unit/test_eltwise.c — add / mul / scale ukernels and the ADD, MUL,
 * SCALE, CONCAT_ROWS, MEAN_ROWS ops against the oracles.
 *
 * Tolerances:
 *   add, mul, scale, concat_rows   bit-exact (one correctly rounded f32 op, or a copy)
 *   mean_rows                      |y - r| <= 1e-6 * max(1, |r|) (double accumulation both sides)
 * Op level: same-shape and broadcast ({ne0} and {ne0,1}) second inputs,
 * concat with a 1-D first input, 1 vs 2 vs 3 threads bit-identical,
 * check() rejections. */
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

#include "ops/eltwise/eltwise.h"
#include "support/op_harness.h"
#include "support/test_util.h"

#define TOL_MEAN 1e-6

#define UKERNEL_ENTRY(isa, fn, tile) {(isa), (tile), fn, #fn},
static const struct spr_f32_vbinary_ukernel k_add[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/eltwise/add.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vbinary_ukernel k_mul[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/eltwise/mul.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vscale_ukernel k_scale[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/eltwise/scale.inc"
#undef SPR_UKERNEL
};
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool host_has(uint32_t isa, const char *name) {
  if ((isa & ~spr_cpu_isa()) == 0) return true;
  printf("  skip %s (ISA not on this host)\n", name);
  return false;
}

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

static void expect_equal(const char *kernel, const char *what, size_t n, const float *got, const float *want) {
  for (size_t i = 0; i < n; i++) {
    if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
      fail_msg("%s (%s) n=%zu index %zu: got %.9g want %.9g", kernel, what, n, i, (double)got[i], (double)want[i]);
  }
}

static void test_binary_ukernels(void **state) {
  (void)state;
  for (int op = 0; op < 2; op++) {
    const struct spr_f32_vbinary_ukernel *list = op == 0 ? k_add : k_mul;
    const size_t nk = op == 0 ? N_ELEMS(k_add) : N_ELEMS(k_mul);
    for (size_t k = 0; k < nk; k++) {
      if (!host_has(list[k].isa, list[k].name)) continue;
      size_t sizes[8];
      const size_t ns = test_sizes(list[k].tile, sizes);
      for (size_t s = 0; s < ns; s++) {
        const size_t n = sizes[s];
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *y = malloc(n * sizeof *y),
              *r = malloc(n * sizeof *r);
        assert_non_null(a), assert_non_null(b), assert_non_null(y), assert_non_null(r);
        spr_test_fill(a, n, 3 * n, -100.0f, 100.0f);
        spr_test_fill(b, n, 3 * n + 1, -3.0f, 3.0f);
        (op == 0 ? spr_f32_add_ref : spr_f32_mul_ref)(n, 1, a, b, 1, r);
        list[k].fn(n, a, b, y);
        expect_equal(list[k].name, "out of place", n, y, r);
        memcpy(y, a, n * sizeof *y);
        list[k].fn(n, y, b, y);
        expect_equal(list[k].name, "in place (y == a)", n, y, r);
        memcpy(y, b, n * sizeof *y);
        list[k].fn(n, a, y, y);
        expect_equal(list[k].name, "in place (y == b)", n, y, r);
        free(a), free(b), free(y), free(r);
      }
    }
  }
}

static void test_scale_ukernels(void **state) {
  (void)state;
  for (size_t k = 0; k < N_ELEMS(k_scale); k++) {
    if (!host_has(k_scale[k].isa, k_scale[k].name)) continue;
    size_t sizes[8];
    const size_t ns = test_sizes(k_scale[k].tile, sizes);
    for (size_t s = 0; s < ns; s++) {
      const size_t n = sizes[s];
      float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *r = malloc(n * sizeof *r);
      assert_non_null(x), assert_non_null(y), assert_non_null(r);
      spr_test_fill(x, n, 5 * n, -100.0f, 100.0f);
      spr_f32_scale_ref(n, x, -0.3f, r);
      k_scale[k].fn(n, x, -0.3f, y);
      expect_equal(k_scale[k].name, "out of place", n, y, r);
      memcpy(y, x, n * sizeof *y);
      k_scale[k].fn(n, y, -0.3f, y);
      expect_equal(k_scale[k].name, "in place", n, y, r);
      free(x), free(y), free(r);
    }
  }
}

/* ---- op level -------------------------------------------------------------- */

static void init_node(struct spr_node *node, enum spr_op op, int n_src) {
  memset(node, 0, sizeof *node);
  node->op = (uint16_t)op;
  node->n_src = (uint8_t)n_src;
  for (int i = 0; i < SPR_MAX_SRCS; i++) node->src[i] = i < n_src ? i : -1;
  node->dst = n_src;
}

/* Runs node with 1, 2 and 3 threads; the outputs must be bit-identical.
 * Leaves the 1-thread result in `out` (nel floats). */
static void run_threads(struct spr_tensor *ts, struct spr_node *node, float *out, size_t nel, const char **impl) {
  struct spr_error err = {SPR_STATUS_OK, ""};
  float *first = malloc(nel * sizeof *first);
  assert_non_null(first);
  for (int t = 1; t <= 3; t++) {
    memset(out, 0xff, nel * sizeof *out);
    const enum spr_status s = spr_test_op_run(ts, node, SPR_ISA_ALL, t, 1, impl, &err);
    if (s != SPR_STATUS_OK) fail_msg("op %d: status %d (%s)", (int)node->op, (int)s, err.msg);
    if (t == 1)
      memcpy(first, out, nel * sizeof *out);
    else if (memcmp(first, out, nel * sizeof *out) != 0)
      fail_msg("%s: %d threads differ from 1 (%zu elements)", *impl, t, nel);
  }
  memcpy(out, first, nel * sizeof *out);
  free(first);
}

/* b_dims: 0 = same shape as a; 1 = {ne0}; 2 = {ne0, 1} */
static void binary_op_case(enum spr_op op, int64_t d, int64_t rows, int64_t ne2, int b_dims) {
  const size_t nel = (size_t)(d * rows * ne2), b_nel = b_dims == 0 ? nel : (size_t)d;
  float *a = malloc(nel * sizeof *a), *b = malloc(b_nel * sizeof *b), *y = malloc(nel * sizeof *y),
        *r = malloc(nel * sizeof *r);
  assert_non_null(a), assert_non_null(b), assert_non_null(y), assert_non_null(r);
  spr_test_fill(a, nel, nel, -10.0f, 10.0f);
  spr_test_fill(b, b_nel, nel + 7, -2.0f, 2.0f);
  struct spr_tensor ts[3];
  const int64_t ne[3] = {d, rows, ne2}, ne_b[2] = {d, 1};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, ne, a);
  if (b_dims == 0)
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 3, ne, b);
  else
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, b_dims, ne_b, b);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 3, ne, y);
  struct spr_node node;
  init_node(&node, op, 2);
  const char *impl = NULL;
  run_threads(ts, &node, y, nel, &impl);
  (op == SPR_OP_ADD ? spr_f32_add_ref : spr_f32_mul_ref)((size_t)d, (size_t)(rows * ne2), a, b,
                                                         b_dims == 0 ? (size_t)(rows * ne2) : 1, r);
  char what[64];
  snprintf(what, sizeof what, "op, %lldx%lldx%lld, b dims %d", (long long)d, (long long)rows, (long long)ne2, b_dims);
  expect_equal(impl, what, nel, y, r);
  free(a), free(b), free(y), free(r);
}

static void test_binary_ops(void **state) {
  (void)state;
  const int64_t shapes[][3] = {{1, 1, 1}, {5, 3, 1}, {192, 197, 1}, {8192, 3, 1}, {77, 13, 5}};
  for (int op = SPR_OP_ADD; op <= SPR_OP_MUL; op++) {
    for (size_t i = 0; i < N_ELEMS(shapes); i++) {
      for (int bd = 0; bd <= 2; bd++) binary_op_case((enum spr_op)op, shapes[i][0], shapes[i][1], shapes[i][2], bd);
    }
  }
}

static void test_scale_op(void **state) {
  (void)state;
  const int64_t shapes[][2] = {{1, 1}, {1000, 1}, {8192, 3}, {33, 7}};
  for (size_t i = 0; i < N_ELEMS(shapes); i++) {
    const size_t nel = (size_t)(shapes[i][0] * shapes[i][1]);
    float *x = malloc(nel * sizeof *x), *y = malloc(nel * sizeof *y), *r = malloc(nel * sizeof *r);
    assert_non_null(x), assert_non_null(y), assert_non_null(r);
    spr_test_fill(x, nel, nel, -5.0f, 5.0f);
    struct spr_tensor ts[2];
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, shapes[i], x);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, shapes[i], y);
    struct spr_node node;
    init_node(&node, SPR_OP_SCALE, 1);
    node.p.scale.s = 0.5f;
    const char *impl = NULL;
    run_threads(ts, &node, y, nel, &impl);
    spr_f32_scale_ref(nel, x, 0.5f, r);
    expect_equal(impl, "scale op", nel, y, r);
    free(x), free(y), free(r);
  }
}

static void concat_case(int64_t d, int a_dims, int64_t rows_a, int64_t rows_b) {
  const size_t na = (size_t)(d * rows_a), nb = (size_t)(d * rows_b), ny = na + nb;
  float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *y = malloc(ny * sizeof *y),
        *r = malloc(ny * sizeof *r);
  assert_non_null(a), assert_non_null(b), assert_non_null(y), assert_non_null(r);
  spr_test_fill(a, na, na, -1.0f, 1.0f);
  spr_test_fill(b, nb, nb + 3, -1.0f, 1.0f);
  struct spr_tensor ts[3];
  const int64_t ne_a[2] = {d, rows_a}, ne_b[2] = {d, rows_b}, ne_y[2] = {d, rows_a + rows_b};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, a_dims, ne_a, a);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_b, b);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y, y);
  struct spr_node node;
  init_node(&node, SPR_OP_CONCAT_ROWS, 2);
  const char *impl = NULL;
  run_threads(ts, &node, y, ny, &impl);
  spr_f32_concat_rows_ref((size_t)d, (size_t)rows_a, a, (size_t)rows_b, b, r);
  char what[64];
  snprintf(what, sizeof what, "concat %lld rows + %lld rows of %lld", (long long)rows_a, (long long)rows_b,
           (long long)d);
  expect_equal(impl, what, ny, y, r);
  free(a), free(b), free(y), free(r);
}

static void test_concat_op(void **state) {
  (void)state;
  concat_case(192, 1, 1, 196); /* cls token {D} + patches */
  concat_case(192, 1, 1, 1);
  concat_case(7, 2, 2, 3);
  concat_case(1, 2, 5, 1);
  concat_case(64, 2, 300, 2);
}

static void mean_case(int64_t d, int64_t rows) {
  const size_t nel = (size_t)(d * rows);
  float *x = malloc(nel * sizeof *x), *y = malloc((size_t)d * sizeof *y), *r = malloc((size_t)d * sizeof *r);
  assert_non_null(x), assert_non_null(y), assert_non_null(r);
  spr_test_fill(x, nel, nel, -4.0f, 6.0f);
  struct spr_tensor ts[2];
  const int64_t ne[2] = {d, rows}, ne_y[2] = {d, 1};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_y, y);
  struct spr_node node;
  init_node(&node, SPR_OP_MEAN_ROWS, 1);
  const char *impl = NULL;
  run_threads(ts, &node, y, (size_t)d, &impl);
  spr_f32_mean_rows_ref((size_t)d, (size_t)rows, x, r);
  for (int64_t i = 0; i < d; i++) {
    if (!(fabs((double)y[i] - r[i]) <= TOL_MEAN * fmax(1.0, fabs((double)r[i]))))
      fail_msg("%s d=%lld rows=%lld index %lld: got %.9g want %.9g", impl, (long long)d, (long long)rows, (long long)i,
               (double)y[i], (double)r[i]);
  }
  free(x), free(y), free(r);
}

static void test_mean_rows_op(void **state) {
  (void)state;
  mean_case(192, 196);
  mean_case(1, 1);
  mean_case(1, 50);
  mean_case(63, 3);
  mean_case(64, 1);
  mean_case(65, 7);
  mean_case(1000, 49);
}

static void expect_reject(struct spr_tensor *ts, struct spr_node *node, enum spr_status want, const char *why) {
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_test_op_run(ts, node, SPR_ISA_ALL, 1, 1, NULL, &err);
  if (s != want) fail_msg("op %d: check should reject (%s) with %d, got %d", (int)node->op, why, (int)want, (int)s);
  assert_true(strlen(err.msg) > 0);
}

static void test_check_rejects(void **state) {
  (void)state;
  float a[24], b[24], y[48];
  spr_test_fill(a, 24, 1, -1.0f, 1.0f);
  spr_test_fill(b, 24, 2, -1.0f, 1.0f);
  struct spr_tensor ts[3];
  struct spr_node node;
  const int64_t ne[2] = {8, 3}, ne_row[1] = {8}, ne_bad_row[1] = {7}, ne_2rows[2] = {8, 2}, ne_t[2] = {3, 8};
  for (int op = SPR_OP_ADD; op <= SPR_OP_MUL; op++) {
    init_node(&node, (enum spr_op)op, 2);
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, a);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne, y);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 1, ne_bad_row, b);
    expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "row of the wrong length");
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_2rows, b);
    expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "2 rows against 3");
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_t, b);
    expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "transposed shape");
    spr_test_tensor(&ts[1], SPR_DTYPE_F16, 1, ne_row, b);
    expect_reject(ts, &node, SPR_STATUS_BAD_TENSOR_TYPE, "f16 second input");
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 1, ne_row, b);
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_2rows, y);
    expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "output shape");
    spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne, y);
    node.src[1] = -1;
    expect_reject(ts, &node, SPR_STATUS_INVALID_ARGUMENT, "missing second input");
    node.src[1] = 1;
    assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, NULL), SPR_STATUS_OK);
  }
  /* scale */
  init_node(&node, SPR_OP_SCALE, 1);
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, a);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne, y);
  node.p.scale.s = NAN;
  expect_reject(ts, &node, SPR_STATUS_INVALID_ARGUMENT, "NaN scale");
  node.p.scale.s = 2.0f;
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_t, y);
  expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "scale output shape");
  /* concat */
  init_node(&node, SPR_OP_CONCAT_ROWS, 2);
  const int64_t ne_y5[2] = {8, 5}, ne_y4[2] = {8, 4}, ne_w7[2] = {7, 2};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, a);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_2rows, b);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y4, y);
  expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "concat output rows");
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, ne_y5, y);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_w7, b);
  expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "concat widths differ");
  spr_test_tensor(&ts[1], SPR_DTYPE_F16, 2, ne_2rows, b);
  expect_reject(ts, &node, SPR_STATUS_BAD_TENSOR_TYPE, "concat f16 input");
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_2rows, b);
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, NULL), SPR_STATUS_OK);
  /* mean_rows */
  init_node(&node, SPR_OP_MEAN_ROWS, 1);
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, a);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_2rows, y);
  expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "mean output with 2 rows");
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 1, ne_bad_row, y);
  expect_reject(ts, &node, SPR_STATUS_BAD_SHAPE, "mean output width");
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 1, ne_row, y);
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, NULL), SPR_STATUS_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_binary_ukernels), cmocka_unit_test(test_scale_ukernels),
      cmocka_unit_test(test_binary_ops),      cmocka_unit_test(test_scale_op),
      cmocka_unit_test(test_concat_op),       cmocka_unit_test(test_mean_rows_op),
      cmocka_unit_test(test_check_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/unit/test_pad2d.c — SPR_OP_PAD2D (zero-pad / crop an NHWC map at the
 * bottom/right) against its oracle: bit-exact (copies and zeros), output
 * poisoned before each run so every element must be written, 1 vs 2 vs 3
 * threads, pad, crop, mixed (pad one axis, crop the other), identity, and
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

#include "ops/layout/layout.h"
#include "support/op_harness.h"
#include "support/test_util.h"

static void pad_case(int64_t c, int64_t w1, int64_t h1, int64_t w2, int64_t h2) {
  const size_t nx = (size_t)(c * w1 * h1), ny = (size_t)(c * w2 * h2);
  float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y), *r = malloc(ny * sizeof *r);
  assert_non_null(x), assert_non_null(y), assert_non_null(r);
  spr_test_fill(x, nx, nx + 17, -3.0f, 3.0f);
  spr_f32_pad2d_ref(x, (size_t)c, (size_t)w1, (size_t)h1, r, (size_t)w2, (size_t)h2);
  for (int threads = 1; threads <= 3; threads++) {
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    struct spr_tensor ts[2];
    const int64_t ne_x[3] = {c, w1, h1}, ne_y[3] = {c, w2, h2};
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, ne_x, x);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 3, ne_y, y);
    struct spr_node node;
    memset(&node, 0, sizeof node);
    node.op = SPR_OP_PAD2D;
    node.n_src = 1;
    node.src[0] = 0;
    node.dst = 1;
    struct spr_error err = {SPR_STATUS_OK, ""};
    const char *impl = NULL;
    if (spr_test_op_run(ts, &node, SPR_ISA_ALL, threads, 1, &impl, &err) != SPR_STATUS_OK)
      fail_msg("pad2d {%lld,%lld,%lld} -> {%lld,%lld}: %s", (long long)c, (long long)w1, (long long)h1, (long long)w2,
               (long long)h2, err.msg);
    if (memcmp(y, r, ny * sizeof *y) != 0) {
      for (size_t i = 0; i < ny; i++)
        if (memcmp(&y[i], &r[i], sizeof *y) != 0)
          fail_msg("%s c=%lld %lldx%lld -> %lldx%lld, %d thread(s): index %zu (pixel %zu, channel %zu): got %g want %g",
                   impl, (long long)c, (long long)h1, (long long)w1, (long long)h2, (long long)w2, threads, i,
                   i / (size_t)c, i % (size_t)c, (double)y[i], (double)r[i]);
    }
  }
  free(x), free(y), free(r);
}

static void test_pad2d_op(void **state) {
  (void)state;
  pad_case(8, 7, 7, 8, 8);     /* BiFormer: 7x7 map, 2 regions per side */
  pad_case(8, 8, 8, 7, 7);     /* and the crop back */
  pad_case(3, 10, 10, 12, 12); /* 3 regions per side */
  pad_case(1, 4, 4, 6, 6);     /* NAT: 4x4 map, kernel 3 x dilation 2 */
  pad_case(5, 5, 3, 6, 6);     /* padding one axis more than the other */
  pad_case(5, 6, 3, 4, 5);     /* crop W, pad H */
  pad_case(16, 9, 9, 9, 9);    /* identity */
  pad_case(1, 1, 1, 1, 3);
  pad_case(64, 56, 56, 63, 63);
}

static void test_pad2d_rejects(void **state) {
  (void)state;
  float a[64], y[64];
  spr_test_fill(a, 64, 1, -1.0f, 1.0f);
  struct spr_tensor ts[2];
  struct spr_node node;
  memset(&node, 0, sizeof node);
  node.op = SPR_OP_PAD2D;
  node.n_src = 1;
  node.src[0] = 0;
  node.dst = 1;
  const int64_t ne_x[3] = {4, 2, 2}, ne_bad_c[3] = {3, 3, 3}, ne_4d[4] = {4, 2, 2, 2}, ne_ok[3] = {4, 3, 3};
  struct spr_error err = {SPR_STATUS_OK, ""};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 3, ne_x, a);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 3, ne_bad_c, y);
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_BAD_SHAPE);
  assert_true(strlen(err.msg) > 0);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, 4, ne_4d, y);
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_BAD_SHAPE);
  spr_test_tensor(&ts[1], SPR_DTYPE_F16, 3, ne_ok, y);
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_BAD_TENSOR_TYPE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pad2d_op),
      cmocka_unit_test(test_pad2d_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

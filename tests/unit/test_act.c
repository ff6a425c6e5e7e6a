/* tests/unit/test_act.c — GELU / SiLU / ReLU ukernels, spr_f32_act_select and
 * the GELU / SILU ops against the double-precision oracles.
 *
 * Tolerances (y vs the oracle r):
 *   GELU, SiLU   |y - r| <= 1e-5 on [-10, 10] (dense sweep and random sizes)
 *                |y - r| <= 1e-5 * max(1, |r|) and finite for large inputs
 *                (+-100, +-1e30, +-FLT_MAX): no NaN/Inf from exp/erf overflow
 *   ReLU         exact
 * Op level: 1 vs 2 threads bit-identical; check() rejections. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/act/act.h"
#include "ops/act/act_ukernels.h"
#include "support/op_harness.h"
#include "support/test_util.h"

#define TOL_ABS 1e-5

#define UKERNEL_ENTRY(isa, fn, tile) {(isa), (tile), fn, #fn},
static const struct spr_f32_vunary_ukernel k_gelu[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/act/gelu.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vunary_ukernel k_silu[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/act/silu.inc"
#undef SPR_UKERNEL
};
static const struct spr_f32_vunary_ukernel k_relu[] = {
#define SPR_UKERNEL UKERNEL_ENTRY
#include "ops/act/relu.inc"
#undef SPR_UKERNEL
};
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct family {
  const char *name;
  const struct spr_f32_vunary_ukernel *list;
  size_t n;
  float (*ref)(float);
  double tol; /* absolute on [-10, 10]; 0 = exact */
  enum spr_act act;
};

static const struct family k_families[] = {
    {"gelu", k_gelu, N_ELEMS(k_gelu), spr_f32_gelu_ref, TOL_ABS, SPR_ACT_GELU},
    {"silu", k_silu, N_ELEMS(k_silu), spr_f32_silu_ref, TOL_ABS, SPR_ACT_SILU},
    {"relu", k_relu, N_ELEMS(k_relu), spr_f32_relu_ref, 0.0, SPR_ACT_RELU},
};

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

/* err: absolute, relative above |r| = 1 when `rel` */
static double check_values(const struct family *f, const char *kernel, const char *what, size_t n, const float *x,
                           const float *y, bool rel) {
  double max_err = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double r = f->ref(x[i]);
    const double err = fabs((double)y[i] - r) / (rel ? fmax(1.0, fabs(r)) : 1.0);
    if (!isfinite(y[i]) || !(err <= f->tol))
      fail_msg("%s (%s) n=%zu index %zu: x=%.9g got %.9g want %.9g (err %.3g > %.1g)", kernel, what, n, i, (double)x[i],
               (double)y[i], r, err, f->tol);
    if (err > max_err) max_err = err;
  }
  return max_err;
}

static void test_ukernels_sizes(void **state) {
  (void)state;
  for (size_t fi = 0; fi < N_ELEMS(k_families); fi++) {
    const struct family *f = &k_families[fi];
    for (size_t k = 0; k < f->n; k++) {
      if (!host_has(f->list[k].isa, f->list[k].name)) continue;
      size_t sizes[8];
      const size_t ns = test_sizes(f->list[k].tile, sizes);
      double max_err = 0.0;
      for (size_t s = 0; s < ns; s++) {
        const size_t n = sizes[s];
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        assert_non_null(x), assert_non_null(y);
        spr_test_fill(x, n, 1000 + n, -10.0f, 10.0f);
        f->list[k].fn(n, x, y);
        max_err = fmax(max_err, check_values(f, f->list[k].name, "random", n, x, y, false));
        memcpy(y, x, n * sizeof *y); /* in place */
        f->list[k].fn(n, y, y);
        max_err = fmax(max_err, check_values(f, f->list[k].name, "in place", n, x, y, false));
        free(x), free(y);
      }
      printf("  %-36s sizes ok, max abs err %.3g\n", f->list[k].name, max_err);
    }
  }
}

/* every f32 step of 1/4096 on [-10, 10] (plus the points between) */
static void test_ukernels_sweep(void **state) {
  (void)state;
  const size_t n = 2 * 10 * 4096 * 2 + 1;
  float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  assert_non_null(x), assert_non_null(y);
  for (size_t i = 0; i < n; i++) x[i] = -10.0f + (float)i / 8192.0f;
  for (size_t fi = 0; fi < 2; fi++) {
    const struct family *f = &k_families[fi];
    for (size_t k = 0; k < f->n; k++) {
      if ((f->list[k].isa & ~spr_cpu_isa()) != 0) continue;
      f->list[k].fn(n, x, y);
      const double e = check_values(f, f->list[k].name, "sweep [-10,10]", n, x, y, false);
      printf("  %-36s sweep [-10,10] max abs err %.3g\n", f->list[k].name, e);
    }
  }
  free(x), free(y);
}

static void test_ukernels_special(void **state) {
  (void)state;
  const float sp[] = {0.0f,    -0.0f,    1e-30f,  -1e-30f,  1e-3f,   -1e-3f,   5.6f,      -5.6f,     20.0f, -20.0f,
                      87.5f,   -87.5f,   88.5f,   -88.5f,   100.0f,  -100.0f,  1e4f,      -1e4f,     1e30f, -1e30f,
                      FLT_MAX, -FLT_MAX, 3.0e38f, -3.0e38f, FLT_MIN, -FLT_MIN, 1.17e-39f, -1.17e-39f};
  const size_t n = N_ELEMS(sp);
  float y[N_ELEMS(sp)];
  for (size_t fi = 0; fi < N_ELEMS(k_families); fi++) {
    const struct family *f = &k_families[fi];
    for (size_t k = 0; k < f->n; k++) {
      if ((f->list[k].isa & ~spr_cpu_isa()) != 0) continue;
      /* every tail length too: the special value at each lane position */
      for (size_t m = 1; m <= n; m++) {
        f->list[k].fn(m, sp, y);
        check_values(f, f->list[k].name, "special values", m, sp, y, true);
      }
    }
  }
}

static void test_act_select(void **state) {
  (void)state;
  const char *name = NULL;
  assert_null(spr_f32_act_select(SPR_ACT_NONE, SPR_ISA_ALL, &name));
  assert_string_equal(name, "none");
  for (size_t fi = 0; fi < N_ELEMS(k_families); fi++) {
    const struct family *f = &k_families[fi];
    /* scalar when no ISA is allowed */
    spr_f32_vunary_fn fn = spr_f32_act_select(f->act, 0, &name);
    assert_ptr_equal(fn, f->list[f->n - 1].fn);
    assert_string_equal(name, f->list[f->n - 1].name);
    /* the first available entry otherwise */
    const uint32_t host = spr_cpu_isa();
    size_t want = 0;
    while ((f->list[want].isa & ~host) != 0) want++;
    fn = spr_f32_act_select(f->act, host, &name);
    assert_ptr_equal(fn, f->list[want].fn);
    assert_string_equal(name, f->list[want].name);
    assert_non_null(spr_f32_act_select(f->act, SPR_ISA_ALL, NULL));
    printf("  %s on this host: %s\n", f->name, name);
  }
}

/* ---- op level -------------------------------------------------------------- */

static void op_case(enum spr_op op, int n_dims, const int64_t *ne) {
  struct spr_tensor ts[2];
  const int64_t nel = ne[0] * (n_dims > 1 ? ne[1] : 1) * (n_dims > 2 ? ne[2] : 1);
  float *x = malloc((size_t)nel * sizeof *x), *y = malloc((size_t)nel * sizeof *y),
        *y1 = malloc((size_t)nel * sizeof *y1);
  assert_non_null(x), assert_non_null(y), assert_non_null(y1);
  spr_test_fill(x, (size_t)nel, (uint64_t)nel, -8.0f, 8.0f);
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, n_dims, ne, x);
  spr_test_tensor(&ts[1], SPR_DTYPE_F32, n_dims, ne, y);
  struct spr_node node;
  memset(&node, 0, sizeof node);
  node.op = (uint16_t)op;
  node.n_src = 1;
  for (int i = 0; i < SPR_MAX_SRCS; i++) node.src[i] = -1;
  node.src[0] = 0;
  node.dst = 1;
  const char *impl = NULL;
  struct spr_error err = {SPR_STATUS_OK, ""};
  assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, &impl, &err), SPR_STATUS_OK);
  const struct family *f = &k_families[op == SPR_OP_GELU ? 0 : 1];
  check_values(f, impl, "op", (size_t)nel, x, y, false);
  memcpy(y1, y, (size_t)nel * sizeof *y);
  for (int t = 2; t <= 3; t++) {
    memset(y, 0, (size_t)nel * sizeof *y);
    assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, t, 1, NULL, &err), SPR_STATUS_OK);
    if (memcmp(y, y1, (size_t)nel * sizeof *y) != 0)
      fail_msg("%s op: %d threads differ from 1 (%lld elements)", impl, t, (long long)nel);
  }
  /* forced scalar */
  assert_int_equal(spr_test_op_run(ts, &node, 0, 2, 1, &impl, &err), SPR_STATUS_OK);
  assert_non_null(strstr(impl, "__scalar"));
  check_values(f, impl, "op", (size_t)nel, x, y, false);
  free(x), free(y), free(y1);
}

static void test_ops(void **state) {
  (void)state;
  const int64_t shapes[][3] = {{1, 1, 1}, {3, 1, 1}, {768, 197, 1}, {8192, 2, 1}, {1001, 17, 3}};
  for (int op = SPR_OP_GELU; op <= SPR_OP_SILU; op++) {
    for (size_t i = 0; i < N_ELEMS(shapes); i++) op_case((enum spr_op)op, 3, shapes[i]);
  }
}

static void test_check_rejects(void **state) {
  (void)state;
  float x[12], y[12];
  struct spr_tensor ts[2];
  const int64_t ne[2] = {4, 3}, ne_bad[2] = {3, 4};
  for (int op = SPR_OP_GELU; op <= SPR_OP_SILU; op++) {
    spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ne, x);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne_bad, y);
    struct spr_node node;
    memset(&node, 0, sizeof node);
    node.op = (uint16_t)op;
    node.n_src = 1;
    for (int i = 0; i < SPR_MAX_SRCS; i++) node.src[i] = -1;
    node.src[0] = 0;
    node.dst = 1;
    struct spr_error err = {SPR_STATUS_OK, ""};
    assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_BAD_SHAPE);
    assert_true(strlen(err.msg) > 0);
    spr_test_tensor(&ts[1], SPR_DTYPE_F16, 2, ne, y);
    assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_BAD_TENSOR_TYPE);
    spr_test_tensor(&ts[1], SPR_DTYPE_F32, 2, ne, y);
    node.src[0] = -1;
    assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_INVALID_ARGUMENT);
    node.src[0] = 0;
    spr_test_fill(x, 12, 1, -1.0f, 1.0f);
    assert_int_equal(spr_test_op_run(ts, &node, SPR_ISA_ALL, 1, 1, NULL, &err), SPR_STATUS_OK);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ukernels_sizes),
      cmocka_unit_test(test_ukernels_sweep),
      cmocka_unit_test(test_ukernels_special),
      cmocka_unit_test(test_act_select),
      cmocka_unit_test(test_ops),
      cmocka_unit_test(test_check_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

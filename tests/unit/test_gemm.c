/* tests/unit/test_gemm.c — the GEMM op and every GEMM/GEMV ukernel against spr_f32_gemm_ref.
 *
 * Tolerance: f32 accumulation of K products has a worst-case error of about
 * K * eps * sum_k |x_k w_k|; we allow
 *     |got - ref| <= 1.25 * (K + 8) * FLT_EPSILON * (sum_k |x_k w_k| + |bias|) + 1e-5 * (1 + |ref|)
 * (1.25: the activations' slopes are below 1.2; the 1e-5 relative term
 * covers vectorized activation approximations and the residual add). */
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
#include "ops/gemm/gemm.h"
#include "runtime/error.h"
#include "support/op_harness.h"
#include "support/test_util.h"

/* One problem with its data and its reference. */
struct prob {
  size_t m, n, k;
  enum spr_dtype wt;
  enum spr_act act;
  bool has_bias, has_res;
  float *x, *wf, *bias, *res, *dst, *ref, *tol;
  uint16_t *wh;
};

static void prob_init(struct prob *p, size_t m, size_t n, size_t k, enum spr_dtype wt, bool bias, enum spr_act act,
                      bool res, uint64_t seed) {
  memset(p, 0, sizeof *p);
  p->m = m, p->n = n, p->k = k, p->wt = wt, p->act = act, p->has_bias = bias, p->has_res = res;
  p->x = spr_test_aligned_alloc(m * k * sizeof(float));
  p->wf = spr_test_aligned_alloc(n * k * sizeof(float));
  p->wh = spr_test_aligned_alloc(n * k * sizeof(uint16_t) + 64);
  p->bias = bias ? spr_test_aligned_alloc(n * sizeof(float)) : NULL;
  p->res = res ? spr_test_aligned_alloc(m * n * sizeof(float)) : NULL;
  p->dst = spr_test_aligned_alloc(m * n * sizeof(float));
  p->ref = spr_test_aligned_alloc(m * n * sizeof(float));
  p->tol = spr_test_aligned_alloc(m * n * sizeof(float));
  spr_test_fill(p->x, m * k, seed, -1.0f, 1.0f);
  spr_test_fill(p->wf, n * k, seed + 1, -1.0f, 1.0f);
  if (wt == SPR_DTYPE_F16) {
    for (size_t i = 0; i < n * k; i++) {
      p->wh[i] = spr_fp16_from_f32(p->wf[i]);
      p->wf[i] = spr_fp16_to_f32(p->wh[i]);
    }
  }
  if (bias) spr_test_fill(p->bias, n, seed + 2, -1.0f, 1.0f);
  if (res) spr_test_fill(p->res, m * n, seed + 3, -1.0f, 1.0f);
  for (size_t i = 0; i < m * n; i++) p->dst[i] = NAN;
  spr_f32_gemm_ref(m, n, k, p->x, wt == SPR_DTYPE_F16 ? (const void *)p->wh : (const void *)p->wf, wt, p->bias, act,
                   p->res, p->ref);
  for (size_t i = 0; i < m; i++) {
    for (size_t j = 0; j < n; j++) {
      double s = bias ? fabs((double)p->bias[j]) : 0.0;
      for (size_t kk = 0; kk < k; kk++) s += fabs((double)p->x[i * k + kk] * (double)p->wf[j * k + kk]);
      p->tol[i * n + j] = (float)(1.25 * (double)(k + 8) * FLT_EPSILON * s + 1e-5 * (1.0 + fabs(p->ref[i * n + j])));
    }
  }
}

static void prob_free(struct prob *p) {
  free(p->x), free(p->wf), free(p->wh), free(p->bias), free(p->res), free(p->dst), free(p->ref), free(p->tol);
}

static const void *prob_w(const struct prob *p) {
  return p->wt == SPR_DTYPE_F16 ? (const void *)p->wh : p->wf;
}

static void prob_expect(const struct prob *p, const char *kernel) {
  for (size_t i = 0; i < p->m; i++) {
    for (size_t j = 0; j < p->n; j++) {
      const float got = p->dst[i * p->n + j], want = p->ref[i * p->n + j];
      if (!(fabsf(got - want) <= p->tol[i * p->n + j])) {
        fail_msg("%s %s M=%zu N=%zu K=%zu act=%d bias=%d res=%d: dst[%zu][%zu] = %.9g, ref %.9g (tol %.3g)", kernel,
                 spr_dtype_name(p->wt), p->m, p->n, p->k, (int)p->act, (int)p->has_bias, (int)p->has_res, i, j,
                 (double)got, (double)want, (double)p->tol[i * p->n + j]);
      }
    }
  }
}

/* Runs p through the driver with one thread (gv NULL: packed path only). */
static void run_driver(struct prob *p, const struct spr_gemm_ukernel *uk, const struct spr_gemv_ukernel *gv,
                       uint32_t isa) {
  const struct spr_gemm_args a = {
      .m = p->m,
      .n = p->n,
      .k = p->k,
      .x = p->x,
      .w = prob_w(p),
      .w_type = p->wt,
      .bias = p->bias,
      .residual = p->res,
      .dst = p->dst,
      .act = spr_f32_act_select(p->act, isa, NULL),
  };
  const size_t ws = spr_gemm_driver_workspace(uk, p->m, p->n, p->k, gv != NULL ? SPR_GEMM_WS_GEMV : 0, 1);
  void *scratch = spr_test_aligned_alloc(ws ? ws : 64);
  const struct spr_exec x = {.tensors = NULL, .pool = NULL, .n_threads = 1, .scratch = scratch, .scratch_bytes = ws};
  spr_gemm_driver_run(&x, uk, gv, &a);
  free(scratch);
}

static bool host_has(uint32_t isa) {
  return (isa & ~spr_cpu_isa()) == 0;
}

/* Cycles weight type, bias, residual and activation over the cases. */
static void case_flags(unsigned c, enum spr_dtype *wt, bool *bias, bool *res, enum spr_act *act) {
  *wt = (c & 1) ? SPR_DTYPE_F16 : SPR_DTYPE_F32;
  *bias = (c >> 1) & 1;
  *res = ((c >> 2) & 1) != 0;
  *act = (enum spr_act)((c >> 3) % 4);
}

static void test_gemm_ukernels(void **state) {
  (void)state;
  for (size_t u = 0; u < spr_gemm_ukernels_count; u++) {
    const struct spr_gemm_ukernel *uk = &spr_gemm_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    const size_t mr = uk->mr, nr = uk->nr;
    /* + partial last panels of 2, 3, 5 and 6 rows (the row-group tails of the x86 ukernels) */
    const size_t ms[] = {1, mr - 1 ? mr - 1 : 2, mr, mr + 1, 3 * mr + 1, 23, mr + 2, 2 * mr + 3, mr + 5, 4 * mr + 6};
    const size_t ns[] = {1, nr - 1 ? nr - 1 : 2, nr, nr + 1, 3 * nr + 1, 19};
    const size_t ks[] = {1, 7, 16, 17, 49, 300, 529}; /* 300, 529: several K blocks */
    unsigned c = 0;
    for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++) {
      for (size_t b = 0; b < 6; b++) {
        for (size_t d = 0; d < 7; d++, c++) {
          enum spr_dtype wt;
          bool bias, res;
          enum spr_act act;
          case_flags(c * 7 + (c >> 3), &wt, &bias, &res, &act);
          struct prob p;
          prob_init(&p, ms[a], ns[b], ks[d], wt, bias, act, res, 1000 + c);
          run_driver(&p, uk, NULL, uk->isa);
          prob_expect(&p, uk->name);
          prob_free(&p);
        }
      }
    }
  }
}

static void test_gemv_ukernels(void **state) {
  (void)state;
  for (size_t u = 0; u < spr_gemv_ukernels_count; u++) {
    const struct spr_gemv_ukernel *gv = &spr_gemv_ukernels[u];
    if (!host_has(gv->isa)) {
      printf("skip %s (ISA not on this host)\n", gv->name);
      continue;
    }
    const size_t r = gv->rows;
    const size_t ns[] = {1, r - 1 ? r - 1 : 2, r, r + 1, 3 * r + 1, 67}; /* 67: two GEMV tasks */
    const size_t ks[] = {1, 7, 15, 16, 17, 49, 300};
    unsigned c = 0;
    for (size_t m = 1; m <= SPR_GEMV_MAX_M; m++) {
      for (size_t b = 0; b < 6; b++) {
        for (size_t d = 0; d < 7; d++, c++) {
          enum spr_dtype wt;
          bool bias, res;
          enum spr_act act;
          case_flags(c * 5 + (c >> 2), &wt, &bias, &res, &act);
          struct prob p;
          prob_init(&p, m, ns[b], ks[d], wt, bias, act, res, 5000 + c);
          run_driver(&p, spr_gemm_select(gv->isa), gv, gv->isa);
          prob_expect(&p, gv->name);
          prob_free(&p);
        }
      }
    }
  }
}

/* ---- through the op -------------------------------------------------------------- */

enum { TX, TW, TB, TR, TD, NT };

static enum spr_status op_run(struct prob *p, uint32_t isa, int threads, const char **name) {
  struct spr_tensor ts[NT];
  const int64_t xne[2] = {(int64_t)p->k, (int64_t)p->m}, wne[2] = {(int64_t)p->k, (int64_t)p->n};
  const int64_t bne[1] = {(int64_t)p->n}, dne[2] = {(int64_t)p->n, (int64_t)p->m};
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 2, xne, p->x);
  spr_test_tensor(&ts[TW], p->wt, 2, wne, (void *)prob_w(p));
  spr_test_tensor(&ts[TB], SPR_DTYPE_F32, 1, bne, p->bias);
  spr_test_tensor(&ts[TR], SPR_DTYPE_F32, 2, dne, p->res);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 2, dne, p->dst);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM;
  nd.n_src = 4;
  nd.src[0] = TX, nd.src[1] = TW, nd.src[2] = p->has_bias ? TB : -1, nd.src[3] = p->has_res ? TR : -1;
  nd.dst = TD;
  nd.p.gemm.act = (uint8_t)p->act;
  struct spr_error err;
  const enum spr_status s = spr_test_op_run(ts, &nd, isa, threads, 1, name, &err);
  if (s != SPR_STATUS_OK) printf("op_run: %s\n", err.msg);
  return s;
}

/* Each ISA through the op (the mask selects that table entry), GEMV and packed sizes. */
static void test_gemm_op_isas(void **state) {
  (void)state;
  const size_t ms[] = {1, 3, 37};
  for (size_t u = 0; u < spr_gemm_ukernels_count; u++) {
    const uint32_t isa = spr_gemm_ukernels[u].isa;
    if (!host_has(isa)) continue;
    for (size_t i = 0; i < 3; i++) {
      struct prob p;
      prob_init(&p, ms[i], 45, 70, (i & 1) ? SPR_DTYPE_F16 : SPR_DTYPE_F32, true, SPR_ACT_GELU, true, 77 + i);
      const char *name = NULL;
      assert_int_equal(op_run(&p, isa, 1, &name), SPR_STATUS_OK);
      const char *want = ms[i] <= SPR_GEMV_MAX_M ? spr_gemv_select(isa)->name : spr_gemm_ukernels[u].name;
      assert_string_equal(name, want);
      prob_expect(&p, name);
      prob_free(&p);
    }
  }
}

/* 1 vs 2 threads: bit-identical, on sizes with several n blocks, panel
 * groups, K blocks and row chunks. */
static void test_gemm_threads(void **state) {
  (void)state;
  const size_t shapes[][3] = {{37, 300, 70}, {1, 300, 70}, {4, 130, 33}, {100, 20, 300}, {300, 24, 2100}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    struct prob p;
    prob_init(&p, shapes[s][0], shapes[s][1], shapes[s][2], (s & 1) ? SPR_DTYPE_F16 : SPR_DTYPE_F32, true, SPR_ACT_SILU,
              (s & 1) == 0, 300 + s);
    const char *name = NULL;
    assert_int_equal(op_run(&p, SPR_ISA_ALL, 1, &name), SPR_STATUS_OK);
    prob_expect(&p, name);
    float *one = spr_test_aligned_alloc(p.m * p.n * sizeof(float));
    memcpy(one, p.dst, p.m * p.n * sizeof(float));
    assert_int_equal(op_run(&p, SPR_ISA_ALL, 2, &name), SPR_STATUS_OK);
    if (memcmp(one, p.dst, p.m * p.n * sizeof(float)) != 0) {
      for (size_t i = 0; i < p.m * p.n; i++) {
        if (memcmp(&one[i], &p.dst[i], sizeof(float)) != 0)
          fail_msg("%s M=%zu N=%zu K=%zu: 1 vs 2 threads differ at [%zu][%zu]: %.9g vs %.9g", name, p.m, p.n, p.k,
                   i / p.n, i % p.n, (double)one[i], (double)p.dst[i]);
      }
    }
    free(one);
    prob_free(&p);
  }
}

/* ---- check() --------------------------------------------------------------------- */

static enum spr_status check_with(void (*edit)(struct spr_tensor *ts, struct spr_node *nd)) {
  static float buf[4096];
  struct spr_tensor ts[NT];
  const int64_t xne[2] = {8, 3}, wne[2] = {8, 5}, bne[1] = {5}, dne[2] = {5, 3};
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 2, xne, buf);
  spr_test_tensor(&ts[TW], SPR_DTYPE_F32, 2, wne, buf);
  spr_test_tensor(&ts[TB], SPR_DTYPE_F32, 1, bne, buf);
  spr_test_tensor(&ts[TR], SPR_DTYPE_F32, 2, dne, buf);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 2, dne, buf);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM;
  nd.n_src = 4;
  nd.src[0] = TX, nd.src[1] = TW, nd.src[2] = TB, nd.src[3] = TR;
  nd.dst = TD;
  if (edit != NULL) edit(ts, &nd);
  struct spr_error err = {SPR_STATUS_OK, ""};
  const enum spr_status s = spr_op_get(SPR_OP_GEMM)->check(ts, &nd, &err);
  if (s != SPR_STATUS_OK) {
    assert_int_equal(err.status, s);
    assert_true(strlen(err.msg) > 0);
  }
  return s;
}

static void e_w_q8(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].type = SPR_DTYPE_Q8_0;
}
static void e_w_q4(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].type = SPR_DTYPE_Q4_0;
}
static void e_w_i8(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].type = SPR_DTYPE_I8;
}
static void e_w_f16(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].type = SPR_DTYPE_F16;
}
static void e_x_f16(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TX].type = SPR_DTYPE_F16;
}
static void e_k(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].ne[0] = 7;
}
static void e_w3d(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TW].ne[2] = 2;
}
static void e_dst(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TD].ne[0] = 6;
}
static void e_dst_rows(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TD].ne[1] = 2;
}
static void e_bias(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TB].ne[0] = 4;
}
static void e_res(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TR].ne[1] = 4;
}
static void e_act(struct spr_tensor *ts, struct spr_node *nd) {
  (void)ts, nd->p.gemm.act = 9;
}
static void e_nosrc(struct spr_tensor *ts, struct spr_node *nd) {
  (void)ts, nd->n_src = 1;
}
static void e_zero(struct spr_tensor *ts, struct spr_node *nd) {
  (void)nd, ts[TX].ne[1] = 0, ts[TD].ne[1] = 0;
}
static void e_optional(struct spr_tensor *ts, struct spr_node *nd) {
  (void)ts, nd->src[2] = -1, nd->src[3] = -1;
}

static void test_gemm_check(void **state) {
  (void)state;
  assert_int_equal(check_with(NULL), SPR_STATUS_OK);
  assert_int_equal(check_with(e_w_f16), SPR_STATUS_OK);
  assert_int_equal(check_with(e_optional), SPR_STATUS_OK);
  /* quantized weights are supported (test_quant_gemm.c), but K = 8 is not a multiple of their block */
  assert_int_equal(check_with(e_w_q8), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_w_q4), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_w_i8), SPR_STATUS_BAD_TENSOR_TYPE);
  assert_int_equal(check_with(e_x_f16), SPR_STATUS_BAD_TENSOR_TYPE);
  assert_int_equal(check_with(e_k), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_w3d), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_dst), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_dst_rows), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_bias), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_res), SPR_STATUS_BAD_SHAPE);
  assert_int_equal(check_with(e_act), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(check_with(e_nosrc), SPR_STATUS_INVALID_ARGUMENT);
  assert_int_equal(check_with(e_zero), SPR_STATUS_BAD_DIMS);
}

/* flops() and a workspace that covers every ukernel whatever the ISA prepare picks. */
static void test_gemm_flops(void **state) {
  (void)state;
  struct spr_tensor ts[NT];
  const int64_t xne[3] = {768, 197, 1}, wne[2] = {768, 3072}, dne[3] = {3072, 197, 1};
  spr_test_tensor(&ts[TX], SPR_DTYPE_F32, 3, xne, NULL);
  spr_test_tensor(&ts[TW], SPR_DTYPE_F32, 2, wne, NULL);
  spr_test_tensor(&ts[TD], SPR_DTYPE_F32, 3, dne, NULL);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM, nd.n_src = 2, nd.src[0] = TX, nd.src[1] = TW, nd.dst = TD;
  const struct spr_op_def *def = spr_op_get(SPR_OP_GEMM);
  assert_true(def->flops(ts, &nd) == 2ull * 197 * 3072 * 768);
  const size_t ws = def->workspace(ts, &nd, 2);
  for (size_t u = 0; u < spr_gemm_ukernels_count; u++)
    assert_true(ws >= spr_gemm_driver_workspace(&spr_gemm_ukernels[u], 197, 3072, 768, SPR_GEMM_WS_GEMV, 2));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm_check),    cmocka_unit_test(test_gemm_flops),   cmocka_unit_test(test_gemm_ukernels),
      cmocka_unit_test(test_gemv_ukernels), cmocka_unit_test(test_gemm_op_isas), cmocka_unit_test(test_gemm_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

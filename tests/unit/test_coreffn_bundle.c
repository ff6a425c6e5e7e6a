/* tests/unit/test_coreffn_bundle.c — neuron bundles (blk.N.ffn_bundle) and the
 * fused decode (ops/coreffn/coreffn.h):
 *
 *   - every bundled gate/up ukernel (gu.inc) against spr_qrows_ref on the
 *     gate and up segments at blocks per row {1, 7, 8, 9, 25, 64} (the
 *     AVX-512 step is 8 blocks) and neurons {1, 7, 8, 9, 33}, and bit for bit
 *     the qrows ukernel of the same packed-x format; no index list = the
 *     identity list; the prefetch reach (n_pf) changes nothing; over the
 *     listed rows regrouped (spr_gu_pack_row), gu_packed gives fn's bits;
 *   - every accumulating down ukernel (gu.inc) from y = 0, in one call and
 *     group by group, bit-identical to the scalar axpyq over all neurons, and
 *     onto a nonzero y bit-identical to the scalar accumulating twin (outputs
 *     {1, 3, 4, 5, 13, 7, 33, 65} blocks: the 4-block tile's and 32-block
 *     panel's edges; neurons {1, 7, 31, 32, 33, 100}); its twin over the packed
 *     down layout (spr_down_pack_quad: quads of 4 rows, the last one partial)
 *     the same bits, in one call and group by group;
 *   - FFN_DOWN over a bundle in single-token steps (the fused decode) against
 *     spr_bundle_ffn_ref: sparse (core lists of 1, 31, 128, 129, 300 neurons:
 *     one to three chunks) and dense; 1, 2 and 3 threads bit-identical; dense
 *     = sparse with every neuron (bits); without selection state = dense;
 *     the scalar entries (isa 0) too;
 *   - GEMM_ROWS over a bundle in prefill steps: SiLU(x . gate) * (x . up)
 *     against the oracle (packed and unpacked ukernel paths), nothing written
 *     in fused steps; FFN_DOWN prefill and selection steps over a bundle give
 *     the bits of ffn_down_t holding the same rows. */
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

#include "ops/coreffn/coreffn.h"
#include "ops/gemm/qgemm.h"
#include "ops/quant/quant.h"
#include "runtime/util.h"
#include "support/core_state.h"
#include "support/op_harness.h"
#include "support/test_util.h"

static bool host_has(uint32_t isa) {
  return (isa & ~spr_cpu_isa()) == 0;
}

/* F bundles of E values per segment (Q4_0, reference quantizer): exact size */
static uint8_t *make_bundles(size_t F, size_t E, uint64_t seed) {
  const size_t k = 3 * E;
  float *f = malloc(F * k * sizeof(float));
  spr_test_fill(f, F * k, seed, -1.0f, 1.0f);
  for (size_t i = 0; i < F * k; i += 29) f[i] *= 3.0f;
  uint8_t *w = malloc(spr_quant_row_bytes(SPR_DTYPE_Q4_0, (int64_t)k) * F);
  spr_quantize_row_get(SPR_DTYPE_Q4_0)(f, w, (int64_t)(F * k));
  free(f);
  return w;
}

/* ---- gu ukernels ------------------------------------------------------------------------- */

static const struct spr_qrows_ukernel *qrows_twin(const struct spr_gu_ukernel *gu) {
  for (size_t i = 0; i < spr_qrows_ukernels_count; i++)
    if (spr_qrows_ukernels[i].type == gu->type && spr_qrows_ukernels[i].packx == gu->packx &&
        spr_qrows_ukernels[i].isa == gu->isa)
      return &spr_qrows_ukernels[i];
  return NULL;
}

static void check_gu(const struct spr_gu_ukernel *uk, size_t kb, size_t n, uint64_t seed) {
  const size_t E = 32 * kb, rows = 2 * n + 11, seg = 18 * kb, ldw = 3 * seg;
  uint8_t *w = make_bundles(rows, E, seed);
  float *x = malloc(E * sizeof(float));
  spr_test_fill(x, E, seed + 1, -2.0f, 2.0f);
  x[E / 2] = 7.5f;
  int32_t idx[80];
  spr_test_pick_ids(idx, n + 4, rows, seed + 2); /* 4 more entries: the prefetch reach */
  void *xq = spr_test_aligned_alloc(spr_align_up(uk->xbytes(kb), 64));
  memset(xq, 0x5A, uk->xbytes(kb));
  uk->packx(kb, 0, kb, x, xq);
  float g[80], u[80], g2[80], u2[80], rg[80], ru[80];
  double mg[80], mu[80];
  for (size_t i = 0; i <= n; i++) g[i] = u[i] = NAN;
  uk->fn(kb, n, idx, w, ldw, 4, xq, g, u);
  assert_true(isnan(g[n]) && isnan(u[n]));
  spr_qrows_ref(SPR_DTYPE_Q4_0, E, n, idx, w, ldw, x, rg, mg);
  spr_qrows_ref(SPR_DTYPE_Q4_0, E, n, idx, w + seg, ldw, x, ru, mu);
  for (size_t i = 0; i < n; i++) {
    const double tg = (double)(kb + 4) * FLT_EPSILON * mg[i] + 1e-30,
                 tu = (double)(kb + 4) * FLT_EPSILON * mu[i] + 1e-30;
    if (!(fabs((double)g[i] - (double)rg[i]) <= tg) || !(fabs((double)u[i] - (double)ru[i]) <= tu))
      fail_msg("%s kb=%zu n=%zu: neuron %zu (row %d): g %.9g (ref %.9g), u %.9g (ref %.9g)", uk->name, kb, n, i, idx[i],
               (double)g[i], (double)rg[i], (double)u[i], (double)ru[i]);
  }
  /* the qrows ukernel of the same ISA (and packed x): the same bits */
  const struct spr_qrows_ukernel *qr = qrows_twin(uk);
  assert_non_null(qr);
  qr->fn(kb, n, idx, w, ldw, xq, g2);
  qr->fn(kb, n, idx, w + seg, ldw, xq, u2);
  if (memcmp(g, g2, n * sizeof(float)) != 0 || memcmp(u, u2, n * sizeof(float)) != 0)
    fail_msg("%s kb=%zu n=%zu: not the bits of %s", uk->name, kb, n, qr->name);
  /* no prefetch reach; no list (rows 0..n-1) */
  uk->fn(kb, n, idx, w, ldw, 0, xq, g2, u2);
  assert_memory_equal(g, g2, n * sizeof(float));
  assert_memory_equal(u, u2, n * sizeof(float));
  int32_t id[80];
  for (size_t i = 0; i < n; i++) id[i] = (int32_t)i;
  uk->fn(kb, n, id, w, ldw, 0, xq, g, u);
  uk->fn(kb, n, NULL, w, ldw, 2, xq, g2, u2);
  assert_memory_equal(g, g2, n * sizeof(float));
  assert_memory_equal(u, u2, n * sizeof(float));
  /* the packed gate/up layout (the compact decode): the listed rows regrouped, then 4 rows of
   * poison (the prefetch reach reads none of them): the bits of fn over the list */
  uint8_t *pk = malloc((n + 4) * 2 * seg);
  memset(pk + n * 2 * seg, 0xEE, 4 * 2 * seg);
  for (size_t i = 0; i < n; i++) {
    spr_gu_pack_row(w + (size_t)idx[i] * ldw, kb, pk + i * 2 * seg);
    spr_gu_pack_row(w + (size_t)idx[i] * ldw + seg, kb, pk + i * 2 * seg + seg);
  }
  uk->fn(kb, n, idx, w, ldw, 0, xq, g, u);
  for (size_t i = 0; i <= n; i++) g2[i] = u2[i] = NAN;
  uk->gu_packed(kb, n, pk, 2 * seg, 4, xq, g2, u2, pk, 3 * 64 + 5);
  assert_true(isnan(g2[n]) && isnan(u2[n]));
  if (memcmp(g, g2, n * sizeof(float)) != 0 || memcmp(u, u2, n * sizeof(float)) != 0)
    fail_msg("%s kb=%zu n=%zu: the packed layout does not give fn's bits", uk->name, kb, n);
  free(pk);
  free(w), free(x), free(xq);
}

static void test_gu_ukernels(void **state) {
  (void)state;
  int tested = 0;
  for (size_t u = 0; u < spr_gu_ukernels_count; u++) {
    const struct spr_gu_ukernel *uk = &spr_gu_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    const size_t kbs[] = {1, 7, 8, 9, 25, 64};
    const size_t ns[] = {1, 7, 8, 9, 33};
    for (size_t i = 0; i < 6; i++)
      for (size_t j = 0; j < 5; j++) check_gu(uk, kbs[i], ns[j], 100 * u + 10 * i + j + 1);
    tested++;
  }
  assert_true(tested >= 1);
}

/* ---- accumulating down ukernels ------------------------------------------------------------- */

static void check_down_acc(const struct spr_gu_ukernel *uk, size_t n, size_t ne, uint64_t seed) {
  const size_t rows = n + 40, ldw = 18 * (ne / 32) + 36; /* rows with a gap after them, as in a bundle */
  uint8_t *w = malloc(rows * ldw);
  float *f = malloc(ne * sizeof(float));
  for (size_t r = 0; r < rows; r++) {
    spr_test_fill(f, ne, seed + r, -1.0f, 1.0f);
    spr_quantize_row_get(SPR_DTYPE_Q4_0)(f, w + r * ldw, (int64_t)ne);
    memset(w + r * ldw + 18 * (ne / 32), 0xEE, 36);
  }
  int32_t idx[160];
  float a[160];
  spr_test_pick_ids(idx, n, rows, seed + 1);
  spr_test_fill(a, n, seed + 2, -2.0f, 2.0f);
  if (n > 3) a[3] = 0.0f;
  float *want = malloc(ne * sizeof(float)), *got = malloc(ne * sizeof(float)), *y0 = malloc(ne * sizeof(float));
  /* from zero, one call and group by group: the bits of the scalar axpyq over all n */
  spr_q4_0_axpyq_ukernel_32__scalar(n, idx, a, w, ldw, ne, want);
  memset(got, 0, ne * sizeof(float));
  uk->down_acc(n, idx, a, w, ldw, ne, got, idx, n);
  if (memcmp(got, want, ne * sizeof(float)) != 0) fail_msg("%s n=%zu ne=%zu: one call != axpyq", uk->name, n, ne);
  memset(got, 0, ne * sizeof(float));
  for (size_t g0 = 0; g0 < n; g0 += SPR_AXPYQ_GROUP)
    uk->down_acc(n - g0 < SPR_AXPYQ_GROUP ? n - g0 : SPR_AXPYQ_GROUP, idx + g0, a + g0, w, ldw, ne, got, NULL, 0);
  for (size_t e = 0; e < ne; e++) {
    if (memcmp(&got[e], &want[e], sizeof(float)) != 0)
      fail_msg("%s n=%zu ne=%zu: group by group [%zu] = %.9g, axpyq %.9g", uk->name, n, ne, e, (double)got[e],
               (double)want[e]);
  }
  /* onto a nonzero y: the scalar twin's bits */
  spr_test_fill(y0, ne, seed + 3, -5.0f, 5.0f);
  memcpy(want, y0, ne * sizeof(float));
  memcpy(got, y0, ne * sizeof(float));
  spr_q4_0_axpyq_acc_ukernel_32__scalar(n, idx, a, w, ldw, ne, want, NULL, 0);
  uk->down_acc(n, idx, a, w, ldw, ne, got, idx, n);
  assert_memory_equal(got, want, ne * sizeof(float));
  /* the packed layout (the compact decode): the same n rows in quads, the same bits */
  const size_t kb = ne / 32, qb = spr_down_pack_quad_bytes(kb), nq = (n + 3) / 4;
  uint8_t *quads = malloc((nq + 8) * qb);
  for (size_t q = 0; q < nq; q++) {
    const uint8_t *r4[4];
    for (size_t r = 0; r < 4; r++) r4[r] = 4 * q + r < n ? w + (size_t)idx[4 * q + r] * ldw : NULL;
    spr_down_pack_quad(r4, kb, quads + q * qb);
  }
  memset(quads + nq * qb, 0xEE, 8 * qb); /* never read: past the quads */
  memcpy(got, y0, ne * sizeof(float));
  uk->down_packed(n, a, quads, kb, got, quads, nq * qb);
  if (memcmp(got, want, ne * sizeof(float)) != 0) fail_msg("%s n=%zu ne=%zu: packed != down_acc", uk->name, n, ne);
  spr_q4_0_axpyq_ukernel_32__scalar(n, idx, a, w, ldw, ne, want);
  memset(got, 0, ne * sizeof(float));
  for (size_t g0 = 0; g0 < n; g0 += SPR_AXPYQ_GROUP)
    uk->down_packed(n - g0 < SPR_AXPYQ_GROUP ? n - g0 : SPR_AXPYQ_GROUP, a + g0, quads + g0 / 4 * qb, kb, got, NULL, 0);
  if (memcmp(got, want, ne * sizeof(float)) != 0)
    fail_msg("%s n=%zu ne=%zu: packed group by group != axpyq", uk->name, n, ne);
  free(quads);
  free(w), free(f), free(want), free(got), free(y0);
}

static void test_down_acc_ukernels(void **state) {
  (void)state;
  int tested = 0;
  for (size_t u = 0; u < spr_gu_ukernels_count; u++) {
    const struct spr_gu_ukernel *uk = &spr_gu_ukernels[u];
    if (!host_has(uk->isa)) continue;
    /* outputs: one block, a 128-output tile - 1 block, the tile, + 1 block, 3 tiles + 1 block, 7 blocks;
     * 33 and 65 blocks (ukernels that work in panels of 32 or 64 blocks: a panel and a block past it) */
    const size_t nes[] = {32, 96, 128, 160, 416, 224, 1056, 2080};
    const size_t ns[] = {1, 7, 31, 32, 33, 100};
    for (size_t i = 0; i < 8; i++)
      for (size_t j = 0; j < 6; j++) check_down_acc(uk, ns[j], nes[i], 900 + 100 * u + 10 * i + j);
    tested++;
  }
  assert_true(tested >= 1);
}

/* ---- ops ----------------------------------------------------------------------------------- */

/* FFN_DOWN over bundles w (or, with down_t, over the ffn_down_t matrix w):
 * h {F, T} activations, n {E, T} the FFN input, res the residual */
static void run_down(const uint8_t *w, bool bundle, size_t F, size_t E, size_t T, const float *h, const float *n,
                     const float *res, struct spr_test_core_state *b, uint32_t isa, int threads, float *out) {
  struct spr_tensor ts[7];
  const int64_t hne[2] = {(int64_t)F, (int64_t)T}, dne[2] = {(int64_t)E, (int64_t)T};
  const int64_t wne[2] = {bundle ? 3 * (int64_t)E : (int64_t)E, (int64_t)F};
  const int64_t sne[1] = {b != NULL ? (int64_t)b->sel_words : 1}, cne[1] = {SPR_CORE_CTL_WORDS + 8};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, hne, (void *)h);
  spr_test_tensor(&ts[1], SPR_DTYPE_Q4_0, 2, wne, (void *)w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, dne, out);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, dne, (void *)res);
  spr_test_tensor(&ts[4], SPR_DTYPE_I32, 1, sne, b != NULL ? b->sel : NULL);
  spr_test_tensor(&ts[5], SPR_DTYPE_I32, 1, cne, b != NULL ? b->ctl : NULL);
  spr_test_tensor(&ts[6], SPR_DTYPE_F32, 2, dne, (void *)n);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_FFN_DOWN;
  nd.n_src = 6;
  const int32_t src[6] = {0, 1, bundle ? 6 : -1, 3, b != NULL ? 4 : -1, b != NULL ? 5 : -1};
  memcpy(nd.src, src, sizeof src);
  nd.dst = 2;
  nd.p.core.down_t = bundle ? SPR_CORE_DOWN_BUNDLE : SPR_CORE_DOWN_T;
  struct spr_error err;
  if (spr_test_op_run(ts, &nd, isa, threads, 1, NULL, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
}

static void close_to(const char *what, size_t F, size_t E, size_t n_core, const float *got, const float *want, size_t n,
                     double tol) {
  double scale = 0;
  for (size_t i = 0; i < n; i++) scale = scale > fabs((double)want[i]) ? scale : fabs((double)want[i]);
  for (size_t i = 0; i < n; i++) {
    if (!(fabs((double)got[i] - (double)want[i]) <= tol * (1.0 + scale)))
      fail_msg("%s F=%zu E=%zu n_core=%zu: [%zu] = %.9g, want %.9g", what, F, E, n_core, i, (double)got[i],
               (double)want[i]);
  }
}

static void fused_case(size_t F, size_t E, size_t n_core, uint64_t seed) {
  uint8_t *w = make_bundles(F, E, seed);
  float *n = spr_test_aligned_alloc(E * sizeof(float)), *res = spr_test_aligned_alloc(E * sizeof(float));
  float *h = spr_test_aligned_alloc(F * sizeof(float));
  float *out[3], *ref = malloc(E * sizeof(float));
  for (int i = 0; i < 3; i++) out[i] = spr_test_aligned_alloc(E * sizeof(float));
  spr_test_fill(n, E, seed + 1, -1.0f, 1.0f);
  spr_test_fill(res, E, seed + 2, -1.0f, 1.0f);
  for (size_t i = 0; i < F; i++) h[i] = NAN; /* a fused step does not read the activations */
  struct spr_test_core_state b;
  spr_test_core_state_init(&b, F);
  int32_t *core = spr_core_sel_core(spr_test_core_sel(&b), F);
  spr_test_pick_ids(core, n_core, F, seed + 3);
  spr_test_core_sel(&b)->n_core = (int32_t)n_core;
  spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SPARSE;
  for (int th = 1; th <= 3; th++) run_down(w, true, F, E, 1, h, n, res, &b, SPR_ISA_ALL, th, out[th - 1]);
  assert_memory_equal(out[0], out[1], E * sizeof(float));
  assert_memory_equal(out[0], out[2], E * sizeof(float));
  spr_bundle_ffn_ref(E / 32, n_core, core, w, 3 * 18 * (E / 32), n, res, ref);
  close_to("fused sparse", F, E, n_core, out[0], ref, E, 2e-2);
  run_down(w, true, F, E, 1, h, n, res, &b, 0, 2, out[1]); /* the scalar entries */
  close_to("fused sparse (scalar)", F, E, n_core, out[1], ref, E, 2e-2);
  /* dense: every neuron; = sparse with the full list; = no selection state */
  spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_DENSE;
  for (int th = 1; th <= 2; th++) run_down(w, true, F, E, 1, h, n, res, &b, SPR_ISA_ALL, th, out[th - 1]);
  assert_memory_equal(out[0], out[1], E * sizeof(float));
  spr_bundle_ffn_ref(E / 32, F, NULL, w, 3 * 18 * (E / 32), n, res, ref);
  close_to("fused dense", F, E, F, out[0], ref, E, 2e-2);
  for (size_t i = 0; i < F; i++) core[i] = (int32_t)i;
  spr_test_core_sel(&b)->n_core = (int32_t)F;
  spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SPARSE;
  run_down(w, true, F, E, 1, h, n, res, &b, SPR_ISA_ALL, 2, out[1]);
  assert_memory_equal(out[0], out[1], E * sizeof(float));
  run_down(w, true, F, E, 1, h, n, res, NULL, SPR_ISA_ALL, 1, out[2]);
  assert_memory_equal(out[0], out[2], E * sizeof(float));
  free(w), free(n), free(res), free(h), free(ref);
  spr_test_core_state_free(&b);
  for (int i = 0; i < 3; i++) free(out[i]);
}

static void test_fused_decode(void **state) {
  (void)state;
  const size_t ncs[] = {1, 31, 128, 129, 300};
  for (size_t i = 0; i < 5; i++) fused_case(300, 96, ncs[i], 500 + i);
  fused_case(40, 32, 13, 600);
  fused_case(64, 2048, 40, 601); /* TinyLlama's row: 64 blocks */
}

/* GEMM_ROWS over bundles: dst {F, T} */
static void run_rows(const uint8_t *w, size_t F, size_t E, size_t T, const float *x, struct spr_test_core_state *b,
                     int threads, float *out) {
  struct spr_tensor ts[6];
  const int64_t xne[2] = {(int64_t)E, (int64_t)T}, dne[2] = {(int64_t)F, (int64_t)T},
                wne[2] = {3 * (int64_t)E, (int64_t)F};
  const int64_t sne[1] = {(int64_t)b->sel_words}, cne[1] = {SPR_CORE_CTL_WORDS + 8};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, xne, (void *)x);
  spr_test_tensor(&ts[1], SPR_DTYPE_Q4_0, 2, wne, (void *)w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, dne, out);
  spr_test_tensor(&ts[4], SPR_DTYPE_I32, 1, sne, b->sel);
  spr_test_tensor(&ts[5], SPR_DTYPE_I32, 1, cne, b->ctl);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM_ROWS;
  nd.n_src = 6;
  const int32_t src[6] = {0, 1, -1, -1, 4, 5};
  memcpy(nd.src, src, sizeof src);
  nd.dst = 2;
  nd.p.gemm.act = SPR_ACT_SILU;
  struct spr_error err;
  if (spr_test_op_run(ts, &nd, SPR_ISA_ALL, threads, 1, NULL, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
}

static void prefill_case(size_t F, size_t E, size_t T, uint64_t seed) {
  const size_t kb = E / 32, seg = 18 * kb, ldw = 3 * seg;
  uint8_t *w = make_bundles(F, E, seed);
  float *x = spr_test_aligned_alloc(T * E * sizeof(float)), *res = spr_test_aligned_alloc(T * E * sizeof(float));
  float *act[2] = {spr_test_aligned_alloc(T * F * sizeof(float)), spr_test_aligned_alloc(T * F * sizeof(float))};
  float *y[2] = {spr_test_aligned_alloc(T * E * sizeof(float)), spr_test_aligned_alloc(T * E * sizeof(float))};
  float *g = malloc(F * sizeof(float)), *u = malloc(F * sizeof(float)), *ref = malloc(F * sizeof(float));
  spr_test_fill(x, T * E, seed + 1, -1.0f, 1.0f);
  spr_test_fill(res, T * E, seed + 2, -1.0f, 1.0f);
  struct spr_test_core_state b;
  spr_test_core_state_init(&b, F);
  spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SELECT; /* selection steps compute the activations, also with T = 1 */
  for (int th = 1; th <= 2; th++) run_rows(w, F, E, T, x, &b, th, act[th - 1]);
  assert_memory_equal(act[0], act[1], T * F * sizeof(float));
  int32_t *all = malloc(F * sizeof(int32_t));
  for (size_t i = 0; i < F; i++) all[i] = (int32_t)i;
  for (size_t t = 0; t < T; t++) {
    spr_qrows_ref(SPR_DTYPE_Q4_0, E, F, all, w, ldw, x + t * E, g, NULL);
    spr_qrows_ref(SPR_DTYPE_Q4_0, E, F, all, w + seg, ldw, x + t * E, u, NULL);
    for (size_t i = 0; i < F; i++) ref[i] = (float)((double)g[i] / (1.0 + exp(-(double)g[i])) * (double)u[i]);
    close_to("gemm_rows bundle prefill", F, E, T, act[0] + t * F, ref, F, 1e-4);
  }
  /* FFN_DOWN prefill / selection step over the bundle = over ffn_down_t with the same rows */
  uint8_t *wt = malloc(F * seg);
  for (size_t i = 0; i < F; i++) memcpy(wt + i * seg, w + i * ldw + 2 * seg, seg);
  for (int th = 1; th <= 2; th++) run_down(w, true, F, E, T, act[0], x, res, &b, SPR_ISA_ALL, th, y[th - 1]);
  assert_memory_equal(y[0], y[1], T * E * sizeof(float));
  run_down(wt, false, F, E, T, act[0], x, res, &b, SPR_ISA_ALL, 2, y[1]);
  for (size_t i = 0; i < T * E; i++)
    if (memcmp(&y[0][i], &y[1][i], sizeof(float)) != 0)
      fail_msg("ffn_down prefill F=%zu E=%zu T=%zu: bundle [%zu] = %.9g, ffn_down_t %.9g", F, E, T, i, (double)y[0][i],
               (double)y[1][i]);
  if (T == 1) { /* a fused step leaves the activations alone */
    spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SPARSE;
    for (size_t i = 0; i < F; i++) act[1][i] = -7.0f;
    run_rows(w, F, E, T, x, &b, 2, act[1]);
    for (size_t i = 0; i < F; i++) assert_true(act[1][i] == -7.0f);
  }
  free(w), free(x), free(res), free(act[0]), free(act[1]), free(y[0]), free(y[1]), free(g), free(u), free(ref);
  free(all), free(wt);
  spr_test_core_state_free(&b);
}

static void test_bundle_prefill(void **state) {
  (void)state;
  prefill_case(160, 96, 19, 700); /* packed panels, 3 column strips */
  prefill_case(75, 64, 5, 701);   /* fewer rows than the packed path takes */
  prefill_case(64, 32, 1, 702);   /* a one-token selection step */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gu_ukernels),
      cmocka_unit_test(test_down_acc_ukernels),
      cmocka_unit_test(test_fused_decode),
      cmocka_unit_test(test_bundle_prefill),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

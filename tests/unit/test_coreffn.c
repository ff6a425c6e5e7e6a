/* tests/unit/test_coreffn.c — the core-neuron FFN kernels and ops (ops/coreffn).
 *
 *   - every axpy ukernel against spr_axpy_rows_ref at edge sizes (neurons
 *     {1, 7, 33, 100}, outputs {unit, tile-unit, tile, tile+unit, 3 tile+unit,
 *     odd}), with an index list and without; cutting the output on a block
 *     boundary gives the same bits (the op splits it over threads); axpyq
 *     entries also with subnormal, tiny and zero coefficient groups;
 *   - every strip dequantizer (deq.inc) bit-identical to ops/quant's;
 *   - the selection kernels (positives, top-k by quickselect, pick) against
 *     spr_core_select_ref (full sorts) with ties, zeros and -0, in one and in
 *     several steps; spr_core_pick's edge cases;
 *   - CORE_SELECT through the op: the state after one and two steps equals the
 *     oracle; other modes leave it alone; 1 vs 2 threads give the same state;
 *   - every row-gathered quantized GEMV ukernel (qrows.inc) against
 *     spr_qrows_ref at blocks per row {1, 2, 3, 7, 64} and rows {1, 3, 4, 5,
 *     33}, unaligned rows in list order; split packing and a cut list give
 *     the same bits;
 *   - GEMM_ROWS in sparse mode: output i is bit-identical to the dense GEMM's
 *     output core[i] (f32, f16, q4_k, q6_k, and every type with the core set
 *     of all neurons); Q4_0 / Q8_0 through the row-gathered ukernel match the
 *     double oracle; 1 vs 2 threads bit-identical;
 *   - FFN_DOWN: row-major sparse = dense GEMM of the scattered activations
 *     (bits); ffn_down_t dense, sparse and prefill (M > 1) against the double
 *     oracle; 1 vs 2 threads bit-identical for every path. */
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
#include "ops/coreffn/coreffn.h"
#include "ops/gemm/gemm.h"
#include "ops/gemm/qgemm.h"
#include "ops/quant/quant.h"
#include "runtime/util.h"
#include "support/core_state.h"
#include "support/op_harness.h"
#include "support/test_util.h"

static bool host_has(uint32_t isa) {
  return (isa & ~spr_cpu_isa()) == 0;
}

/* rows x k values of type t, random, quantized with the reference quantizer */
static uint8_t *make_rows(enum spr_dtype t, size_t rows, size_t k, uint64_t seed) {
  float *f = malloc(rows * k * sizeof(float));
  spr_test_fill(f, rows * k, seed, -1.0f, 1.0f);
  for (size_t i = 0; i < rows * k; i += 29) f[i] *= 3.0f;
  const size_t bytes = spr_quant_row_bytes(t, (int64_t)k) * rows;
  uint8_t *w = malloc(bytes); /* exact size: ASan sees reads past the weights */
  spr_quantize_row_get(t)(f, w, (int64_t)(rows * k));
  free(f);
  return w;
}

/* ---- axpy ukernels ----------------------------------------------------------------- */

/* an axpyq ukernel (int8 neuron coefficients, rule in coreffn.h): the same
 * bits as the scalar one; within f32 rounding of spr_axpyq_rows_ref; within
 * the quantization bound of the exact sum ref. */
static void check_axpyq(const struct spr_axpy_ukernel *uk, size_t n, const int32_t *idx, const float *a,
                        const uint8_t *w, size_t ldw, size_t ne, const float *y, const float *ref, const float *mag) {
  float *ys = malloc(ne * sizeof(float)), *yq = malloc(ne * sizeof(float));
  double *bound = calloc(ne, sizeof(double));
  spr_q4_0_axpyq_ukernel_32__scalar(n, idx, a, w, ldw, ne, ys);
  spr_axpyq_rows_ref(n, idx, a, w, ldw, ne, yq);
  for (size_t b = 0; b < ne / 32; b++) {
    for (size_t g0 = 0; g0 < n; g0 += SPR_AXPYQ_GROUP) {
      const size_t gn = n - g0 < SPR_AXPYQ_GROUP ? n - g0 : SPR_AXPYQ_GROUP;
      float m = 0.0f;
      for (size_t i = 0; i < gn; i++) {
        const uint8_t *blk = w + (idx != NULL ? (size_t)idx[g0 + i] : g0 + i) * ldw + 18 * b;
        uint16_t h;
        memcpy(&h, blk, sizeof h);
        m = fmaxf(m, fabsf(a[g0 + i] * spr_fp16_to_f32(h)));
      }
      for (size_t i = 0; i < gn; i++) {
        const uint8_t *blk = w + (idx != NULL ? (size_t)idx[g0 + i] : g0 + i) * ldw + 18 * b;
        for (int j = 0; j < 32; j++) {
          const int q = (j < 16 ? (blk[2 + j] & 0xF) : (blk[2 + j - 16] >> 4)) - 8;
          bound[32 * b + (size_t)j] += 0.5 * (double)m / 127.0 * abs(q);
        }
      }
    }
  }
  for (size_t e = 0; e < ne; e++) {
    if (memcmp(&y[e], &ys[e], sizeof(float)) != 0)
      fail_msg("%s n=%zu ne=%zu: y[%zu] = %.9g, scalar axpyq %.9g (must be the same bits)", uk->name, n, ne, e,
               (double)y[e], (double)ys[e]);
    const double tq = (double)(n / SPR_AXPYQ_GROUP + 2) * FLT_EPSILON * mag[e] + 1e-30;
    if (!(fabs((double)y[e] - (double)yq[e]) <= tq))
      fail_msg("%s n=%zu ne=%zu: y[%zu] = %.9g, axpyq ref %.9g (tol %.3g)", uk->name, n, ne, e, (double)y[e],
               (double)yq[e], tq);
    const double tb = bound[e] * 1.0001 + (double)(n / SPR_AXPYQ_GROUP + 2) * FLT_EPSILON * mag[e] + 1e-30;
    if (!(fabs((double)y[e] - (double)ref[e]) <= tb))
      fail_msg("%s n=%zu ne=%zu: y[%zu] = %.9g, exact ref %.9g (quantization bound %.3g)", uk->name, n, ne, e,
               (double)y[e], (double)ref[e], tb);
  }
  free(ys), free(yq), free(bound);
}

static void check_axpy(const struct spr_axpy_ukernel *uk, size_t n, bool with_idx, size_t ne, uint64_t seed) {
  const enum spr_dtype t = uk->type;
  const size_t qk = spr_dtype_block_elems(t), rows = n + 5, row_e = ne + 2 * qk; /* a wider row: an offset segment */
  uint8_t *w = make_rows(t, rows, row_e, seed);
  const size_t ldw = spr_quant_row_bytes(t, (int64_t)row_e),
               off = qk / qk * spr_dtype_block_bytes(t); /* skip one block */
  int32_t *idx = malloc((n ? n : 1) * sizeof(int32_t));
  float *a = malloc(n * sizeof(float)), *y = malloc(ne * sizeof(float)), *y2 = malloc(ne * sizeof(float));
  float *ref = malloc(ne * sizeof(float)), *mag = malloc(ne * sizeof(float)), *row = malloc(row_e * sizeof(float));
  spr_test_pick_ids(idx, n, rows, seed + 1);
  spr_test_fill(a, n, seed + 2, -2.0f, 2.0f);
  for (size_t e = 0; e < ne; e++) y[e] = NAN;
  uk->fn(n, with_idx ? idx : NULL, a, w + off, ldw, ne, y);
  spr_axpy_rows_ref(t, n, with_idx ? idx : NULL, a, w + off, ldw, ne, ref);
  memset(mag, 0, ne * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    const size_t r = with_idx ? (size_t)idx[i] : i;
    spr_dequantize_row_get(t)(w + r * ldw + off, row, (int64_t)ne);
    for (size_t e = 0; e < ne; e++) mag[e] += fabsf(a[i] * row[e]);
  }
  const bool q8act = strstr(uk->name, "axpyq") != NULL;
  if (q8act) check_axpyq(uk, n, with_idx ? idx : NULL, a, w + off, ldw, ne, y, ref, mag);
  for (size_t e = 0; e < ne && !q8act; e++) {
    const double tol = (double)(n + 2) * FLT_EPSILON * mag[e] + 1e-30;
    if (!(fabs((double)y[e] - (double)ref[e]) <= tol))
      fail_msg("%s n=%zu ne=%zu idx=%d: y[%zu] = %.9g, ref %.9g (tol %.3g)", uk->name, n, ne, (int)with_idx, e,
               (double)y[e], (double)ref[e], tol);
  }
  /* the same bits when the output is cut on a block boundary */
  const size_t cut = ne >= 2 * qk ? (ne / qk / 2) * qk : 0;
  if (cut > 0) {
    uk->fn(n, with_idx ? idx : NULL, a, w + off, ldw, cut, y2);
    uk->fn(n, with_idx ? idx : NULL, a, w + off + cut / qk * spr_dtype_block_bytes(t), ldw, ne - cut, y2 + cut);
    for (size_t e = 0; e < ne; e++) {
      if (memcmp(&y[e], &y2[e], sizeof(float)) != 0)
        fail_msg("%s n=%zu ne=%zu: cut at %zu changes y[%zu]: %.9g vs %.9g", uk->name, n, ne, cut, e, (double)y[e],
                 (double)y2[e]);
    }
  }
  free(w), free(idx), free(a), free(y), free(y2), free(ref), free(mag), free(row);
}

static void test_axpy_ukernels(void **state) {
  (void)state;
  int tested = 0;
  for (size_t u = 0; u < spr_axpy_ukernels_count; u++) {
    const struct spr_axpy_ukernel *uk = &spr_axpy_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    const size_t qk = spr_dtype_block_elems(uk->type), unit = qk;
    const size_t tile = uk->tile < unit ? unit : uk->tile;
    const size_t nes[] = {
        unit, tile > unit ? tile - unit : 2 * unit, tile, tile + unit, 3 * tile + unit, qk > 1 ? 7 * qk : 37};
    const size_t ns[] = {1, 7, 33, 100}, nsq[] = {1, 31, 32, 33, 100};
    for (size_t i = 0; i < 6; i++)
      for (size_t j = 0; j < 4; j++) check_axpy(uk, ns[j], (i + j) % 2 == 0, nes[i], 100 * u + 10 * i + j);
    if (strstr(uk->name, "axpyq") != NULL) /* group edges: n_core 31, 32, 33 */
      for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 5; j++) check_axpy(uk, nsq[j], (i + j) % 2 == 1, nes[i], 1000 * u + 10 * i + j);
    check_axpy(uk, 0, true, nes[2], 7); /* no neuron: zeros */
    tested++;
  }
  assert_true(tested >= 4);
}

/* axpyq entries at the edges of the rule's f32 range, each case a call of
 * its own (a later group's y would hide an earlier one's): normal
 * coefficients with subnormal ones mixed in; a tiny group (m ~ 1e-26); a
 * group near underflow (m ~ 1e-36: S = m / 127 and the small products a * d
 * are subnormal, yet get coefficients of +-1 or more; A32 NEON flushes
 * subnormals, so it must not run such a group); zeros then a short group;
 * the same bits as the scalar axpyq. */
static void test_axpyq_edges(void **state) {
  (void)state;
  int tested = 0;
  enum { G = SPR_AXPYQ_GROUP, N = 2 * G + 5 };
  const size_t ne = 96, rows = N + 3;
  uint8_t *w = make_rows(SPR_DTYPE_Q4_0, rows, ne, 77);
  const size_t ldw = spr_quant_row_bytes(SPR_DTYPE_Q4_0, (int64_t)ne);
  float a[N], y[96], ys[96];
  int32_t idx[N];
  spr_test_pick_ids(idx, N, rows, 78);
  for (int c = 0; c < 4; c++) {
    spr_test_fill(a, N, 79 + (uint64_t)c, -2.0f, 2.0f);
    size_t n = N;
    if (c == 0) a[3] = 1e-40f, a[4] = -3e-39f, a[5] = 0.0f, a[6] = -0.0f, a[G + 7] = 1e-45f;
    if (c == 1) {
      for (size_t i = 0; i < N; i++) a[i] *= 1e-25f;
      a[1] = 1e-41f, a[2] = -1e-38f, a[3] = 0.0f;
    }
    if (c == 2) {
      n = G;
      a[0] = 6e-36f; /* m = a[0] d in (127 / FLT_MAX, 3e-36) for the d of these rows */
      for (size_t i = 1; i < G; i++) a[i] = (i & 1 ? 2e-38f : -2e-38f) * (1.0f + (float)(i % 7) / 4.0f);
      a[5] = 1e-41f;
    }
    if (c == 3)
      for (size_t i = 0; i < 2 * G; i++) a[i] = (i & 1) ? 0.0f : -0.0f;
    spr_q4_0_axpyq_ukernel_32__scalar(n, idx, a, w, ldw, ne, ys);
    for (size_t e = 0; e < ne; e++) assert_true(isfinite(ys[e]));
    for (size_t u = 0; u < spr_axpy_ukernels_count; u++) {
      const struct spr_axpy_ukernel *uk = &spr_axpy_ukernels[u];
      if (strstr(uk->name, "axpyq") == NULL || !host_has(uk->isa)) continue;
      for (size_t e = 0; e < ne; e++) y[e] = NAN;
      uk->fn(n, idx, a, w, ldw, ne, y);
      for (size_t e = 0; e < ne; e++)
        if (memcmp(&y[e], &ys[e], sizeof(float)) != 0)
          fail_msg("%s edge case %d: y[%zu] = %.9g, scalar axpyq %.9g (must be the same bits)", uk->name, c, e,
                   (double)y[e], (double)ys[e]);
      tested++;
    }
  }
  assert_true(tested >= 4);
  free(w);
}

/* ---- row-gathered quantized GEMV ukernels ------------------------------------------- */

static void check_qrows(const struct spr_qrows_ukernel *uk, size_t kb, size_t n, uint64_t seed) {
  const enum spr_dtype t = uk->type;
  const size_t k = 32 * kb, rows = n + 9, ldw = spr_quant_row_bytes(t, (int64_t)k) + 2; /* odd pitch: unaligned rows */
  uint8_t *w = malloc(rows * ldw);
  for (size_t r = 0; r < rows; r++) {
    uint8_t *one = make_rows(t, 1, k, seed + 31 * r);
    memcpy(w + r * ldw, one, ldw - 2);
    memset(w + r * ldw + ldw - 2, 0xAB, 2);
    free(one);
  }
  enum { MAXN = 64 };
  assert_true(n < MAXN);
  float *x = malloc(k * sizeof(float)), c[MAXN], c2[MAXN], ref[MAXN];
  double mag[MAXN];
  int32_t idx[MAXN];
  spr_test_fill(x, k, seed + 1, -2.0f, 2.0f);
  x[k / 2] = 7.5f; /* one outlier block */
  spr_test_pick_ids(idx, n, rows, seed + 2);
  for (size_t i = 0; i + 1 < n; i += 3) { /* not ascending: the list order is the output order */
    const int32_t tmp = idx[i];
    idx[i] = idx[i + 1], idx[i + 1] = tmp;
  }
  void *xq = spr_test_aligned_alloc(spr_align_up(uk->xbytes(kb), 64));
  memset(xq, 0x5A, uk->xbytes(kb)); /* packers write every byte the ukernel reads */
  uk->packx(kb, 0, kb, x, xq);
  for (size_t i = 0; i <= n; i++) c[i] = NAN;
  uk->fn(kb, n, idx, w, ldw, xq, c);
  spr_qrows_ref(t, k, n, idx, w, ldw, x, ref, mag);
  for (size_t i = 0; i < n; i++) {
    const double tol = (double)(kb + 4) * FLT_EPSILON * mag[i] + 1e-30;
    if (!(fabs((double)c[i] - (double)ref[i]) <= tol))
      fail_msg("%s kb=%zu n=%zu: c[%zu] (row %d) = %.9g, ref %.9g (tol %.3g)", uk->name, kb, n, i, idx[i], (double)c[i],
               (double)ref[i], tol);
  }
  assert_true(isnan(c[n])); /* nothing past n */
  /* packing in two ranges gives the same row; a list cut in two gives the same bits */
  void *xq2 = spr_test_aligned_alloc(spr_align_up(uk->xbytes(kb), 64));
  memset(xq2, 0x5A, uk->xbytes(kb));
  uk->packx(kb, 0, kb / 2, x, xq2);
  uk->packx(kb, kb / 2, kb, x, xq2);
  const size_t cut = n / 2;
  uk->fn(kb, cut, idx, w, ldw, xq2, c2);
  uk->fn(kb, n - cut, idx + cut, w, ldw, xq2, c2 + cut);
  for (size_t i = 0; i < n; i++) {
    if (memcmp(&c[i], &c2[i], sizeof(float)) != 0)
      fail_msg("%s kb=%zu n=%zu: split pack / cut list changes c[%zu]: %.9g vs %.9g", uk->name, kb, n, i, (double)c[i],
               (double)c2[i]);
  }
  free(w), free(x), free(xq), free(xq2);
}

static void test_qrows_ukernels(void **state) {
  (void)state;
  int tested = 0;
  for (size_t u = 0; u < spr_qrows_ukernels_count; u++) {
    const struct spr_qrows_ukernel *uk = &spr_qrows_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    /* blocks per row: 1, the two-block step's edges, an odd count, TinyLlama's 64 */
    const size_t kbs[] = {1, 2, 3, 7, 64};
    const size_t ns[] = {1, 3, 4, 5, 33};
    for (size_t i = 0; i < 5; i++)
      for (size_t j = 0; j < 5; j++) check_qrows(uk, kbs[i], ns[j], 1000 * u + 10 * i + j);
    tested++;
  }
  assert_true(tested >= 2);
}

/* ---- transposing requantizers ---------------------------------------------------------- */

static void test_rqt_ukernels(void **state) {
  (void)state;
  int tested = 0;
  for (size_t u = 0; u < spr_rqt_ukernels_count; u++) {
    const struct spr_rqt_ukernel *uk = &spr_rqt_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    const struct spr_rqt_ukernel *sc = spr_rqt_select(uk->type, 0);
    const size_t nbws[] = {32, 64, 96, 160};
    for (size_t i = 0; i < 4; i++) {
      const size_t nbw = nbws[i], row_e = nbw + 64, bb = spr_dtype_block_bytes(uk->type);
      uint8_t *w = make_rows(uk->type, 32, row_e, 500 + 10 * u + i);
      const size_t ldw = spr_quant_row_bytes(uk->type, (int64_t)row_e), ldq = 34 * 3 + 6;
      if (i == 3) memset(w + 2 * ldw + bb, 0, ldw - bb); /* a zero segment in one row */
      if (i == 2) /* the second block of the strip zero (scale +-0) in every row: amax 0 */
        for (size_t kk = 0; kk < 32; kk++) {
          const uint16_t z = kk & 1 ? 0x8000u : 0;
          memcpy(w + kk * ldw + 2 * bb, &z, sizeof z);
        }
      const bool inf_block = i == 1 && uk->type == SPR_DTYPE_Q4_0;
      if (inf_block) { /* Q4_0: a scale of +inf in the strip's second block: that block's columns are zero */
        const uint16_t inf = 0x7C00u;
        memcpy(w + 7 * ldw + 2 * bb, &inf, sizeof inf);
      }
      uint8_t *got = calloc(nbw * ldq, 1), *want = calloc(nbw * ldq, 1);
      float *rows = malloc(32 * row_e * sizeof(float));
      for (size_t kk = 0; kk < 32; kk++)
        spr_dequantize_row_get(uk->type)(w + kk * ldw, rows + kk * row_e, (int64_t)row_e);
      uk->fn(w + bb, ldw, nbw, got + 34, ldq);
      sc->fn(w + bb, ldw, nbw, want + 34, ldq);
      if (memcmp(got, want, nbw * ldq) != 0) fail_msg("%s nbw=%zu: bytes differ from %s", uk->name, nbw, sc->name);
      for (size_t j = 0; j < nbw; j++) { /* each code within half a step of the exact value */
        if (inf_block && j >= 32) {
          for (size_t t = 0; t < 34; t++)
            if (got[j * ldq + 34 + t] != 0)
              fail_msg("%s: column %zu of the block with an inf scale not zero", uk->name, j);
          continue;
        }
        uint16_t h;
        memcpy(&h, got + j * ldq + 34, 2);
        const double d = spr_fp16_to_f32(h);
        for (size_t kk = 0; kk < 32; kk++) {
          const double v = rows[kk * row_e + 32 + j], q = (int8_t)got[j * ldq + 36 + kk];
          if (!(fabs(q * d - v) <= 0.5 * d + 1e-3 * fabs(v) + 1e-30))
            fail_msg("%s nbw=%zu column %zu row %zu: %g * %g vs %g", uk->name, nbw, j, kk, q, d, v);
        }
      }
      free(w), free(got), free(want), free(rows);
    }
    tested++;
  }
  assert_true(tested >= 2);
}

/* ---- requantizers into packed panels ---------------------------------------------------- */

/* Q4_0 rows whose blocks' scales spread over 1/40 .. 4 of each other (rows
 * scaled), plus a zero group and a group with a NaN scale: each rqtp entry
 * writes the bytes of the scalar rqt entry followed by its layout's packw,
 * for strips of 2 and of 10 panels (more than the 8 whose scales the AVX-512
 * entry sets up at a time). */
static void test_rqtp_ukernels(void **state) {
  (void)state;
  int tested = 0;
  for (size_t u = 0; u < spr_rqtp_ukernels_count; u++) {
    const struct spr_rqtp_ukernel *uk = &spr_rqtp_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    const struct spr_qgemm_packed *pk = uk->packed;
    const struct spr_rqt_ukernel *sc = spr_rqt_select(uk->type, 0);
    const size_t kbs[] = {1, 2, 5};
    for (size_t i = 0; i < 3; i++) {
      const size_t kb = kbs[i], rows = 32 * kb, row_e = 352, bb = spr_dtype_block_bytes(uk->type);
      float *f = malloc(rows * row_e * sizeof(float));
      spr_test_fill(f, rows * row_e, 900 + 10 * u + i, -1.0f, 1.0f);
      for (size_t r = 0; r < rows; r++) {
        const float s = r % 7 == 3 ? 0.025f : r % 5 == 1 ? 4.0f : 1.0f;
        for (size_t c = 0; c < row_e; c++) f[r * row_e + c] *= s;
      }
      const size_t ldw = spr_quant_row_bytes(uk->type, (int64_t)row_e);
      uint8_t *w = malloc(ldw * rows);
      spr_quantize_row_get(uk->type)(f, w, (int64_t)(rows * row_e));
      if (kb == 5) {
        for (size_t kk = 0; kk < 32; kk++) memset(w + (32 + kk) * ldw + bb, 0, 2); /* group 1: scales 0 */
        const uint16_t nan = 0x7E00u;
        memcpy(w + (3 * 32 + 9) * ldw + 2 * bb, &nan, 2); /* group 3, second panel: a NaN scale */
      }
      const size_t ldq = 34 * kb, pbytes = pk->wbytes(kb), np = i == 1 ? 10 : 2; /* from the strip's second block */
      uint8_t *wq = calloc(32 * ldq, 1), *want = spr_test_aligned_alloc(np * pbytes),
              *got = spr_test_aligned_alloc(np * pbytes);
      memset(want, 0xA5, np * pbytes);
      memset(got, 0x5A, np * pbytes);
      for (size_t p = 0; p < np; p++) {
        for (size_t gi = 0; gi < kb; gi++) sc->fn(w + 32 * gi * ldw + (1 + p) * bb, ldw, 32, wq + 34 * gi, ldq);
        pk->packw(kb, 32, wq, ldq, want + p * pbytes);
      }
      uk->fn(w + bb, ldw, kb, np, got);
      for (size_t b = 0; b < np * pbytes; b++)
        if (got[b] != want[b])
          fail_msg("%s kb=%zu: panel %zu byte %zu (block %zu) is %u, %s + %s wrote %u", uk->name, kb, b / pbytes,
                   b % pbytes, b % pbytes / (pbytes / kb), got[b], sc->name, pk->name, want[b]);
      free(f), free(w), free(wq), free(want), free(got);
    }
    tested++;
  }
#if SPR_ENABLE_AVX512
  if (spr_cpu_isa() & SPR_ISA_X86_AVX512VNNI) assert_true(tested >= 1);
#endif
  (void)tested;
}

/* ---- strip dequantizers ---------------------------------------------------------------- */

static void test_deq_ukernels(void **state) {
  (void)state;
  int tested = 0;
  for (size_t u = 0; u < spr_deq_ukernels_count; u++) {
    const struct spr_deq_ukernel *uk = &spr_deq_ukernels[u];
    if (!host_has(uk->isa)) {
      printf("skip %s (ISA not on this host)\n", uk->name);
      continue;
    }
    const size_t ns[] = {32, 64, 96, 224, 2048};
    for (size_t i = 0; i < 5; i++) {
      const size_t n = ns[i];
      uint8_t *w = make_rows(uk->type, 1, n, 77 + 10 * u + i);
      float *got = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
      uk->fn(w, got, n);
      spr_dequantize_row_get(uk->type)(w, want, (int64_t)n);
      for (size_t e = 0; e < n; e++) {
        if (memcmp(&got[e], &want[e], sizeof(float)) != 0)
          fail_msg("%s n=%zu: y[%zu] = %.9g, ops/quant %.9g", uk->name, n, e, (double)got[e], (double)want[e]);
      }
      free(w), free(got), free(want);
    }
    tested++;
  }
  assert_true(tested >= 2);
}

/* ---- selection kernels -------------------------------------------------------------- */

/* activations with repeated values, zeros, -0 and a few large ones */
static void make_acts(float *a, size_t n, uint64_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < n; i++) {
    const uint64_t r = spr_test_rng_next(&s);
    switch (r % 8) {
      case 0:
        a[i] = 0.0f;
        break;
      case 1:
        a[i] = -0.0f;
        break;
      case 2:
        a[i] = (float)(int)(r % 5) - 2.0f; /* ties */
        break;
      default:
        a[i] = spr_test_rng_uniform(&s, -1.5f, 1.0f);
    }
  }
}

/* The selection from the kernels (top-k by `topk`), as CORE_SELECT runs them. */
static size_t select_kernels(spr_core_topk_fn topk, const float *a, size_t T, size_t F, size_t step, float alpha,
                             float beta, int32_t *core) {
  int32_t *freq = calloc(F, sizeof(int32_t));
  void *keys = spr_test_aligned_alloc(spr_core_topk_scratch_bytes(F));
  long long pos = 0, seen = 0;
  for (size_t t0 = 0; t0 < T; t0 += step) {
    const size_t t1 = t0 + step < T ? t0 + step : T;
    for (size_t t = t0; t < t1; t++) pos += (long long)spr_core_count_positive(a + t * F, F);
    seen += (long long)(t1 - t0);
    const double kd = (double)alpha * (double)pos / (double)seen;
    const size_t k = kd >= (double)F ? F : (size_t)kd;
    for (size_t t = t0; t < t1; t++) topk(a + t * F, F, k, keys, freq, (t & 1) != 0);
  }
  const size_t c = spr_core_count(beta, F);
  spr_core_pick(freq, F, c, core);
  free(freq);
  free(keys);
  return c;
}

static void test_select_kernels(void **state) {
  (void)state;
  const size_t Fs[] = {1, 5, 64, 172, 1000}, Ts[] = {1, 3, 17};
  const float alphas[] = {0.2f, 1.0f}, betas[] = {0.1f, 0.4f, 1.0f};
  unsigned tested = 0;
  for (size_t u = 0; u < spr_topk_ukernels_count; u++) {
    const struct spr_topk_ukernel *uk = &spr_topk_ukernels[u];
    if (!host_has(uk->isa)) {
      print_message("skip %s (not on this CPU)\n", uk->name);
      continue;
    }
    tested++;
    unsigned c = 0;
    for (size_t fi = 0; fi < 5; fi++)
      for (size_t ti = 0; ti < 3; ti++)
        for (size_t ai = 0; ai < 2; ai++)
          for (size_t bi = 0; bi < 3; bi++, c++) {
            const size_t F = Fs[fi], T = Ts[ti], step = c % 2 ? 4 : T;
            float *a = malloc(T * F * sizeof(float));
            make_acts(a, T * F, 500 + c);
            int32_t *got = malloc(F * sizeof(int32_t)), *want = malloc(F * sizeof(int32_t));
            const size_t n1 = select_kernels(uk->fn, a, T, F, step, alphas[ai], betas[bi], got);
            const size_t n2 = spr_core_select_ref(a, T, F, step, alphas[ai], betas[bi], want);
            assert_int_equal(n1, n2);
            for (size_t i = 0; i < n1; i++) {
              if (got[i] != want[i])
                fail_msg("%s: selection F=%zu T=%zu step=%zu alpha=%g beta=%g: core[%zu] = %d, oracle %d", uk->name, F,
                         T, step, (double)alphas[ai], (double)betas[bi], i, got[i], want[i]);
            }
            free(a), free(got), free(want);
          }
  }
  assert_true(tested >= 1);
  if (spr_cpu_isa() & SPR_ISA_X86_AVX512F) assert_true(tested >= 2);
  /* pick: all-zero counts keep the lowest ids; n_core = F keeps everything; ties by index */
  int32_t freq[6] = {0, 0, 0, 0, 0, 0}, core[6];
  spr_core_pick(freq, 6, 2, core);
  assert_int_equal(core[0], 0);
  assert_int_equal(core[1], 1);
  const int32_t f2[6] = {1, 3, 3, 0, 3, 2};
  spr_core_pick(f2, 6, 2, core);
  assert_int_equal(core[0], 1);
  assert_int_equal(core[1], 2);
  spr_core_pick(f2, 6, 4, core);
  assert_int_equal(core[0], 1), assert_int_equal(core[1], 2), assert_int_equal(core[2], 4),
      assert_int_equal(core[3], 5);
  spr_core_pick(f2, 6, 6, core);
  for (int i = 0; i < 6; i++) assert_int_equal(core[i], i);
  /* random counts below and above the pick's histogram range (256: one pass; else
   * bisection) against a brute-force ranking */
  {
    enum { PF = 700 };
    int32_t fr[PF], got[PF];
    bool taken[PF];
    uint32_t seed = 99;
    const int32_t ranges[3] = {40, 255, 5000};
    const size_t picks[4] = {1, 7, 280, PF};
    for (int ri = 0; ri < 3; ri++)
      for (int pi = 0; pi < 4; pi++) {
        for (size_t n = 0; n < PF; n++) {
          seed = seed * 1664525u + 1013904223u;
          fr[n] = (int32_t)((seed >> 8) % (uint32_t)(ranges[ri] + 1));
        }
        const size_t nc = picks[pi];
        spr_core_pick(fr, PF, nc, got);
        /* brute force: nc times the largest count not yet taken, lowest index on ties */
        memset(taken, 0, sizeof taken);
        for (size_t i = 0; i < nc; i++) {
          size_t best = PF;
          for (size_t n = 0; n < PF; n++)
            if (!taken[n] && (best == PF || fr[n] > fr[best])) best = n;
          taken[best] = true;
        }
        size_t out = 0;
        for (size_t n = 0; n < PF; n++)
          if (taken[n]) {
            if (got[out] != (int32_t)n)
              fail_msg("pick counts 0..%d, n_core %zu: core[%zu] = %d, brute force %zu", ranges[ri], nc, out, got[out],
                       n);
            out++;
          }
        assert_int_equal(out, nc);
      }
  }
  assert_int_equal(spr_core_count(0.4f, 5632), 2252);
  assert_int_equal(spr_core_count(0.3f, 170), 51);
  assert_int_equal(spr_core_count(1e-6f, 10), 1);
  assert_int_equal(spr_core_count(1.0f, 172), 172);
}

/* n ranks before m: larger value first (+NaN above +inf, -0 equal to +0), then lower index */
static bool ranks_before(const float *a, size_t n, size_t m) {
  const bool nn = isnan(a[n]), mn = isnan(a[m]);
  if (nn || mn) return nn && mn ? n < m : nn;
  return a[n] > a[m] || (a[n] == a[m] && n < m);
}

/* Every top-k entry against a brute-force ranking, row by row: long rows of
 * SiLU(g) * u (the bin of the k-th largest holds many), one-value rows, a
 * row with fewer positives than k (the histogram of every key), +NaN and
 * infinities, k = 1 and k = F, lengths around the vector width. */
static void test_topk_ukernels(void **state) {
  (void)state;
  const size_t Fs[] = {1, 15, 16, 17, 33, 1000, 5632, 5633};
  unsigned tested = 0;
  for (size_t u = 0; u < spr_topk_ukernels_count; u++) {
    const struct spr_topk_ukernel *uk = &spr_topk_ukernels[u];
    if (!host_has(uk->isa)) continue;
    tested++;
    for (size_t fi = 0; fi < sizeof Fs / sizeof Fs[0]; fi++) {
      const size_t F = Fs[fi];
      float *a = malloc(F * sizeof(float));
      int32_t *got = malloc(F * sizeof(int32_t)), *want = malloc(F * sizeof(int32_t));
      void *keys = spr_test_aligned_alloc(spr_core_topk_scratch_bytes(F));
      for (int kind = 0; kind < 5; kind++) {
        uint64_t s = 900 + 10 * fi + (uint64_t)kind;
        for (size_t n = 0; n < F; n++) {
          const float g = spr_test_rng_uniform(&s, -3.0f, 3.0f), v = spr_test_rng_uniform(&s, -3.0f, 3.0f);
          switch (kind) {
            case 0:
              a[n] = g / (1.0f + expf(-g)) * v;
              break; /* SiLU(g) * u */
            case 1:
              a[n] = 0.5f;
              break; /* one value: ties only */
            case 2:
              a[n] = n % 7 == 0 ? 1.0f : -fabsf(g) - 0.0f;
              break; /* few positives */
            case 3:
              a[n] = n % 5 == 0 ? NAN : n % 5 == 1 ? INFINITY : n % 5 == 2 ? -INFINITY : g;
              break;
            default:
              a[n] = n % 3 == 0 ? -0.0f : n % 3 == 1 ? 0.0f : 1e-3f * g;
              break; /* zeros of both signs */
          }
        }
        const size_t ks[] = {1, F / 10 + 1, F / 2, F};
        for (size_t ki = 0; ki < 4; ki++) {
          const size_t k = ks[ki] < F ? ks[ki] : F;
          memset(got, 0, F * sizeof(int32_t));
          uk->fn(a, F, k, keys, got, ki % 2 == 1);
          for (size_t n = 0; n < F; n++) {
            size_t rank = 0;
            for (size_t m = 0; m < F && rank < k; m++) rank += ranks_before(a, m, n);
            want[n] = rank < k;
          }
          for (size_t n = 0; n < F; n++)
            if (got[n] != want[n])
              fail_msg("%s F=%zu kind %d k=%zu: neuron %zu counted %d, brute force %d", uk->name, F, kind, k, n, got[n],
                       want[n]);
        }
      }
      free(a), free(got), free(want), free(keys);
    }
  }
  assert_true(tested >= 1);
}

/* ---- CORE_SELECT op ------------------------------------------------------------------------ */

static void run_select(const float *a, size_t T, size_t F, float alpha, float beta, struct spr_test_core_state *b,
                       int threads) {
  struct spr_tensor ts[3];
  const int64_t ane[2] = {(int64_t)F, (int64_t)T}, sne[1] = {(int64_t)b->sel_words}, cne[1] = {SPR_CORE_CTL_WORDS + 8};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, ane, (void *)a);
  spr_test_tensor(&ts[1], SPR_DTYPE_I32, 1, cne, b->ctl);
  spr_test_tensor(&ts[2], SPR_DTYPE_I32, 1, sne, b->sel);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_CORE_SELECT;
  nd.n_src = 2;
  nd.src[0] = 0, nd.src[1] = 1, nd.dst = 2;
  nd.p.core.alpha = alpha;
  nd.p.core.beta = beta;
  struct spr_error err;
  if (spr_test_op_run(ts, &nd, SPR_ISA_ALL, threads, 1, NULL, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
}

static void test_select_op(void **state) {
  (void)state;
  const size_t F = 300, T1 = 9, T2 = 5;
  float *a = malloc((T1 + T2) * F * sizeof(float));
  make_acts(a, (T1 + T2) * F, 42);
  int32_t *want = malloc(F * sizeof(int32_t));
  struct spr_test_core_state b[2];
  for (int th = 1; th <= 2; th++) {
    struct spr_test_core_state *s = &b[th - 1];
    spr_test_core_state_init(s, F);
    memset(s->sel, 0x5A, s->sel_words * sizeof(int32_t)); /* garbage: new_window must clear it */
    spr_test_core_ctl(s)->mode = SPR_CORE_MODE_SELECT;
    spr_test_core_ctl(s)->new_window = 1;
    run_select(a, T1, F, 0.2f, 0.4f, s, th);
    size_t n = spr_core_select_ref(a, T1, F, T1, 0.2f, 0.4f, want);
    assert_int_equal(spr_test_core_sel(s)->n_core, (int32_t)n);
    assert_memory_equal(spr_core_sel_core(spr_test_core_sel(s), F), want, n * sizeof(int32_t));
    assert_int_equal(spr_test_core_sel(s)->tokens, (int64_t)T1);
    /* a second step of the same window: the oracle in two steps */
    spr_test_core_ctl(s)->new_window = 0;
    run_select(a + T1 * F, T2, F, 0.2f, 0.4f, s, th);
    /* steps of T1 then T2 rows: the oracle takes a fixed step, so feed it the same cut */
    n = spr_core_select_ref(a, T1 + T2, F, T1, 0.2f, 0.4f, want); /* rows 0..8, then 9..13 (< T1 rows) */
    assert_memory_equal(spr_core_sel_core(spr_test_core_sel(s), F), want, n * sizeof(int32_t));
    /* other modes leave the state alone */
    int32_t *copy = malloc(s->sel_words * sizeof(int32_t));
    memcpy(copy, s->sel, s->sel_words * sizeof(int32_t));
    spr_test_core_ctl(s)->mode = SPR_CORE_MODE_SPARSE;
    run_select(a, 1, F, 0.2f, 0.4f, s, th);
    spr_test_core_ctl(s)->mode = SPR_CORE_MODE_DENSE;
    run_select(a, T1, F, 0.2f, 0.4f, s, th);
    assert_memory_equal(copy, s->sel, s->sel_words * sizeof(int32_t));
    free(copy);
  }
  assert_memory_equal(b[0].sel, b[1].sel, b[0].sel_words * sizeof(int32_t));
  for (int i = 0; i < 2; i++) spr_test_core_state_free(&b[i]);
  free(a), free(want);
}

/* ---- GEMM_ROWS ------------------------------------------------------------------------------- */

static void gemm_rows_case(enum spr_dtype t, size_t K, size_t N, size_t n_core, uint64_t seed) {
  uint8_t *w = make_rows(t, N, K, seed);
  float *x = spr_test_aligned_alloc(K * sizeof(float)), *dense = spr_test_aligned_alloc(N * sizeof(float));
  float *sparse[2] = {spr_test_aligned_alloc(N * sizeof(float)), spr_test_aligned_alloc(N * sizeof(float))};
  spr_test_fill(x, K, seed + 1, -1.0f, 1.0f);
  struct spr_test_core_state b;
  spr_test_core_state_init(&b, N);
  int32_t *core = spr_core_sel_core(spr_test_core_sel(&b), N);
  spr_test_pick_ids(core, n_core, N, seed + 2);
  spr_test_core_sel(&b)->n_core = (int32_t)n_core;
  struct spr_tensor ts[5];
  const int64_t xne[2] = {(int64_t)K, 1}, wne[2] = {(int64_t)K, (int64_t)N}, dne[2] = {(int64_t)N, 1};
  const int64_t sne[1] = {(int64_t)b.sel_words}, cne[1] = {SPR_CORE_CTL_WORDS + 8};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, xne, x);
  spr_test_tensor(&ts[1], t, 2, wne, w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, dne, dense);
  spr_test_tensor(&ts[3], SPR_DTYPE_I32, 1, sne, b.sel);
  spr_test_tensor(&ts[4], SPR_DTYPE_I32, 1, cne, b.ctl);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_GEMM_ROWS;
  nd.n_src = 6;
  const int32_t src[6] = {0, 1, -1, -1, 3, 4};
  memcpy(nd.src, src, sizeof src);
  nd.dst = 2;
  nd.p.gemm.act = SPR_ACT_SILU;
  struct spr_error err;
  spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SELECT; /* dense */
  if (spr_test_op_run(ts, &nd, SPR_ISA_ALL, 1, 1, NULL, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
  spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SPARSE;
  const char *name = NULL;
  for (int th = 1; th <= 2; th++) {
    ts[2].data = sparse[th - 1];
    for (size_t i = 0; i < N; i++) sparse[th - 1][i] = NAN;
    if (spr_test_op_run(ts, &nd, SPR_ISA_ALL, th, 1, &name, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
  }
  /* Q4_0 / Q8_0 with a row-gathered ukernel (not the identity set): the
   * ukernel's own sum order, so the pre-activation against the double oracle */
  const bool qrows = n_core < N && spr_qrows_select(t, spr_cpu_isa()) != NULL;
  if (qrows) {
    float *pre = malloc(n_core * sizeof(float));
    double *mag = malloc(n_core * sizeof(double));
    nd.p.gemm.act = SPR_ACT_NONE;
    ts[2].data = sparse[0];
    if (spr_test_op_run(ts, &nd, SPR_ISA_ALL, 1, 1, NULL, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
    spr_qrows_ref(t, K, n_core, core, w, spr_quant_row_bytes(t, (int64_t)K), x, pre, mag);
    for (size_t i = 0; i < n_core; i++) {
      const double tol = (double)(K / 32 + 4) * FLT_EPSILON * mag[i] + 1e-30;
      if (!(fabs((double)sparse[0][i] - (double)pre[i]) <= tol))
        fail_msg("gemm_rows %s (%s) K=%zu N=%zu n_core=%zu: pre-activation %zu = %.9g, oracle %.9g", spr_dtype_name(t),
                 name, K, N, n_core, i, (double)sparse[0][i], (double)pre[i]);
    }
    nd.p.gemm.act = SPR_ACT_SILU;
    for (int th = 1; th <= 2; th++) {
      ts[2].data = sparse[th - 1];
      if (spr_test_op_run(ts, &nd, SPR_ISA_ALL, th, 1, NULL, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
    }
    free(pre), free(mag);
  }
  for (size_t i = 0; i < n_core && !qrows; i++) {
    if (memcmp(&sparse[0][i], &dense[core[i]], sizeof(float)) != 0)
      fail_msg("gemm_rows %s (%s) K=%zu N=%zu n_core=%zu: out[%zu] = %.9g, dense row %d = %.9g", spr_dtype_name(t),
               name, K, N, n_core, i, (double)sparse[0][i], core[i], (double)dense[core[i]]);
  }
  assert_memory_equal(sparse[0], sparse[1], n_core * sizeof(float));
  free(w), free(x), free(dense), free(sparse[0]), free(sparse[1]);
  spr_test_core_state_free(&b);
}

static void test_gemm_rows(void **state) {
  (void)state;
  const enum spr_dtype types[] = {SPR_DTYPE_F32,  SPR_DTYPE_F16,  SPR_DTYPE_Q8_0,
                                  SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K, SPR_DTYPE_Q6_K};
  for (size_t ti = 0; ti < 6; ti++) {
    const size_t K = spr_dtype_block_elems(types[ti]) == 256 ? 512 : 96;
    const size_t N = 137, cores[] = {1, 2, 3, 17, 54, N};
    for (size_t c = 0; c < 6; c++) gemm_rows_case(types[ti], K, N, cores[c], 900 + 10 * ti + c);
  }
}

/* ---- FFN_DOWN ---------------------------------------------------------------------------------- */

/* dst[t][e] = res + sum_n h[t][n] * W(n, e): W given as down {F, E} (rows e) or down_t {E, F} (rows n) */
static void down_ref(enum spr_dtype t, bool transposed, const uint8_t *w, size_t F, size_t E, size_t T, const float *h,
                     const float *res, float *out) {
  float *wd = malloc(F * E * sizeof(float)); /* [F][E] */
  if (transposed) {
    spr_dequantize_row_get(t)(w, wd, (int64_t)(F * E));
  } else {
    float *tmp = malloc(F * E * sizeof(float)); /* [E][F] */
    spr_dequantize_row_get(t)(w, tmp, (int64_t)(F * E));
    for (size_t e = 0; e < E; e++)
      for (size_t n = 0; n < F; n++) wd[n * E + e] = tmp[e * F + n];
    free(tmp);
  }
  for (size_t r = 0; r < T; r++)
    for (size_t e = 0; e < E; e++) {
      double s = res[r * E + e];
      for (size_t n = 0; n < F; n++) s += (double)h[r * F + n] * (double)wd[n * E + e];
      out[r * E + e] = (float)s;
    }
  free(wd);
}

struct down_case {
  enum spr_dtype t;
  bool transposed;
  size_t F, E, T, n_core;
};

static void run_down(const struct down_case *c, const uint8_t *w, const float *h, const float *res,
                     struct spr_test_core_state *b, int threads, float *out) {
  struct spr_tensor ts[6];
  const int64_t hne[2] = {(int64_t)c->F, (int64_t)c->T}, dne[2] = {(int64_t)c->E, (int64_t)c->T};
  const int64_t wne[2] = {c->transposed ? (int64_t)c->E : (int64_t)c->F, c->transposed ? (int64_t)c->F : (int64_t)c->E};
  const int64_t sne[1] = {(int64_t)b->sel_words}, cne[1] = {SPR_CORE_CTL_WORDS + 8};
  spr_test_tensor(&ts[0], SPR_DTYPE_F32, 2, hne, (void *)h);
  spr_test_tensor(&ts[1], c->t, 2, wne, (void *)w);
  spr_test_tensor(&ts[2], SPR_DTYPE_F32, 2, dne, out);
  spr_test_tensor(&ts[3], SPR_DTYPE_F32, 2, dne, (void *)res);
  spr_test_tensor(&ts[4], SPR_DTYPE_I32, 1, sne, b->sel);
  spr_test_tensor(&ts[5], SPR_DTYPE_I32, 1, cne, b->ctl);
  struct spr_node nd;
  memset(&nd, 0, sizeof nd);
  nd.op = SPR_OP_FFN_DOWN;
  nd.n_src = 6;
  const int32_t src[6] = {0, 1, -1, 3, 4, 5};
  memcpy(nd.src, src, sizeof src);
  nd.dst = 2;
  nd.p.core.down_t = c->transposed;
  struct spr_error err;
  if (spr_test_op_run(ts, &nd, SPR_ISA_ALL, threads, 1, NULL, &err) != SPR_STATUS_OK) fail_msg("%s", err.msg);
}

/* aarch64-linux-gnu-gcc 12 crashes (internal compiler error in
 * vect_transform_reduction) vectorizing the fmax reduction below. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__aarch64__)
__attribute__((optimize("no-tree-vectorize")))
#endif
static void
check_close(const char *what, const struct down_case *c, const float *got, const float *want, size_t n,
            double tol_rel) {
  double scale = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)want[i]));
  for (size_t i = 0; i < n; i++) {
    if (!(fabs((double)got[i] - (double)want[i]) <= tol_rel * (1.0 + scale)))
      fail_msg("ffn_down %s %s%s F=%zu E=%zu T=%zu n_core=%zu: [%zu] = %.9g, want %.9g", what, spr_dtype_name(c->t),
               c->transposed ? " (down_t)" : "", c->F, c->E, c->T, c->n_core, i, (double)got[i], (double)want[i]);
  }
}

static void down_case(const struct down_case *c, uint64_t seed) {
  const size_t F = c->F, E = c->E, T = c->T;
  uint8_t *w = c->transposed ? make_rows(c->t, F, E, seed) : make_rows(c->t, E, F, seed);
  float *h = spr_test_aligned_alloc(T * F * sizeof(float)), *res = spr_test_aligned_alloc(T * E * sizeof(float));
  float *out[2] = {spr_test_aligned_alloc(T * E * sizeof(float)), spr_test_aligned_alloc(T * E * sizeof(float))};
  float *ref = calloc(T * E, sizeof(float)), *hs = calloc(T * F, sizeof(float));
  spr_test_fill(h, T * F, seed + 1, -1.0f, 1.0f);
  spr_test_fill(res, T * E, seed + 2, -1.0f, 1.0f);
  struct spr_test_core_state b;
  spr_test_core_state_init(&b, F);
  int32_t *core = spr_core_sel_core(spr_test_core_sel(&b), F);
  spr_test_pick_ids(core, c->n_core, F, seed + 3);
  spr_test_core_sel(&b)->n_core = (int32_t)c->n_core;
  /* dense (mode SELECT): every neuron */
  spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SELECT;
  for (int th = 1; th <= 2; th++) run_down(c, w, h, res, &b, th, out[th - 1]);
  assert_memory_equal(out[0], out[1], T * E * sizeof(float));
  down_ref(c->t, c->transposed, w, F, E, T, h, res, ref);
  /* the quantized GEMM/GEMV quantizes h (and prefill through a quantized ffn_down_t requantizes W's columns) */
  /* (decode through a Q4_0 ffn_down_t quantizes a[i] * d to int8 per group of 32 neurons: spr_axpyq) */
  const bool quant_x = spr_dtype_block_elems(c->t) > 1 &&
                       (!c->transposed || (T > 1 && F % 32 == 0) || (T == 1 && c->t == SPR_DTYPE_Q4_0));
  check_close("dense", c, out[0], ref, T * E, quant_x ? 2e-2 : 1e-4);
  if (T == 1) {
    /* sparse: h holds the core activations compacted; the oracle sees them scattered */
    spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SPARSE;
    for (size_t i = 0; i < c->n_core; i++) hs[core[i]] = h[i];
    for (int th = 1; th <= 2; th++) run_down(c, w, h, res, &b, th, out[th - 1]);
    assert_memory_equal(out[0], out[1], E * sizeof(float));
    down_ref(c->t, c->transposed, w, F, E, 1, hs, res, ref);
    check_close("sparse", c, out[0], ref, E, quant_x ? 2e-2 : 1e-4);
    if (!c->transposed) {
      /* row-major: exactly the dense op on the scattered activations */
      spr_test_core_ctl(&b)->mode = SPR_CORE_MODE_SELECT;
      run_down(c, w, hs, res, &b, 1, out[1]);
      assert_memory_equal(out[0], out[1], E * sizeof(float));
    }
  }
  free(w), free(h), free(res), free(out[0]), free(out[1]), free(ref), free(hs);
  spr_test_core_state_free(&b);
}

static void test_ffn_down(void **state) {
  (void)state;
  const enum spr_dtype rm_types[] = {SPR_DTYPE_F32, SPR_DTYPE_F16, SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0, SPR_DTYPE_Q4_K};
  const enum spr_dtype t_types[] = {SPR_DTYPE_F32, SPR_DTYPE_F16, SPR_DTYPE_Q8_0, SPR_DTYPE_Q4_0};
  unsigned s = 0;
  for (size_t i = 0; i < 5; i++) {
    const size_t F = spr_dtype_block_elems(rm_types[i]) == 256 ? 512 : 160;
    const struct down_case c1 = {rm_types[i], false, F, 48, 1, 61};
    const struct down_case c2 = {rm_types[i], false, F, 48, 5, 61};
    down_case(&c1, 2000 + s++);
    down_case(&c2, 2000 + s++);
  }
  for (size_t i = 0; i < 4; i++) {
    const size_t Es[] = {32, 96, 288 + 32}, Ts[] = {1, 1, 19};
    for (size_t j = 0; j < 3; j++) {
      const struct down_case c = {t_types[i], true, 75 + 20 * j, Es[j], Ts[j], 1 + 11 * j};
      down_case(&c, 3000 + s++);
    }
    const struct down_case all = {t_types[i], true, 64, 64, 1, 64};
    down_case(&all, 3000 + s++);
    /* prefill with K a multiple of 32 and several column blocks */
    const struct down_case pre = {t_types[i], true, 160, 320 + 32, 19, 1};
    down_case(&pre, 3000 + s++);
    /* fewer rows than the packed-panel path takes (the GEMM ukernel on the requantized strips) */
    const struct down_case few = {t_types[i], true, 160, 320 + 32, 5, 1};
    down_case(&few, 3000 + s++);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_axpy_ukernels),  cmocka_unit_test(test_axpyq_edges),
      cmocka_unit_test(test_qrows_ukernels), cmocka_unit_test(test_deq_ukernels),
      cmocka_unit_test(test_rqt_ukernels),   cmocka_unit_test(test_rqtp_ukernels),
      cmocka_unit_test(test_select_kernels), cmocka_unit_test(test_topk_ukernels),
      cmocka_unit_test(test_select_op),      cmocka_unit_test(test_gemm_rows),
      cmocka_unit_test(test_ffn_down),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

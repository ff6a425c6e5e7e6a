/* ops/gemm/f32_gemm_avx512.c — AVX-512 GEMM/GEMV ukernels (see gemm.h for the contracts).
 *
 * GEMM tile: up to 16 rows (m, x broadcast from the packed X panel with
 * embedded-broadcast FMAs) x 16 columns (n, one zmm of the packed W slice):
 * 16 accumulators, one W load and 16 FMAs per k, and the tile is stored
 * straight into C's rows. A panel with R < 16 valid rows costs R FMAs per k. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/gemm/gemm.h"

/* In-place transpose of a 16x16 tile held in r[0..15] (row i -> column i). */
static inline void tr16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
/* rows now hold 4x4 blocks; exchange 128-bit lanes: first across i^4, then i^8 */
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) t[i] = r[i];
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) {
    if (i & 4) continue;
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 4], 0x88);
    r[i + 4] = _mm512_shuffle_f32x4(t[i], t[i + 4], 0xdd);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) t[i] = r[i];
#pragma GCC unroll 16
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

static inline __mmask16 mask16(size_t n) {
  return (__mmask16)((1u << n) - 1u);
}

/* Stores tile a[n][m] (already transposed into rows a[m][n]) to C. */
/* Tile = R rows (m) of 16 columns (n): acc row i = sum_k x[i][k] * W[k][0..15],
 * one W vector load and R FMAs with x broadcast from the packed panel per k.
 * The result is already in C's layout (no transpose). Panels with R <= 6
 * rows run CH = 2 chains per row (even and odd k) to hide the FMA latency.
 * acc holds the chains as [R*CH][16] between K blocks. */
static inline __attribute__((always_inline)) void gemm_rows(size_t kc, const float *xp, const float *wp, float *acc,
                                                            unsigned flags, size_t nr, const float *bias, float *c,
                                                            size_t ldc, const int R, const int CH) {
  __m512 a[16][2];
#pragma GCC unroll 16
  for (int i = 0; i < R; i++)
#pragma GCC unroll 2
    for (int h = 0; h < CH; h++)
      a[i][h] = (flags & SPR_GEMM_ACC_LOAD) ? _mm512_load_ps(acc + 16 * (CH * i + h)) : _mm512_setzero_ps();
  size_t k = 0;
  for (; k + (size_t)CH <= kc; k += (size_t)CH) {
#pragma GCC unroll 2
    for (int h = 0; h < CH; h++) {
      const __m512 w = _mm512_load_ps(wp + 16 * (k + (size_t)h));
      const float *x = xp + 16 * (k + (size_t)h);
#pragma GCC unroll 16
      for (int i = 0; i < R; i++) a[i][h] = _mm512_fmadd_ps(_mm512_set1_ps(x[i]), w, a[i][h]);
    }
  }
  if (k < kc) { /* CH == 2, odd kc: the last k goes to chain 0 */
    const __m512 w = _mm512_load_ps(wp + 16 * k);
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) a[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(xp[16 * k + (size_t)i]), w, a[i][0]);
  }
  if (!(flags & SPR_GEMM_FINAL)) {
#pragma GCC unroll 16
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
      for (int h = 0; h < CH; h++) _mm512_store_ps(acc + 16 * (CH * i + h), a[i][h]);
    return;
  }
  const __mmask16 nm = mask16(nr);
  const __m512 b = bias != NULL ? _mm512_maskz_loadu_ps(nm, bias) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int i = 0; i < R; i++) {
    const __m512 v = CH == 2 ? _mm512_add_ps(a[i][0], a[i][1]) : a[i][0];
    _mm512_mask_storeu_ps(c + (size_t)i * ldc, nm, _mm512_add_ps(v, b));
  }
}

#define ROWS_CASE(r, ch)                                        \
  case r:                                                       \
    gemm_rows(kc, xp, wp, acc, flags, nr, bias, c, ldc, r, ch); \
    return;

void spr_f32_gemm_ukernel_16x16__avx512f(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags,
                                         size_t mr, size_t nr, const float *bias, float *c, size_t ldc) {
  switch (mr) {
    ROWS_CASE(1, 2)
    ROWS_CASE(2, 2)
    ROWS_CASE(3, 2)
    ROWS_CASE(4, 2)
    ROWS_CASE(5, 2)
    ROWS_CASE(6, 2)
    ROWS_CASE(7, 1)
    ROWS_CASE(8, 1)
    ROWS_CASE(9, 1)
    ROWS_CASE(10, 1)
    ROWS_CASE(11, 1)
    ROWS_CASE(12, 1)
    ROWS_CASE(13, 1)
    ROWS_CASE(14, 1)
    ROWS_CASE(15, 1)
    default:
      gemm_rows(kc, xp, wp, acc, flags, nr, bias, c, ldc, 16, 1);
      return;
  }
}

/* ---- packing: up to 16 rows of k values -> [k][16] ------------------------ */

static inline __m512 load_row_f32(const void *p, __mmask16 km) {
  return _mm512_maskz_loadu_ps(km, p);
}

static inline __m512 load_row_f16(const void *p, __mmask16 km) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, p));
}

static inline __m512 load_row(const uint8_t *p, __mmask16 km, int f16) {
  return f16 ? load_row_f16(p, km) : load_row_f32(p, km);
}

/* rows (1..16) rows of k values (f32, or f16 when f16) at s with row stride
 * ld elements -> dst[k][16]; missing rows are zero (their loads are fully
 * masked, from a clamped address). */
static inline __attribute__((always_inline)) void pack16(size_t k, size_t rows, const void *src, size_t ld, float *dst,
                                                         const int f16) {
  const uint8_t *s = (const uint8_t *)src;
  const size_t es = f16 ? 2 : 4;
  size_t k0 = 0;
  for (; k0 + 16 <= k; k0 += 16) {
    __m512 r[16];
#pragma GCC unroll 16
    for (size_t i = 0; i < 16; i++) {
      const size_t ii = i < rows ? i : rows - 1;
      r[i] = load_row(s + (ii * ld + k0) * es, i < rows ? (__mmask16)0xffff : 0, f16);
    }
    tr16(r);
#pragma GCC unroll 16
    for (size_t j = 0; j < 16; j++) _mm512_store_ps(dst + 16 * (k0 + j), r[j]);
  }
  if (k0 < k) {
    const __mmask16 km = mask16(k - k0);
    __m512 r[16];
#pragma GCC unroll 16
    for (size_t i = 0; i < 16; i++) {
      const size_t ii = i < rows ? i : rows - 1;
      r[i] = load_row(s + (ii * ld + k0) * es, i < rows ? km : 0, f16);
    }
    tr16(r);
    float tmp[16][16] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (size_t j = 0; j < 16; j++) _mm512_store_ps(tmp[j], r[j]);
    memcpy(dst + 16 * k0, tmp, (k - k0) * sizeof tmp[0]);
  }
}

void spr_f32_gemm_packx_ukernel_16__avx512f(size_t k, size_t mr, const float *x, size_t ldx, float *xp) {
  pack16(k, mr, x, ldx, xp, 0);
}

void spr_f32_gemm_packw_ukernel_16__avx512f(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  pack16(kc, nr, w, ldw, wp, 0);
}

void spr_f16_gemm_packw_ukernel_16__avx512f(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  pack16(kc, nr, w, ldw, wp, 1);
}

/* ---- GEMV: 4 W rows at a time, vectorized along k ------------------------- */

/* [sum(a0), sum(a1), sum(a2), sum(a3)] with a fixed reduction tree. */
static inline __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 x01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 x23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(x01), _mm512_castps_pd(x23));
  const __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(x01), _mm512_castps_pd(x23));
  const __m512 y = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
  const __m128 s01 = _mm_add_ps(_mm512_extractf32x4_ps(y, 0), _mm512_extractf32x4_ps(y, 1));
  const __m128 s23 = _mm_add_ps(_mm512_extractf32x4_ps(y, 2), _mm512_extractf32x4_ps(y, 3));
  return _mm_add_ps(s01, s23);
}

/* m x 4 dot products; w[r] are the 4 row pointers (a tail group repeats its
 * last row so every row is computed by the same instruction sequence). W
 * streams from memory once: prefetch PF_BYTES ahead in each row. */
enum { PF_BYTES = 1024 };

static inline const char *ahead(const uint8_t *p) {
  return (const char *)((uintptr_t)p + PF_BYTES);
}

static inline __attribute__((always_inline)) void dot4(size_t k, const int m, const float *x, size_t ldx,
                                                       const uint8_t *const w[4], __m128 out[4], const int f16) {
  const size_t es = f16 ? 2 : 4;
  __m512 a[4][4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) a[i][r] = _mm512_setzero_ps();
  size_t k0 = 0;
  for (; k0 + 16 <= k; k0 += 16) {
    __m512 wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      _mm_prefetch(ahead(w[r] + k0 * es), _MM_HINT_T1);
      wv[r] = load_row(w[r] + k0 * es, (__mmask16)0xffff, f16);
    }
#pragma GCC unroll 4
    for (int i = 0; i < m; i++) {
      const __m512 xv = _mm512_loadu_ps(x + (size_t)i * ldx + k0);
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++) a[i][r] = _mm512_fmadd_ps(xv, wv[r], a[i][r]);
    }
  }
  if (k0 < k) {
    const __mmask16 km = mask16(k - k0);
    __m512 wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) wv[r] = load_row(w[r] + k0 * es, km, f16);
#pragma GCC unroll 4
    for (int i = 0; i < m; i++) {
      const __m512 xv = _mm512_maskz_loadu_ps(km, x + (size_t)i * ldx + k0);
#pragma GCC unroll 4
      for (int r = 0; r < 4; r++) a[i][r] = _mm512_fmadd_ps(xv, wv[r], a[i][r]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < m; i++) out[i] = reduce4(a[i][0], a[i][1], a[i][2], a[i][3]);
}

static inline __attribute__((always_inline)) void gemv(size_t k, size_t m, size_t n, const float *x, size_t ldx,
                                                       const void *wv, size_t ldw, const float *bias, float *c,
                                                       size_t ldc, const int f16) {
  const uint8_t *w = (const uint8_t *)wv;
  const size_t es = f16 ? 2 : 4;
  for (size_t j = 0; j < n; j += 4) {
    const size_t nr = n - j < 4 ? n - j : 4;
    const uint8_t *rows[4];
    for (size_t r = 0; r < 4; r++) rows[r] = w + (j + (r < nr ? r : nr - 1)) * ldw * es;
    __m128 s[4];
    switch (m) {
      case 1:
        dot4(k, 1, x, ldx, rows, s, f16);
        break;
      case 2:
        dot4(k, 2, x, ldx, rows, s, f16);
        break;
      case 3:
        dot4(k, 3, x, ldx, rows, s, f16);
        break;
      default:
        dot4(k, 4, x, ldx, rows, s, f16);
        break;
    }
    const __mmask8 nm = (__mmask8)((1u << nr) - 1u);
    const __m128 b = bias != NULL ? _mm_maskz_loadu_ps(nm, bias + j) : _mm_setzero_ps();
    for (size_t i = 0; i < m; i++) _mm_mask_storeu_ps(c + i * ldc + j, nm, _mm_add_ps(s[i], b));
  }
}

void spr_f32_gemv_ukernel_4__avx512f(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *w,
                                     size_t ldw, const float *bias, float *c, size_t ldc) {
  gemv(k, m, n, x, ldx, w, ldw, bias, c, ldc, 0);
}

void spr_f16_gemv_ukernel_4__avx512f(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *w,
                                     size_t ldw, const float *bias, float *c, size_t ldc) {
  gemv(k, m, n, x, ldx, w, ldw, bias, c, ldc, 1);
}

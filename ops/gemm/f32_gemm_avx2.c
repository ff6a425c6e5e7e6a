/* ops/gemm/f32_gemm_avx2.c — AVX2+FMA GEMM/GEMV ukernels (see gemm.h for the contracts).
 *
 * GEMM tile: rows of the 16-row X panel in groups of 6 (x broadcast) x 16
 * columns (two ymm of the packed W slice): 12 accumulators + 2 W vectors + 1
 * broadcast fit the 16 ymm registers; per k 2 loads + 6 broadcasts feed 12
 * FMAs, and rows land in C's layout. */
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "this file needs -mavx2 -mfma -mf16c"
#endif

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/gemm/gemm.h"

/* Lanes i < n set (n <= 8), for maskload/maskstore. */
static inline __m256i lanes(size_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

/* In-place 8x8 transpose. */
static inline void tr8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
  for (int i = 0; i < 8; i++) r[i] = t[i];
}

/* R (<= 6) rows of the tile starting at panel row i0: acc row i = sum_k
 * x[i0+i][k] * W[k][0..15] in two ymm; per k 2 W loads, R broadcasts of x,
 * 2R FMAs; the result is already in C's layout. acc holds rows [16][16]. */
static inline __attribute__((always_inline)) void rows6(size_t kc, const float *xp, const float *wp, float *acc,
                                                        unsigned flags, size_t i0, size_t nr, const float *bias,
                                                        float *c, size_t ldc, const int R) {
  __m256 a[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < R; i++)
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
      a[i][h] = (flags & SPR_GEMM_ACC_LOAD) ? _mm256_load_ps(acc + 16 * (i0 + (size_t)i) + 8 * h) : _mm256_setzero_ps();
  for (size_t k = 0; k < kc; k++) {
    const __m256 w0 = _mm256_load_ps(wp + 16 * k), w1 = _mm256_load_ps(wp + 16 * k + 8);
    const float *x = xp + 16 * k + i0;
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) {
      const __m256 b = _mm256_broadcast_ss(x + i);
      a[i][0] = _mm256_fmadd_ps(b, w0, a[i][0]);
      a[i][1] = _mm256_fmadd_ps(b, w1, a[i][1]);
    }
  }
  if (!(flags & SPR_GEMM_FINAL)) {
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) _mm256_store_ps(acc + 16 * (i0 + (size_t)i) + 8 * h, a[i][h]);
    return;
  }
  const size_t n0 = nr < 8 ? nr : 8, n1 = nr - n0;
  const __m256i m0 = lanes(n0), m1 = lanes(n1);
  const __m256 b0 = bias != NULL ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
  const __m256 b1 = bias != NULL && n1 > 0 ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < R; i++) {
    float *row = c + (i0 + (size_t)i) * ldc;
    if (nr == 16) {
      _mm256_storeu_ps(row, _mm256_add_ps(a[i][0], b0));
      _mm256_storeu_ps(row + 8, _mm256_add_ps(a[i][1], b1));
    } else {
      _mm256_maskstore_ps(row, m0, _mm256_add_ps(a[i][0], b0));
      if (n1 > 0) _mm256_maskstore_ps(row + 8, m1, _mm256_add_ps(a[i][1], b1));
    }
  }
}

static inline void rows_any(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags, size_t i0,
                            size_t r, size_t nr, const float *bias, float *c, size_t ldc) {
  switch (r) {
    case 1:
      rows6(kc, xp, wp, acc, flags, i0, nr, bias, c, ldc, 1);
      break;
    case 2:
      rows6(kc, xp, wp, acc, flags, i0, nr, bias, c, ldc, 2);
      break;
    case 3:
      rows6(kc, xp, wp, acc, flags, i0, nr, bias, c, ldc, 3);
      break;
    case 4:
      rows6(kc, xp, wp, acc, flags, i0, nr, bias, c, ldc, 4);
      break;
    case 5:
      rows6(kc, xp, wp, acc, flags, i0, nr, bias, c, ldc, 5);
      break;
    default:
      rows6(kc, xp, wp, acc, flags, i0, nr, bias, c, ldc, 6);
      break;
  }
}

/* A 16-row panel runs as row groups of 6, 6 and 4 over the same W slice (L1). */
void spr_f32_gemm_ukernel_16x16__avx2(size_t kc, const float *xp, const float *wp, float *acc, unsigned flags,
                                      size_t mr, size_t nr, const float *bias, float *c, size_t ldc) {
  for (size_t i0 = 0; i0 < mr; i0 += 6)
    rows_any(kc, xp, wp, acc, flags, i0, mr - i0 < 6 ? mr - i0 : 6, nr, bias, c, ldc);
}

/* ---- packing ------------------------------------------------------------------ */

static inline __m256 load8_f32(const void *p, size_t n) {
  if (n == 8) return _mm256_loadu_ps((const float *)p);
  return _mm256_maskload_ps((const float *)p, lanes(n));
}

static inline __m256 load8_f16(const void *p, size_t n) {
  if (n == 8) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
  uint16_t tmp[8] = {0};
  memcpy(tmp, p, n * sizeof(uint16_t));
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
}

/* rows (<= 8) rows of k values, element size esize, into dst[k][ld_dst] at
 * column offset 0..7 of each k, writing `width` (<= 8) lanes per k. */
#define DEFINE_PACK8(name, elem_t, load)                                                                         \
  static void name(size_t k, size_t rows, const elem_t *s, size_t ld, float *dst, size_t ld_dst, size_t width) { \
    const __m256i wm = lanes(width);                                                                             \
    for (size_t k0 = 0; k0 < k; k0 += 8) {                                                                       \
      const size_t kb = k - k0 < 8 ? k - k0 : 8;                                                                 \
      __m256 r[8];                                                                                               \
      for (size_t i = 0; i < 8; i++) r[i] = i < rows ? load(s + i * ld + k0, kb) : _mm256_setzero_ps();          \
      tr8(r);                                                                                                    \
      for (size_t j = 0; j < kb; j++) {                                                                          \
        if (width == 8) {                                                                                        \
          _mm256_storeu_ps(dst + ld_dst * (k0 + j), r[j]);                                                       \
        } else {                                                                                                 \
          _mm256_maskstore_ps(dst + ld_dst * (k0 + j), wm, r[j]);                                                \
        }                                                                                                        \
      }                                                                                                          \
    }                                                                                                            \
  }

DEFINE_PACK8(pack8_f32, float, load8_f32)
DEFINE_PACK8(pack8_f16, uint16_t, load8_f16)

void spr_f32_gemm_packx_ukernel_16__avx2(size_t k, size_t mr, const float *x, size_t ldx, float *xp) {
  pack8_f32(k, mr < 8 ? mr : 8, x, ldx, xp, 16, 8);
  pack8_f32(k, mr > 8 ? mr - 8 : 0, x + 8 * ldx, ldx, xp + 8, 16, 8);
}

void spr_f32_gemm_packw_ukernel_16__avx2(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  const float *s = (const float *)w;
  pack8_f32(kc, nr < 8 ? nr : 8, s, ldw, wp, 16, 8);
  pack8_f32(kc, nr > 8 ? nr - 8 : 0, s + 8 * ldw, ldw, wp + 8, 16, 8);
}

void spr_f16_gemm_packw_ukernel_16__avx2(size_t kc, size_t nr, const void *w, size_t ldw, float *wp) {
  const uint16_t *s = (const uint16_t *)w;
  pack8_f16(kc, nr < 8 ? nr : 8, s, ldw, wp, 16, 8);
  pack8_f16(kc, nr > 8 ? nr - 8 : 0, s + 8 * ldw, ldw, wp + 8, 16, 8);
}

/* ---- GEMV: 4 W rows x up to 2 X rows per pass, vectorized along k ---------------- */

/* W streams from memory once: prefetch this far ahead in each row. */
enum { PF_BYTES = 1024 };

/* [sum(a0), sum(a1), sum(a2), sum(a3)] with a fixed reduction tree. */
static inline __m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

#define DEFINE_DOT(name, elem_t, load)                                                                           \
  static inline __attribute__((always_inline)) void name(size_t k, const float *x, size_t ldx,                   \
                                                         const elem_t *const w[4], const int m, __m128 out[2]) { \
    __m256 a[2][4];                                                                                              \
    for (int i = 0; i < 2; i++)                                                                                  \
      for (int r = 0; r < 4; r++) a[i][r] = _mm256_setzero_ps();                                                 \
    for (size_t k0 = 0; k0 < k; k0 += 8) {                                                                       \
      const size_t kb = k - k0 < 8 ? k - k0 : 8;                                                                 \
      __m256 wv[4];                                                                                              \
      for (int r = 0; r < 4; r++) {                                                                              \
        _mm_prefetch((const char *)((uintptr_t)(w[r] + k0) + PF_BYTES), _MM_HINT_T1);                            \
        wv[r] = load(w[r] + k0, kb);                                                                             \
      }                                                                                                          \
      for (int i = 0; i < m; i++) {                                                                              \
        const __m256 xv = load8_f32(x + (size_t)i * ldx + k0, kb);                                               \
        for (int r = 0; r < 4; r++) a[i][r] = _mm256_fmadd_ps(xv, wv[r], a[i][r]);                               \
      }                                                                                                          \
    }                                                                                                            \
    for (int i = 0; i < m; i++) out[i] = reduce4(a[i][0], a[i][1], a[i][2], a[i][3]);                            \
  }

DEFINE_DOT(dot4_f32, float, load8_f32)
DEFINE_DOT(dot4_f16, uint16_t, load8_f16)

static inline void store4(__m128 s, size_t nr, const float *bias, float *c) {
  float t[4];
  _mm_storeu_ps(t, s);
  for (size_t r = 0; r < nr; r++) c[r] = t[r] + (bias != NULL ? bias[r] : 0.0f);
}

#define DEFINE_GEMV_UKERNEL(name, elem_t, dot)                                                                       \
  void name(size_t k, size_t m, size_t n, const float *x, size_t ldx, const void *wv, size_t ldw, const float *bias, \
            float *c, size_t ldc) {                                                                                  \
    const elem_t *w = (const elem_t *)wv;                                                                            \
    for (size_t j = 0; j < n; j += 4) {                                                                              \
      const size_t nr = n - j < 4 ? n - j : 4;                                                                       \
      const elem_t *rows[4];                                                                                         \
      for (size_t r = 0; r < 4; r++) rows[r] = w + (j + (r < nr ? r : nr - 1)) * ldw;                                \
      for (size_t i = 0; i < m; i += 2) {                                                                            \
        __m128 s[2];                                                                                                 \
        if (m - i >= 2) {                                                                                            \
          dot(k, x + i * ldx, ldx, rows, 2, s);                                                                      \
        } else {                                                                                                     \
          dot(k, x + i * ldx, ldx, rows, 1, s);                                                                      \
        }                                                                                                            \
        for (size_t u = 0; u < 2 && i + u < m; u++)                                                                  \
          store4(s[u], nr, bias != NULL ? bias + j : NULL, c + (i + u) * ldc + j);                                   \
      }                                                                                                              \
    }                                                                                                                \
  }

DEFINE_GEMV_UKERNEL(spr_f32_gemv_ukernel_4__avx2, float, dot4_f32)
DEFINE_GEMV_UKERNEL(spr_f16_gemv_ukernel_4__avx2, uint16_t, dot4_f16)

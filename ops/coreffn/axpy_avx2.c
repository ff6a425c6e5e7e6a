/* ops/coreffn/axpy_avx2.c — axpy-over-neurons ukernels with AVX2 + FMA
 * (contract in coreffn.h). A tile of 64 outputs lives in 8 ymm accumulators
 * while the selected neurons stream past, the segment PF neurons ahead
 * prefetched; tails use the same fused multiply-add per element. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"

enum { PF = 8 };

static inline const uint8_t *row_at(const uint8_t *w, size_t ldw, const int32_t *idx, size_t i) {
  return w + (idx != NULL ? (size_t)idx[i] : i) * ldw;
}

static inline void prefetch_bytes(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)p + off, _MM_HINT_T0);
  _mm_prefetch((const char *)p + bytes - 1, _MM_HINT_T0);
}

static inline float half_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

static inline float f32_at(const uint8_t *p) {
  float v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* ---- f32 / f16 ------------------------------------------------------------------ */

#define FLOAT_AXPY(name, esize, LOAD8, SCALAR)                                                              \
  void name(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y) { \
    const uint8_t *wb = w;                                                                                  \
    size_t e0 = 0;                                                                                          \
    for (; e0 + 64 <= ne; e0 += 64) {                                                                       \
      __m256 acc[8];                                                                                        \
      for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_ps();                                             \
      const uint8_t *seg = wb + e0 * (esize);                                                               \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *r = row_at(seg, ldw, idx, i);                                                        \
        if (i + PF < n) prefetch_bytes(row_at(seg, ldw, idx, i + PF), 64 * (esize));                        \
        const __m256 vs = _mm256_set1_ps(a[i]);                                                             \
        for (int t = 0; t < 8; t++) acc[t] = _mm256_fmadd_ps(LOAD8(r + 8 * t * (esize)), vs, acc[t]);       \
      }                                                                                                     \
      for (int t = 0; t < 8; t++) _mm256_storeu_ps(y + e0 + 8 * t, acc[t]);                                 \
    }                                                                                                       \
    for (; e0 + 8 <= ne; e0 += 8) {                                                                         \
      __m256 acc = _mm256_setzero_ps();                                                                     \
      const uint8_t *seg = wb + e0 * (esize);                                                               \
      for (size_t i = 0; i < n; i++)                                                                        \
        acc = _mm256_fmadd_ps(LOAD8(row_at(seg, ldw, idx, i)), _mm256_set1_ps(a[i]), acc);                  \
      _mm256_storeu_ps(y + e0, acc);                                                                        \
    }                                                                                                       \
    for (; e0 < ne; e0++) {                                                                                 \
      float acc = 0.0f;                                                                                     \
      const uint8_t *seg = wb + e0 * (esize);                                                               \
      for (size_t i = 0; i < n; i++) acc = fmaf(SCALAR(row_at(seg, ldw, idx, i)), a[i], acc);               \
      y[e0] = acc;                                                                                          \
    }                                                                                                       \
  }

#define LOAD8_F32(p) _mm256_loadu_ps((const float *)(const void *)(p))
#define LOAD8_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))

FLOAT_AXPY(spr_f32_axpy_ukernel_64__avx2, 4, LOAD8_F32, f32_at)
FLOAT_AXPY(spr_f16_axpy_ukernel_64__avx2, 2, LOAD8_F16, half_at)

/* ---- Q8_0 / Q4_0: blocks of 32, as four vectors of 8 codes ----------------------------- */

static inline void q8_0_codes(const uint8_t *blk, __m256 *v) {
  for (int t = 0; t < 4; t++) {
    const __m128i q = _mm_loadl_epi64((const __m128i *)(const void *)(blk + 2 + 8 * t));
    v[t] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  }
}

static inline void q4_0_codes(const uint8_t *blk, __m256 *v) {
  const __m256i mask = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
  for (int t = 0; t < 2; t++) {
    const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(blk + 2 + 8 * t)));
    v[t] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(q, mask), eight));   /* values 8t .. 8t+7 */
    v[t + 2] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(q, 4), eight)); /* values 16+8t .. */
  }
}

#define BLOCK_AXPY(name, bb, CODES)                                                                         \
  void name(size_t n, const int32_t *idx, const float *a, const void *w, size_t ldw, size_t ne, float *y) { \
    const uint8_t *wb = w;                                                                                  \
    const size_t nb = ne / 32;                                                                              \
    size_t b0 = 0;                                                                                          \
    for (; b0 + 2 <= nb; b0 += 2) {                                                                         \
      __m256 acc[8];                                                                                        \
      for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_ps();                                             \
      const uint8_t *seg = wb + b0 * (bb);                                                                  \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *r = row_at(seg, ldw, idx, i);                                                        \
        if (i + PF < n) prefetch_bytes(row_at(seg, ldw, idx, i + PF), 2 * (bb));                            \
        for (int b = 0; b < 2; b++) {                                                                       \
          const uint8_t *blk = r + b * (bb);                                                                \
          const __m256 vs = _mm256_set1_ps(a[i] * half_at(blk));                                            \
          __m256 v[4];                                                                                      \
          CODES(blk, v);                                                                                    \
          for (int t = 0; t < 4; t++) acc[4 * b + t] = _mm256_fmadd_ps(v[t], vs, acc[4 * b + t]);           \
        }                                                                                                   \
      }                                                                                                     \
      for (int t = 0; t < 8; t++) _mm256_storeu_ps(y + 32 * b0 + 8 * t, acc[t]);                            \
    }                                                                                                       \
    for (; b0 < nb; b0++) {                                                                                 \
      __m256 acc[4];                                                                                        \
      for (int t = 0; t < 4; t++) acc[t] = _mm256_setzero_ps();                                             \
      const uint8_t *seg = wb + b0 * (bb);                                                                  \
      for (size_t i = 0; i < n; i++) {                                                                      \
        const uint8_t *blk = row_at(seg, ldw, idx, i);                                                      \
        const __m256 vs = _mm256_set1_ps(a[i] * half_at(blk));                                              \
        __m256 v[4];                                                                                        \
        CODES(blk, v);                                                                                      \
        for (int t = 0; t < 4; t++) acc[t] = _mm256_fmadd_ps(v[t], vs, acc[t]);                             \
      }                                                                                                     \
      for (int t = 0; t < 4; t++) _mm256_storeu_ps(y + 32 * b0 + 8 * t, acc[t]);                            \
    }                                                                                                       \
  }

BLOCK_AXPY(spr_q8_0_axpy_ukernel_64__avx2, 34, q8_0_codes)
BLOCK_AXPY(spr_q4_0_axpy_ukernel_64__avx2, 18, q4_0_codes)

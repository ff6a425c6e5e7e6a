/* ops/coreffn/qrows_avx2.c — row-gathered Q4_0 / Q8_0 GEMV with AVX2
 * (contract in coreffn.h) on the plain packed activations of
 * ops/gemm/qgemm.h (qs[kb][32], d[kb], s[kb]). One block per step:
 * u8 x s8 pairs with maddubs (Q4_0: codes 0..15, the -8 folded in as
 * -8 * s; Q8_0: |w| times x with w's sign), widened with madd, one FMA per
 * block into one of four accumulators; rows PF entries ahead are
 * prefetched. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"
#include "ops/gemm/qgemm.h"

enum { PF = 4 };

static inline float half_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _cvtsh_ss(h);
}

static inline void prefetch_row(const uint8_t *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64)
    _mm_prefetch((const char *)p + off, _MM_HINT_T1); /* into L2: see qrows_avx512vnni.c */
}

static inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

static float q4_0_row(size_t kb, const uint8_t *w, const void *xq) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_0_plain_d(xq, kb);
  const int32_t *sx = spr_x8_0_plain_s(xq, kb);
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *blk = w + 18 * b;
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
    const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
    const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(qx + 32 * b));
    __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), ones);
    dp = _mm256_add_epi32(dp, _mm256_set1_epi32(-sx[b])); /* 8 lanes x -s = -8 s */
    acc[b % 4] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_set1_ps(half_at(blk) * dx[b]), acc[b % 4]);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

static float q8_0_row(size_t kb, const uint8_t *w, const void *xq) {
  const int8_t *qx = xq;
  const float *dx = spr_x8_0_plain_d(xq, kb);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (size_t b = 0; b < kb; b++) {
    const uint8_t *blk = w + 34 * b;
    const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    const __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(qx + 32 * b));
    const __m256i dp = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q)), ones);
    acc[b % 4] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dp), _mm256_set1_ps(half_at(blk) * dx[b]), acc[b % 4]);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

#define DEFINE_QROWS(name, row_fn, bb)                                                                      \
  void name(size_t kb, size_t n, const int32_t *idx, const void *w, size_t ldw, const void *xq, float *c) { \
    const uint8_t *wb = w;                                                                                  \
    for (size_t i = 0; i < n && i < PF; i++) prefetch_row(wb + (size_t)idx[i] * ldw, kb * (bb));            \
    for (size_t i = 0; i < n; i++) {                                                                        \
      if (i + PF < n) prefetch_row(wb + (size_t)idx[i + PF] * ldw, kb * (bb));                              \
      c[i] = row_fn(kb, wb + (size_t)idx[i] * ldw, xq);                                                     \
    }                                                                                                       \
  }

DEFINE_QROWS(spr_q4_0_qrows_ukernel__avx2, q4_0_row, 18)
DEFINE_QROWS(spr_q8_0_qrows_ukernel__avx2, q8_0_row, 34)

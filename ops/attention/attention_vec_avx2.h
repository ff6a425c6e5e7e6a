/* ops/attention/attention_vec_avx2.h — the vector shims (av_*) of the fused attention and
 * bi-level routing attention ukernels, AVX2 + FMA: one vector = 8 f32 lanes; the shared
 * tile code (attention_impl.h, ops/bra/bra_impl.h) is written against them. Include once,
 * from one ukernel file. */
#ifndef SPR_OPS_ATTENTION_ATTENTION_VEC_AVX2_H
#define SPR_OPS_ATTENTION_ATTENTION_VEC_AVX2_H

#if !defined(__AVX2__) || !defined(__FMA__)
#error "this header needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/attention/attention_exp_avx2.h"

typedef __m256 av_v;
#define AV_VL 8
#define AV_MV 2
#define AV_NKR 4
#define AV_CR 4
#define AV_ROW_MAX_LANES 4
#define AV_INLINE static inline __attribute__((always_inline))
#define AV_NOINLINE static __attribute__((noinline))

static inline av_v av_zero(void) {
  return _mm256_setzero_ps();
}
static inline av_v av_set1(float x) {
  return _mm256_set1_ps(x);
}
static inline av_v av_load(const float *p) {
  return _mm256_loadu_ps(p);
}
static inline av_v av_load_h(const uint16_t *p) {
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
static inline void av_store(float *p, av_v v) {
  _mm256_storeu_ps(p, v);
}
static inline av_v av_bcast(const float *p) {
  return _mm256_broadcast_ss(p);
}
static inline av_v av_fma(av_v a, av_v b, av_v c) {
  return _mm256_fmadd_ps(a, b, c);
}
static inline av_v av_add(av_v a, av_v b) {
  return _mm256_add_ps(a, b);
}
static inline av_v av_mul(av_v a, av_v b) {
  return _mm256_mul_ps(a, b);
}
static inline av_v av_sub(av_v a, av_v b) {
  return _mm256_sub_ps(a, b);
}
static inline av_v av_max(av_v a, av_v b) {
  return _mm256_max_ps(a, b);
}
static inline av_v av_exp2(av_v x) {
  return spr_attn_exp2_avx2(x);
}
static inline float av_hsum(av_v x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
/* out[i] = sum of the lanes of a, b, c, d: pairs within 128-bit lanes, then
 * the two 128-bit lanes. */
static inline void av_hsum4(av_v a, av_v b, av_v c, av_v d, float *out) {
  const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  const __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  const __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
  const __m256 abcd =
      _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)), _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
}
static inline av_v av_mask_keys(av_v s, float j, av_v lim) {
  const __m256 hidden = _mm256_cmp_ps(_mm256_set1_ps(j), lim, _CMP_GT_OQ);
  return _mm256_blendv_ps(s, _mm256_set1_ps(-INFINITY), hidden);
}

#endif

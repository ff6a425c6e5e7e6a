/* ops/bra/f32_bra_avx2.c — bi-level routing attention ukernel, AVX2 + FMA: 16 queries (2 ymm),
 * 2 x 4 score and 2 x 4 P.V register tiles. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <math.h>

#include "ops/attention/attention_exp_avx2.h"

typedef __m256 av_v;
#define AV_VL 8
#define AV_MV 2
#define AV_NKR 4
#define AV_CR 4
#define AV_ROW_MAX_LANES 4
#define AV_UKERNEL spr_f32_bra_ukernel_16__avx2
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

/* Small-region path (groups of 4 lanes, one query per group). */
#define AV_G4 1
/* p[0..3] in every 4-lane group. */
static inline av_v av_bcast4(const float *p) {
  return _mm256_broadcast_ps((const __m128 *)(const void *)p);
}
/* Group g of the result = the sums of group g of a, b, c, d. */
static inline av_v av_red4x4(av_v a, av_v b, av_v c, av_v d) {
  const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  const __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  const __m256d abd = _mm256_castps_pd(ab), cdd = _mm256_castps_pd(cd);
  return _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(abd, cdd)), _mm256_castpd_ps(_mm256_unpackhi_pd(abd, cdd)));
}
/* The max of each 4-lane group, in all its lanes. */
static inline av_v av_gmax4(av_v x) {
  const __m256 m = _mm256_max_ps(x, _mm256_permute_ps(x, 0xB1));
  return _mm256_max_ps(m, _mm256_permute_ps(m, 0x4E));
}

/* Group g = p[g][off .. off + 4). */
static inline av_v av_load4g(const float *const *p, size_t off) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p[0] + off)), _mm_loadu_ps(p[1] + off), 1);
}

#include "ops/bra/bra_impl.h"

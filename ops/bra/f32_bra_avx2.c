/* ops/bra/f32_bra_avx2.c — bi-level routing attention ukernel, AVX2 + FMA: 16 queries (2 ymm),
 * 2 x 4 score and 2 x 4 P.V register tiles. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#define AV_UKERNEL spr_f32_bra_ukernel_16__avx2

#include "ops/attention/attention_vec_avx2.h"

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

/* ops/bra/f32_bra_avx512.c — bi-level routing attention ukernel, AVX-512: 32 queries (2 zmm),
 * 2 x 8 score and 2 x 8 P.V register tiles. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#define AV_UKERNEL spr_f32_bra_ukernel_32__avx512

#include "ops/attention/attention_vec_avx512.h"

/* Small-region path (groups of 4 lanes, one query per group). */
#define AV_G4 1
/* p[0..3] in every 4-lane group. */
static inline av_v av_bcast4(const float *p) {
  return _mm512_broadcast_f32x4(_mm_loadu_ps(p));
}
/* Group g of the result = the sums of group g of a, b, c, d. */
static inline av_v av_red4x4(av_v a, av_v b, av_v c, av_v d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)), _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
}
/* The max of each 4-lane group, in all its lanes. */
static inline av_v av_gmax4(av_v x) {
  const __m512 m = _mm512_max_ps(x, _mm512_permute_ps(x, 0xB1));
  return _mm512_max_ps(m, _mm512_permute_ps(m, 0x4E));
}

/* Group g = p[g][off .. off + 4). */
static inline av_v av_load4g(const float *const *p, size_t off) {
  __m512 v = _mm512_castps128_ps512(_mm_loadu_ps(p[0] + off));
  v = _mm512_insertf32x4(v, _mm_loadu_ps(p[1] + off), 1);
  v = _mm512_insertf32x4(v, _mm_loadu_ps(p[2] + off), 2);
  return _mm512_insertf32x4(v, _mm_loadu_ps(p[3] + off), 3);
}

#include "ops/bra/bra_impl.h"

/* ops/bra/f32_bra_avx512.c — bi-level routing attention ukernel, AVX-512: 32 queries (2 zmm),
 * 2 x 8 score and 2 x 8 P.V register tiles. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <math.h>

#include "ops/attention/attention_exp_avx512.h"

typedef __m512 av_v;
#define AV_VL 16
#define AV_MV 2
#define AV_NKR 8
#define AV_CR 8
#define AV_ROW_MAX_LANES 8
#define AV_UKERNEL spr_f32_bra_ukernel_32__avx512
#define AV_INLINE static inline __attribute__((always_inline))
#define AV_NOINLINE static __attribute__((noinline))

static inline av_v av_zero(void) {
  return _mm512_setzero_ps();
}
static inline av_v av_set1(float x) {
  return _mm512_set1_ps(x);
}
static inline av_v av_load(const float *p) {
  return _mm512_loadu_ps(p);
}
static inline void av_store(float *p, av_v v) {
  _mm512_storeu_ps(p, v);
}
static inline av_v av_bcast(const float *p) {
  return _mm512_set1_ps(*p);
}
static inline av_v av_fma(av_v a, av_v b, av_v c) {
  return _mm512_fmadd_ps(a, b, c);
}
static inline av_v av_add(av_v a, av_v b) {
  return _mm512_add_ps(a, b);
}
static inline av_v av_mul(av_v a, av_v b) {
  return _mm512_mul_ps(a, b);
}
static inline av_v av_sub(av_v a, av_v b) {
  return _mm512_sub_ps(a, b);
}
static inline av_v av_max(av_v a, av_v b) {
  return _mm512_max_ps(a, b);
}
static inline av_v av_exp2(av_v x) {
  return spr_attn_exp2_avx512(x);
}
static inline float av_hsum(av_v x) {
  return _mm512_reduce_add_ps(x);
}
/* out[i] = sum of the lanes of a, b, c, d: pairs within 128-bit lanes, then
 * the four 128-bit lanes. */
static inline void av_hsum4(av_v a, av_v b, av_v c, av_v d, float *out) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  const __m512 abcd =
      _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)), _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
  const __m256 h =
      _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(abcd), 1)));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

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

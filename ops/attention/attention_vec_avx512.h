/* ops/attention/attention_vec_avx512.h — the vector shims (av_*) of the fused attention and
 * bi-level routing attention ukernels, AVX-512: one vector = 16 f32 lanes; the shared
 * tile code (attention_impl.h, ops/bra/bra_impl.h) is written against them. Include once,
 * from one ukernel file. */
#ifndef SPR_OPS_ATTENTION_ATTENTION_VEC_AVX512_H
#define SPR_OPS_ATTENTION_ATTENTION_VEC_AVX512_H

#if !defined(__AVX512F__)
#error "this header needs -mavx512f"
#endif

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/attention/attention_exp_avx512.h"

typedef __m512 av_v;
#define AV_VL 16
#define AV_MV 2
#define AV_NKR 8
#define AV_CR 8
#define AV_ROW_MAX_LANES 8
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
static inline av_v av_load_h(const uint16_t *p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
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
static inline av_v av_mask_keys(av_v s, float j, av_v lim) {
  const __mmask16 hidden = _mm512_cmp_ps_mask(_mm512_set1_ps(j), lim, _CMP_GT_OQ);
  return _mm512_mask_mov_ps(s, hidden, _mm512_set1_ps(-INFINITY));
}

#endif

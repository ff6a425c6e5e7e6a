/* ops/natten/f32_natten_avx2.c — neighborhood attention ukernel, AVX2 + FMA:
 * 8 query columns per tile, 2 rows x 4 band offsets score and 2 rows x 4
 * columns P.V register tiles. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "ops/attention/attention_exp_avx2.h"

typedef __m256 av_v;
#define NA_VL 8
#define NA_QR 2
#define NA_NO 4
#define NA_PNO 6
#define NA_UKERNEL spr_f32_na_ukernel_8__avx2
#define AV_INLINE static inline __attribute__((always_inline))

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
#define NA_HAVE_PERMUTE 1
typedef __m256i av_idx;
static inline av_idx av_idx_load(const int32_t *p) {
  return _mm256_loadu_si256((const __m256i *)(const void *)p);
}
static inline av_v av_permute(av_v v, av_idx i) {
  return _mm256_permutevar8x32_ps(v, i);
}
static inline av_v av_keep(av_v v) {
  __asm__("" : "+x"(v));
  return v;
}
static inline av_v av_exp2(av_v x) {
  return spr_attn_exp2_avx2(x);
}
static inline av_v av_mask_range(av_v s, float o, av_v lo, av_v hi) {
  const __m256 ov = _mm256_set1_ps(o);
  const __m256 hidden = _mm256_or_ps(_mm256_cmp_ps(ov, lo, _CMP_LT_OQ), _mm256_cmp_ps(ov, hi, _CMP_GE_OQ));
  return _mm256_blendv_ps(s, _mm256_set1_ps(-INFINITY), hidden);
}
#include "ops/natten/natten_transpose_ymm.h"

#include "ops/natten/natten_impl.h"

/* ops/natten/f32_natten_avx512.c — neighborhood attention ukernel, AVX-512:
 * 16 query columns per tile, 3 rows x 7 band offsets score and 3 rows x 8
 * columns P.V register tiles. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <math.h>

#include "ops/attention/attention_exp_avx512.h"

typedef __m512 av_v;
#define NA_VL 16
#define NA_QR 3
#define NA_NO 7
#define NA_NC 8
#define NA_UKERNEL spr_f32_na_ukernel_16__avx512
#define AV_INLINE static inline __attribute__((always_inline))

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
static inline av_v av_mask_range(av_v s, float o, av_v lo, av_v hi) {
  const __m512 ov = _mm512_set1_ps(o);
  const __mmask16 hidden = _mm512_cmp_ps_mask(ov, lo, _CMP_LT_OQ) | _mm512_cmp_ps_mask(ov, hi, _CMP_GE_OQ);
  return _mm512_mask_mov_ps(s, hidden, _mm512_set1_ps(-INFINITY));
}
/* 16 x 16 transpose: 32-bit then 64-bit interleaves give 4 x 4 blocks per
 * 128-bit lane, two rounds of 128-bit lane shuffles place them. */
static inline void av_transpose_load(const float *const *rows, size_t off, av_v out[16]) {
  __m512 a[16], t[16];
  for (int i = 0; i < 16; i++) a[i] = _mm512_loadu_ps(rows[i] + off);
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
  }
  /* u[4g + j] lane k = column 4k + j of rows 4g .. 4g + 3 */
  __m512 u[16];
  for (int g = 0; g < 4; g++) {
    const __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int j = 0; j < 4; j++) {
    const __m512 p = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44), q = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44);
    const __m512 p2 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE), q2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
    out[j] = _mm512_shuffle_f32x4(p, q, 0x88);
    out[4 + j] = _mm512_shuffle_f32x4(p, q, 0xDD);
    out[8 + j] = _mm512_shuffle_f32x4(p2, q2, 0x88);
    out[12 + j] = _mm512_shuffle_f32x4(p2, q2, 0xDD);
  }
}

#include "ops/natten/natten_impl.h"

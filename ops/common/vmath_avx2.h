/* ops/common/vmath_avx2.h — vector exp / erf / sigmoid building blocks for
 * the AVX2+FMA ukernels (static inline; include only from *_avx2.c files,
 * which carry the ISA guard and flags). Same algorithms and constants as
 * vmath_avx512.h and vmath_neon.h: see vmath_coeffs.h for the error bounds. */
#ifndef SPR_OPS_COMMON_VMATH_AVX2_H
#define SPR_OPS_COMMON_VMATH_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/common/vmath_coeffs.h"

/* Lane mask for _mm256_maskload_ps/_mm256_maskstore_ps: lanes [0, rem) set; rem in [1, 8]. */
static inline __m256i spr_tail_mask_avx2(size_t rem) {
  static const int32_t k_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256((const __m256i *)(const void *)(k_mask_table + 8 - rem));
}

static inline float spr_hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float spr_hmax_avx2(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/* exp(x): 0 below SPR_VEXP_LO, saturates at exp(SPR_VEXP_HI), NaN stays NaN. */
static inline __m256 spr_vexp_avx2(__m256 x) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(SPR_VEXP_LO), _CMP_NLT_UQ);
  /* min/max return their second operand when one is NaN: x second keeps NaN. */
  x = _mm256_min_ps(_mm256_set1_ps(SPR_VEXP_HI), x);
  x = _mm256_max_ps(_mm256_set1_ps(SPR_VEXP_LO), x);
  const __m256 magic = _mm256_set1_ps(SPR_VEXP_MAGIC);
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(SPR_VEXP_LOG2E), magic);
  const __m256 n = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SPR_VEXP_LN2_HI), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SPR_VEXP_LN2_LO), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(SPR_VEXP_C5), r, _mm256_set1_ps(SPR_VEXP_C4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SPR_VEXP_C3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SPR_VEXP_C2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
  return _mm256_and_ps(keep, _mm256_mul_ps(p, scale));
}

/* 1/d for d in [1, 2^126]: rcp (12 bits) plus one Newton step. */
static inline __m256 spr_vrcp_avx2(__m256 d) {
  const __m256 r = _mm256_rcp_ps(d);
  return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(1.0f)), r);
}

/* erf(z), exactly +-1 for |z| >= SPR_VERF_SAT. */
static inline __m256 spr_verf_avx2(__m256 z) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  const __m256 az = _mm256_andnot_ps(sign_bit, z);
  const __m256 sat = _mm256_cmp_ps(az, _mm256_set1_ps(SPR_VERF_SAT), _CMP_GE_OQ);
  const __m256 a = _mm256_min_ps(_mm256_set1_ps(SPR_VERF_SAT), az);
  const __m256 t = _mm256_mul_ps(a, a);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(SPR_VERF_P5), t, _mm256_set1_ps(SPR_VERF_P4));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SPR_VERF_P3));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SPR_VERF_P2));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SPR_VERF_P1));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(SPR_VERF_P0));
  __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(SPR_VERF_Q5), t, _mm256_set1_ps(SPR_VERF_Q4));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SPR_VERF_Q3));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SPR_VERF_Q2));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SPR_VERF_Q1));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(1.0f));
  /* a true division: rcp + one Newton step would add ~1e-7 to the error budget. */
  __m256 e = _mm256_div_ps(_mm256_mul_ps(a, p), q);
  e = _mm256_blendv_ps(e, _mm256_set1_ps(1.0f), sat);
  return _mm256_or_ps(e, _mm256_and_ps(z, sign_bit));
}

/* gelu(x) = x/2 (1 + erf(x/sqrt2)); exactly -0 or x for large |x|. */
static inline __m256 spr_vgelu_avx2(__m256 x) {
  const __m256 e = spr_verf_avx2(_mm256_mul_ps(x, _mm256_set1_ps(SPR_SQRT1_2)));
  const __m256 h = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
  return _mm256_fmadd_ps(h, e, h);
}

/* silu(x) = x sigmoid(x), with e = exp(-|x|) so nothing overflows:
 * sigmoid(|x|) = 1/(1+e), sigmoid(-|x|) = e/(1+e). */
static inline __m256 spr_vsilu_avx2(__m256 x) {
  const __m256 e = spr_vexp_avx2(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
  const __m256 s = spr_vrcp_avx2(_mm256_add_ps(e, _mm256_set1_ps(1.0f)));
  const __m256 sig = _mm256_blendv_ps(s, _mm256_mul_ps(s, e), x); /* sign bit of x selects */
  return _mm256_mul_ps(x, sig);
}

#endif

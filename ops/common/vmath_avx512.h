/* ops/common/vmath_avx512.h — vector exp / erf / sigmoid building blocks for
 * the AVX-512 ukernels (static inline; include only from *_avx512.c files,
 * which carry the ISA guard and flags). Same algorithms and constants as
 * vmath_avx2.h and vmath_neon.h: see vmath_coeffs.h for the error bounds. */
#ifndef SPR_OPS_COMMON_VMATH_AVX512_H
#define SPR_OPS_COMMON_VMATH_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "ops/common/vmath_coeffs.h"

/* Lanes [0, rem) set; rem in [1, 16]. */
static inline __mmask16 spr_tail_mask_avx512(size_t rem) {
  return (__mmask16)((1u << rem) - 1u);
}

/* exp(x): 0 below SPR_VEXP_LO, saturates at exp(SPR_VEXP_HI), NaN stays NaN. */
static inline __m512 spr_vexp_avx512(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(SPR_VEXP_LO), _CMP_NLT_UQ);
  /* min/max return their second operand when one is NaN: x second keeps NaN. */
  x = _mm512_min_ps(_mm512_set1_ps(SPR_VEXP_HI), x);
  x = _mm512_max_ps(_mm512_set1_ps(SPR_VEXP_LO), x);
  const __m512 magic = _mm512_set1_ps(SPR_VEXP_MAGIC);
  const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(SPR_VEXP_LOG2E), magic);
  const __m512 n = _mm512_sub_ps(t, magic);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(SPR_VEXP_LN2_HI), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(SPR_VEXP_LN2_LO), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(SPR_VEXP_C5), r, _mm512_set1_ps(SPR_VEXP_C4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SPR_VEXP_C3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SPR_VEXP_C2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23));
  return _mm512_maskz_mul_ps(keep, p, scale);
}

/* 1/d for finite d >= 1 (or any d whose reciprocal is normal): rcp14 plus one
 * Newton step, about 1 ulp. */
static inline __m512 spr_vrcp_avx512(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}

/* erf(z), exactly +-1 for |z| >= SPR_VERF_SAT. */
static inline __m512 spr_verf_avx512(__m512 z) {
  const __m512i sign_bit = _mm512_set1_epi32((int)0x80000000u);
  const __m512i zi = _mm512_castps_si512(z);
  const __m512 az = _mm512_castsi512_ps(_mm512_andnot_si512(sign_bit, zi));
  const __mmask16 sat = _mm512_cmp_ps_mask(az, _mm512_set1_ps(SPR_VERF_SAT), _CMP_GE_OQ);
  const __m512 a = _mm512_min_ps(_mm512_set1_ps(SPR_VERF_SAT), az);
  const __m512 t = _mm512_mul_ps(a, a);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(SPR_VERF_P5), t, _mm512_set1_ps(SPR_VERF_P4));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SPR_VERF_P3));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SPR_VERF_P2));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SPR_VERF_P1));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(SPR_VERF_P0));
  __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(SPR_VERF_Q5), t, _mm512_set1_ps(SPR_VERF_Q4));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SPR_VERF_Q3));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SPR_VERF_Q2));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SPR_VERF_Q1));
  q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.0f));
  __m512 e = _mm512_mul_ps(_mm512_mul_ps(a, p), spr_vrcp_avx512(q));
  e = _mm512_mask_mov_ps(e, sat, _mm512_set1_ps(1.0f));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(e), _mm512_and_si512(zi, sign_bit)));
}

/* gelu(x) = x/2 (1 + erf(x/sqrt2)); exactly -0 or x for large |x|. */
static inline __m512 spr_vgelu_avx512(__m512 x) {
  const __m512 e = spr_verf_avx512(_mm512_mul_ps(x, _mm512_set1_ps(SPR_SQRT1_2)));
  const __m512 h = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
  return _mm512_fmadd_ps(h, e, h);
}

/* silu(x) = x sigmoid(x), with e = exp(-|x|) so nothing overflows:
 * sigmoid(|x|) = 1/(1+e), sigmoid(-|x|) = e/(1+e). */
static inline __m512 spr_vsilu_avx512(__m512 x) {
  const __m512i sign_bit = _mm512_set1_epi32((int)0x80000000u);
  const __m512 neg_ax = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(x), sign_bit));
  const __m512 e = spr_vexp_avx512(neg_ax);
  const __m512 s = spr_vrcp_avx512(_mm512_add_ps(e, _mm512_set1_ps(1.0f)));
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_mul_ps(x, _mm512_mask_mul_ps(s, neg, s, e));
}

#endif

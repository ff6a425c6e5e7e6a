/* ops/attention/attention_exp_avx2.h — 2^x on 8 floats for the attention
 * ukernel, valid for x <= 0 (including -inf).
 *
 * x = n + f, n = round(x), |f| <= 1/2; 2^f by a degree-5 polynomial fitted
 * for relative error (< 2e-7 in f32 Horner); 2^n built in the exponent
 * field. x is clamped at -127, where the biased exponent is 0 and 2^n reads
 * as +0: everything below about -126.5 (and -inf, a masked score) gives
 * exactly 0. (ops/attention keeps its own exp; a generic vector math module
 * may later replace these few lines.) */
#ifndef SPR_OPS_ATTENTION_EXP_AVX2_H
#define SPR_OPS_ATTENTION_EXP_AVX2_H

#include <immintrin.h>

static inline __m256 spr_attn_exp2_avx2(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-127.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.326472731e-03f), f, _mm256_set1_ps(9.671512991e-03f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550733581e-02f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402224243e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931470037e-01f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

#endif

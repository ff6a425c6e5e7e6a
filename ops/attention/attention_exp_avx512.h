/* ops/attention/attention_exp_avx512.h — 2^x on 16 floats for the attention
 * ukernel (x <= 0 expected; any x is safe).
 *
 * x = n + f, n = round(x), |f| <= 1/2; 2^f by a degree-5 polynomial fitted
 * for relative error (< 2e-7 in f32 Horner), then scalef by n. x is clamped
 * at -152 so that -inf (a masked score) gives exactly 0 (p * 2^-152 rounds
 * to 0) instead of NaN. (ops/attention keeps its own exp; a generic vector
 * math module may later replace these few lines.) */
#ifndef SPR_OPS_ATTENTION_EXP_AVX512_H
#define SPR_OPS_ATTENTION_EXP_AVX512_H

#include <immintrin.h>

static inline __m512 spr_attn_exp2_avx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-152.0f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.326472731e-03f), f, _mm512_set1_ps(9.671512991e-03f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550733581e-02f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402224243e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931470037e-01f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

#endif

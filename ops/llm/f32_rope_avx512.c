/* ops/llm/f32_rope_avx512.c — RoPE row ukernel, AVX-512: 8 pairs per
 * vector, the tail with a masked vector; multiplies and an add, no FMA, so
 * the bits equal the scalar ukernel's. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/llm/llm.h"

static inline __m512 rope16(__m512 v, __m512 c, __m512 s) {
  const __m512 sw = _mm512_permute_ps(v, 0xB1); /* (x1, x0) per pair */
  return _mm512_add_ps(_mm512_mul_ps(v, c), _mm512_mul_ps(sw, s));
}

void spr_f32_rope_ukernel_16__avx512(size_t n_heads, size_t head_dim, size_t n_rot, const float *cs, const float *x,
                                     float *y) {
  const float *cc = cs, *ss = cs + n_rot;
  const size_t nv = n_rot / 16 * 16;
  const __mmask16 tail = (__mmask16)((1u << (n_rot - nv)) - 1u);
  for (size_t h = 0; h < n_heads; h++, x += head_dim, y += head_dim) {
    for (size_t k = 0; k < nv; k += 16)
      _mm512_storeu_ps(y + k, rope16(_mm512_loadu_ps(x + k), _mm512_loadu_ps(cc + k), _mm512_loadu_ps(ss + k)));
    if (tail) {
      const __m512 v = _mm512_maskz_loadu_ps(tail, x + nv);
      _mm512_mask_storeu_ps(y + nv, tail,
                            rope16(v, _mm512_maskz_loadu_ps(tail, cc + nv), _mm512_maskz_loadu_ps(tail, ss + nv)));
    }
    if (y != x && head_dim > n_rot) memcpy(y + n_rot, x + n_rot, (head_dim - n_rot) * sizeof(float));
  }
}

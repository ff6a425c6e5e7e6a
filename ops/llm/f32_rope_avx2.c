/* ops/llm/f32_rope_avx2.c — RoPE row ukernel, AVX2: 4 pairs per vector,
 * y = x * cc + swap_pairs(x) * ss (multiplies and an add, no FMA, so the
 * bits equal the scalar ukernel's). */
#if !defined(__AVX2__)
#error "this file needs -mavx2"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/llm/llm.h"

void spr_f32_rope_ukernel_8__avx2(size_t n_heads, size_t head_dim, size_t n_rot, const float *cs, const float *x,
                                  float *y) {
  const float *cc = cs, *ss = cs + n_rot;
  const size_t nv = n_rot / 8 * 8;
  for (size_t h = 0; h < n_heads; h++, x += head_dim, y += head_dim) {
    size_t k = 0;
    for (; k < nv; k += 8) {
      const __m256 v = _mm256_loadu_ps(x + k);
      const __m256 sw = _mm256_permute_ps(v, 0xB1); /* (x1, x0) per pair */
      const __m256 a = _mm256_mul_ps(v, _mm256_loadu_ps(cc + k));
      const __m256 b = _mm256_mul_ps(sw, _mm256_loadu_ps(ss + k));
      _mm256_storeu_ps(y + k, _mm256_add_ps(a, b));
    }
    for (; k < n_rot; k += 2) {
      const float x0 = x[k], x1 = x[k + 1];
      y[k] = x0 * cc[k] + x1 * ss[k];
      y[k + 1] = x1 * cc[k + 1] + x0 * ss[k + 1];
    }
    if (y != x && head_dim > n_rot) memcpy(y + n_rot, x + n_rot, (head_dim - n_rot) * sizeof(float));
  }
}

/* ops/eltwise/f32_eltwise_avx2.c — add / mul / scale with AVX2: one vector
 * per step, masked tail. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "ops/common/vmath_avx2.h"
#include "ops/eltwise/eltwise.h"

#define BINARY_UKERNEL(name, op)                                                                            \
  void name(size_t n, const float *a, const float *b, float *y) {                                           \
    size_t i = 0;                                                                                           \
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, op(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))); \
    if (i < n) {                                                                                            \
      const __m256i k = spr_tail_mask_avx2(n - i);                                                          \
      _mm256_maskstore_ps(y + i, k, op(_mm256_maskload_ps(a + i, k), _mm256_maskload_ps(b + i, k)));        \
    }                                                                                                       \
  }

BINARY_UKERNEL(spr_f32_add_ukernel_8__avx2, _mm256_add_ps)
BINARY_UKERNEL(spr_f32_mul_ukernel_8__avx2, _mm256_mul_ps)

void spr_f32_scale_ukernel_8__avx2(size_t n, const float *x, float s, float *y) {
  const __m256 vs = _mm256_set1_ps(s);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
  if (i < n) {
    const __m256i k = spr_tail_mask_avx2(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_mul_ps(_mm256_maskload_ps(x + i, k), vs));
  }
}

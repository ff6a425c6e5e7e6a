/* ops/eltwise/f32_eltwise_avx512.c — add / mul / scale with AVX-512: one
 * vector per step, masked tail. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>

#include "ops/common/vmath_avx512.h"
#include "ops/eltwise/eltwise.h"

#define BINARY_UKERNEL(name, op)                                                                              \
  void name(size_t n, const float *a, const float *b, float *y) {                                             \
    size_t i = 0;                                                                                             \
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))); \
    if (i < n) {                                                                                              \
      const __mmask16 k = spr_tail_mask_avx512(n - i);                                                        \
      _mm512_mask_storeu_ps(y + i, k, op(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));  \
    }                                                                                                         \
  }

BINARY_UKERNEL(spr_f32_add_ukernel_16__avx512f, _mm512_add_ps)
BINARY_UKERNEL(spr_f32_mul_ukernel_16__avx512f, _mm512_mul_ps)

void spr_f32_scale_ukernel_16__avx512f(size_t n, const float *x, float s, float *y) {
  const __m512 vs = _mm512_set1_ps(s);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
  if (i < n) {
    const __mmask16 k = spr_tail_mask_avx512(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
  }
}

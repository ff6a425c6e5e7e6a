/* ops/act/f32_act_avx2.c — GELU / SiLU / ReLU with AVX2+FMA: one vector per
 * step, masked tail (same instruction sequence for every element). */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "this file needs -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "ops/act/act_ukernels.h"
#include "ops/common/vmath_avx2.h"

static inline __m256 relu(__m256 x) {
  return _mm256_max_ps(x, _mm256_setzero_ps());
}

#define UNARY_UKERNEL(name, op)                                                     \
  void name(size_t n, const float *x, float *y) {                                   \
    size_t i = 0;                                                                   \
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, op(_mm256_loadu_ps(x + i))); \
    if (i < n) {                                                                    \
      const __m256i k = spr_tail_mask_avx2(n - i);                                  \
      _mm256_maskstore_ps(y + i, k, op(_mm256_maskload_ps(x + i, k)));              \
    }                                                                               \
  }

UNARY_UKERNEL(spr_f32_gelu_ukernel_8__avx2, spr_vgelu_avx2)
UNARY_UKERNEL(spr_f32_silu_ukernel_8__avx2, spr_vsilu_avx2)
UNARY_UKERNEL(spr_f32_relu_ukernel_8__avx2, relu)

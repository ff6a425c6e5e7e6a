/* ops/act/f32_act_avx512.c — GELU / SiLU / ReLU with AVX-512: one vector per
 * step, masked tail (same instruction sequence for every element). */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>

#include "ops/act/act_ukernels.h"
#include "ops/common/vmath_avx512.h"

static inline __m512 relu(__m512 x) {
  return _mm512_max_ps(x, _mm512_setzero_ps());
}

#define UNARY_UKERNEL(name, op)                                                       \
  void name(size_t n, const float *x, float *y) {                                     \
    size_t i = 0;                                                                     \
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, op(_mm512_loadu_ps(x + i))); \
    if (i < n) {                                                                      \
      const __mmask16 k = spr_tail_mask_avx512(n - i);                                \
      _mm512_mask_storeu_ps(y + i, k, op(_mm512_maskz_loadu_ps(k, x + i)));           \
    }                                                                                 \
  }

UNARY_UKERNEL(spr_f32_gelu_ukernel_16__avx512f, spr_vgelu_avx512)
UNARY_UKERNEL(spr_f32_silu_ukernel_16__avx512f, spr_vsilu_avx512)
UNARY_UKERNEL(spr_f32_relu_ukernel_16__avx512f, relu)

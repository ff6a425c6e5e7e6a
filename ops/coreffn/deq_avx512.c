/* ops/coreffn/deq_avx512.c — Q4_0 / Q8_0 strip dequantizers with AVX-512
 * (contract in coreffn.h): per block the code as int32 lanes -> f32, times
 * the block's scale: the same single rounding as ops/quant's (q - 8) * d. */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"

static inline __m512 scale_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _mm512_set1_ps(_cvtsh_ss(h));
}

void spr_q4_0_deq_ukernel__avx512f(const void *x, float *y, size_t n) {
  const uint8_t *b = x;
  const __m512i m4 = _mm512_set1_epi32(0x0F), eight = _mm512_set1_epi32(8);
  for (size_t i = 0; i < n / 32; i++, b += 18) {
    const __m512 d = scale_at(b);
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 2)));
    const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(q, m4), eight);
    const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
    _mm512_storeu_ps(y + 32 * i, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
    _mm512_storeu_ps(y + 32 * i + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
  }
}

void spr_q8_0_deq_ukernel__avx512f(const void *x, float *y, size_t n) {
  const uint8_t *b = x;
  for (size_t i = 0; i < n / 32; i++, b += 34) {
    const __m512 d = scale_at(b);
    const __m512i q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 2)));
    const __m512i q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b + 18)));
    _mm512_storeu_ps(y + 32 * i, _mm512_mul_ps(_mm512_cvtepi32_ps(q0), d));
    _mm512_storeu_ps(y + 32 * i + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(q1), d));
  }
}

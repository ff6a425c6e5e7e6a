/* ops/coreffn/deq_avx2.c — Q4_0 / Q8_0 strip dequantizers with AVX2
 * (contract in coreffn.h): the same single rounding as ops/quant's. */
#if !defined(__AVX2__)
#error "this file needs -mavx2"
#endif

#include <immintrin.h>
#include <string.h>

#include "ops/coreffn/coreffn.h"

static inline __m256 scale_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, sizeof h);
  return _mm256_set1_ps(_cvtsh_ss(h));
}

void spr_q4_0_deq_ukernel__avx2(const void *x, float *y, size_t n) {
  const uint8_t *b = x;
  const __m256i m4 = _mm256_set1_epi32(0x0F), eight = _mm256_set1_epi32(8);
  for (size_t i = 0; i < n / 32; i++, b += 18) {
    const __m256 d = scale_at(b);
    for (int h = 0; h < 2; h++) {
      const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + 2 + 8 * h)));
      const __m256i lo = _mm256_sub_epi32(_mm256_and_si256(q, m4), eight);
      const __m256i hi = _mm256_sub_epi32(_mm256_srli_epi32(q, 4), eight);
      _mm256_storeu_ps(y + 32 * i + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(lo), d));
      _mm256_storeu_ps(y + 32 * i + 16 + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(hi), d));
    }
  }
}

void spr_q8_0_deq_ukernel__avx2(const void *x, float *y, size_t n) {
  const uint8_t *b = x;
  for (size_t i = 0; i < n / 32; i++, b += 34) {
    const __m256 d = scale_at(b);
    for (int t = 0; t < 4; t++) {
      const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + 2 + 8 * t)));
      _mm256_storeu_ps(y + 32 * i + 8 * t, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
    }
  }
}

/* ops/attention/f16_rows_avx512.c — f16 -> f32 rows, AVX-512: 16 elements
 * per step, a masked tail, the next rows prefetched (cache rows are usually
 * far apart). */
#if !defined(__AVX512F__)
#error "this file needs -mavx512f"
#endif

#include <immintrin.h>

#include "ops/attention/attention.h"

#define PF_ROWS 8

void spr_f16_to_f32_rows_ukernel_16__avx512(size_t rows, size_t n, const uint16_t *x, size_t x_stride, float *y,
                                            size_t y_stride) {
  const size_t nv = n / 16 * 16;
  const __mmask16 tail = (__mmask16)((1u << (n - nv)) - 1u);
  for (size_t r = 0; r < rows; r++, x += x_stride, y += y_stride) {
    if (r + PF_ROWS < rows)
      for (size_t c = 0; c < n; c += 32) _mm_prefetch((const char *)(x + PF_ROWS * x_stride + c), _MM_HINT_T0);
    for (size_t c = 0; c < nv; c += 16)
      _mm512_storeu_ps(y + c, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + c))));
    if (tail) _mm512_mask_storeu_ps(y + nv, tail, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, x + nv)));
  }
}

/* ops/attention/f16_rows_avx2.c — f16 -> f32 rows with F16C, 8 elements per
 * step, the next rows prefetched (cache rows are usually far apart). */
#if !defined(__AVX2__) || !defined(__F16C__)
#error "this file needs -mavx2 -mf16c"
#endif

#include <immintrin.h>

#include "ops/attention/attention.h"
#include "ops/common/fp16.h"

#define PF_ROWS 8

void spr_f16_to_f32_rows_ukernel_8__avx2(size_t rows, size_t n, const uint16_t *x, size_t x_stride, float *y,
                                         size_t y_stride) {
  const size_t nv = n / 8 * 8;
  for (size_t r = 0; r < rows; r++, x += x_stride, y += y_stride) {
    if (r + PF_ROWS < rows)
      for (size_t c = 0; c < n; c += 32) _mm_prefetch((const char *)(x + PF_ROWS * x_stride + c), _MM_HINT_T0);
    size_t c = 0;
    for (; c < nv; c += 8) _mm256_storeu_ps(y + c, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + c))));
    for (; c < n; c++) y[c] = spr_fp16_to_f32(x[c]);
  }
}
